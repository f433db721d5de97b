//! The Altan node: what turns the pure runtime (and, with the proof-of-stake issue, the pure
//! consensus) into a program people run.
//!
//! # Shape
//!
//! - [`mempool`]: admitted transactions, by sender and nonce, with limits and fee-ordered
//!   selection. Synchronous and tested on its own.
//! - [`chain`]: the node's core: executes and commits blocks, answers reads at any kept height and
//!   broadcasts what happened to subscribers.
//! - [`rpc`]: the JSON-RPC server (jsonrpsee; HTTP and WebSocket on one port), its JSON types,
//!   error codes and OpenRPC document; [`client`] is the typed client the CLI, the benchmark and
//!   the tests use.
//! - [`metrics`]: Prometheus metrics and their HTTP endpoint.
//! - [`network`]: the libp2p service (gossip, peer discovery, block sync), driven through a
//!   handle and an event channel.
//! - [`engine`]: the consensus machine, block sync and transaction gossip wired to the chain, the
//!   network and the clock through a host interface: what makes `altan run` a validator or a
//!   full node, and `altan dev` a chain of one validator. [`status`] is what it reports for RPC.
//! - [`cli`]: the `altan` command line.
//!
//! The chain on disk (blocks, certificates, receipts, indexes, the consensus write-ahead log) is
//! `altan_storage::ChainStore`: rocksdb is linked by that crate alone. Tokio and sockets live here
//! and nowhere below: `altan-runtime` stays a pure function of (state, block).

pub mod chain;
pub mod cli;
pub mod client;
pub mod dev;
pub mod engine;
pub mod interface;
pub mod keys;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod rpc;
pub mod status;
pub mod work;

/// Milliseconds since the Unix epoch by the system clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
