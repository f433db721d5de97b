//! The node's peer-to-peer network: a libp2p swarm run as a service that the rest of the node
//! drives through channels.
//!
//! [`start`] builds the swarm (TCP + noise + yamux; identify, ping, Kademlia, gossipsub, the
//! block sync protocol and connection limits), starts listening and spawns the swarm's loop
//! (`actor.rs`) on tokio. The node talks to it through a [`NetworkHandle`] (publish, report a
//! gossip message's validation result, request blocks, list peers) and hears from it through a
//! bounded receiver of [`NetworkEvent`]s (gossip, block requests to answer, peers coming and
//! going).
//!
//! The network knows nothing of blocks or transactions: gossip payloads and sync items are opaque
//! bytes, so the node decides what is valid and tells gossipsub, whose peer scoring then lowers
//! the standing of peers that send invalid messages. Every queue, message and request has a bound
//! ([`NetworkLimits`]); input from peers that breaks one is logged (target `altan::network`) and
//! dropped or answered with a refusal, never a panic.
//!
//! Protocol names carry the chain id: gossip topics are
//! `/altan/<chain id>/{tx,consensus,blocks}/1`, block sync is `/altan/<chain id>/sync/1`,
//! Kademlia is `/altan/<chain id>/kad/1`.

mod actor;
mod behaviour;
pub mod codec;
mod ingress;
pub mod key;

use std::path::PathBuf;
use std::time::Duration;

use libp2p::gossipsub::{IdentTopic, TopicHash};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use tokio::sync::{mpsc, oneshot};

pub use codec::Refusal;
pub use ingress::NetworkHandle;
pub use key::{NETWORK_KEY_FILE, load_or_create_key};
pub use libp2p::gossipsub::MessageId;
pub use libp2p::{Multiaddr, PeerId};

/// Log target of the network.
pub const LOG_TARGET: &str = "altan::network";

/// A gossip topic. Each is named with the chain id: `/altan/<chain id>/<name>/1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Transactions admitted to a node's pool.
    Transactions,
    /// Consensus messages: proposals and votes.
    Consensus,
    /// Final blocks with their certificates.
    Blocks,
}

impl Topic {
    /// Every topic, each of which a node subscribes to.
    pub const ALL: [Topic; 3] = [Topic::Transactions, Topic::Consensus, Topic::Blocks];

    /// The short name in the topic's string.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Transactions => "tx",
            Topic::Consensus => "consensus",
            Topic::Blocks => "blocks",
        }
    }

    /// The topic string on the wire, `/altan/<chain id>/<name>/1`.
    pub fn topic_string(self, chain_id: u64) -> String {
        format!("/altan/{chain_id}/{}/1", self.name())
    }

    fn ident(self, chain_id: u64) -> IdentTopic {
        IdentTopic::new(self.topic_string(chain_id))
    }

    fn hash(self, chain_id: u64) -> TopicHash {
        self.ident(chain_id).hash()
    }
}

/// What the node decided about a gossip message, reported back with [`NetworkHandle::report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Valid: gossipsub forwards it to the mesh.
    Accept,
    /// Invalid: not forwarded, and the peer that sent it loses score.
    Reject,
    /// Neither (a duplicate, too old, not of interest now): not forwarded, no penalty.
    Ignore,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's id.
    pub peer_id: PeerId,
    /// The remote address of the first connection established with it.
    pub address: Multiaddr,
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossip message to validate. The node must answer with [`NetworkHandle::report`] and
    /// the same `id` and `source`; until it does, the message is not forwarded (an unanswered
    /// message is forgotten after a few heartbeats).
    Gossip {
        /// The topic it came on.
        topic: Topic,
        /// The peer that forwarded it to us (not necessarily its author).
        source: PeerId,
        /// The message id: blake3 of `data`.
        id: MessageId,
        /// The payload.
        data: Vec<u8>,
    },
    /// A peer asks for the items at heights `from..=to` (a range already checked against
    /// [`NetworkLimits::max_blocks_per_request`]). Answer through `respond` with the items of
    /// consecutive heights from `from` on (fewer if the node does not have them all), within
    /// [`NetworkConfig::request_timeout`]; dropping `respond` refuses the request.
    BlocksRequested {
        /// The peer asking.
        peer: PeerId,
        /// The first height.
        from: u64,
        /// The last height (inclusive).
        to: u64,
        /// Where the answer goes. Items beyond the response byte limit are cut off at the end.
        respond: oneshot::Sender<Vec<Vec<u8>>>,
    },
    /// The first connection with a peer was established.
    PeerConnected(PeerId),
    /// The last connection with a peer was closed.
    PeerDisconnected(PeerId),
}

/// The network's limits. Every bound of the service is here or a named constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkLimits {
    /// Established connections in total (inbound and outbound).
    pub max_peers: u32,
    /// Established connections with one peer.
    pub max_connections_per_peer: u32,
    /// Connections being set up, in each direction.
    pub max_pending_connections: u32,
    /// The largest message on the transactions topic (a transaction is at most 160 KiB).
    pub max_tx_gossip_bytes: usize,
    /// The largest message on the consensus and blocks topics (a proposal carries a block).
    pub max_gossip_bytes: usize,
    /// Messages queued per connection in gossipsub before it drops what it forwards.
    pub gossip_queue_len: usize,
    /// The most items served in one block sync response.
    pub max_blocks_per_request: u64,
    /// The largest block sync response, read or written (a server trims its answer to fit).
    pub max_response_bytes: usize,
    /// Block requests from peers waiting for the node's answer.
    pub max_pending_inbound_requests: usize,
    /// Our own block requests in flight.
    pub max_pending_outbound_requests: usize,
    /// Capacity of the event channel to the node. When it is full, gossip is dropped (and
    /// reported as ignored), block requests are refused as busy, and peer events are dropped
    /// with a warning: [`NetworkHandle::peers`] stays authoritative.
    pub event_channel: usize,
    /// Capacity of the command channel from [`NetworkHandle`]s.
    pub command_channel: usize,
}

impl Default for NetworkLimits {
    fn default() -> Self {
        Self {
            max_peers: 64,
            max_connections_per_peer: 2,
            max_pending_connections: 32,
            max_tx_gossip_bytes: 256 * 1024,
            max_gossip_bytes: 4 * 1024 * 1024,
            gossip_queue_len: 5_000,
            max_blocks_per_request: 64,
            max_response_bytes: 32 * 1024 * 1024,
            max_pending_inbound_requests: 32,
            max_pending_outbound_requests: 32,
            event_channel: 4_096,
            command_channel: 1_024,
        }
    }
}

/// How to run the network.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/30333` (port 0 picks a free port).
    pub listen: Multiaddr,
    /// Peers to start from, each ending in `/p2p/<peer id>`.
    pub bootnodes: Vec<Multiaddr>,
    /// The node's identity (see [`load_or_create_key`]).
    pub keypair: Keypair,
    /// The chain's id; it names every protocol, so nodes of other chains do not mix.
    pub chain_id: u64,
    /// The limits.
    pub limits: NetworkLimits,
    /// Gossipsub's heartbeat (mesh maintenance, gossip emission).
    pub heartbeat_interval: Duration,
    /// How often the node looks for more peers while it has fewer than `target_peers`, and
    /// redials its bootnodes while it has none.
    pub discovery_interval: Duration,
    /// The number of peers above which discovered peers are no longer dialed.
    pub target_peers: usize,
    /// The timeout of a block request, both ways.
    pub request_timeout: Duration,
    /// A connection no behaviour uses is closed after this long.
    pub idle_timeout: Duration,
}

impl NetworkConfig {
    /// A configuration with default limits and timings.
    pub fn new(listen: Multiaddr, keypair: Keypair, chain_id: u64) -> Self {
        Self {
            listen,
            bootnodes: Vec::new(),
            keypair,
            chain_id,
            limits: NetworkLimits::default(),
            heartbeat_interval: Duration::from_millis(700),
            discovery_interval: Duration::from_secs(10),
            target_peers: 32,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What went wrong in the network service.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The network service has stopped.
    #[error("the network service has stopped")]
    Closed,
    /// The network key file could not be read or written.
    #[error("network key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A bootnode address without a peer id.
    #[error("bootnode address {address} does not end in /p2p/<peer id>")]
    InvalidBootnode {
        /// The address given.
        address: Multiaddr,
    },
    /// The swarm could not be built.
    #[error("network setup: {0}")]
    Setup(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The address.
        address: Multiaddr,
        /// Why.
        reason: String,
    },
    /// No connected peer is subscribed to the topic (nobody would receive the message).
    #[error("no peer is subscribed to the topic")]
    NoPeers,
    /// A message above the topic's size limit.
    #[error("message of {size} bytes is over the topic's limit of {max}")]
    MessageTooLarge {
        /// The message's size.
        size: usize,
        /// The topic's limit.
        max: usize,
    },
    /// The same bytes were published recently (message ids are hashes of the data).
    #[error("the message was already published")]
    Duplicate,
    /// gossipsub refused the message for another reason.
    #[error("publish failed: {0}")]
    Publish(String),
    /// `from` was above `to`.
    #[error("invalid range {from}..={to}")]
    InvalidRange {
        /// The first height.
        from: u64,
        /// The last height.
        to: u64,
    },
    /// Too many of our own requests are in flight.
    #[error("too many requests in flight (limit {max})")]
    Busy {
        /// The limit.
        max: usize,
    },
    /// The peer refused the request.
    #[error("the peer refused: {0}")]
    Refused(Refusal),
    /// No answer within the request timeout.
    #[error("the request timed out")]
    Timeout,
    /// The request failed (dial failure, connection closed, unsupported protocol, I/O).
    #[error("request to {peer} failed: {reason}")]
    RequestFailed {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The peer answered with something it should not have.
    #[error("invalid response from {peer}: {reason}")]
    InvalidResponse {
        /// The peer.
        peer: PeerId,
        /// What was wrong.
        reason: String,
    },
}

/// The peer id in a `/p2p/<peer id>` address, if it ends in one.
pub fn peer_id_of(address: &Multiaddr) -> Option<PeerId> {
    match address.iter().last() {
        Some(Protocol::P2p(peer_id)) => Some(peer_id),
        _ => None,
    }
}

/// Builds the swarm, starts listening and spawns the service on the current tokio runtime.
///
/// Returns once the listener is bound, so [`NetworkHandle::listen_addresses`] already holds the
/// bound address (with the port chosen when the configuration asked for port 0).
pub async fn start(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
    actor::Actor::start(config).await
}
