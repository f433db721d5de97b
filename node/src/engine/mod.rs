//! The engine: the consensus machine, block sync and transaction gossip wired to the chain,
//! the network and a clock, through the host interface ([`host`]).
//!
//! One task owns the [`Consensus`] machine and is the only writer of the chain, so a block is
//! never committed twice nor a height started twice. The same engine runs a validator in a
//! network and `altan dev`, where it is the whole validator set on a network of its own
//! ([`host::LoneNetwork`]). It waits on six things at once: its status tick, the results of
//! block work (`jobs.rs`: building, checking and committing run off the loop, one at a time, so
//! timers, votes and sync answers keep flowing while a block executes), the machine's timeouts,
//! the block it was asked to build (see [`BlockPacing`]), answers to its block sync requests,
//! and network events.
//!
//! - **Consensus.** Proposals travel with their block on the consensus topic; votes alone. Each
//!   message the machine signs is written to the chain store's write-ahead log before it is
//!   sent, and the log of the height being decided is handed back to the machine at start, so a
//!   restarted validator never signs two different messages for one step. Blocks are executed
//!   when the machine asks for a verdict and kept until the height is committed, so committing a
//!   decided block does not execute it again. After each commit the node gossips the
//!   certificate on the blocks topic: a node that missed the last precommits decides from it.
//! - **Sync** ([`sync`]). A node that sees a peer ahead of it (a certificate or consensus message
//!   of a later height, a new peer, or no progress for a while) asks a peer for the final blocks
//!   after its head, 64 at a time, and imports them: each certificate must verify against the
//!   validator set its own state names for that height, so an epoch's set is trusted only
//!   through the previous epoch's blocks. Then it starts consensus at the height after them.
//! - **Transactions** admitted from this node's clients are gossiped in batches; those from peers
//!   are admitted without being sent again ([`transactions`]).
//!
//! Every gossip message gets a verdict back to gossipsub: accepted, ignored (stale, duplicate,
//! not of interest) or rejected (undecodable, badly signed, invalid), which lowers the peer's
//! score. The verdict on a proposal, vote or certificate is given after the machine's cheap
//! checks (signature, membership, leader, height window) and before the block executes or
//! anything is persisted, so a message crosses each hop without waiting on execution; a
//! proposal whose block then proves invalid is voted against, not forwarded again.

// Time, tasks and randomness come from the host (see clippy.toml); `host.rs` alone may touch them.
#![warn(clippy::disallowed_methods, clippy::disallowed_types)]

mod blocks;
mod gossip;
pub mod host;
mod jobs;
mod pacing;
pub mod sync;
mod timers;
pub mod transactions;
pub mod wire;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use altan_consensus::{Action, Config, Consensus, Input, InputError, NewHeight, SignedMessage};
use altan_primitives::{Block, Certificate, Height};
use parity_scale_codec::{Decode, Encode};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::chain::{Chain, ChainError};
use crate::network::{NetworkError, NetworkEvent, PeerId, Topic};
use crate::status::{ConsensusStatus, PeerStatus};
use blocks::HeldBlocks;
use host::{Host, Network, TaskFailed};
use jobs::{Done, Jobs};
pub use pacing::BlockPacing;
use pacing::{FIRST_BUILD_RETRY, PendingBuild};
pub use sync::SYNC_BATCH;
use sync::SyncState;
use timers::Timers;
use wire::{ConsensusGossip, Envelope};

const TARGET: &str = "altan::engine";

/// How often the status is reported and a stall looked for.
const TICK: Duration = Duration::from_millis(500);

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The consensus machine's timeouts and bounds.
    pub consensus: Config,
    /// When blocks are built.
    pub pacing: BlockPacing,
    /// With no block committed for this long, the node asks a peer for newer final blocks.
    pub stall_timeout: Duration,
}

impl EngineConfig {
    /// Timeouts for messages that arrive within about `message_delay`, with leaders waiting up to
    /// `empty_block_interval` for transactions.
    pub fn new(message_delay: Duration, empty_block_interval: Duration) -> EngineConfig {
        let pacing = BlockPacing::Ready { empty_after: Some(empty_block_interval) };
        EngineConfig::with_pacing(message_delay, pacing)
    }

    /// Timeouts for messages that arrive within about `message_delay`, with blocks built as
    /// `pacing` says. The proposal timeout covers a leader's wait, so that validators do not
    /// give up on a leader that is waiting for transactions.
    pub fn with_pacing(message_delay: Duration, pacing: BlockPacing) -> EngineConfig {
        let mut consensus = Config::for_message_delay(message_delay);
        consensus.timeout_propose = consensus.timeout_propose.saturating_add(pacing.longest_wait());
        let stall_timeout = consensus
            .timeout_propose
            .saturating_add(consensus.timeout_prevote)
            .saturating_add(consensus.timeout_precommit)
            .max(Duration::from_secs(2));
        EngineConfig { consensus, pacing, stall_timeout }
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
    /// Blocking work panicked.
    #[error(transparent)]
    Task(#[from] TaskFailed),
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

/// The answer to a block request: the peer, the first height asked, the items.
type SyncAnswer = (PeerId, u64, Result<Vec<Vec<u8>>, NetworkError>);

struct Engine<H: Host, N: Network> {
    chain: Arc<Chain>,
    host: H,
    network: N,
    config: EngineConfig,
    machine: Consensus,
    /// Distinguishes this node's repeated sendings (see [`Envelope`]).
    sending: u64,
    timers: Timers,
    next_tick: Duration,
    blocks: HeldBlocks,
    building: Option<PendingBuild>,
    /// The wait before the next try of a block that failed to build.
    build_retry: Duration,
    /// Block work (build, check, commit), run one at a time off the loop.
    jobs: Jobs,
    jobs_done: mpsc::Sender<Result<Done, TaskFailed>>,
    /// Internal inputs (verdicts, built blocks) waiting to be fed.
    queue: VecDeque<Input>,
    sync: SyncState,
    sync_answers: mpsc::Sender<SyncAnswer>,
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
pub async fn run<H: Host, N: Network>(
    chain: Arc<Chain>,
    host: H,
    network: N,
    mut events: mpsc::Receiver<NetworkEvent>,
    config: EngineConfig,
) -> Result<(), EngineError> {
    let key = match chain.validator() {
        Some(validator) => validator.key.clone(),
        // A follower's key signs nothing: it is in no validator set.
        None => crate::keys::generate(),
    };
    let machine = Consensus::new(config.consensus.clone(), chain.spec().chain_id, key);
    let transactions = transactions::spawn(Arc::clone(&chain), host.clone(), network.clone());
    let (sync_answers, mut answers) = mpsc::channel(1);
    let (jobs_done, mut done) = mpsc::channel(1);
    let now = host.now();
    let mut engine = Engine {
        machine,
        // Random, so that two nodes sending the same message (a certificate with the same
        // signatures, a forwarded vote) do not send the same bytes, which gossipsub would drop.
        sending: host.random(),
        timers: Timers::default(),
        next_tick: now.saturating_add(TICK),
        blocks: HeldBlocks::default(),
        building: None,
        build_retry: FIRST_BUILD_RETRY,
        jobs: Jobs::default(),
        jobs_done,
        queue: VecDeque::new(),
        sync: SyncState::new(chain.final_head().height, now, config.stall_timeout),
        sync_answers,
        last_round: (0, 0),
        signing: false,
        committed: false,
        pending_commit: None,
        transactions,
        chain,
        host,
        network,
        config,
    };
    engine.start_height(true).await?;
    loop {
        engine.start_job();
        // A commit ends the height: until it is done, nothing that belongs to the next is taken.
        let open = !engine.jobs.committing();
        let tick = engine.host.sleep_until(engine.next_tick);
        let timer = sleep_until(&engine.host, engine.timers.next());
        let build =
            pacing::build_ready(engine.host.clone(), Arc::clone(&engine.chain), engine.building);
        // In a fixed order, so that the same inputs give the same steps (tokio would otherwise
        // pick among ready branches at random): the rare branches first, network events last,
        // so that a flood of gossip cannot hold back timers, block work or sync.
        tokio::select! {
            biased;
            () = tick => engine.on_tick(),
            Some(done) = done.recv() => engine.on_job_done(done).await?,
            () = timer, if open => engine.fire_timers().await?,
            () = build, if open => engine.build(),
            Some(answer) = answers.recv(), if open => engine.on_sync_answer(answer).await?,
            event = events.recv(), if open => match event {
                Some(event) => engine.on_network(event).await?,
                None => return Err(EngineError::NetworkClosed),
            },
        }
    }
}

/// Resolves at `at`, or never.
pub(crate) fn sleep_until<H: Host>(
    host: &H,
    at: Option<Duration>,
) -> impl Future<Output = ()> + use<H> {
    let sleep = at.map(|at| host.sleep_until(at));
    async move {
        match sleep {
            Some(sleep) => sleep.await,
            None => std::future::pending().await,
        }
    }
}

/// Runs blocking chain work on the host's blocking pool.
fn blocking<H: Host, T: Send + 'static, W: FnOnce() -> T + Send + 'static>(
    host: &H,
    work: W,
) -> impl Future<Output = Result<T, EngineError>> + use<H, T, W> {
    let task = host.run_blocking(work);
    async move { Ok(task.await?) }
}

/// The messages this validator signed for `height` and the blocks it proposed with them, from
/// the chain store's consensus log.
fn restore_log(
    chain: &Chain,
    height: Height,
) -> Result<(Vec<SignedMessage>, Vec<Block>), ChainError> {
    let corrupt = |what: &str, e: parity_scale_codec::Error| {
        ChainError::Corrupt(format!("a persisted {what}: {e}"))
    };
    let mut messages = Vec::new();
    for bytes in chain.store().persisted_messages(height).map_err(ChainError::from)? {
        messages.push(SignedMessage::decode(&mut &bytes[..]).map_err(|e| corrupt("message", e))?);
    }
    let mut blocks = Vec::new();
    for bytes in chain.store().persisted_blocks(height).map_err(ChainError::from)? {
        blocks.push(Block::decode(&mut &bytes[..]).map_err(|e| corrupt("proposed block", e))?);
    }
    Ok((messages, blocks))
}

impl<H: Host, N: Network> Engine<H, N> {
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
        let (height, validators, seed, (restored, proposed)) = blocking(&self.host, move || {
            let height = chain.head().height.saturating_add(1);
            let validators = chain.validator_set_for(height)?;
            let seed = chain.leader_seed_for(height)?;
            let restored = if restore { restore_log(&chain, height)? } else { Default::default() };
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
        self.blocks.start_height(height);
        for block in proposed {
            self.blocks.hold(block);
        }
        self.jobs.start_height(height);
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
            self.blocks.hold(block);
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

    /// Feeds one input from this node (a timeout, a built block), then the internal inputs it
    /// leads to; the machine's refusal is logged.
    async fn feed(&mut self, input: Input, what: &'static str) -> Result<(), EngineError> {
        match self.accept(input, None) {
            Ok(actions) => self.act(actions).await,
            Err(error) => {
                debug!(target: TARGET, %error, "{what} refused");
                Ok(())
            }
        }
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

    async fn perform(&mut self, actions: Vec<Action>) -> Result<(), EngineError> {
        for action in actions {
            match action {
                Action::Persist(message) => self.persist(&message).await?,
                Action::Broadcast(message) => self.broadcast(message).await,
                Action::ScheduleTimeout { timeout, after } => {
                    self.timers.set(self.host.now(), timeout, after);
                }
                Action::BuildBlock { height, round } => {
                    let parent_ms = self.chain.head().timestamp_ms;
                    let (now, wall_ms) = (self.host.now(), self.host.wall_ms());
                    let pacing = self.config.pacing;
                    let build = PendingBuild::new(pacing, (height, round), now, parent_ms, wall_ms);
                    self.building = Some(build);
                }
                Action::CheckBlock { height, block_hash, .. } => self.check(height, block_hash),
                Action::Commit(certificate) => self.commit(certificate),
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

    /// Persists a message this node signed, with the block if it is a proposal, before it is
    /// sent.
    async fn persist(&mut self, message: &SignedMessage) -> Result<(), EngineError> {
        let chain = Arc::clone(&self.chain);
        let (height, round, step) = (message.height(), message.round(), message.step() as u8);
        let bytes = message.encode();
        let block = match message {
            SignedMessage::Proposal(p) => {
                self.blocks.get(&p.proposal.block_hash).map(Encode::encode)
            }
            SignedMessage::Vote(_) => None,
        };
        blocking(&self.host, move || {
            chain.store().persist_message(height, round, step, &bytes, block.as_deref())
        })
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
            Ok(()) => {}
            Err(NetworkError::NoPeers) => debug!(target: TARGET, ?topic, "no peers to send to"),
            Err(error) => warn!(target: TARGET, ?topic, %error, "cannot publish"),
        }
    }

    async fn fire_timers(&mut self) -> Result<(), EngineError> {
        let now = self.host.now();
        while let Some(timeout) = self.timers.pop_due(now) {
            if timeout.height >= self.height() {
                self.feed(Input::Timeout(timeout), "timeout").await?;
            }
        }
        Ok(())
    }

    fn on_tick(&mut self) {
        let now = self.host.now();
        self.next_tick = now.saturating_add(TICK);
        let request = self.sync.tick(now, self.chain.head().height);
        self.send_request(request);
        self.report_status();
    }

    fn refresh_peers(&self) {
        let peers = self.network.peers();
        let chain = Arc::clone(&self.chain);
        self.host.spawn(async move {
            if let Ok(peers) = peers.await {
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
            signing: self.signing,
        });
        self.chain.status().set_sync(self.sync.status(self.chain.head().height));
    }
}
