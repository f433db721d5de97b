//! Prometheus metrics, named by subsystem (`altan_chain_*`, `altan_mempool_*`, `altan_network_*`),
//! served as text at `GET /metrics` on their own address.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info};

const TARGET: &str = "altan::metrics";
/// Scrapes served at once; more wait for a slot.
const MAX_CONNECTIONS: usize = 16;

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    /// Height of the newest block.
    pub height: Gauge,
    /// Height of the newest final block.
    pub final_height: Gauge,
    /// Transactions in the mempool.
    pub mempool_size: Gauge,
    /// Connected peers.
    pub peers: Gauge,
    /// Transactions admitted to the mempool (its rate is the admission rate).
    pub transactions_admitted: Counter,
    /// Transactions included in committed blocks (its rate is transactions per second).
    pub transactions_included: Counter,
    /// Time to build, execute and commit a block.
    pub block_seconds: Histogram,
    /// Time to admit a submission (one transaction or a batch) once signatures are checked.
    pub admission_seconds: Histogram,
    /// Admitted transactions not gossiped because the gossip queue was full.
    pub gossip_dropped: Counter,
    /// Consensus rounds started past round 0 (a leader that did not propose in time, or a
    /// split vote).
    pub consensus_round_changes: Counter,
    /// Blocks imported from peers by sync.
    pub blocks_imported: Counter,
    /// Messages from peers refused as invalid (undecodable, bad signature, invalid block).
    pub invalid_peer_messages: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("altan");
        let metrics = Metrics {
            height: Gauge::default(),
            final_height: Gauge::default(),
            mempool_size: Gauge::default(),
            peers: Gauge::default(),
            transactions_admitted: Counter::default(),
            transactions_included: Counter::default(),
            block_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 14)),
            admission_seconds: Histogram::new(exponential_buckets(0.000_01, 3.0, 14)),
            gossip_dropped: Counter::default(),
            consensus_round_changes: Counter::default(),
            blocks_imported: Counter::default(),
            invalid_peer_messages: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("chain_height", "Height of the newest block", metrics.height.clone());
        registry.register(
            "chain_final_height",
            "Height of the newest final block",
            metrics.final_height.clone(),
        );
        registry.register(
            "chain_transactions",
            "Transactions included in committed blocks",
            metrics.transactions_included.clone(),
        );
        registry.register(
            "chain_block_execution_seconds",
            "Time to build, execute and commit a block",
            metrics.block_seconds.clone(),
        );
        registry.register(
            "mempool_size",
            "Transactions waiting in the mempool",
            metrics.mempool_size.clone(),
        );
        registry.register(
            "mempool_admitted",
            "Transactions admitted to the mempool",
            metrics.transactions_admitted.clone(),
        );
        registry.register(
            "mempool_admission_seconds",
            "Time to admit a submission after its signatures are checked",
            metrics.admission_seconds.clone(),
        );
        registry.register("network_peers", "Connected peers", metrics.peers.clone());
        registry.register(
            "network_gossip_dropped",
            "Admitted transactions not gossiped because the queue was full",
            metrics.gossip_dropped.clone(),
        );
        registry.register(
            "network_invalid_messages",
            "Messages from peers refused as invalid",
            metrics.invalid_peer_messages.clone(),
        );
        registry.register(
            "consensus_round_changes",
            "Consensus rounds started past round 0",
            metrics.consensus_round_changes.clone(),
        );
        registry.register(
            "sync_blocks_imported",
            "Final blocks imported from peers",
            metrics.blocks_imported.clone(),
        );
        Metrics { registry, ..metrics }
    }
}

impl Metrics {
    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    let address: Option<SocketAddr> = listener.local_addr().ok();
    info!(target: TARGET, address = ?address, "serving metrics");
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { return };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                debug!(target: TARGET, %error, "accept failed");
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let metrics = Arc::clone(&metrics);
                async move {
                    if request.method() == Method::GET && request.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                            .body(Full::new(Bytes::from(metrics.render())))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"not found; try GET /metrics\n")))
                    }
                }
            });
            if let Err(error) =
                http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                debug!(target: TARGET, %peer, %error, "metrics connection ended");
            }
            drop(permit);
        });
    }
}
