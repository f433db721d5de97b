//! The RPC server's address and limits, with their defaults (`altan run --help` shows them as
//! flags; docs/rpc.md lists each limit with the error it gives).

use std::net::SocketAddr;
use std::time::Duration;

use super::listener::Limits;
use crate::work::PoolConfig;

/// Limits and address of the RPC server.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Where to listen (default 127.0.0.1:9944).
    pub address: SocketAddr,
    /// Largest request body, in bytes.
    pub max_request_bytes: u32,
    /// Largest response body, in bytes.
    pub max_response_bytes: u32,
    /// Connections, requests and sessions at once, and the idle timeout.
    pub limits: Limits,
    /// How often a WebSocket is pinged; one that answers nothing for three times as long is
    /// closed.
    pub ws_ping_interval: Duration,
    /// Subscriptions per connection.
    pub max_subscriptions_per_connection: u32,
    /// Calls in one JSON-RPC batch.
    pub max_batch_len: u32,
    /// Blocks one `chain_getEvents` without a contract may scan.
    pub max_event_range: u64,
    /// Events one `chain_getEvents` returns at most.
    pub max_events: u32,
    /// The pool of heavy reads (whole blocks, transactions, events, proofs, leader schedules).
    pub reads: PoolConfig,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 9944)),
            max_request_bytes: 16 << 20,
            max_response_bytes: 16 << 20,
            limits: Limits {
                max_connections: 1_024,
                max_connections_per_ip: 64,
                max_http_requests: 256,
                max_ws_sessions: 256,
                idle_timeout: Duration::from_secs(30),
            },
            ws_ping_interval: Duration::from_secs(30),
            max_subscriptions_per_connection: 64,
            max_batch_len: 256,
            max_event_range: 1_000,
            max_events: 1_000,
            reads: PoolConfig { threads: 2, queue: 256, max_wait: Duration::from_secs(2) },
        }
    }
}
