//! The event loop: nodes, their hosts, the network, and the invariant checks.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::time::Duration;

use altan_primitives::{
    Balance, Certificate, ChainId, Evidence, Hash, Height, Proposal, PublicKey, SecretKey,
    Signature, SignatureError, SignedVote, Validator, ValidatorSet, Vote, blake3, blake3_tagged,
};
use parity_scale_codec::Encode;

use super::{Behaviour, Rng, Scenario};
use crate::{
    Action, Consensus, Input, InputError, LeaderSchedule, NewHeight, RoundStep, SignedMessage,
    Step, Timeout, TimeoutKind, Verifier,
};

/// The simulated chain's id.
const CHAIN_ID: ChainId = 0x5151;

/// How long a run may go on after the last fault before it is declared stuck.
const HARD_LIMIT_AFTER_HEAL: u64 = 600_000_000;
/// How long a run with 1/3 of stake or more byzantine goes on after the last fault: such a
/// coalition can halt the chain, so the run only looks for forks.
const ATTACK_RUN_AFTER_HEAL: u64 = 20_000_000;

/// How a run is observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep a line for every event in [`Report::log`] (and in a [`Violation`]).
    pub verbose: bool,
}

/// A shared memo of signature recoveries. Recovery is a pure function of the prehash and the
/// signature, so remembering its result changes no answer; it only saves the simulated
/// validators from recovering the same message once each.
#[derive(Clone, Default)]
pub struct SharedMemo(Rc<RefCell<Recoveries>>);

/// Recovered keys by (prehash, signature).
type Recoveries = BTreeMap<(Hash, [u8; 65]), Result<PublicKey, SignatureError>>;

impl SharedMemo {
    /// How many distinct signatures were recovered.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    /// Whether nothing was recovered yet.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }
}

impl Verifier for SharedMemo {
    fn recover(&self, prehash: &Hash, signature: &Signature) -> Result<PublicKey, SignatureError> {
        let key = (*prehash, signature.0);
        if let Some(result) = self.0.borrow().get(&key) {
            return *result;
        }
        let result = signature.recover_public_key(prehash);
        self.0.borrow_mut().insert(key, result);
        result
    }
}

/// A validator finalized a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    /// The node.
    pub node: usize,
    /// The height.
    pub height: Height,
    /// The round of its certificate.
    pub round: u32,
    /// The block.
    pub block: Hash,
    /// When (µs of virtual time).
    pub time: u64,
}

/// A leader sent its proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProposalRecord {
    /// The leader.
    pub node: usize,
    /// The height.
    pub height: Height,
    /// The round.
    pub round: u32,
    /// When it was first broadcast (µs of virtual time).
    pub time: u64,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// A digest of every event in order: equal for equal seeds.
    pub trace: u64,
    /// Each node's last final height.
    pub heights: Vec<Height>,
    /// Every commit by an honest node, in order.
    pub commits: Vec<CommitRecord>,
    /// Every first broadcast of a proposal by an honest leader.
    pub proposals: Vec<ProposalRecord>,
    /// Heights at which honest nodes finalized different blocks (only possible with 1/3 of
    /// stake or more byzantine).
    pub forks: BTreeSet<Height>,
    /// Validators that honest nodes reported with verified evidence.
    pub offenders: BTreeSet<usize>,
    /// Byzantine validators that sent conflicting messages.
    pub equivocators: BTreeSet<usize>,
    /// Validators convicted by evidence found in everything honest nodes received.
    pub forensic_offenders: BTreeSet<usize>,
    /// Messages handed to machines.
    pub deliveries: u64,
    /// Distinct signatures recovered (the memo's size).
    pub recoveries: u64,
    /// Messages signed by honest validators.
    pub signed: u64,
    /// Signatures checked by `Certificate::verify`.
    pub certificate_signatures: u64,
    /// Inputs the machines refused.
    pub refused: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end (µs).
    pub end_time: u64,
    /// The event log, when [`Options::verbose`].
    pub log: Vec<String>,
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// An honest validator signed two different messages for one step.
    #[error(
        "node {node} signed two different messages at height {height}, round {round}, {step:?}"
    )]
    DoubleSign {
        /// The node.
        node: usize,
        /// The height.
        height: Height,
        /// The round.
        round: u32,
        /// The step.
        step: Step,
    },
    /// An honest validator broadcast a message it had not persisted.
    #[error(
        "node {node} broadcast a message it had not persisted (height {height}, round {round}, {step:?})"
    )]
    NotPersisted {
        /// The node.
        node: usize,
        /// The height.
        height: Height,
        /// The round.
        round: u32,
        /// The step.
        step: Step,
    },
    /// A finalized block's certificate does not verify.
    #[error("node {node} finalized height {height} with an invalid certificate: {error}")]
    InvalidCertificate {
        /// The node.
        node: usize,
        /// The height.
        height: Height,
        /// Why.
        error: String,
    },
    /// A machine committed a height other than the one after its host's last block.
    #[error("node {node} committed height {height} after {last}")]
    OutOfOrderCommit {
        /// The node.
        node: usize,
        /// The height committed.
        height: Height,
        /// The host's last height.
        last: Height,
    },
    /// Two honest validators finalized different blocks with less than 1/3 of stake byzantine.
    #[error(
        "fork at height {height}: node {first} finalized {first_block}, node {second} {second_block}"
    )]
    Fork {
        /// The height.
        height: Height,
        /// One node.
        first: usize,
        /// Its block.
        first_block: Hash,
        /// Another node.
        second: usize,
        /// Its block.
        second_block: Hash,
    },
    /// An honest validator reported evidence that does not verify, or that accuses an honest
    /// validator.
    #[error("node {node} reported bad evidence: {reason}")]
    BadEvidence {
        /// The node.
        node: usize,
        /// Why it is bad.
        reason: String,
    },
    /// An honest validator was given two conflicting messages and reported nothing.
    #[error(
        "node {node} accepted conflicting messages of validator {offender} at height {height}, round {round}, {step:?} without reporting them"
    )]
    MissedEvidence {
        /// The node.
        node: usize,
        /// The equivocator.
        offender: usize,
        /// The height.
        height: Height,
        /// The round.
        round: u32,
        /// The step.
        step: Step,
    },
    /// No new block became final within the bound after the network healed.
    #[error("node {node} did not finalize height {height} by {deadline} µs ({what})")]
    Liveness {
        /// A node that is behind.
        node: usize,
        /// The height it should have finalized.
        height: Height,
        /// The deadline.
        deadline: u64,
        /// Which check.
        what: &'static str,
    },
    /// A fork with too little evidence: less than 1/3 of stake convicted.
    #[error("fork at heights {heights:?} convicts only {convicted} of {total} stake")]
    Unaccountable {
        /// The forked heights.
        heights: Vec<Height>,
        /// The convicted stake.
        convicted: Balance,
        /// The total stake.
        total: Balance,
    },
}

struct Envelope {
    message: SignedMessage,
    id: Hash,
}

enum Event {
    Deliver { to: usize, from: usize, envelope: Rc<Envelope>, duplicate: bool },
    Certificate { to: usize, certificate: Rc<Certificate> },
    Timeout { node: usize, incarnation: u32, timeout: Timeout },
    Built { node: usize, incarnation: u32, height: Height, round: u32, block_hash: Hash },
    Verdict { node: usize, incarnation: u32, height: Height, block_hash: Hash, valid: bool },
    StartHeight { node: usize, incarnation: u32, height: Height },
    SyncCheck { node: usize, incarnation: u32, height: Height, peer: usize },
    Crash { crash: usize },
    Restart { node: usize },
    Heal,
    FirstBlockCheck { deadline: u64 },
    HeightCheck { height: Height, deadline: u64 },
}

struct Node {
    key: SecretKey,
    behaviour: Option<Behaviour>,
    machine: Option<Consensus<SharedMemo>>,
    incarnation: u32,
    /// Durable: the certificates of the final blocks, height `i + 1` at `i`.
    chain: Vec<Certificate>,
    /// Durable: the messages persisted for `own_height`.
    own_height: Height,
    own: Vec<SignedMessage>,
    /// In memory: the gossip layer's seen cache.
    seen: BTreeSet<Hash>,
    busy_until: u64,
    crash_after: Option<usize>,
    sync_pending: Option<Height>,
    /// In memory: the first message this node's machine accepted for each (signer, height,
    /// round, step), and the offences it reported, for the evidence check.
    accepted: BTreeMap<(u16, Height, u32, Step), Hash>,
    reported: BTreeSet<(u16, Height, u32, Step)>,
    blocks_built: u64,
}

struct World<'a> {
    scenario: &'a Scenario,
    options: Options,
    rng: Rng,
    now: u64,
    sequence: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    validators: ValidatorSet,
    index_of: BTreeMap<PublicKey, u16>,
    genesis: Hash,
    memo: SharedMemo,
    /// Every block built, and whether it executes.
    blocks: BTreeMap<Hash, bool>,
    /// Honest messages signed, by (node, height, round, step), for the double-sign check.
    signed: BTreeMap<(usize, Height, u32, Step), Hash>,
    /// The first honest commit of each height.
    finalized: BTreeMap<Height, (usize, Hash)>,
    verified_certificates: BTreeSet<Hash>,
    /// Blocks whose first certificate was checked by `Certificate::verify`.
    certified_blocks: BTreeSet<(Height, Hash)>,
    /// Every distinct message that reached an honest node, by (signer, height, round, step).
    observed: BTreeMap<(u16, Height, u32, Step), Vec<SignedMessage>>,
    observed_ids: BTreeSet<Hash>,
    heal_heights: Vec<Height>,
    /// Heights some honest node has started (a deadline is set for those first started after
    /// the heal).
    height_deadlines: BTreeSet<Height>,
    report: Report,
}

/// A run that broke an invariant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at {time} µs: {violation}")]
pub struct Failure {
    /// What broke.
    pub violation: Violation,
    /// When (µs of virtual time).
    pub time: u64,
    /// The event log up to then, when [`Options::verbose`].
    pub log: Vec<String>,
}

/// Runs a scenario to the end: until every honest node has finalized `scenario.heights`
/// heights, or an invariant breaks.
pub fn run(scenario: &Scenario, options: &Options) -> Result<Report, Box<Failure>> {
    let mut world = World::new(scenario, *options);
    if let Err(violation) = world.run() {
        return Err(Box::new(Failure { violation, time: world.now, log: world.report.log }));
    }
    let mut report = world.report;
    report.heights = world.nodes.iter().map(|n| n.chain.len() as Height).collect();
    report.end_time = world.now;
    report.recoveries = world.memo.len() as u64;
    Ok(report)
}

/// The time within which a height that every honest node has started must be final: the
/// durations of all rounds from 0 up to the second round, from `from_round` on, whose leader is
/// honest (every timeout of those rounds, plus six message delays and the block work each),
/// plus the time a node left behind needs to fetch a certificate and the time a message lost
/// before the heal needs to be sent again.
pub fn liveness_bound(
    scenario: &Scenario,
    leaders: &LeaderSchedule,
    height: Height,
    from_round: u32,
) -> u64 {
    let network = &scenario.network;
    let config = &scenario.config;
    let mut round = from_round;
    let mut honest = 0;
    loop {
        if !scenario.byzantine.contains_key(&usize::from(leaders.leader(height, round))) {
            honest += 1;
            if honest == 2 {
                break;
            }
        }
        round += 1;
    }
    let rounds: u64 = (0..=round)
        .map(|r| {
            micros(config.timeout(TimeoutKind::Propose, r))
                + micros(config.timeout(TimeoutKind::Prevote, r))
                + micros(config.timeout(TimeoutKind::Precommit, r))
                + 6 * network.max_delay
                + network.build_delay
                + network.check_delay
        })
        .sum();
    let catch_up = sync_delay(scenario) + 2 * network.max_delay + network.apply_delay;
    let resend = micros(config.timeout(TimeoutKind::Rebroadcast, round)) + network.max_delay;
    let work = (scenario.stakes.len() as u64 * 4 + 8)
        * (network.verify_cost + network.sign_cost)
        * (u64::from(round) + 1);
    rounds + catch_up + resend + work
}

/// The checks of `Certificate::verify`, with signatures recovered through `verifier`.
fn verify_with(
    certificate: &Certificate,
    set: &ValidatorSet,
    verifier: &impl Verifier,
) -> Result<(), String> {
    let prehash = certificate.precommit(CHAIN_ID).signing_hash();
    let mut signed: Balance = 0;
    let mut previous: Option<u16> = None;
    for commit in &certificate.signatures {
        let index = commit.validator_index;
        if previous.is_some_and(|p| p >= index) {
            return Err(format!("validator indices are not increasing at {index}"));
        }
        previous = Some(index);
        let validator = set
            .validators
            .get(usize::from(index))
            .ok_or_else(|| format!("validator index {index} is outside the set"))?;
        if verifier.recover(&prehash, &commit.signature) != Ok(validator.consensus_key) {
            return Err(format!("signature of validator {index} is invalid"));
        }
        signed += validator.power;
    }
    if set.is_supermajority(signed) {
        Ok(())
    } else {
        Err(format!("signers hold {signed} of {}", set.total_power()))
    }
}

fn sync_delay(scenario: &Scenario) -> u64 {
    3 * scenario.network.max_delay + scenario.network.apply_delay
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The conflicting twin of a block: also valid, so honest validators that see only the twin
/// accept it.
fn twin(block: Hash) -> Hash {
    blake3_tagged(b"altan/sim/twin", &[block.as_bytes()])
}

fn mix(trace: u64, value: u64) -> u64 {
    let mut z = (trace ^ value).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn short(hash: &Hash) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(bytes)
}

fn describe(message: &SignedMessage) -> String {
    match message {
        SignedMessage::Proposal(p) => format!(
            "proposal h{} r{} {} pol {:?}",
            p.proposal.height,
            p.proposal.round,
            &p.proposal.block_hash.to_string()[..10],
            p.proposal.pol_round
        ),
        SignedMessage::Vote(v) => format!(
            "{:?} h{} r{} {}",
            v.vote.kind,
            v.vote.height,
            v.vote.round,
            v.vote.block_hash.map_or(String::from("nil"), |h| h.to_string()[..10].into())
        ),
    }
}

impl<'a> World<'a> {
    fn new(scenario: &'a Scenario, options: Options) -> World<'a> {
        let mut rng = Rng::new(scenario.seed);
        let keys: Vec<SecretKey> = (0..scenario.stakes.len())
            .map(|i| {
                let seed = blake3_tagged(b"altan/sim/key", &[&(i as u64).to_le_bytes()]);
                SecretKey::from_bytes(seed.as_bytes()).expect("a blake3 output is a valid key")
            })
            .collect();
        let validators = ValidatorSet {
            validators: keys
                .iter()
                .zip(&scenario.stakes)
                .map(|(key, &power)| Validator {
                    address: key.address(),
                    consensus_key: key.public_key(),
                    power,
                })
                .collect(),
        };
        let index_of =
            validators.validators.iter().zip(0u16..).map(|(v, i)| (v.consensus_key, i)).collect();
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| Node {
                key,
                behaviour: scenario.byzantine.get(&i).cloned(),
                machine: None,
                incarnation: 0,
                chain: Vec::new(),
                own_height: 0,
                own: Vec::new(),
                seen: BTreeSet::new(),
                busy_until: 0,
                crash_after: None,
                sync_pending: None,
                accepted: BTreeMap::new(),
                reported: BTreeSet::new(),
                blocks_built: 0,
            })
            .collect();
        World {
            scenario,
            options,
            genesis: blake3_tagged(b"altan/sim/genesis", &[&scenario.seed.to_le_bytes()]),
            rng: rng.fork(),
            now: 0,
            sequence: 0,
            queue: BTreeMap::new(),
            nodes,
            validators,
            index_of,
            memo: SharedMemo::default(),
            blocks: BTreeMap::new(),
            signed: BTreeMap::new(),
            finalized: BTreeMap::new(),
            verified_certificates: BTreeSet::new(),
            certified_blocks: BTreeSet::new(),
            observed: BTreeMap::new(),
            observed_ids: BTreeSet::new(),
            heal_heights: Vec::new(),
            height_deadlines: BTreeSet::new(),
            report: Report::default(),
        }
    }

    fn is_honest(&self, node: usize) -> bool {
        self.nodes[node].behaviour.is_none()
    }

    fn push(&mut self, at: u64, event: Event) {
        self.sequence += 1;
        self.queue.insert((at, self.sequence), event);
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if self.options.verbose {
            let line = format!("{:>12.3} ms  {}", self.now as f64 / 1_000.0, line());
            self.report.log.push(line);
        }
    }

    fn run(&mut self) -> Result<(), Violation> {
        for node in 0..self.nodes.len() {
            self.boot(node)?;
        }
        for (crash, spec) in self.scenario.crashes.iter().enumerate() {
            self.push(spec.at, Event::Crash { crash });
            self.push(spec.restart_at, Event::Restart { node: spec.node });
        }
        let heal = self.scenario.heal_time();
        self.push(heal, Event::Heal);
        let limit = heal
            + if self.scenario.is_within_fault_bound() {
                HARD_LIMIT_AFTER_HEAL
            } else {
                ATTACK_RUN_AFTER_HEAL
            };
        while let Some(((at, _), event)) = self.queue.pop_first() {
            self.now = at;
            self.report.events += 1;
            if self.all_done() {
                break;
            }
            if at > limit {
                if self.scenario.is_within_fault_bound() {
                    let node = self.lagging_node();
                    let height = self.nodes[node].chain.len() as Height + 1;
                    return Err(Violation::Liveness {
                        node,
                        height,
                        deadline: limit,
                        what: "hard limit",
                    });
                }
                break;
            }
            self.event(event)?;
        }
        self.final_checks()
    }

    fn all_done(&self) -> bool {
        let target = self.scenario.heights as usize;
        (0..self.nodes.len()).all(|i| !self.is_honest(i) || self.nodes[i].chain.len() >= target)
    }

    fn lagging_node(&self) -> usize {
        (0..self.nodes.len())
            .filter(|&i| self.is_honest(i))
            .min_by_key(|&i| self.nodes[i].chain.len())
            .unwrap_or(0)
    }

    fn boot(&mut self, node: usize) -> Result<(), Violation> {
        let machine = Consensus::with_verifier(
            self.scenario.config.clone(),
            CHAIN_ID,
            self.nodes[node].key.clone(),
            self.memo.clone(),
        );
        let n = &mut self.nodes[node];
        n.machine = Some(machine);
        let height = n.chain.len() as Height + 1;
        let restored = if n.own_height == height { n.own.clone() } else { Vec::new() };
        let restored_count = restored.len();
        self.log(|| format!("node {node} boots at height {height} with {restored_count} restored"));
        let new = NewHeight {
            height,
            validators: self.validators.clone(),
            seed: self.seed_for(node, height),
            restored,
        };
        self.input(node, Input::StartHeight(new), 0)
    }

    fn seed_for(&self, node: usize, height: Height) -> Hash {
        let epoch = (height - 1) / self.scenario.epoch_length;
        if epoch == 0 {
            self.genesis
        } else {
            let last = (epoch * self.scenario.epoch_length) as usize;
            self.nodes[node].chain[last - 1].block_hash
        }
    }

    fn event(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Deliver { to, from, envelope, duplicate } => {
                self.deliver(to, from, &envelope, duplicate)?
            }
            Event::Certificate { to, certificate } => {
                if self.nodes[to].machine.is_some() {
                    self.report.trace = mix(self.report.trace, 0xce57 ^ to as u64);
                    let height = certificate.height;
                    self.log(|| format!("node {to} <- certificate for height {height}"));
                    self.input(to, Input::Certificate((*certificate).clone()), 0)?;
                }
            }
            Event::Timeout { node, incarnation, timeout } => {
                if self.alive(node, incarnation) {
                    self.report.trace =
                        mix(self.report.trace, (node as u64) << 32 | u64::from(timeout.round));
                    self.log(|| format!("node {node} timeout {timeout:?}"));
                    self.input(node, Input::Timeout(timeout), 0)?;
                }
            }
            Event::Built { node, incarnation, height, round, block_hash } => {
                if self.alive(node, incarnation) {
                    self.report.trace = mix(self.report.trace, short(&block_hash));
                    let input = Input::BlockBuilt { height, round, block_hash };
                    self.input(node, input, 0)?;
                }
            }
            Event::Verdict { node, incarnation, height, block_hash, valid } => {
                if self.alive(node, incarnation) {
                    self.report.trace = mix(self.report.trace, short(&block_hash) ^ node as u64);
                    let input = Input::BlockVerdict { height, block_hash, valid };
                    self.input(node, input, 0)?;
                }
            }
            Event::StartHeight { node, incarnation, height } => {
                if self.alive(node, incarnation) {
                    self.start_height(node, height)?;
                }
            }
            Event::SyncCheck { node, incarnation, height, peer } => {
                if self.alive(node, incarnation) {
                    self.sync_check(node, height, peer);
                }
            }
            Event::Crash { crash } => {
                let spec = &self.scenario.crashes[crash];
                let node = spec.node;
                if self.nodes[node].machine.is_some() {
                    match spec.after_actions {
                        Some(after) => self.nodes[node].crash_after = Some(after),
                        None => self.crash(node),
                    }
                }
            }
            Event::Restart { node } => {
                if self.nodes[node].machine.is_some() {
                    self.crash(node);
                }
                self.boot(node)?;
            }
            Event::Heal => self.heal(),
            Event::FirstBlockCheck { deadline } => {
                for node in 0..self.nodes.len() {
                    if self.is_honest(node)
                        && self.nodes[node].chain.len() as Height <= self.heal_heights[node]
                    {
                        return Err(Violation::Liveness {
                            node,
                            height: self.heal_heights[node] + 1,
                            deadline,
                            what: "first block after the heal",
                        });
                    }
                }
            }
            Event::HeightCheck { height, deadline } => {
                for node in 0..self.nodes.len() {
                    if self.is_honest(node) && (self.nodes[node].chain.len() as Height) < height {
                        return Err(Violation::Liveness {
                            node,
                            height,
                            deadline,
                            what: "height started after the heal",
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn alive(&self, node: usize, incarnation: u32) -> bool {
        let n = &self.nodes[node];
        n.machine.is_some() && n.incarnation == incarnation
    }

    fn crash(&mut self, node: usize) {
        self.log(|| format!("node {node} crashes"));
        self.report.trace = mix(self.report.trace, 0xdead ^ node as u64);
        let n = &mut self.nodes[node];
        n.machine = None;
        n.incarnation += 1;
        n.seen.clear();
        n.accepted.clear();
        n.reported.clear();
        n.busy_until = 0;
        n.crash_after = None;
        n.sync_pending = None;
    }

    /// At the heal, the first-block check is armed: every honest node must finalize a block
    /// within the bound computed from the highest round any honest node is in.
    fn heal(&mut self) {
        self.log(|| String::from("heal: the last fault ends"));
        for node in 0..self.nodes.len() {
            if self.is_honest(node)
                && let Some(status) = self.nodes[node].machine.as_ref().and_then(|m| m.status())
            {
                self.height_deadlines.insert(status.height);
            }
        }
        self.heal_heights = self.nodes.iter().map(|n| n.chain.len() as Height).collect();
        if !self.scenario.is_within_fault_bound() {
            return;
        }
        let mut bound = 0;
        let highest_round = self
            .nodes
            .iter()
            .filter_map(|n| n.machine.as_ref().and_then(|m| m.status()))
            .map(|s| s.round)
            .max()
            .unwrap_or(0);
        for node in 0..self.nodes.len() {
            if !self.is_honest(node) {
                continue;
            }
            let Some(machine) = &self.nodes[node].machine else { continue };
            let (Some(status), Some(leaders)) = (machine.status(), machine.leaders()) else {
                continue;
            };
            // The node's height and the next: nodes left behind join the next one by sync.
            for height in [status.height, status.height + 1] {
                let next_leaders;
                let schedule = if height == status.height {
                    leaders
                } else {
                    let seed = if (height - 1) % self.scenario.epoch_length == 0 {
                        // The seed of a new epoch is not known yet: any schedule is as likely.
                        blake3(&height.to_le_bytes())
                    } else {
                        leaders.seed()
                    };
                    next_leaders =
                        LeaderSchedule::new(&self.validators, seed).expect("the set is valid");
                    &next_leaders
                };
                bound = bound.max(liveness_bound(self.scenario, schedule, height, highest_round));
            }
        }
        let deadline = self.now + bound;
        self.push(deadline, Event::FirstBlockCheck { deadline });
    }

    fn start_height(&mut self, node: usize, height: Height) -> Result<(), Violation> {
        {
            let n = &mut self.nodes[node];
            if n.own_height != height {
                n.own.clear();
                n.own_height = height;
            }
            n.sync_pending = None;
        }
        let new = NewHeight {
            height,
            validators: self.validators.clone(),
            seed: self.seed_for(node, height),
            restored: Vec::new(),
        };
        let seed = new.seed;
        self.log(|| format!("node {node} starts height {height}"));
        self.input(node, Input::StartHeight(new), 0)?;
        // A height that the first honest node starts after the heal has a deadline. (Heights
        // already under way at the heal are covered by the first-block check.)
        if self.is_honest(node)
            && self.height_deadlines.insert(height)
            && self.scenario.is_within_fault_bound()
            && !self.heal_heights.is_empty()
            && height <= self.scenario.heights
        {
            let leaders = LeaderSchedule::new(&self.validators, seed).expect("the set is valid");
            let deadline = self.now + liveness_bound(self.scenario, &leaders, height, 0);
            self.push(deadline, Event::HeightCheck { height, deadline });
        }
        Ok(())
    }

    fn sync_check(&mut self, node: usize, height: Height, peer: usize) {
        self.nodes[node].sync_pending = None;
        let behind = self.nodes[node]
            .machine
            .as_ref()
            .and_then(|m| m.status())
            .is_some_and(|s| s.height == height && s.step != RoundStep::Decided);
        if !behind {
            return;
        }
        let Some(certificate) = self.nodes[peer].chain.get(height as usize - 1).cloned() else {
            return;
        };
        if self.cut(peer, node) || self.lost() {
            return;
        }
        let delay = self.delay();
        self.log(|| format!("node {node} fetches height {height} from node {peer}"));
        let at = self.now + delay;
        self.push(at, Event::Certificate { to: node, certificate: Rc::new(certificate) });
    }

    fn deliver(
        &mut self,
        to: usize,
        from: usize,
        envelope: &Rc<Envelope>,
        duplicate: bool,
    ) -> Result<(), Violation> {
        let Some(status) = self.nodes[to].machine.as_ref().and_then(|m| m.status()) else {
            return Ok(());
        };
        // A message of a later height, even one seen before, shows that the sender is ahead: if
        // this node is still behind after a while, it fetches the certificate of its height from
        // the sender (as block sync would).
        if envelope.message.height() > status.height
            && self.nodes[to].sync_pending != Some(status.height)
        {
            self.nodes[to].sync_pending = Some(status.height);
            let incarnation = self.nodes[to].incarnation;
            let at = self.now + sync_delay(self.scenario);
            self.push(
                at,
                Event::SyncCheck { node: to, incarnation, height: status.height, peer: from },
            );
        }
        if !self.nodes[to].seen.insert(envelope.id) && !duplicate {
            return Ok(());
        }
        self.report.deliveries += 1;
        self.report.trace = mix(self.report.trace, short(&envelope.id) ^ (to as u64) << 56);
        let message = &envelope.message;
        self.log(|| format!("node {to} <- node {from}: {}", describe(message)));

        let signer = self.signer(message);
        let honest = self.is_honest(to);
        if honest
            && let Some(signer) = signer
            && self.observed_ids.insert(envelope.id)
        {
            let key = (signer, message.height(), message.round(), message.step());
            let seen = self.observed.entry(key).or_default();
            if !seen.contains(message) {
                seen.push(message.clone());
            }
        }

        let input = match message {
            SignedMessage::Proposal(p) => Input::Proposal(p.clone()),
            SignedMessage::Vote(v) => Input::Vote(v.clone()),
        };
        let cost = self.scenario.network.verify_cost;
        let result = self.handle(to, input, cost);
        match result {
            Ok((actions, at)) => {
                if honest
                    && let Some(signer) = signer
                    && message.height() <= status.height
                {
                    self.check_evidence(to, signer, envelope, &actions)?;
                }
                self.perform(to, actions, at)?;
                if honest && self.scenario.network.relay {
                    for peer in 0..self.nodes.len() {
                        if peer != to && peer != from {
                            self.send(to, peer, envelope, at);
                        }
                    }
                }
            }
            Err(error) => {
                self.report.refused += 1;
                self.log(|| format!("node {to} refuses: {error}"));
            }
        }
        Ok(())
    }

    /// An honest machine that accepted a message conflicting with one it accepted before for
    /// the same step must have reported it (now or earlier).
    fn check_evidence(
        &mut self,
        node: usize,
        signer: u16,
        envelope: &Envelope,
        actions: &[Action],
    ) -> Result<(), Violation> {
        let message = &envelope.message;
        let key = (signer, message.height(), message.round(), message.step());
        for action in actions {
            if let Action::ReportEvidence(evidence) = action
                && let Ok(offence) = evidence.offence()
                && let Some(&offender) = self.index_of.get(&offence.offender)
            {
                let step = offence.step.map_or(Step::Propose, Step::from);
                self.nodes[node].reported.insert((offender, offence.height, offence.round, step));
            }
        }
        let n = &mut self.nodes[node];
        match n.accepted.get(&key) {
            None => {
                n.accepted.insert(key, envelope.id);
            }
            Some(first) if *first != envelope.id && !n.reported.contains(&key) => {
                return Err(Violation::MissedEvidence {
                    node,
                    offender: usize::from(signer),
                    height: key.1,
                    round: key.2,
                    step: key.3,
                });
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Feeds an input at the current time (or when the node is free) and performs the actions.
    fn input(&mut self, node: usize, input: Input, cost: u64) -> Result<(), Violation> {
        match self.handle(node, input, cost) {
            Ok((actions, at)) => self.perform(node, actions, at),
            Err(error) => {
                self.report.refused += 1;
                self.log(|| format!("node {node} refuses: {error}"));
                Ok(())
            }
        }
    }

    fn handle(
        &mut self,
        node: usize,
        input: Input,
        cost: u64,
    ) -> Result<(Vec<Action>, u64), InputError> {
        let n = &mut self.nodes[node];
        let Some(machine) = n.machine.as_mut() else { return Ok((Vec::new(), self.now)) };
        let actions = machine.handle(input)?;
        let signed = actions.iter().filter(|a| matches!(a, Action::Persist(_))).count() as u64;
        let start = n.busy_until.max(self.now);
        let done = start + cost + signed * self.scenario.network.sign_cost;
        n.busy_until = done;
        Ok((actions, done))
    }

    fn perform(&mut self, node: usize, actions: Vec<Action>, at: u64) -> Result<(), Violation> {
        let crash_after = if actions.is_empty() { None } else { self.nodes[node].crash_after };
        for (done, action) in actions.into_iter().enumerate() {
            if crash_after == Some(done) {
                self.crash(node);
                return Ok(());
            }
            self.action(node, action, at)?;
            if self.nodes[node].machine.is_none() {
                return Ok(());
            }
        }
        if crash_after.is_some() {
            self.crash(node);
        }
        Ok(())
    }

    fn action(&mut self, node: usize, action: Action, at: u64) -> Result<(), Violation> {
        let incarnation = self.nodes[node].incarnation;
        match action {
            Action::Persist(message) => {
                self.report.signed += 1;
                self.report.trace = mix(self.report.trace, 0x9e55 ^ node as u64);
                let n = &mut self.nodes[node];
                if n.own_height != message.height() {
                    n.own.clear();
                    n.own_height = message.height();
                }
                n.own.push(message);
            }
            Action::Broadcast(message) => self.broadcast(node, message, at)?,
            Action::ScheduleTimeout { timeout, after } => {
                self.push(at + micros(after), Event::Timeout { node, incarnation, timeout });
            }
            Action::BuildBlock { height, round } => {
                let n = &mut self.nodes[node];
                n.blocks_built += 1;
                let block_hash = blake3_tagged(
                    b"altan/sim/block",
                    &[
                        &self.scenario.seed.to_le_bytes(),
                        &(node as u64).to_le_bytes(),
                        &n.blocks_built.to_le_bytes(),
                        &height.to_le_bytes(),
                    ],
                );
                let valid = !n.behaviour.as_ref().is_some_and(|b| b.invalid_proposals);
                self.blocks.insert(block_hash, valid);
                self.log(|| {
                    format!(
                        "node {node} builds {} (h{height} r{round})",
                        &block_hash.to_string()[..10]
                    )
                });
                let when = at + self.scenario.network.build_delay;
                self.push(when, Event::Built { node, incarnation, height, round, block_hash });
            }
            Action::CheckBlock { height, block_hash, .. } => {
                let valid = self.blocks.get(&block_hash).copied().unwrap_or(false);
                let when = at + self.scenario.network.check_delay;
                self.push(when, Event::Verdict { node, incarnation, height, block_hash, valid });
            }
            Action::Commit(certificate) => self.commit(node, certificate, at)?,
            Action::ReportEvidence(evidence) => self.evidence(node, &evidence)?,
        }
        Ok(())
    }

    fn commit(&mut self, node: usize, certificate: Certificate, at: u64) -> Result<(), Violation> {
        let height = certificate.height;
        let last = self.nodes[node].chain.len() as Height;
        if height != last + 1 {
            return Err(Violation::OutOfOrderCommit { node, height, last });
        }
        // The first certificate of each block is checked by `Certificate::verify` itself; other
        // certificates of the same block (other subsets of its precommits) by the same checks
        // through the signature memo, which gives the same answers faster.
        let id = blake3(&certificate.encode());
        if self.verified_certificates.insert(id) {
            let result = if self.certified_blocks.insert((height, certificate.block_hash)) {
                self.report.certificate_signatures += certificate.signatures.len() as u64;
                certificate.verify(CHAIN_ID, &self.validators).map_err(|e| e.to_string())
            } else {
                verify_with(&certificate, &self.validators, &self.memo)
            };
            result.map_err(|error| Violation::InvalidCertificate { node, height, error })?;
        }
        let block = certificate.block_hash;
        self.report.trace = mix(self.report.trace, short(&block) ^ height);
        self.log(|| {
            format!(
                "node {node} COMMITS height {height}: {} (round {})",
                &block.to_string()[..10],
                certificate.round
            )
        });
        if self.is_honest(node) {
            self.report.commits.push(CommitRecord {
                node,
                height,
                round: certificate.round,
                block,
                time: at,
            });
            match self.finalized.get(&height) {
                None => {
                    self.finalized.insert(height, (node, block));
                }
                Some(&(first, first_block)) if first_block != block => {
                    if self.scenario.is_within_fault_bound() {
                        return Err(Violation::Fork {
                            height,
                            first,
                            first_block,
                            second: node,
                            second_block: block,
                        });
                    }
                    self.report.forks.insert(height);
                }
                Some(_) => {}
            }
            // The certificate's precommits are part of what honest nodes hold, for forensics.
            let precommit = certificate.precommit(CHAIN_ID);
            for signature in &certificate.signatures {
                let vote = SignedVote { vote: precommit.clone(), signature: signature.signature };
                let key = (signature.validator_index, height, certificate.round, Step::Precommit);
                let seen = self.observed.entry(key).or_default();
                let message = SignedMessage::Vote(vote);
                if !seen.contains(&message) {
                    seen.push(message);
                }
            }
        }
        let incarnation = self.nodes[node].incarnation;
        self.nodes[node].chain.push(certificate);
        let when = at + self.scenario.network.apply_delay;
        self.push(when, Event::StartHeight { node, incarnation, height: height + 1 });
        Ok(())
    }

    fn evidence(&mut self, node: usize, evidence: &Evidence) -> Result<(), Violation> {
        if !self.is_honest(node) {
            return Ok(());
        }
        let offence = evidence.offence().map_err(|error| Violation::BadEvidence {
            node,
            reason: format!("it does not verify: {error}"),
        })?;
        let offender = self.index_of.get(&offence.offender).copied();
        if let Some(offender) = offender {
            let step = offence.step.map_or(Step::Propose, Step::from);
            self.nodes[node].reported.insert((offender, offence.height, offence.round, step));
        }
        match offender.map(usize::from) {
            Some(offender) if !self.is_honest(offender) => {
                self.log(|| format!("node {node} reports evidence against {offender}"));
                self.report.offenders.insert(offender);
                Ok(())
            }
            _ => Err(Violation::BadEvidence {
                node,
                reason: format!("it accuses {}, who is honest", offence.offender),
            }),
        }
    }

    fn broadcast(&mut self, node: usize, message: SignedMessage, at: u64) -> Result<(), Violation> {
        let (height, round, step) = (message.height(), message.round(), message.step());
        let envelope = Rc::new(Envelope { id: blake3(&message.encode()), message });
        let own = self.signer(&envelope.message) == Some(node as u16);
        let Some(behaviour) = self.nodes[node].behaviour.clone() else {
            // Honest: what it signed is persisted first, and never two different messages for
            // one step. (It also forwards others' votes: the proof behind a re-proposal.)
            if !own {
                for peer in 0..self.nodes.len() {
                    self.send(node, peer, &envelope, at);
                }
                return Ok(());
            }
            if !self.nodes[node].own.contains(&envelope.message) {
                return Err(Violation::NotPersisted { node, height, round, step });
            }
            match self.signed.get(&(node, height, round, step)) {
                Some(id) if *id != envelope.id => {
                    return Err(Violation::DoubleSign { node, height, round, step });
                }
                Some(_) => {}
                None => {
                    self.signed.insert((node, height, round, step), envelope.id);
                    if step == Step::Propose {
                        self.report.proposals.push(ProposalRecord {
                            node,
                            height,
                            round,
                            time: at,
                        });
                    }
                }
            }
            self.log(|| format!("node {node} broadcasts {}", describe(&envelope.message)));
            for peer in 0..self.nodes.len() {
                self.send(node, peer, &envelope, at);
            }
            return Ok(());
        };
        if own {
            self.byzantine_broadcast(node, &behaviour, &envelope, at);
        } else if !behaviour.silent {
            for peer in 0..self.nodes.len() {
                self.send(node, peer, &envelope, at);
            }
        }
        Ok(())
    }

    /// The validator that signed a message, if any.
    fn signer(&self, message: &SignedMessage) -> Option<u16> {
        match message {
            SignedMessage::Proposal(p) => {
                self.memo.recover(&p.proposal.signing_hash(), &p.signature)
            }
            SignedMessage::Vote(v) => self.memo.recover(&v.vote.signing_hash(), &v.signature),
        }
        .ok()
        .and_then(|key| self.index_of.get(&key).copied())
    }

    fn byzantine_broadcast(
        &mut self,
        node: usize,
        behaviour: &Behaviour,
        envelope: &Rc<Envelope>,
        at: u64,
    ) {
        if behaviour.silent {
            return;
        }
        let key = self.nodes[node].key.clone();
        let twin_message = match &envelope.message {
            SignedMessage::Proposal(p) if behaviour.conflicting_proposals => {
                let block = twin(p.proposal.block_hash);
                let valid = self.blocks.get(&p.proposal.block_hash).copied().unwrap_or(false);
                self.blocks.insert(block, valid);
                let proposal = Proposal { block_hash: block, ..p.proposal.clone() };
                Some(SignedMessage::Proposal(proposal.sign(&key)))
            }
            SignedMessage::Vote(v) if behaviour.equivocate => {
                let block = twin(v.vote.block_hash.unwrap_or(Hash::ZERO));
                let vote = Vote { block_hash: Some(block), ..v.vote.clone() };
                Some(SignedMessage::Vote(vote.sign(&key)))
            }
            _ => None,
        };
        let is_vote = matches!(envelope.message, SignedMessage::Vote(_));
        match twin_message {
            Some(message) => {
                self.report.equivocators.insert(node);
                let twin = Rc::new(Envelope { id: blake3(&message.encode()), message });
                self.log(|| {
                    format!(
                        "node {node} (byzantine) equivocates: {} / {}",
                        describe(&envelope.message),
                        describe(&twin.message)
                    )
                });
                for peer in 0..self.nodes.len() {
                    let original = self.scenario.split[peer] || !self.is_honest(peer);
                    self.send(node, peer, if original { envelope } else { &twin }, at);
                }
            }
            None => {
                for peer in 0..self.nodes.len() {
                    if is_vote && behaviour.withhold_votes && self.rng.below(2) == 0 {
                        continue;
                    }
                    self.send(node, peer, envelope, at);
                }
            }
        }
        if behaviour.garbage && self.rng.chance(300) {
            let garbage = self.garbage(node, &envelope.message);
            let garbage = Rc::new(Envelope { id: blake3(&garbage.encode()), message: garbage });
            for peer in 0..self.nodes.len() {
                self.send(node, peer, &garbage, at);
            }
        }
    }

    /// A malformed message: a corrupted signature, another chain, a round far ahead, or a
    /// proposal out of turn.
    fn garbage(&mut self, node: usize, message: &SignedMessage) -> SignedMessage {
        let key = self.nodes[node].key.clone();
        let vote = |height, round| Vote {
            chain_id: CHAIN_ID,
            height,
            round,
            kind: altan_primitives::VoteKind::Prevote,
            block_hash: None,
        };
        let (height, round) = (message.height(), message.round());
        match self.rng.below(4) {
            0 => {
                let mut corrupted = message.clone();
                match &mut corrupted {
                    SignedMessage::Proposal(p) => p.signature.0[7] ^= 0x10,
                    SignedMessage::Vote(v) => v.signature.0[7] ^= 0x10,
                }
                corrupted
            }
            1 => SignedMessage::Vote(
                Vote { chain_id: CHAIN_ID + 1, ..vote(height, round) }.sign(&key),
            ),
            2 => SignedMessage::Vote(vote(height, round + 1_000).sign(&key)),
            _ => {
                let block_hash =
                    blake3_tagged(b"altan/sim/garbage", &[&self.rng.next_u64().to_le_bytes()]);
                let proposal =
                    Proposal { chain_id: CHAIN_ID, height, round, block_hash, pol_round: None };
                SignedMessage::Proposal(proposal.sign(&key))
            }
        }
    }

    fn cut(&self, from: usize, to: usize) -> bool {
        self.scenario.partitions.iter().any(|p| {
            p.from <= self.now
                && self.now < p.until
                && matches!((p.side[from], p.side[to]), (Some(a), Some(b)) if a != b)
        })
    }

    fn lost(&mut self) -> bool {
        let network = &self.scenario.network;
        self.now < network.lossy_until && self.rng.chance(network.drop_permille)
    }

    fn delay(&mut self) -> u64 {
        let network = &self.scenario.network;
        self.rng.between(network.min_delay, network.max_delay)
    }

    fn send(&mut self, from: usize, to: usize, envelope: &Rc<Envelope>, at: u64) {
        if from == to || self.cut(from, to) || self.lost() {
            return;
        }
        let delay = self.delay();
        let event = Event::Deliver { to, from, envelope: envelope.clone(), duplicate: false };
        self.push(at + delay, event);
        if self.rng.chance(self.scenario.network.duplicate_permille) {
            let delay = self.delay();
            let event = Event::Deliver { to, from, envelope: envelope.clone(), duplicate: true };
            self.push(at + delay, event);
        }
    }

    fn final_checks(&mut self) -> Result<(), Violation> {
        // Forensics: conflicting messages among everything honest nodes received.
        for messages in self.observed.values() {
            let [first, second, ..] = messages.as_slice() else { continue };
            let evidence = match (first, second) {
                (SignedMessage::Vote(a), SignedMessage::Vote(b)) => {
                    Evidence::duplicate_vote(a.clone(), b.clone())
                }
                (SignedMessage::Proposal(a), SignedMessage::Proposal(b)) => {
                    Evidence::duplicate_proposal(a.clone(), b.clone())
                }
                _ => continue,
            };
            if let Ok(offender) = evidence.verify()
                && let Some(&index) = self.index_of.get(&offender)
            {
                self.report.forensic_offenders.insert(usize::from(index));
            }
        }
        if let Some(&honest) = self.report.forensic_offenders.iter().find(|&&i| self.is_honest(i)) {
            return Err(Violation::BadEvidence {
                node: honest,
                reason: String::from("forensics convicts an honest validator"),
            });
        }
        if !self.report.forks.is_empty() {
            let convicted: Balance =
                self.report.forensic_offenders.iter().map(|&i| self.scenario.stakes[i]).sum();
            let total = self.scenario.total_stake();
            if 3 * convicted < total {
                return Err(Violation::Unaccountable {
                    heights: self.report.forks.iter().copied().collect(),
                    convicted,
                    total,
                });
            }
        }
        if self.scenario.is_within_fault_bound() && !self.all_done() {
            let node = self.lagging_node();
            return Err(Violation::Liveness {
                node,
                height: self.nodes[node].chain.len() as Height + 1,
                deadline: self.now,
                what: "the run ended",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use altan_primitives::CommitSignature;

    use super::*;

    /// The memoized certificate check agrees with `Certificate::verify` on valid certificates
    /// and on every way of breaking one.
    #[test]
    fn the_memoized_certificate_check_agrees_with_certificate_verify() {
        let keys: Vec<SecretKey> =
            (1u8..=5).map(|i| SecretKey::from_bytes(&[i; 32]).unwrap()).collect();
        let set = ValidatorSet {
            validators: keys
                .iter()
                .zip([10, 20, 30, 40, 1])
                .map(|(k, power)| Validator {
                    address: k.address(),
                    consensus_key: k.public_key(),
                    power,
                })
                .collect(),
        };
        let block = blake3(b"b");
        let certificate = |signers: &[u16]| {
            let mut c =
                Certificate { height: 3, round: 1, block_hash: block, signatures: Vec::new() };
            let precommit = c.precommit(CHAIN_ID);
            c.signatures = signers
                .iter()
                .map(|&i| CommitSignature {
                    validator_index: i,
                    signature: precommit.clone().sign(&keys[usize::from(i)]).signature,
                })
                .collect();
            c
        };
        let mut cases = vec![
            certificate(&[1, 2, 3]),
            certificate(&[0, 1, 2, 3, 4]),
            certificate(&[2, 3]),
            certificate(&[3, 2, 1]),
            certificate(&[1, 1, 2, 3]),
            certificate(&[]),
        ];
        let mut wrong_index = certificate(&[1, 2, 3]);
        wrong_index.signatures[0].validator_index = 4;
        cases.push(wrong_index);
        let mut outside = certificate(&[1, 2, 3]);
        outside.signatures[2].validator_index = 9;
        cases.push(outside);
        let mut corrupted = certificate(&[1, 2, 3]);
        corrupted.signatures[1].signature.0[3] ^= 1;
        cases.push(corrupted);
        let mut other_block = certificate(&[1, 2, 3]);
        other_block.block_hash = blake3(b"c");
        cases.push(other_block);
        let memo = SharedMemo::default();
        for (i, c) in cases.iter().enumerate() {
            assert_eq!(
                verify_with(c, &set, &memo).is_ok(),
                c.verify(CHAIN_ID, &set).is_ok(),
                "case {i}"
            );
        }
        assert!(verify_with(&cases[0], &set, &memo).is_ok(), "the memo changes no answer");
    }
}
