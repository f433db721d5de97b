//! The swarm's loop: one task owns the swarm and turns its events into [`NetworkEvent`]s and the
//! handle's commands into calls on the behaviours.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError, TopicHash};
use libp2p::request_response::OutboundRequestId;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, identify, kad, noise, ping, tcp, yamux};
use tokio::sync::mpsc;

use super::behaviour::{Behaviour, BehaviourEvent, Protocols};
use super::codec::Refusal;
use super::ingress::{Message, NetworkHandle};
use super::{
    LOG_TARGET, NetworkConfig, NetworkError, NetworkEvent, PeerInfo, Topic, Validation, peer_id_of,
};

mod sync;

use sync::{Answer, Outbound};

/// How long [`Actor::start`] waits for the listener to report its address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Listen addresses taken from one peer's identify message for the routing table.
const MAX_ADDRESSES_PER_PEER: usize = 8;

pub(crate) struct Actor {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    protocols: Protocols,
    topics: HashMap<TopicHash, Topic>,
    bootnodes: Vec<(PeerId, Multiaddr)>,
    commands: mpsc::Receiver<Message>,
    events: mpsc::Sender<NetworkEvent>,
    peers: BTreeMap<PeerId, Multiaddr>,
    listen_addresses: Vec<Multiaddr>,
    outbound: HashMap<OutboundRequestId, Outbound>,
    inbound: FuturesUnordered<BoxFuture<'static, Answer>>,
}

fn setup(error: impl std::fmt::Display) -> NetworkError {
    NetworkError::Setup(error.to_string())
}

impl Actor {
    /// Builds the swarm, binds the listener and spawns the loop.
    pub(crate) async fn start(
        config: NetworkConfig,
    ) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
        let bootnodes = config
            .bootnodes
            .iter()
            .map(|address| {
                peer_id_of(address)
                    .map(|peer| (peer, address.clone()))
                    .ok_or_else(|| NetworkError::InvalidBootnode { address: address.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let protocols = Protocols::new(config.chain_id);
        let behaviour = Behaviour::new(&config.keypair, &config, &protocols)?;
        let idle_timeout = config.idle_timeout;
        let mut swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
            .with_tokio()
            .with_tcp(tcp::Config::new().nodelay(true), noise::Config::new, yamux::Config::default)
            .map_err(setup)?
            .with_behaviour(|_| behaviour)
            .map_err(setup)?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
            .build();

        let listen_error =
            |reason: String| NetworkError::Listen { address: config.listen.clone(), reason };
        swarm.listen_on(config.listen.clone()).map_err(|e| listen_error(e.to_string()))?;
        let first_address = tokio::time::timeout(LISTEN_TIMEOUT, async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                    SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                    SwarmEvent::ListenerClosed { reason, .. } => {
                        return Err(match reason {
                            Ok(()) => "the listener closed".to_owned(),
                            Err(e) => e.to_string(),
                        });
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| listen_error("no address was bound in time".to_owned()))?
        .map_err(listen_error)?;

        let local_peer_id = *swarm.local_peer_id();
        tracing::info!(
            target: LOG_TARGET,
            peer_id = %local_peer_id,
            address = %first_address,
            bootnodes = bootnodes.len(),
            "listening"
        );

        let (command_tx, commands) = mpsc::channel(config.limits.command_channel);
        let (events, event_rx) = mpsc::channel(config.limits.event_channel);
        let handle = NetworkHandle::new(command_tx, local_peer_id, config.request_timeout);
        let topics = Topic::ALL.iter().map(|t| (t.hash(config.chain_id), *t)).collect();
        let mut actor = Actor {
            swarm,
            config,
            protocols,
            topics,
            bootnodes,
            commands,
            events,
            peers: BTreeMap::new(),
            listen_addresses: vec![first_address],
            outbound: HashMap::new(),
            inbound: FuturesUnordered::new(),
        };
        actor.dial_bootnodes();
        if !actor.bootnodes.is_empty() {
            // Fails only without known peers, and the bootnodes were just added.
            let _ = actor.swarm.behaviour_mut().kad.bootstrap();
        }
        tokio::spawn(actor.run());
        Ok((handle, event_rx))
    }

    async fn run(mut self) {
        let mut discovery = tokio::time::interval(self.config.discovery_interval);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate and the bootnodes were just dialed.
        discovery.tick().await;
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                Some(answer) = self.inbound.next(), if !self.inbound.is_empty() => {
                    self.on_answer(answer);
                }
                _ = discovery.tick() => self.discover(),
            }
        }
        tracing::debug!(target: LOG_TARGET, "every handle was dropped; the network stops");
    }

    fn dial_bootnodes(&mut self) {
        for (peer, address) in self.bootnodes.clone() {
            self.swarm.behaviour_mut().kad.add_address(&peer, address.clone());
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![address])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(error) = self.swarm.dial(opts) {
                tracing::debug!(target: LOG_TARGET, %peer, %error, "cannot dial bootnode");
            }
        }
    }

    fn discover(&mut self) {
        if self.peers.is_empty() {
            self.dial_bootnodes();
        }
        if self.peers.len() < self.config.target_peers {
            // A random walk: looking up a random id visits (and connects to) peers across the
            // keyspace; the routing table's updates then dial more of them.
            self.swarm.behaviour_mut().kad.get_closest_peers(PeerId::random());
        }
    }

    /// Hands an event to the node without waiting. When the channel is full or closed the event
    /// is dropped, and the refusal says what a block request's peer is told.
    fn emit(&mut self, event: NetworkEvent) -> Result<(), Refusal> {
        self.events.try_send(event).map_err(|error| {
            let (reason, refusal, event) = match error {
                mpsc::error::TrySendError::Full(event) => ("full", Refusal::Busy, event),
                mpsc::error::TrySendError::Closed(event) => ("closed", Refusal::Unavailable, event),
            };
            match event {
                NetworkEvent::Gossip { id, source, .. } => {
                    tracing::warn!(
                        target: LOG_TARGET,
                        %source,
                        %id,
                        reason,
                        "event channel: gossip dropped"
                    );
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &id,
                        &source,
                        MessageAcceptance::Ignore,
                    );
                }
                NetworkEvent::BlocksRequested { peer, .. } => {
                    tracing::warn!(
                        target: LOG_TARGET,
                        %peer,
                        reason,
                        "event channel: block request dropped"
                    );
                }
                NetworkEvent::PeerConnected(peer) | NetworkEvent::PeerDisconnected(peer) => {
                    tracing::warn!(
                        target: LOG_TARGET,
                        %peer,
                        reason,
                        "event channel: peer event dropped"
                    );
                }
            }
            refusal
        })
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Limits(never)) => match never {},
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => self.on_identify(event),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Err(error),
                ..
            })) => {
                tracing::debug!(target: LOG_TARGET, %peer, %error, "ping failed");
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. }
                if num_established.get() == 1 =>
            {
                let address = endpoint.get_remote_address().clone();
                tracing::debug!(target: LOG_TARGET, peer = %peer_id, %address, "peer connected");
                self.peers.insert(peer_id, address);
                // A dropped peer event was logged; `peers()` stays right.
                let _ = self.emit(NetworkEvent::PeerConnected(peer_id));
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, cause, .. } => {
                let cause = cause.map(|c| c.to_string());
                tracing::debug!(target: LOG_TARGET, peer = %peer_id, ?cause, "peer disconnected");
                self.peers.remove(&peer_id);
                let _ = self.emit(NetworkEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::NewListenAddr { address, .. }
                if !self.listen_addresses.contains(&address) =>
            {
                self.listen_addresses.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addresses.retain(|a| a != &address);
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(target: LOG_TARGET, %error, "listener error");
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                tracing::debug!(
                    target: LOG_TARGET,
                    address = %send_back_addr,
                    %error,
                    "incoming connection failed"
                );
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(
                    target: LOG_TARGET,
                    peer = ?peer_id,
                    %error,
                    "outgoing connection failed"
                );
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message { propagation_source, message_id, message } => {
                let Some(topic) = self.topics.get(&message.topic).copied() else {
                    tracing::debug!(
                        target: LOG_TARGET,
                        source = %propagation_source,
                        topic = %message.topic,
                        "gossip on an unknown topic"
                    );
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                    return;
                };
                // A dropped message was reported as ignored.
                let _ = self.emit(NetworkEvent::Gossip {
                    topic,
                    source: propagation_source,
                    id: message_id,
                    data: message.data,
                });
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(target: LOG_TARGET, peer = %peer_id, %topic, "peer subscribed");
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                tracing::debug!(target: LOG_TARGET, peer = %peer_id, %topic, "peer unsubscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                tracing::debug!(
                    target: LOG_TARGET,
                    peer = %peer_id,
                    "peer does not speak gossipsub"
                );
            }
            gossipsub::Event::SlowPeer { peer_id, failed_messages } => {
                tracing::warn!(
                    target: LOG_TARGET,
                    peer = %peer_id,
                    ?failed_messages,
                    "slow peer: gossip dropped"
                );
            }
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if info.protocol_version != self.protocols.identify {
            tracing::warn!(
                target: LOG_TARGET,
                peer = %peer_id,
                theirs = %info.protocol_version,
                ours = %self.protocols.identify,
                "peer is on another chain; disconnecting"
            );
            let _ = self.swarm.disconnect_peer_id(peer_id);
            return;
        }
        if info.protocols.contains(&self.protocols.kad) {
            for address in info.listen_addrs.into_iter().take(MAX_ADDRESSES_PER_PEER) {
                self.swarm.behaviour_mut().kad.add_address(&peer_id, address);
            }
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::RoutingUpdated { peer, is_new_peer: true, addresses, .. } => {
                if self.peers.contains_key(&peer) || self.peers.len() >= self.config.target_peers {
                    return;
                }
                let opts = DialOpts::peer_id(peer)
                    .addresses(addresses.into_vec())
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                if let Err(error) = self.swarm.dial(opts) {
                    tracing::debug!(
                        target: LOG_TARGET,
                        %peer,
                        %error,
                        "cannot dial discovered peer"
                    );
                }
            }
            kad::Event::OutboundQueryProgressed { result, .. } => {
                tracing::trace!(target: LOG_TARGET, ?result, "kademlia query progressed");
            }
            _ => {}
        }
    }

    fn on_command(&mut self, command: Message) {
        match command {
            Message::Publish { topic, data, respond } => {
                let _ = respond.send(self.publish(topic, data));
            }
            Message::Report { id, source, validation } => {
                let acceptance = match validation {
                    Validation::Accept => MessageAcceptance::Accept,
                    Validation::Reject => MessageAcceptance::Reject,
                    Validation::Ignore => MessageAcceptance::Ignore,
                };
                let known = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &source, acceptance);
                if !known {
                    tracing::debug!(
                        target: LOG_TARGET,
                        %id,
                        %source,
                        "reported message no longer in the cache"
                    );
                }
            }
            Message::RequestBlocks { peer, from, to, respond } => {
                self.request_blocks(peer, from, to, respond);
            }
            Message::Peers { respond } => {
                let peers = self
                    .peers
                    .iter()
                    .map(|(peer_id, address)| PeerInfo {
                        peer_id: *peer_id,
                        address: address.clone(),
                    })
                    .collect();
                let _ = respond.send(peers);
            }
            Message::TopicPeers { topic, respond } => {
                let hash = topic.hash(self.config.chain_id);
                let mut peers: Vec<PeerId> = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(peer, _)| *peer)
                    .collect();
                peers.sort();
                let _ = respond.send(peers);
            }
            Message::PeerScore { peer, respond } => {
                let _ = respond.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Message::ListenAddresses { respond } => {
                let _ = respond.send(self.listen_addresses.clone());
            }
        }
    }

    fn publish(
        &mut self,
        topic: Topic,
        data: Vec<u8>,
    ) -> Result<gossipsub::MessageId, NetworkError> {
        let limits = &self.config.limits;
        let max = match topic {
            Topic::Transactions => limits.max_tx_gossip_bytes,
            Topic::Consensus | Topic::Blocks => limits.max_gossip_bytes,
        };
        let size = data.len();
        if size > max {
            return Err(NetworkError::MessageTooLarge { size, max });
        }
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic.hash(self.config.chain_id), data)
            .map_err(|error| match error {
                PublishError::Duplicate => NetworkError::Duplicate,
                PublishError::NoPeersSubscribedToTopic => NetworkError::NoPeers,
                PublishError::MessageTooLarge => NetworkError::MessageTooLarge { size, max },
                other => NetworkError::Publish(other.to_string()),
            })
    }
}
