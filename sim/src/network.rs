//! The simulated network: every node linked to every other, each message delivered after a
//! seeded delay (so messages overtake each other), or dropped, or delivered twice; partitions
//! that cut the links between groups until they heal; block requests answered by the peer's
//! own engine. What a node publishes on the consensus topic is checked on the way out: a
//! validator must never sign two different messages for one (height, round, step).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use altan_node::engine::host::Network;
use altan_node::engine::wire::{ConsensusGossip, Envelope, decode_consensus};
use altan_node::network::{
    MessageId, Multiaddr, NetworkError, NetworkEvent, PeerId, PeerInfo, Topic, Validation,
};
use altan_primitives::{Hash, Height, PublicKey, SecretKey, VoteKind};
use commonware_runtime::deterministic::Context;
use commonware_runtime::{Spawner, Supervisor};
use parity_scale_codec::Encode;

use crate::host::sleep;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot};

/// How long a node waits for the answer to a block request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// What the links do to messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFaults {
    /// One-way delay: drawn uniformly from this range for each message.
    pub latency: (Duration, Duration),
    /// Of each million messages, how many are lost.
    pub drop_ppm: u32,
    /// Of each million messages, how many arrive twice.
    pub duplicate_ppm: u32,
}

impl Default for LinkFaults {
    fn default() -> Self {
        LinkFaults {
            latency: (Duration::from_millis(5), Duration::from_millis(50)),
            drop_ppm: 0,
            duplicate_ppm: 0,
        }
    }
}

/// What a validator signed, for the double-signing check: (key, height, round, step).
type SignedAt = (PublicKey, Height, u32, u8);

struct Node {
    peer: PeerId,
    /// Where the node's events go, while it runs.
    events: Option<mpsc::Sender<NetworkEvent>>,
    /// Its side of the current partition.
    group: u8,
}

struct World {
    nodes: Vec<Node>,
    faults: LinkFaults,
    rng: StdRng,
    trace: blake3::Hasher,
    /// What each signed, and for which value (a block, or nil).
    signed: BTreeMap<SignedAt, (Hash, Option<Hash>)>,
    /// The consensus messages already checked, by hash.
    checked: BTreeSet<Hash>,
    /// Byzantine validators that equivocate: each vote they sign is followed by a conflicting
    /// one, signed with the same key.
    equivocators: BTreeMap<usize, SecretKey>,
    /// Their keys: their double signing is the fault, not a violation.
    byzantine: BTreeSet<PublicKey>,
    /// Conflicting votes sent.
    equivocations: u64,
    violations: Vec<String>,
    delivered: u64,
    dropped: u64,
    rejected: u64,
}

impl World {
    fn connected(&self, from: usize, to: usize) -> bool {
        match (self.nodes.get(from), self.nodes.get(to)) {
            (Some(a), Some(b)) => from != to && a.group == b.group && b.events.is_some(),
            _ => false,
        }
    }

    fn delay(&mut self) -> Duration {
        let (low, high) = self.faults.latency;
        if high <= low {
            return low;
        }
        let span = u64::try_from(high.saturating_sub(low).as_micros()).unwrap_or(u64::MAX);
        low.saturating_add(Duration::from_micros(self.rng.random_range(0..=span)))
    }

    fn happens(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rng.random_range(0..1_000_000) < ppm
    }

    fn index_of(&self, peer: &PeerId) -> Option<usize> {
        self.nodes.iter().position(|node| node.peer == *peer)
    }

    /// Records who signed what in a consensus message (its author, not the node that sent it:
    /// nodes forward others' votes), and a violation if the author signed something else for
    /// the same step before. Each distinct message's signer is recovered once.
    fn check_signed(&mut self, data: &[u8]) {
        let Ok(envelope) = decode_consensus(data) else { return };
        let (height, round, step, hash, value, signer) = match &envelope.body {
            ConsensusGossip::Proposal { proposal, .. } => {
                let p = &proposal.proposal;
                if !self.checked.insert(blake3_of(&proposal.encode())) {
                    return;
                }
                (p.height, p.round, 0, p.signing_hash(), Some(p.block_hash), proposal.signer())
            }
            ConsensusGossip::Vote(vote) => {
                let v = &vote.vote;
                if !self.checked.insert(blake3_of(&vote.encode())) {
                    return;
                }
                let step = match v.kind {
                    VoteKind::Prevote => 1,
                    VoteKind::Precommit => 2,
                };
                (v.height, v.round, step, v.signing_hash(), v.block_hash, vote.signer())
            }
        };
        let Ok(signer) = signer else { return };
        if self.byzantine.contains(&signer) {
            return;
        }
        match self.signed.get(&(signer, height, round, step)) {
            Some((earlier, first)) if *earlier != hash => self.violations.push(format!(
                "{signer:?} signed two messages for height {height}, round {round}, step {step}: \
                 for {first:?}, then for {value:?}"
            )),
            Some(_) => {}
            None => {
                self.signed.insert((signer, height, round, step), (hash, value));
            }
        }
    }
}

impl World {
    /// If `node` equivocates and `data` is a vote it signed, the conflicting vote it sends
    /// after it: nil for a block, a made-up block for nil.
    fn conflicting(&mut self, node: usize, data: &[u8]) -> Option<Vec<u8>> {
        let key = self.equivocators.get(&node)?;
        let envelope = decode_consensus(data).ok()?;
        let ConsensusGossip::Vote(signed) = envelope.body else { return None };
        if signed.signer().ok()? != key.public_key() {
            return None;
        }
        let mut vote = signed.vote;
        vote.block_hash = match vote.block_hash {
            Some(_) => None,
            None => Some(Hash([0xEE; 32])),
        };
        self.equivocations = self.equivocations.saturating_add(1);
        let body = ConsensusGossip::Vote(vote.sign(key));
        Some(Envelope { sending: envelope.sending.wrapping_add(1 << 32), body }.encode())
    }
}

fn blake3_of(bytes: &[u8]) -> Hash {
    Hash(*blake3::hash(bytes).as_bytes())
}

/// The network every simulated node is on. Cheap to clone.
#[derive(Clone)]
pub struct SimNet {
    world: Arc<Mutex<World>>,
    context: Arc<Context>,
}

impl SimNet {
    /// A network of `nodes` nodes, none running yet, on `context`'s clock; its own draws come
    /// from `seed`.
    pub fn new(context: Context, nodes: usize, faults: LinkFaults, seed: u64) -> SimNet {
        let nodes =
            (0..nodes).map(|index| Node { peer: peer_id(index), events: None, group: 0 }).collect();
        let world = World {
            nodes,
            faults,
            rng: StdRng::seed_from_u64(seed),
            trace: blake3::Hasher::new(),
            signed: BTreeMap::new(),
            checked: BTreeSet::new(),
            equivocators: BTreeMap::new(),
            byzantine: BTreeSet::new(),
            equivocations: 0,
            violations: Vec::new(),
            delivered: 0,
            dropped: 0,
            rejected: 0,
        };
        SimNet { world: Arc::new(Mutex::new(world)), context: Arc::new(context) }
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Node `index`'s handle on the network.
    pub fn handle(&self, index: usize) -> NodeNetwork {
        NodeNetwork { net: self.clone(), index }
    }

    /// Node `index` is up: its events go to `events`, and it and its peers learn of each other.
    pub fn join(&self, index: usize, events: mpsc::Sender<NetworkEvent>) {
        let mut world = self.lock();
        let Some(node) = world.nodes.get_mut(index) else { return };
        node.events = Some(events);
        let me = node.peer;
        Self::announce(&world, index, NetworkEvent::PeerConnected, me);
    }

    /// Node `index` is down: nothing reaches it, and its peers see it go.
    pub fn leave(&self, index: usize) {
        let mut world = self.lock();
        let Some(node) = world.nodes.get_mut(index) else { return };
        node.events = None;
        let me = node.peer;
        Self::announce(&world, index, NetworkEvent::PeerDisconnected, me);
    }

    /// Tells `index` of each connected peer, and each of them of `index`.
    fn announce(world: &World, index: usize, event: fn(PeerId) -> NetworkEvent, me: PeerId) {
        for (other, node) in world.nodes.iter().enumerate() {
            if !world.connected(index, other) {
                continue;
            }
            if let Some(events) = &node.events {
                let _ = events.try_send(event(me));
            }
            if let Some(events) = world.nodes.get(index).and_then(|n| n.events.as_ref()) {
                let _ = events.try_send(event(node.peer));
            }
        }
    }

    /// Splits the nodes into the groups `group_of` gives; links between groups are cut.
    pub fn partition(&self, group_of: impl Fn(usize) -> u8) {
        let mut world = self.lock();
        for (index, node) in world.nodes.iter_mut().enumerate() {
            node.group = group_of(index);
        }
        let groups: Vec<u8> = world.nodes.iter().map(|node| node.group).collect();
        world.trace.update(b"partition");
        world.trace.update(&groups);
    }

    /// Heals every partition: all links are up again, and every pair of running nodes
    /// reconnects.
    pub fn heal(&self) {
        let mut world = self.lock();
        for node in &mut world.nodes {
            node.group = 0;
        }
        world.trace.update(b"heal");
        for index in 0..world.nodes.len() {
            let me = world.nodes.get(index).map(|node| node.peer);
            if let Some(me) = me {
                Self::announce(&world, index, NetworkEvent::PeerConnected, me);
            }
        }
    }

    /// Makes node `index`, whose consensus key is `key`, follow each vote it signs with a
    /// conflicting one.
    pub fn equivocate(&self, index: usize, key: SecretKey) {
        let mut world = self.lock();
        world.byzantine.insert(key.public_key());
        world.equivocators.insert(index, key);
    }

    /// Conflicting votes the byzantine validators sent.
    pub fn equivocations(&self) -> u64 {
        self.lock().equivocations
    }

    /// Changes what the links do from now on.
    pub fn set_faults(&self, faults: LinkFaults) {
        self.lock().faults = faults;
    }

    /// Adds `event` to the trace.
    pub fn record(&self, event: &[u8]) {
        self.lock().trace.update(event);
    }

    /// The digest of everything that happened on the network, in order.
    pub fn digest(&self) -> Hash {
        Hash(*self.lock().trace.finalize().as_bytes())
    }

    /// Records a broken invariant.
    pub fn violation(&self, what: String) {
        self.lock().violations.push(what);
    }

    /// What the checks found wrong.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// Messages delivered, dropped by the links, and rejected by a node.
    pub fn counts(&self) -> (u64, u64, u64) {
        let world = self.lock();
        (world.delivered, world.dropped, world.rejected)
    }

    fn publish(&self, from: usize, topic: Topic, data: Vec<u8>) {
        let conflicting =
            if topic == Topic::Consensus { self.lock().conflicting(from, &data) } else { None };
        self.send(from, topic, data);
        if let Some(conflicting) = conflicting {
            self.send(from, topic, conflicting);
        }
    }

    fn send(&self, from: usize, topic: Topic, data: Vec<u8>) {
        let mut world = self.lock();
        if topic == Topic::Consensus {
            world.check_signed(&data);
        }
        let Some(source) = world.nodes.get(from).map(|node| node.peer) else { return };
        let id = MessageId::new(blake3::hash(&data).as_bytes());
        let data = Arc::new(data);
        for to in 0..world.nodes.len() {
            if !world.connected(from, to) {
                continue;
            }
            let (duplicate, lose) = (world.faults.duplicate_ppm, world.faults.drop_ppm);
            let copies = if world.happens(duplicate) { 2 } else { 1 };
            for _ in 0..copies {
                if world.happens(lose) {
                    world.dropped = world.dropped.saturating_add(1);
                    continue;
                }
                let delay = world.delay();
                let (net, data, id) = (self.clone(), Arc::clone(&data), id.clone());
                drop(self.context.child("delivery").spawn(move |context| async move {
                    sleep(&context, delay).await;
                    net.deliver(from, to, topic, source, id, data);
                }));
            }
        }
    }

    fn deliver(
        &self,
        from: usize,
        to: usize,
        topic: Topic,
        source: PeerId,
        id: MessageId,
        data: Arc<Vec<u8>>,
    ) {
        let mut world = self.lock();
        if !world.connected(from, to) {
            world.dropped = world.dropped.saturating_add(1);
            return;
        }
        let Some(events) = world.nodes.get(to).and_then(|node| node.events.clone()) else { return };
        let data = Arc::try_unwrap(data).unwrap_or_else(|shared| (*shared).clone());
        world
            .trace
            .update(&[u8::try_from(from).unwrap_or(u8::MAX), u8::try_from(to).unwrap_or(u8::MAX)]);
        world.trace.update(&id.0);
        // A full queue drops gossip, as the real service does.
        if events.try_send(NetworkEvent::Gossip { topic, source, id, data }).is_ok() {
            world.delivered = world.delivered.saturating_add(1);
        } else {
            world.dropped = world.dropped.saturating_add(1);
        }
    }

    fn request(
        &self,
        from: usize,
        peer: PeerId,
        range: (u64, u64),
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, NetworkError>> + Send + 'static + use<> {
        let net = self.clone();
        let failed =
            move |reason: &str| NetworkError::RequestFailed { peer, reason: reason.into() };
        async move {
            let (to, there, back, me) = {
                let mut world = net.lock();
                let to = world.index_of(&peer).ok_or_else(|| failed("unknown peer"))?;
                let me = world.nodes.get(from).map(|node| node.peer).ok_or_else(|| failed("?"))?;
                (to, world.delay(), world.delay(), me)
            };
            sleep(&net.context, there).await;
            let (respond, answer) = oneshot::channel();
            let events = {
                let world = net.lock();
                if !world.connected(from, to) {
                    return Err(failed("not connected"));
                }
                world.nodes.get(to).and_then(|node| node.events.clone())
            };
            let request =
                NetworkEvent::BlocksRequested { peer: me, from: range.0, to: range.1, respond };
            events
                .ok_or_else(|| failed("peer down"))?
                .try_send(request)
                .map_err(|_| failed("peer busy"))?;
            let timeout = sleep(&net.context, REQUEST_TIMEOUT);
            let items = tokio::select! {
                biased;
                answer = answer => answer.map_err(|_| failed("refused"))?,
                () = timeout => return Err(failed("timed out")),
            };
            sleep(&net.context, back).await;
            if !net.lock().connected(to, from) {
                return Err(failed("connection lost"));
            }
            Ok(items)
        }
    }

    fn peers_of(&self, index: usize) -> Vec<PeerInfo> {
        let world = self.lock();
        (0..world.nodes.len())
            .filter(|other| world.connected(index, *other))
            .filter_map(|other| {
                let peer_id = world.nodes.get(other)?.peer;
                let address: Multiaddr = format!("/memory/{other}").parse().ok()?;
                Some(PeerInfo { peer_id, address })
            })
            .collect()
    }
}

/// A deterministic peer id for node `index`.
pub fn peer_id(index: usize) -> PeerId {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&u64::try_from(index).unwrap_or(u64::MAX).to_le_bytes());
    seed[8] = 0xA1;
    // Any 32 bytes are an ed25519 secret key.
    libp2p::identity::Keypair::ed25519_from_bytes(seed)
        .map(|keypair| keypair.public().to_peer_id())
        .unwrap_or_else(|_| unreachable!("32 bytes are an ed25519 secret key"))
}

/// One node's view of the [`SimNet`].
#[derive(Clone)]
pub struct NodeNetwork {
    net: SimNet,
    index: usize,
}

impl Network for NodeNetwork {
    async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), NetworkError> {
        self.net.publish(self.index, topic, data);
        Ok(())
    }

    async fn report(&self, _id: MessageId, _source: PeerId, validation: Validation) {
        if validation == Validation::Reject {
            let mut world = self.net.lock();
            world.rejected = world.rejected.saturating_add(1);
        }
    }

    fn request_blocks(
        &self,
        peer: PeerId,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, NetworkError>> + Send + 'static + use<> {
        self.net.request(self.index, peer, (from, to))
    }

    fn peers(
        &self,
    ) -> impl Future<Output = Result<Vec<PeerInfo>, NetworkError>> + Send + 'static + use<> {
        let peers = self.net.peers_of(self.index);
        async move { Ok(peers) }
    }
}
