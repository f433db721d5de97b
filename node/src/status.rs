//! What the network, sync and consensus tasks report about themselves, for RPC and logs.

use std::sync::RwLock;

use altan_primitives::Height;

/// A connected peer, as RPC shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Its libp2p peer id.
    pub peer_id: String,
    /// The address of its first connection.
    pub address: String,
}

/// Where consensus is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsensusStatus {
    /// The height being decided.
    pub height: Height,
    /// Its round.
    pub round: u32,
    /// Whether this node signs at this height (its key is in the height's validator set).
    pub signing: bool,
}

/// Catch-up progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncStatus {
    /// Whether the node is importing final blocks from peers.
    pub syncing: bool,
    /// The highest final height a peer has shown.
    pub best_seen: Height,
    /// Blocks imported from peers since the node started.
    pub imported: u64,
}

#[derive(Debug, Default)]
struct Inner {
    peers: Vec<PeerStatus>,
    consensus: Option<ConsensusStatus>,
    sync: Option<SyncStatus>,
}

/// The shared status. A node without a network (`altan dev`) reports no peers, no sync and
/// no consensus.
#[derive(Debug, Default)]
pub struct NodeStatus {
    inner: RwLock<Inner>,
}

impl NodeStatus {
    fn read<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.inner.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn write(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.inner.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// The connected peers.
    pub fn peers(&self) -> Vec<PeerStatus> {
        self.read(|i| i.peers.clone())
    }

    /// Replaces the list of connected peers.
    pub fn set_peers(&self, peers: Vec<PeerStatus>) {
        self.write(|i| i.peers = peers);
    }

    /// Where consensus is, on a node that runs it.
    pub fn consensus(&self) -> Option<ConsensusStatus> {
        self.read(|i| i.consensus)
    }

    /// Records where consensus is.
    pub fn set_consensus(&self, status: ConsensusStatus) {
        self.write(|i| i.consensus = Some(status));
    }

    /// Catch-up progress, on a node with a network.
    pub fn sync(&self) -> Option<SyncStatus> {
        self.read(|i| i.sync)
    }

    /// Records catch-up progress.
    pub fn set_sync(&self, status: SyncStatus) {
        self.write(|i| i.sync = Some(status));
    }
}
