//! What the engine needs from the world, as two traits: the [`Host`] (a clock, timers, tasks,
//! blocking work, randomness) and the [`Network`] (publish, give a verdict, ask a peer for
//! blocks, list peers). The engine calls nothing else that touches time, threads or sockets, so
//! that one engine runs on tokio and libp2p in production ([`TokioHost`], [`NetworkHandle`]),
//! alone in `altan dev` ([`LoneNetwork`]), and on virtual time in a simulation
//! (docs/adr/0005-simulation-runtime.md).
//!
//! Time is a [`Duration`] since the host started, so that a virtual clock can make one up; wall
//! time (block timestamps) is read apart, in milliseconds since the Unix epoch.

// The production host is where the engine's time, tasks and randomness come from.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::network::{
    MessageId, NetworkError, NetworkEvent, NetworkHandle, PeerId, PeerInfo, Topic, Validation,
};

/// A task that was spawned to do blocking work panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("a blocking task failed: {0}")]
pub struct TaskFailed(pub String);

/// The clock, the tasks and the randomness the engine runs on.
pub trait Host: Clone + Send + Sync + 'static {
    /// Monotonic time since the host started.
    fn now(&self) -> Duration;

    /// Wall-clock milliseconds since the Unix epoch (block timestamps).
    fn wall_ms(&self) -> u64;

    /// Resolves once [`Host::now`] reaches `at`.
    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send + 'static + use<Self>;

    /// Runs `future` as a task of its own.
    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static);

    /// Runs CPU- or disk-bound `work` where it cannot hold up the engine's loop.
    fn run_blocking<T: Send + 'static, W: FnOnce() -> T + Send + 'static>(
        &self,
        work: W,
    ) -> impl Future<Output = Result<T, TaskFailed>> + Send + 'static + use<Self, T, W>;

    /// A random number (from a seed, in a simulation).
    fn random(&self) -> u64;
}

/// The network as the engine uses it: opaque bytes on topics, verdicts on gossip messages, and
/// block requests to peers. What arrives comes as [`NetworkEvent`]s on a channel.
pub trait Network: Clone + Send + Sync + 'static {
    /// Publishes `data` on `topic`.
    fn publish(
        &self,
        topic: Topic,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), NetworkError>> + Send;

    /// Tells gossip what the node decided about a message.
    fn report(
        &self,
        id: MessageId,
        source: PeerId,
        validation: Validation,
    ) -> impl Future<Output = ()> + Send;

    /// Asks `peer` for the sync items of heights `from..=to`.
    fn request_blocks(
        &self,
        peer: PeerId,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, NetworkError>> + Send + 'static + use<Self>;

    /// The connected peers.
    fn peers(
        &self,
    ) -> impl Future<Output = Result<Vec<PeerInfo>, NetworkError>> + Send + 'static + use<Self>;
}

/// The production host: tokio's timers, tasks and blocking pool, the system clocks and the
/// thread-local random generator.
#[derive(Debug, Clone, Copy)]
pub struct TokioHost {
    origin: Instant,
}

impl TokioHost {
    /// A host whose time starts now.
    pub fn new() -> TokioHost {
        TokioHost { origin: Instant::now() }
    }
}

impl Default for TokioHost {
    fn default() -> Self {
        TokioHost::new()
    }
}

impl Host for TokioHost {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall_ms(&self) -> u64 {
        crate::now_ms()
    }

    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send + 'static + use<> {
        // An instant too far to represent never comes.
        let deadline = self.origin.checked_add(at);
        async move {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        }
    }

    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(future);
    }

    fn run_blocking<T: Send + 'static, W: FnOnce() -> T + Send + 'static>(
        &self,
        work: W,
    ) -> impl Future<Output = Result<T, TaskFailed>> + Send + 'static + use<T, W> {
        let task = tokio::task::spawn_blocking(work);
        async move { task.await.map_err(|e| TaskFailed(e.to_string())) }
    }

    fn random(&self) -> u64 {
        rand::random()
    }
}

impl Network for NetworkHandle {
    async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), NetworkError> {
        NetworkHandle::publish(self, topic, data).await.map(|_| ())
    }

    async fn report(&self, id: MessageId, source: PeerId, validation: Validation) {
        // Only a stopped service refuses, and the engine learns that from its events.
        let _ = NetworkHandle::report(self, id, source, validation).await;
    }

    fn request_blocks(
        &self,
        peer: PeerId,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, NetworkError>> + Send + 'static + use<> {
        let handle = self.clone();
        async move { NetworkHandle::request_blocks(&handle, peer, from, to).await }
    }

    fn peers(
        &self,
    ) -> impl Future<Output = Result<Vec<PeerInfo>, NetworkError>> + Send + 'static + use<> {
        let handle = self.clone();
        async move { NetworkHandle::peers(&handle).await }
    }
}

/// The network of a node that is alone (`altan dev`): nobody to send to, nothing ever arrives.
#[derive(Debug, Clone)]
pub struct LoneNetwork {
    /// Held so that the event channel stays open: the engine stops when it closes.
    _events: Arc<mpsc::Sender<NetworkEvent>>,
}

impl LoneNetwork {
    /// The network and its (silent) events.
    pub fn new() -> (LoneNetwork, mpsc::Receiver<NetworkEvent>) {
        let (sender, events) = mpsc::channel(1);
        (LoneNetwork { _events: Arc::new(sender) }, events)
    }
}

impl Network for LoneNetwork {
    async fn publish(&self, _topic: Topic, _data: Vec<u8>) -> Result<(), NetworkError> {
        Err(NetworkError::NoPeers)
    }

    async fn report(&self, _id: MessageId, _source: PeerId, _validation: Validation) {}

    fn request_blocks(
        &self,
        peer: PeerId,
        _from: u64,
        _to: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, NetworkError>> + Send + 'static + use<> {
        async move { Err(NetworkError::RequestFailed { peer, reason: "this node has no peers".into() }) }
    }

    fn peers(
        &self,
    ) -> impl Future<Output = Result<Vec<PeerInfo>, NetworkError>> + Send + 'static + use<> {
        async { Ok(Vec::new()) }
    }
}
