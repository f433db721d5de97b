//! Deterministic simulation of Altan validators.
//!
//! Each simulated validator is the node's real engine (`altan_node::engine`) over the real
//! [`Chain`] (runtime, mempool, staking, the chain store's code and layout) on a memory disk
//! that keeps exactly what rocksdb promises across a crash or a power loss
//! ([`altan_node::chain::MemoryDisk`]). They run on commonware's deterministic executor
//! (virtual time, one thread, tasks ordered by the seed) through the engine's host interface
//! ([`host::SimHost`]), and talk over a simulated network ([`network::SimNet`]) that delays,
//! reorders, drops, duplicates and partitions, and through which byzantine validators
//! equivocate. A director submits real signed transfers, injects the faults the [`Scenario`]
//! allows, and checks the invariants as the run goes:
//!
//! - never two final blocks at one height, on any nodes;
//! - each node's stored state root equal to the one its final block commits to;
//! - no final block lost across a crash or a power loss;
//! - never two signatures by one honest validator for one (height, round, step);
//! - no engine stopping on an error;
//! - liveness: after the faults end (every partition healed, every node up), each node's
//!   final height passes the highest reached before by [`Scenario::progress_after_heal`]
//!   blocks within the rest of the run.
//!
//! The same seed gives the same run: the [`Report::digest`] hashes every delivery, fault and
//! newly final block in order, and a test checks it. A failing seed is replayed with
//! `cargo run -p altan-sim --example seeds -- --seed <seed>`.
//!
//! The architecture decision is docs/adr/0005-simulation-runtime.md.

// The simulation's time and randomness come from the executor alone (see clippy.toml).
#![warn(clippy::disallowed_methods, clippy::disallowed_types)]

mod check;
pub mod host;
pub mod network;
pub mod node;
mod run;

pub use run::{Report, Scenario, run};

pub use altan_node::chain::Chain;
