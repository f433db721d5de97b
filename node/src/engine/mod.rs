//! The engine: the consensus machine, block sync and transaction gossip wired to the chain,
//! the network and a real clock.
//!
//! One task owns the [`Consensus`] machine and is the only writer of the chain in a networked
//! node, so a block is never committed twice nor a height started twice. It waits on four
//! things at once: network events, the machine's timeouts, the block it was asked to build
//! (a leader waits until a transaction is ready, or the empty-block interval has passed), and
//! answers to its block sync requests.
//!
//! - **Consensus.** Proposals travel with their block on the consensus topic; votes alone. Each
//!   message the machine signs is synced to the chain store's write-ahead log before it is sent,
//!   and the log of the height being decided is handed back to the machine at start, so a
//!   restarted validator never signs two different messages for one step. Blocks are executed
//!   when the machine asks for a verdict and kept until the height is committed, so committing a
//!   decided block does not execute it again. After each commit the node gossips the
//!   certificate on the blocks topic: a node that missed the last precommits decides from it.
//! - **Sync.** A node that sees a peer ahead of it (a certificate or consensus message of a later
//!   height, a new peer, or no progress for a while) asks a peer for the final blocks after its
//!   head, 64 at a time, and imports them: each certificate must verify against the validator
//!   set its own state names for that height, so an epoch's set is trusted only through the
//!   previous epoch's blocks. Then it starts consensus at the height after them.
//! - **Transactions** admitted from this node's clients are gossiped in batches; those from peers
//!   are admitted without being sent again ([`transactions`]).
//!
//! Every gossip message gets a verdict back to gossipsub: accepted, ignored (stale, duplicate,
//! not of interest) or rejected (undecodable, badly signed, invalid), which lowers the peer's
//! score. The verdict on a proposal, vote or certificate is given after the machine's cheap
//! checks (signature, membership, leader, height window) and before the block executes or
//! anything is persisted, so a message crosses each hop without waiting on execution; a
//! proposal whose block then proves invalid is voted against, not forwarded again.

pub mod transactions;
pub mod wire;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use altan_consensus::{
    Action, Config, Consensus, Input, InputError, NewHeight, SignedMessage, Timeout,
};
use altan_primitives::{Block, Certificate, Hash, Height};
use parity_scale_codec::{Decode, Encode};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::chain::{BlockRejection, Chain, ChainError, ExecutedBlock};
use crate::network::{
    MessageId, NetworkError, NetworkEvent, NetworkHandle, PeerId, Topic, Validation,
};
use crate::producer::now_ms;
use crate::status::{ConsensusStatus, PeerStatus, SyncStatus};
use wire::{BlockGossip, ConsensusGossip, Envelope, SyncItem};

const TARGET: &str = "altan::engine";

/// Final blocks asked of a peer at once.
pub const SYNC_BATCH: u64 = 64;
/// Blocks (proposed or built) held for the heights being decided.
const MAX_HELD_BLOCKS: usize = 64;
/// Blocks the machine asked to check that have not arrived yet.
const MAX_AWAITED_BLOCKS: usize = 64;
/// Timeouts held at once; the machine asks for a few per round.
const MAX_TIMERS: usize = 1_024;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The consensus machine's timeouts and bounds.
    pub consensus: Config,
    /// The longest a leader waits for transactions before it proposes an empty block.
    pub empty_block_interval: Duration,
    /// With no block committed for this long, the node asks a peer for newer final blocks.
    pub stall_timeout: Duration,
}

impl EngineConfig {
    /// Timeouts for messages that arrive within about `message_delay`, with leaders waiting up to
    /// `empty_block_interval` for transactions. The proposal timeout covers that wait, so that
    /// validators do not give up on a leader that is waiting for transactions.
    pub fn new(message_delay: Duration, empty_block_interval: Duration) -> EngineConfig {
        let mut consensus = Config::for_message_delay(message_delay);
        consensus.timeout_propose = consensus.timeout_propose.saturating_add(empty_block_interval);
        let stall_timeout = consensus
            .timeout_propose
            .saturating_add(consensus.timeout_prevote)
            .saturating_add(consensus.timeout_precommit)
            .max(Duration::from_secs(2));
        EngineConfig { consensus, empty_block_interval, stall_timeout }
    }
}

/// Why the engine stopped. Each of these stops the node: going on could break safety (a
/// message sent without being persisted) or the chain's integrity.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A signed message could not be persisted.
    #[error("persisting a consensus message: {0}")]
    Persist(String),
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The consensus machine refused to start a height from the chain's own data.
    #[error("starting height {height}: {reason}")]
    Start {
        /// The height.
        height: Height,
        /// Why.
        reason: String,
    },
    /// The network service stopped.
    #[error("the network service stopped")]
    NetworkClosed,
}

/// A block the machine asked for, waiting for transactions or the empty-block interval.
#[derive(Debug, Clone, Copy)]
struct PendingBuild {
    height: Height,
    round: u32,
    deadline: tokio::time::Instant,
}

/// The answer to a block request, from a spawned task.
type SyncAnswer = (PeerId, u64, Result<Vec<Vec<u8>>, NetworkError>);

struct Engine {
    chain: Arc<Chain>,
    network: NetworkHandle,
    config: EngineConfig,
    machine: Consensus,
    /// Distinguishes this node's repeated sendings (see [`Envelope`]).
    sending: u64,
    timers: BinaryHeap<Reverse<(Instant, u64, Timeout)>>,
    timer_sequence: u64,
    /// Blocks of the heights being decided, by hash.
    blocks: HashMap<Hash, Block>,
    /// Those of them executed on the head.
    executed: HashMap<Hash, Arc<ExecutedBlock>>,
    /// Blocks the machine asked to check that have not arrived.
    awaited: HashSet<Hash>,
    building: Option<PendingBuild>,
    /// Internal inputs (verdicts, built blocks) waiting to be fed.
    queue: VecDeque<Input>,
    sync_jobs: JoinSet<SyncAnswer>,
    sync_peer: Option<PeerId>,
    best_seen: Height,
    imported: u64,
    last_progress: Instant,
    peers: Vec<PeerId>,
    next_peer: usize,
    last_round: (Height, u32),
    /// Whether this node's key is in the current height's validator set.
    signing: bool,
    /// A height was committed; the next starts when the current actions are done.
    committed: bool,
    /// A decision whose block has not arrived: committed when a proposal carrying it, or sync,
    /// brings it.
    pending_commit: Option<Certificate>,
    transactions: mpsc::Sender<transactions::Inbound>,
}

/// Runs the engine until the network stops or a fatal error: the consensus machine signs with
/// the chain's validator key when it has one and follows the chain otherwise.
pub async fn run(
    chain: Arc<Chain>,
    network: NetworkHandle,
    mut events: mpsc::Receiver<NetworkEvent>,
    config: EngineConfig,
) -> Result<(), EngineError> {
    let key = match chain.validator() {
        Some(validator) => validator.key.clone(),
        // A follower's key signs nothing: it is in no validator set.
        None => crate::keys::generate(),
    };
    let machine = Consensus::new(config.consensus.clone(), chain.spec().chain_id, key);
    let transactions = transactions::spawn(Arc::clone(&chain), network.clone());
    let mut engine = Engine {
        machine,
        network,
        config,
        // Random, so that two nodes sending the same message (a certificate with the same
        // signatures, a forwarded vote) do not send the same bytes, which gossipsub would drop.
        sending: rand::random(),
        timers: BinaryHeap::new(),
        timer_sequence: 0,
        blocks: HashMap::new(),
        executed: HashMap::new(),
        awaited: HashSet::new(),
        building: None,
        queue: VecDeque::new(),
        sync_jobs: JoinSet::new(),
        sync_peer: None,
        best_seen: chain.final_head().height,
        imported: 0,
        last_progress: Instant::now(),
        peers: Vec::new(),
        next_peer: 0,
        last_round: (0, 0),
        signing: false,
        committed: false,
        pending_commit: None,
        transactions,
        chain,
    };
    engine.start_height(true).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next_timer = engine.timers.peek().map(|Reverse((at, _, _))| *at);
        let build = engine.building;
        let chain = Arc::clone(&engine.chain);
        // In a fixed order, so that the same inputs give the same steps (tokio would otherwise
        // pick among ready branches at random): the rare branches first, network events last,
        // so that a flood of gossip cannot hold back timers, building or sync.
        tokio::select! {
            biased;
            _ = tick.tick() => engine.on_tick(),
            () = sleep_until(next_timer) => engine.fire_timers().await?,
            () = build_ready(&chain, build) => engine.build().await?,
            Some(answer) = engine.sync_jobs.join_next(), if !engine.sync_jobs.is_empty() => {
                match answer {
                    Ok(answer) => engine.on_sync_answer(answer).await?,
                    Err(error) => warn!(target: TARGET, %error, "a sync request task failed"),
                }
            }
            event = events.recv() => match event {
                Some(event) => engine.on_network(event).await?,
                None => return Err(EngineError::NetworkClosed),
            },
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the pending block should be built: a transaction is ready or the empty-block
/// interval has passed.
async fn build_ready(chain: &Chain, build: Option<PendingBuild>) {
    let Some(build) = build else { return std::future::pending().await };
    loop {
        if chain.has_ready_transactions() || tokio::time::Instant::now() >= build.deadline {
            return;
        }
        tokio::select! {
            () = chain.transaction_arrived() => {}
            () = tokio::time::sleep_until(build.deadline) => return,
        }
    }
}

/// Runs blocking chain work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ChainError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ChainError::Corrupt(format!("a blocking task failed: {e}")))
}

impl Engine {
    fn height(&self) -> Height {
        self.machine.status().map_or(0, |s| s.height)
    }

    /// Starts consensus at the height after the head, and performs what follows. At startup the
    /// messages this validator persisted for that height are restored.
    async fn start_height(&mut self, restore: bool) -> Result<(), EngineError> {
        self.begin_height(restore).await?;
        self.drain().await?;
        self.report_status();
        Ok(())
    }

    async fn begin_height(&mut self, restore: bool) -> Result<(), EngineError> {
        let chain = Arc::clone(&self.chain);
        let (height, validators, seed, restored) = blocking(move || {
            let height = chain.head().height.saturating_add(1);
            let validators = chain.validator_set_for(height)?;
            let seed = chain.leader_seed_for(height)?;
            let mut restored = Vec::new();
            if restore {
                for bytes in chain.store().persisted_messages(height).map_err(ChainError::from)? {
                    let message = SignedMessage::decode(&mut &bytes[..]).map_err(|e| {
                        ChainError::Corrupt(format!("a persisted consensus message: {e}"))
                    })?;
                    restored.push(message);
                }
            }
            Ok::<_, ChainError>((height, validators, seed, restored))
        })
        .await??;
        let seed = seed.ok_or_else(|| EngineError::Start {
            height,
            reason: "the block that seeds its epoch's leaders is not committed".into(),
        })?;
        if !restored.is_empty() {
            info!(target: TARGET, height, messages = restored.len(), "restoring signed consensus messages");
        }
        self.blocks.retain(|_, block| block.header.height >= height);
        self.executed.clear();
        self.awaited.clear();
        self.building = None;
        self.pending_commit = None;
        let own = self.machine.public_key();
        self.signing = validators.validators.iter().any(|v| v.consensus_key == own);
        let new = NewHeight { height, validators, seed, restored };
        let actions = self
            .machine
            .handle(Input::StartHeight(new))
            .map_err(|e| EngineError::Start { height, reason: e.to_string() })?;
        self.perform(actions).await
    }

    /// Hands one input from outside to the machine, which makes the cheap checks (signature,
    /// membership, leader, height window) and returns what to do; nothing has executed or been
    /// persisted yet, so a gossip verdict can be given now.
    fn accept(&mut self, input: Input, block: Option<Block>) -> Result<Vec<Action>, InputError> {
        let actions = self.machine.handle(input)?;
        if let Some(block) = block {
            self.hold_block(block);
        }
        Ok(actions)
    }

    /// Performs the actions of an accepted input, then the internal inputs they lead to.
    async fn act(&mut self, actions: Vec<Action>) -> Result<(), EngineError> {
        self.perform(actions).await?;
        self.drain().await?;
        self.report_status();
        Ok(())
    }

    /// Feeds one input from outside, then the internal inputs it leads to. Returns the
    /// machine's refusal of the outside input, if it refused it.
    async fn feed(
        &mut self,
        input: Input,
        block: Option<Block>,
    ) -> Result<Result<(), InputError>, EngineError> {
        match self.accept(input, block) {
            Ok(actions) => {
                self.act(actions).await?;
                Ok(Ok(()))
            }
            Err(error) => Ok(Err(error)),
        }
    }

    /// Gives gossipsub the verdict on a message: accepted ones are forwarded at once.
    async fn verdict(&mut self, id: MessageId, source: PeerId, validation: Validation) {
        if validation == Validation::Reject {
            self.chain.metrics().invalid_peer_messages.inc();
        }
        let _ = self.network.report(id, source, validation).await;
    }

    /// Feeds the queued internal inputs, and starts the next height after a commit, until
    /// nothing is left to do.
    async fn drain(&mut self) -> Result<(), EngineError> {
        loop {
            if let Some(input) = self.queue.pop_front() {
                match self.machine.handle(input) {
                    Ok(actions) => self.perform(actions).await?,
                    Err(error) => debug!(target: TARGET, %error, "internal input refused"),
                }
            } else if self.committed {
                self.committed = false;
                self.queue.clear();
                self.begin_height(false).await?;
            } else {
                return Ok(());
            }
        }
    }

    fn hold_block(&mut self, block: Block) {
        if self.blocks.len() >= MAX_HELD_BLOCKS {
            // Keep the lowest heights: they are the ones being decided. Ties go by hash, so
            // that the map's iteration order decides nothing.
            if let Some(highest) = self
                .blocks
                .iter()
                .max_by_key(|(hash, b)| (b.header.height, **hash))
                .map(|(hash, _)| *hash)
            {
                self.blocks.remove(&highest);
            }
        }
        self.blocks.insert(block.hash(), block);
    }

    async fn perform(&mut self, actions: Vec<Action>) -> Result<(), EngineError> {
        for action in actions {
            match action {
                Action::Persist(message) => self.persist(&message).await?,
                Action::Broadcast(message) => self.broadcast(message).await,
                Action::ScheduleTimeout { timeout, after } => {
                    if self.timers.len() < MAX_TIMERS {
                        self.timer_sequence = self.timer_sequence.wrapping_add(1);
                        let now = Instant::now();
                        let at = now.checked_add(after).unwrap_or(now);
                        self.timers.push(Reverse((at, self.timer_sequence, timeout)));
                    } else {
                        warn!(target: TARGET, "too many timeouts pending; dropping one");
                    }
                }
                Action::BuildBlock { height, round } => {
                    let parent_ms = self.chain.head().timestamp_ms;
                    let wait = parent_ms
                        .saturating_add(self.config.empty_block_interval.as_millis() as u64)
                        .saturating_sub(now_ms());
                    let now = tokio::time::Instant::now();
                    let deadline = now.checked_add(Duration::from_millis(wait)).unwrap_or(now);
                    self.building = Some(PendingBuild { height, round, deadline });
                }
                Action::CheckBlock { height, block_hash, .. } => {
                    self.check(height, block_hash).await?;
                }
                Action::Commit(certificate) => self.commit(certificate).await?,
                Action::ReportEvidence(evidence) => {
                    warn!(target: TARGET, evidence = %evidence.hash(), "a validator equivocated");
                    if let Err(error) = self.chain.add_evidence(evidence) {
                        warn!(target: TARGET, %error, "evidence does not verify");
                    }
                }
            }
        }
        Ok(())
    }

    async fn persist(&mut self, message: &SignedMessage) -> Result<(), EngineError> {
        let chain = Arc::clone(&self.chain);
        let (height, round, step) = (message.height(), message.round(), message.step() as u8);
        let bytes = message.encode();
        blocking(move || chain.store().persist_message(height, round, step, &bytes))
            .await?
            .map_err(|e| EngineError::Persist(e.to_string()))
    }

    async fn broadcast(&mut self, message: SignedMessage) {
        let body = match message {
            SignedMessage::Proposal(proposal) => {
                let block = self.blocks.get(&proposal.proposal.block_hash).cloned().map(Box::new);
                ConsensusGossip::Proposal { proposal, block }
            }
            SignedMessage::Vote(vote) => ConsensusGossip::Vote(vote),
        };
        self.publish(Topic::Consensus, body).await;
    }

    async fn publish<T: Encode>(&mut self, topic: Topic, body: T) {
        self.sending = self.sending.wrapping_add(1);
        let bytes = Envelope { sending: self.sending, body }.encode();
        match self.network.publish(topic, bytes).await {
            Ok(_) => {}
            Err(NetworkError::NoPeers) => debug!(target: TARGET, ?topic, "no peers to send to"),
            Err(error) => warn!(target: TARGET, ?topic, %error, "cannot publish"),
        }
    }

    async fn fire_timers(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        while let Some(Reverse((at, _, timeout))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if timeout.height < self.height() {
                continue;
            }
            if let Err(error) = self.feed(Input::Timeout(timeout), None).await? {
                debug!(target: TARGET, %error, "timeout refused");
            }
        }
        Ok(())
    }

    async fn build(&mut self) -> Result<(), EngineError> {
        let Some(build) = self.building.take() else { return Ok(()) };
        let chain = Arc::clone(&self.chain);
        let executed = match blocking(move || chain.build_block(now_ms())).await? {
            Ok(executed) => executed,
            Err(error) => {
                // The other validators time out on this round and move to the next leader.
                error!(target: TARGET, height = build.height, %error, "cannot build a block");
                return Ok(());
            }
        };
        if executed.block.header.height != build.height {
            debug!(target: TARGET, height = build.height, "the head moved while building");
            return Ok(());
        }
        let block_hash = executed.hash;
        self.hold_block(executed.block.clone());
        self.executed.insert(block_hash, Arc::new(executed));
        let input = Input::BlockBuilt { height: build.height, round: build.round, block_hash };
        if let Err(error) = self.feed(input, None).await? {
            debug!(target: TARGET, %error, "built block refused");
        }
        Ok(())
    }

    /// Executes a proposed block and queues the verdict; a block that has not arrived is
    /// checked when it does.
    async fn check(&mut self, height: Height, block_hash: Hash) -> Result<(), EngineError> {
        if self.executed.contains_key(&block_hash) {
            self.queue.push_back(Input::BlockVerdict { height, block_hash, valid: true });
            return Ok(());
        }
        let Some(block) = self.blocks.get(&block_hash).cloned() else {
            if self.awaited.len() < MAX_AWAITED_BLOCKS {
                self.awaited.insert(block_hash);
            }
            return Ok(());
        };
        self.awaited.remove(&block_hash);
        let chain = Arc::clone(&self.chain);
        let valid = match blocking(move || chain.execute_block(block, Some(now_ms()))).await? {
            Ok(executed) => {
                self.executed.insert(block_hash, Arc::new(executed));
                true
            }
            Err(BlockRejection::Invalid(reason)) => {
                warn!(target: TARGET, height, %block_hash, %reason, "invalid proposed block");
                self.chain.metrics().invalid_peer_messages.inc();
                false
            }
            Err(BlockRejection::NotNext { height, head }) => {
                debug!(target: TARGET, height, head, "a proposed block does not follow the head");
                return Ok(());
            }
            Err(BlockRejection::Internal(error)) => return Err(error.into()),
        };
        self.queue.push_back(Input::BlockVerdict { height, block_hash, valid });
        Ok(())
    }

    /// Commits a decided block, gossips its certificate and starts the next height. A block that
    /// never arrived is fetched by sync.
    async fn commit(&mut self, certificate: Certificate) -> Result<(), EngineError> {
        let hash = certificate.block_hash;
        let height = certificate.height;
        let executed = match self.executed.get(&hash) {
            Some(executed) => Arc::clone(executed),
            None => {
                let Some(block) = self.blocks.get(&hash).cloned() else {
                    info!(target: TARGET, height, %hash, "decided a block this node does not have; fetching it");
                    self.pending_commit = Some(certificate);
                    self.sync_any();
                    return Ok(());
                };
                let chain = Arc::clone(&self.chain);
                match blocking(move || chain.execute_block(block, None)).await? {
                    Ok(executed) => Arc::new(executed),
                    Err(error) => {
                        // More than 2/3 of stake decided it, so it is valid; this node failed.
                        error!(target: TARGET, height, %hash, %error, "cannot execute a decided block");
                        return Ok(());
                    }
                }
            }
        };
        let chain = Arc::clone(&self.chain);
        let with = certificate.clone();
        let committed = blocking(move || chain.commit_executed(&executed, Some(with))).await?;
        if let Err(error) = committed {
            error!(target: TARGET, height, %hash, %error, "cannot commit a decided block");
            return Err(error.into());
        }
        self.last_progress = Instant::now();
        self.best_seen = self.best_seen.max(height);
        self.publish(Topic::Blocks, BlockGossip::Committed(certificate)).await;
        // The next height starts once the actions of this one are done (see `drain`).
        self.committed = true;
        Ok(())
    }

    async fn on_network(&mut self, event: NetworkEvent) -> Result<(), EngineError> {
        match event {
            NetworkEvent::Gossip { topic: Topic::Transactions, source, id, data } => {
                let inbound = transactions::Inbound { id: id.clone(), source, data };
                if self.transactions.try_send(inbound).is_err() {
                    let _ = self.network.report(id, source, Validation::Ignore).await;
                }
            }
            NetworkEvent::Gossip { topic: Topic::Consensus, source, id, data } => {
                self.on_consensus_gossip(source, id, &data).await?;
            }
            NetworkEvent::Gossip { source, id, data, .. } => {
                self.on_block_gossip(source, id, &data).await?;
            }
            NetworkEvent::BlocksRequested { from, to, respond, .. } => {
                let chain = Arc::clone(&self.chain);
                tokio::spawn(async move {
                    if let Ok(items) = blocking(move || serve_blocks(&chain, from, to)).await {
                        let _ = respond.send(items);
                    }
                });
            }
            NetworkEvent::PeerConnected(peer) => {
                if !self.peers.contains(&peer) {
                    self.peers.push(peer);
                }
                self.refresh_peers();
                // A new peer may be ahead: ask it.
                self.sync_from(peer);
            }
            NetworkEvent::PeerDisconnected(peer) => {
                self.peers.retain(|p| *p != peer);
                self.refresh_peers();
            }
        }
        Ok(())
    }

    /// A proposal or vote from gossip. Its verdict is given as soon as the machine has made
    /// its cheap checks, before the block it carries executes and before anything is persisted,
    /// so that forwarding does not wait on execution at every hop.
    async fn on_consensus_gossip(
        &mut self,
        source: PeerId,
        id: MessageId,
        data: &[u8],
    ) -> Result<(), EngineError> {
        let envelope = match wire::decode_consensus(data) {
            Ok(envelope) => envelope,
            Err(error) => {
                debug!(target: TARGET, %source, %error, "refusing a consensus message");
                self.verdict(id, source, Validation::Reject).await;
                return Ok(());
            }
        };
        // A message of the next height is buffered by the machine, which cannot check its
        // signer's membership before that height's set is known: it is not forwarded.
        let ahead = envelope.body.height() > self.height();
        let (input, block) = match envelope.body {
            ConsensusGossip::Proposal { proposal, block } => {
                (Input::Proposal(proposal), block.map(|b| *b))
            }
            ConsensusGossip::Vote(vote) => (Input::Vote(vote), None),
        };
        // A block this node is waiting for (to check it, or to commit a decision) is taken from
        // any proposal that carries it, even a refused one: its hash is what the votes were for.
        let hash = block.as_ref().map(Block::hash);
        let wanted = hash.is_some_and(|hash| {
            self.awaited.contains(&hash)
                || self.pending_commit.as_ref().is_some_and(|c| c.block_hash == hash)
        });
        let kept = if wanted { block.clone() } else { None };
        let accepted = self.accept(input, block);
        let validation = match &accepted {
            Ok(_) if ahead => Validation::Ignore,
            Ok(_) => Validation::Accept,
            Err(InputError::FutureHeight { found, .. }) => {
                // Someone decided the heights in between.
                self.saw_height(found.saturating_sub(1), source);
                Validation::Ignore
            }
            Err(error) if error.is_misbehaviour() => {
                debug!(target: TARGET, %source, %error, "invalid consensus message");
                Validation::Reject
            }
            Err(error) => {
                debug!(target: TARGET, %source, %error, "consensus message not used");
                Validation::Ignore
            }
        };
        self.verdict(id, source, validation).await;
        if let Ok(actions) = accepted {
            self.act(actions).await?;
        }
        if let (Some(block), Some(hash)) = (kept, hash) {
            self.take_wanted_block(block, hash).await?;
        }
        Ok(())
    }

    /// Uses a block that arrived after the machine asked for it: commits the decision that
    /// waits for it, or checks it.
    async fn take_wanted_block(&mut self, block: Block, hash: Hash) -> Result<(), EngineError> {
        if let Some(certificate) = self.pending_commit.take_if(|c| c.block_hash == hash) {
            self.hold_block(block);
            self.commit(certificate).await?;
        } else if self.awaited.contains(&hash) {
            let height = block.header.height;
            self.hold_block(block);
            self.check(height, hash).await?;
        } else {
            return Ok(());
        }
        self.drain().await?;
        self.report_status();
        Ok(())
    }

    /// A certificate announced on the blocks topic; its verdict, like a consensus message's,
    /// comes before the commit it may lead to.
    async fn on_block_gossip(
        &mut self,
        source: PeerId,
        id: MessageId,
        data: &[u8],
    ) -> Result<(), EngineError> {
        let certificate = match wire::decode_blocks(data) {
            Ok(Envelope { body: BlockGossip::Committed(certificate), .. }) => certificate,
            Err(error) => {
                debug!(target: TARGET, %source, %error, "refusing a block announcement");
                self.verdict(id, source, Validation::Reject).await;
                return Ok(());
            }
        };
        let current = self.height();
        if certificate.height != current {
            if certificate.height > current {
                self.saw_height(certificate.height, source);
            }
            self.verdict(id, source, Validation::Ignore).await;
            return Ok(());
        }
        let accepted = self.accept(Input::Certificate(certificate), None);
        let validation = match &accepted {
            Ok(_) => Validation::Accept,
            Err(error) if error.is_misbehaviour() => Validation::Reject,
            Err(_) => Validation::Ignore,
        };
        self.verdict(id, source, validation).await;
        if let Ok(actions) = accepted {
            self.act(actions).await?;
        }
        Ok(())
    }

    /// A peer showed that the chain is final up to `height`.
    fn saw_height(&mut self, height: Height, peer: PeerId) {
        if height > self.best_seen {
            self.best_seen = height;
        }
        if height > self.chain.head().height {
            self.sync_from(peer);
        }
    }

    fn sync_any(&mut self) {
        if self.peers.is_empty() {
            return;
        }
        self.next_peer = self.next_peer.wrapping_add(1).checked_rem(self.peers.len()).unwrap_or(0);
        if let Some(peer) = self.peers.get(self.next_peer).copied() {
            self.sync_from(peer);
        }
    }

    /// Asks `peer` for the final blocks after the head, unless a request is in flight.
    fn sync_from(&mut self, peer: PeerId) {
        if self.sync_peer.is_some() {
            return;
        }
        let from = self.chain.head().height.saturating_add(1);
        let to = from.saturating_add(SYNC_BATCH - 1);
        let network = self.network.clone();
        self.sync_peer = Some(peer);
        self.sync_jobs
            .spawn(async move { (peer, from, network.request_blocks(peer, from, to).await) });
    }

    async fn on_sync_answer(&mut self, answer: SyncAnswer) -> Result<(), EngineError> {
        self.sync_peer = None;
        let (peer, from, result) = answer;
        let items = match result {
            Ok(items) => items,
            Err(error) => {
                debug!(target: TARGET, %peer, %error, "block request failed");
                return Ok(());
            }
        };
        if items.is_empty() || from != self.chain.head().height.saturating_add(1) {
            self.report_status();
            return Ok(());
        }
        let count = items.len();
        let started = Instant::now();
        let chain = Arc::clone(&self.chain);
        let (imported, failure) = blocking(move || import_items(&chain, items)).await?;
        if imported > 0 {
            let last = from.saturating_add(imported).saturating_sub(1);
            self.imported = self.imported.saturating_add(imported);
            self.best_seen = self.best_seen.max(last);
            self.last_progress = Instant::now();
            self.chain.metrics().blocks_imported.inc_by(imported);
            let rate = imported as f64 / started.elapsed().as_secs_f64().max(1e-6);
            info!(target: TARGET, from, to = last, best_seen = self.best_seen, %peer,
                blocks_per_second = rate as u64, "synced final blocks");
            self.start_height(false).await?;
        }
        match failure {
            Some(ImportFailure::Invalid(reason)) => {
                warn!(target: TARGET, %peer, %reason, "a peer served an invalid block");
                self.chain.metrics().invalid_peer_messages.inc();
            }
            Some(ImportFailure::Internal(error)) => return Err(error.into()),
            None if imported == count as u64 && count as u64 == SYNC_BATCH => {
                // There may be more.
                self.sync_from(peer);
            }
            None => {}
        }
        self.report_status();
        Ok(())
    }

    fn on_tick(&mut self) {
        if self.last_progress.elapsed() >= self.config.stall_timeout {
            // Nothing committed for a while: maybe the others moved on without us.
            self.last_progress = Instant::now();
            self.sync_any();
        }
        self.report_status();
    }

    fn refresh_peers(&self) {
        let network = self.network.clone();
        let chain = Arc::clone(&self.chain);
        tokio::spawn(async move {
            if let Ok(peers) = network.peers().await {
                chain.metrics().peers.set(i64::try_from(peers.len()).unwrap_or(i64::MAX));
                chain.status().set_peers(
                    peers
                        .into_iter()
                        .map(|p| PeerStatus {
                            peer_id: p.peer_id.to_string(),
                            address: p.address.to_string(),
                        })
                        .collect(),
                );
            }
        });
    }

    fn report_status(&mut self) {
        let Some(status) = self.machine.status() else { return };
        let signing = self.signing;
        if (status.height, status.round) != self.last_round {
            if status.height == self.last_round.0 && status.round > self.last_round.1 {
                self.chain.metrics().consensus_round_changes.inc();
                info!(target: TARGET, height = status.height, round = status.round, "new round");
            }
            self.last_round = (status.height, status.round);
        }
        self.chain.status().set_consensus(ConsensusStatus {
            height: status.height,
            round: status.round,
            signing,
        });
        let head = self.chain.head().height;
        self.chain.status().set_sync(SyncStatus {
            syncing: self.best_seen > head.saturating_add(1),
            best_seen: self.best_seen.max(head),
            imported: self.imported,
        });
    }
}

/// Why importing synced blocks stopped early.
enum ImportFailure {
    /// The peer's block or certificate is invalid.
    Invalid(String),
    /// This node failed.
    Internal(ChainError),
}

/// Imports synced items in order; returns how many were imported and why it stopped early.
fn import_items(chain: &Chain, items: Vec<Vec<u8>>) -> (u64, Option<ImportFailure>) {
    let mut imported = 0u64;
    for bytes in items {
        let item: SyncItem = match wire::decode_sync_item(&bytes) {
            Ok(item) => item,
            Err(error) => return (imported, Some(ImportFailure::Invalid(error.to_string()))),
        };
        match chain.import_block(item.block, item.certificate) {
            Ok(_) => imported = imported.saturating_add(1),
            Err(BlockRejection::Invalid(reason)) => {
                return (imported, Some(ImportFailure::Invalid(reason)));
            }
            Err(BlockRejection::NotNext { height, head }) => {
                return (
                    imported,
                    Some(ImportFailure::Invalid(format!(
                        "served block {height} where {} was asked for",
                        head.saturating_add(1)
                    ))),
                );
            }
            Err(BlockRejection::Internal(error)) => {
                return (imported, Some(ImportFailure::Internal(error)));
            }
        }
    }
    (imported, None)
}

/// The final blocks `from..=to` with their certificates, as sync items, up to the first this
/// node does not have.
pub fn serve_blocks(chain: &Chain, from: Height, to: Height) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    for height in from..=to {
        let (Ok(Some(block)), Ok(Some(certificate))) =
            (chain.store().block_at(height), chain.store().certificate(height))
        else {
            break;
        };
        items.push(SyncItem { block, certificate }.encode());
    }
    items
}
