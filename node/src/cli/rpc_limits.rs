//! The RPC server's limits as `altan dev` and `altan run` options: what anyone can ask of the
//! node for free is bounded, and these are the bounds (docs/rpc.md, "Limits").

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use crate::chain::FreeConfig;
use crate::rpc::RpcConfig;
use crate::rpc::listener::Limits;
use crate::work::PoolConfig;

/// RPC limits.
#[derive(Debug, Clone, Args)]
pub struct RpcLimits {
    /// TCP connections to the RPC port at once, HTTP and WebSocket together.
    #[arg(long, default_value_t = 1_024)]
    pub rpc_max_connections: usize,
    /// TCP connections to the RPC port at once from one IP address: a quarter of the HTTP
    /// requests, so that one address cannot take them all (behind a proxy that hides client
    /// addresses, raise it to --rpc-max-connections).
    #[arg(long, default_value_t = 64)]
    pub rpc_max_connections_per_ip: usize,
    /// HTTP requests served at once; more are answered 429. WebSocket sessions never take these.
    #[arg(long, default_value_t = 256)]
    pub rpc_max_http_requests: u32,
    /// WebSocket sessions at once; more are answered 429.
    #[arg(long, default_value_t = 256)]
    pub rpc_max_ws_sessions: u32,
    /// Seconds a connection may go without sending a request (HTTP) or answering a ping
    /// (WebSocket, after three pings) before it is closed.
    #[arg(long, default_value_t = 30)]
    pub rpc_idle_timeout: u64,
    /// Contract queries, dry runs and gas estimates run at once (each on a low-priority thread
    /// of its own, never on the threads that build and check blocks).
    #[arg(long, default_value_t = 2)]
    pub rpc_execution_threads: usize,
    /// Queries, dry runs and estimates that may wait for a thread; more are refused at once
    /// with -32009 (busy), as is one that waited 2 s.
    #[arg(long, default_value_t = 64)]
    pub rpc_execution_queue: usize,
    /// The most gas one query, dry run or estimate may use [default: a quarter of the block gas
    /// limit].
    #[arg(long)]
    pub rpc_gas_cap: Option<u64>,
}

impl RpcLimits {
    /// The server's configuration, listening on `address`.
    pub fn config(&self, address: SocketAddr) -> RpcConfig {
        let idle = Duration::from_secs(self.rpc_idle_timeout.max(1));
        RpcConfig {
            address,
            limits: Limits {
                max_connections: self.rpc_max_connections,
                max_connections_per_ip: self.rpc_max_connections_per_ip,
                max_http_requests: self.rpc_max_http_requests,
                max_ws_sessions: self.rpc_max_ws_sessions,
                idle_timeout: idle,
            },
            ws_ping_interval: idle,
            ..RpcConfig::default()
        }
    }

    /// The limits of queries, dry runs and estimates.
    pub fn free(&self) -> FreeConfig {
        FreeConfig {
            pool: PoolConfig {
                threads: self.rpc_execution_threads,
                queue: self.rpc_execution_queue,
                ..FreeConfig::default().pool
            },
            gas_cap: self.rpc_gas_cap,
        }
    }
}
