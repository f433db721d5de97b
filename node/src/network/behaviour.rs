//! The libp2p behaviours the node runs, and how each is configured: protocol names carry the
//! chain id, so that nodes of different chains neither mesh nor answer each other.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroUsize;
use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, connection_limits, gossipsub, identify, identity::Keypair, kad, ping,
    request_response,
};

use super::codec::SyncCodec;
use super::{NetworkConfig, NetworkError, Topic};

/// Kademlia's routing table keeps at most this many peers per bucket (its default, k = 20).
const KAD_BUCKET_SIZE: usize = 20;
/// How long one Kademlia query (a bootstrap or a random walk) may run.
const KAD_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest Kademlia message read; peer lists are small and we store no records.
const KAD_MAX_PACKET_BYTES: usize = 16 * 1024;
/// Concurrent request-response streams per connection.
const SYNC_MAX_CONCURRENT_STREAMS: usize = 16;
/// Peer ids identify caches (for pushes and address lookups).
const IDENTIFY_CACHE_SIZE: usize = 100;

/// A peer scores below this: we stop gossiping (IHAVE) to it and ignore its gossip.
const GOSSIP_THRESHOLD: f64 = -10.0;
/// A peer scores below this: we do not publish to it.
const PUBLISH_THRESHOLD: f64 = -50.0;
/// A peer scores below this: everything it sends is ignored.
const GRAYLIST_THRESHOLD: f64 = -80.0;
/// The weight of the invalid-message counter (squared) in a topic's score: one rejected message
/// puts a peer below the gossip threshold, two below the graylist threshold.
const INVALID_MESSAGE_WEIGHT: f64 = -20.0;
/// The invalid-message counter is multiplied by this every decay interval (one second), so a
/// penalty halves in about 70 seconds.
const INVALID_MESSAGE_DECAY: f64 = 0.99;

/// Everything the swarm runs. Connection limits come first, so that a connection over a limit is
/// denied before any other behaviour sees it.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
}

/// The protocol names of one chain.
#[derive(Debug, Clone)]
pub(crate) struct Protocols {
    /// identify's protocol version; a peer that reports another one is on another chain.
    pub(crate) identify: String,
    pub(crate) kad: StreamProtocol,
    pub(crate) sync: StreamProtocol,
}

impl Protocols {
    pub(crate) fn new(chain_id: u64) -> Self {
        let kad = StreamProtocol::try_from_owned(format!("/altan/{chain_id}/kad/1"))
            .expect("starts with a slash");
        let sync = StreamProtocol::try_from_owned(format!("/altan/{chain_id}/sync/1"))
            .expect("starts with a slash");
        Self { identify: format!("/altan/{chain_id}/1"), kad, sync }
    }
}

fn topic_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        // P1: a little credit for staying in the mesh, at most +3.
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 300.0,
        // P2: credit for delivering messages first, at most +10.
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 10.0,
        // P3 and P3b expect a steady rate of messages in every topic; ours are bursty (no
        // transactions for a while, consensus pauses when nothing is proposed), so quiet peers
        // are not penalised.
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // P4: messages our node rejected.
        invalid_message_deliveries_weight: INVALID_MESSAGE_WEIGHT,
        invalid_message_deliveries_decay: INVALID_MESSAGE_DECAY,
        ..Default::default()
    }
}

fn gossipsub(config: &NetworkConfig) -> Result<gossipsub::Behaviour, NetworkError> {
    let limits = &config.limits;
    let largest = limits.max_tx_gossip_bytes.max(limits.max_gossip_bytes);
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::new(blake3::hash(&message.data).as_bytes())
        })
        .heartbeat_interval(config.heartbeat_interval)
        .heartbeat_initial_delay(config.heartbeat_interval)
        // The frame of one RPC may carry a message of the largest topic plus protobuf framing.
        .max_transmit_size(largest.saturating_add(1024))
        .max_transmit_size_for_topic(
            limits.max_tx_gossip_bytes,
            Topic::Transactions.hash(config.chain_id),
        )
        .max_transmit_size_for_topic(
            limits.max_gossip_bytes,
            Topic::Consensus.hash(config.chain_id),
        )
        .max_transmit_size_for_topic(limits.max_gossip_bytes, Topic::Blocks.hash(config.chain_id))
        .connection_handler_queue_len(limits.gossip_queue_len);
    let gossip_config = builder.build().map_err(|e| NetworkError::Setup(e.to_string()))?;
    // Messages carry no author or signature: what is worth signing (transactions, votes,
    // proposals, certificates) is signed by its own key inside the payload, and an anonymous
    // message's id depends on its bytes alone, so the same transaction from two nodes is one
    // message.
    let mut behaviour =
        gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gossip_config)
            .map_err(|e| NetworkError::Setup(e.to_string()))?;

    let mut params = gossipsub::PeerScoreParams {
        // Loopback peers are operators' local devnets; colocation only matters for remote
        // addresses.
        ip_colocation_factor_whitelist: HashSet::from([
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]),
        ..Default::default()
    };
    for topic in Topic::ALL {
        params.topics.insert(topic.hash(config.chain_id), topic_params());
    }
    let thresholds = gossipsub::PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        ..Default::default()
    };
    behaviour.with_peer_score(params, thresholds).map_err(NetworkError::Setup)?;
    for topic in Topic::ALL {
        behaviour
            .subscribe(&topic.ident(config.chain_id))
            .map_err(|e| NetworkError::Setup(e.to_string()))?;
    }
    Ok(behaviour)
}

impl Behaviour {
    pub(crate) fn new(
        keypair: &Keypair,
        config: &NetworkConfig,
        protocols: &Protocols,
    ) -> Result<Self, NetworkError> {
        let limits = &config.limits;
        let peer_id = keypair.public().to_peer_id();

        let connection_limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(limits.max_peers))
            .with_max_established_per_peer(Some(limits.max_connections_per_peer))
            .with_max_pending_incoming(Some(limits.max_pending_connections))
            .with_max_pending_outgoing(Some(limits.max_pending_connections));

        let identify = identify::Behaviour::new(
            identify::Config::new(protocols.identify.clone(), keypair.public())
                .with_agent_version(format!("altan/{}", env!("CARGO_PKG_VERSION")))
                .with_cache_size(IDENTIFY_CACHE_SIZE),
        );

        let mut kad_config = kad::Config::new(protocols.kad.clone());
        kad_config
            .set_query_timeout(KAD_QUERY_TIMEOUT)
            .set_max_packet_size(KAD_MAX_PACKET_BYTES)
            .set_kbucket_size(NonZeroUsize::new(KAD_BUCKET_SIZE).expect("not zero"))
            // Kademlia is for finding peers only: records other nodes try to store are dropped.
            .set_record_filtering(kad::StoreInserts::FilterBoth)
            .set_periodic_bootstrap_interval(Some(config.discovery_interval));
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        // Serve queries even without a confirmed external address: validators on a private
        // network or a loopback devnet are reachable at their listen addresses.
        kad.set_mode(Some(kad::Mode::Server));

        let sync = request_response::Behaviour::with_codec(
            SyncCodec { max_response_bytes: limits.max_response_bytes },
            [(protocols.sync.clone(), request_response::ProtocolSupport::Full)],
            request_response::Config::default()
                .with_request_timeout(config.request_timeout)
                .with_max_concurrent_streams(SYNC_MAX_CONCURRENT_STREAMS),
        );

        Ok(Self {
            limits: connection_limits::Behaviour::new(connection_limits),
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            gossipsub: gossipsub(config)?,
            sync,
        })
    }
}
