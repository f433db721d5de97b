//! The consensus state machine: Tendermint's algorithm as a transition function.
//!
//! The rule numbers in comments refer to the lines of Algorithm 1 in "The latest gossip on BFT
//! consensus" (Buchman, Kwon, Milosevic, 2018).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::mem;
use core::time::Duration;

use altan_primitives::{
    Balance, Certificate, ChainId, Evidence, Hash, Height, Proposal, PublicKey, SecretKey,
    SignedProposal, SignedVote, ValidatorSet, Vote, VoteKind,
};

use crate::votes::{Added, MAX_VALUES_PER_VOTER, RoundState};
use crate::{Config, InputError, LeaderSchedule, Recover, SignedMessage, Step, Verifier};

const TARGET: &str = "altan::consensus";

/// Which timeout fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeoutKind {
    /// Waiting for the round's proposal (rule 57).
    Propose,
    /// Waiting for prevotes after more than 2/3 of stake prevoted for different values (rule 61).
    Prevote,
    /// Waiting for precommits after more than 2/3 of stake precommitted for different values
    /// (rule 65): when it fires the next round starts.
    Precommit,
    /// Time to send this round's own messages again.
    Rebroadcast,
}

/// A timeout the machine asked for, given back to it when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout {
    /// The height it was scheduled at.
    pub height: Height,
    /// The round it was scheduled in.
    pub round: u32,
    /// Which timeout.
    pub kind: TimeoutKind,
}

/// The start of a height: what the host knows from the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewHeight {
    /// The height to decide: one above the last final block.
    pub height: Height,
    /// The validator set of the height's epoch.
    pub validators: ValidatorSet,
    /// The epoch's leader seed: the hash of the last block of the previous epoch, or the genesis
    /// hash in epoch 0.
    pub seed: Hash,
    /// The messages this validator persisted for this height before a restart (empty when the
    /// height starts normally). The machine restores its round, step and lock from them and
    /// will not sign anything that conflicts with them.
    pub restored: Vec<SignedMessage>,
}

/// An input to the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A new height starts: after the host applied the block of the previous one (from a
    /// [`Action::Commit`] or from sync), or at startup.
    StartHeight(NewHeight),
    /// A proposal from the network.
    Proposal(SignedProposal),
    /// A vote from the network.
    Vote(SignedVote),
    /// A certificate for the current height from the network or from sync: if it verifies, the
    /// height is decided without waiting for the votes.
    Certificate(Certificate),
    /// A timeout the machine scheduled has fired.
    Timeout(Timeout),
    /// The block the host built after [`Action::BuildBlock`].
    BlockBuilt {
        /// The height it was asked for.
        height: Height,
        /// The round it was asked for.
        round: u32,
        /// The block's hash.
        block_hash: Hash,
    },
    /// The host's verdict on a proposed block after [`Action::CheckBlock`]: whether it executes
    /// on the parent and its header matches.
    BlockVerdict {
        /// The height.
        height: Height,
        /// The block.
        block_hash: Hash,
        /// Whether it is valid.
        valid: bool,
    },
}

/// What the machine asks the host to do. The host performs a batch of actions in order, and a
/// [`Action::Persist`] must be durable before any later action of the batch is performed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write this message durably (fsync) before performing the next action. It always comes
    /// right before the [`Action::Broadcast`] of the same message. Keep the messages of the
    /// current height; give them back in [`NewHeight::restored`] after a restart.
    Persist(SignedMessage),
    /// Send the message to the other validators.
    Broadcast(SignedMessage),
    /// Give the machine [`Input::Timeout`] with `timeout` after `after` has passed.
    ScheduleTimeout {
        /// What to give back.
        timeout: Timeout,
        /// When.
        after: Duration,
    },
    /// Build a block on top of the last final block and answer with [`Input::BlockBuilt`]. The
    /// host keeps the block so that it can serve it to the other validators.
    BuildBlock {
        /// The height.
        height: Height,
        /// The round.
        round: u32,
    },
    /// Obtain the block (from a proposal's gossip, or by hash from peers: it may be a block
    /// that more than 2/3 of stake prevoted in a round whose proposal this node never received),
    /// execute it on the last final block and answer with [`Input::BlockVerdict`].
    CheckBlock {
        /// The height.
        height: Height,
        /// The round it was proposed (or prevoted) in.
        round: u32,
        /// The block.
        block_hash: Hash,
    },
    /// The height is decided: apply the block (fetching it by hash if it has not arrived), store
    /// the certificate with it, then start the next height.
    Commit(Certificate),
    /// A validator signed two conflicting messages: submit the evidence to the chain.
    ReportEvidence(Evidence),
}

/// Where the machine is within a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoundStep {
    /// Waiting for the proposal.
    Propose,
    /// Prevoted; waiting for prevotes.
    Prevote,
    /// Precommitted; waiting for precommits.
    Precommit,
    /// The height is decided; waiting for the host to start the next one.
    Decided,
}

/// A snapshot of the machine's position, for tests, logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The height being decided.
    pub height: Height,
    /// The round.
    pub round: u32,
    /// The step.
    pub step: RoundStep,
    /// Tendermint's locked round and value.
    pub locked: Option<(u32, Hash)>,
    /// Tendermint's valid round and value.
    pub valid: Option<(u32, Hash)>,
}

/// The host's verdict on a block, as far as the machine knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Pending,
    Valid,
    Invalid,
}

/// What does not change while the machine runs.
struct Identity {
    config: Config,
    chain_id: ChainId,
    key: SecretKey,
    public_key: PublicKey,
}

/// One height's state.
struct HeightState {
    height: Height,
    validators: ValidatorSet,
    /// Power thresholds: more than `two_thirds` is a supermajority, more than `one_third` holds
    /// at least one honest validator.
    two_thirds: Balance,
    one_third: Balance,
    index_of: BTreeMap<PublicKey, u16>,
    leaders: LeaderSchedule,
    me: Option<u16>,
    round: u32,
    step: RoundStep,
    locked: Option<(u32, Hash)>,
    valid: Option<(u32, Hash)>,
    rounds: BTreeMap<u32, RoundState>,
    /// What this validator signed at this height, by (round, step).
    own: BTreeMap<(u32, Step), SignedMessage>,
    verdicts: BTreeMap<Hash, Verdict>,
    /// Offences already reported, by (validator, round, step).
    reported: BTreeSet<(u16, u32, Step)>,
    /// The round whose block the host is building for us.
    building: Option<u32>,
    decision: Option<Certificate>,
}

/// The consensus state machine of one validator (or of a full node, which follows without
/// signing). See the crate documentation for how a host drives it.
pub struct Consensus<V: Verifier = Recover> {
    id: Identity,
    verifier: V,
    state: Option<HeightState>,
    /// The height before the current one, kept so that conflicting votes that arrive late for
    /// it are still caught as evidence. No rule runs on it.
    previous: Option<HeightState>,
    /// Messages for the height after the current one, replayed when it starts.
    pending: Vec<SignedMessage>,
}

impl Consensus<Recover> {
    /// A machine for `chain_id` that signs with `key`. It does nothing until
    /// [`Input::StartHeight`]. If `key` is not in a height's validator set, the machine follows
    /// that height without signing.
    pub fn new(config: Config, chain_id: ChainId, key: SecretKey) -> Consensus<Recover> {
        Consensus::with_verifier(config, chain_id, key, Recover)
    }
}

impl<V: Verifier> Consensus<V> {
    /// A machine that recovers signatures through `verifier`.
    pub fn with_verifier(
        config: Config,
        chain_id: ChainId,
        key: SecretKey,
        verifier: V,
    ) -> Consensus<V> {
        let public_key = key.public_key();
        Consensus {
            id: Identity { config, chain_id, key, public_key },
            verifier,
            state: None,
            previous: None,
            pending: Vec::new(),
        }
    }

    /// This validator's consensus key.
    pub fn public_key(&self) -> PublicKey {
        self.id.public_key
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.id.config
    }

    /// Where the machine is, once a height has started.
    pub fn status(&self) -> Option<Status> {
        self.state.as_ref().map(|s| Status {
            height: s.height,
            round: s.round,
            step: s.step,
            locked: s.locked,
            valid: s.valid,
        })
    }

    /// The current height's leader schedule.
    pub fn leaders(&self) -> Option<&LeaderSchedule> {
        self.state.as_ref().map(|s| &s.leaders)
    }

    /// The current height's decision, once there is one.
    pub fn decision(&self) -> Option<&Certificate> {
        self.state.as_ref().and_then(|s| s.decision.as_ref())
    }

    /// Feeds one input and returns the actions to perform, in order. A refused input changes
    /// nothing and returns why.
    pub fn handle(&mut self, input: Input) -> Result<Vec<Action>, InputError> {
        let mut actions = Vec::new();
        match input {
            Input::StartHeight(new) => self.start_height(new, &mut actions)?,
            Input::Proposal(p) => self.on_message(SignedMessage::Proposal(p), &mut actions)?,
            Input::Vote(v) => self.on_message(SignedMessage::Vote(v), &mut actions)?,
            Input::Certificate(c) => self.on_certificate(c, &mut actions)?,
            Input::Timeout(t) => self.on_timeout(t, &mut actions)?,
            Input::BlockBuilt { height, round, block_hash } => {
                self.on_block_built(height, round, block_hash, &mut actions)?
            }
            Input::BlockVerdict { height, block_hash, valid } => {
                self.on_verdict(height, block_hash, valid, &mut actions)?
            }
        }
        Ok(actions)
    }

    fn start_height(
        &mut self,
        new: NewHeight,
        actions: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        if let Some(current) = &self.state
            && new.height <= current.height
        {
            return Err(InputError::HeightNotIncreasing {
                current: current.height,
                found: new.height,
            });
        }
        let leaders = LeaderSchedule::new(&new.validators, new.seed)?;
        let total = leaders.total_power();
        let index_of: BTreeMap<PublicKey, u16> = new
            .validators
            .validators
            .iter()
            .zip(0u16..)
            .map(|(v, i)| (v.consensus_key, i))
            .collect();
        let me = index_of.get(&self.id.public_key).copied();

        let mut own = BTreeMap::new();
        for message in new.restored {
            let step = message.step();
            let (round, height) = (message.round(), message.height());
            let signer = recover_signer(&self.verifier, &message).ok();
            if message.chain_id() != self.id.chain_id
                || height != new.height
                || signer != Some(self.id.public_key)
            {
                return Err(InputError::NotOurs { height, round, step });
            }
            match own.get(&(round, step)) {
                Some(existing) if *existing != message => {
                    return Err(InputError::RestoredConflict { round, step });
                }
                _ => {
                    own.insert((round, step), message);
                }
            }
        }

        let mut state = HeightState {
            height: new.height,
            two_thirds: two_thirds_floor(total),
            one_third: total.checked_div(3).unwrap_or(0),
            validators: new.validators,
            index_of,
            leaders,
            me,
            round: 0,
            step: RoundStep::Propose,
            locked: None,
            valid: None,
            rounds: BTreeMap::new(),
            own: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            reported: BTreeSet::new(),
            building: None,
            decision: None,
        };
        tracing::debug!(target: TARGET, height = state.height, validator = ?me, restored = own.len(), "height starts");
        if own.is_empty() {
            state.start_round(&self.id, 0, actions);
        } else {
            state.restore(&self.id, own, actions);
        }
        self.previous = self.state.replace(state);
        if self.previous.as_ref().and_then(|p| p.height.checked_add(1)) != Some(new.height) {
            self.previous = None;
        }

        let pending = mem::take(&mut self.pending);
        for message in pending.into_iter().filter(|m| m.height() == new.height) {
            // Buffered messages are checked now that the set is known; refusals are expected
            // (duplicates, non-members) and change nothing.
            let _ = self.on_message(message, actions);
        }
        if let Some(state) = &mut self.state {
            state.progress(&self.id, actions);
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        message: SignedMessage,
        actions: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let state = self.state.as_mut().ok_or(InputError::NotStarted)?;
        if message.chain_id() != self.id.chain_id {
            return Err(InputError::WrongChain {
                expected: self.id.chain_id,
                found: message.chain_id(),
            });
        }
        let height = message.height();
        if height > state.height {
            if Some(height) != state.height.checked_add(1) {
                return Err(InputError::FutureHeight { current: state.height, found: height });
            }
            let max = self.id.config.max_pending_messages;
            if self.pending.contains(&message) {
                return Err(InputError::Duplicate);
            }
            // The next height's set may differ (a new epoch), so membership waits until it
            // starts; a signature that does not even recover is refused now, so that junk does
            // not fill the buffer.
            recover_signer(&self.verifier, &message).map_err(InputError::BadSignature)?;
            if self.pending.len() >= max {
                return Err(InputError::PendingFull { max });
            }
            self.pending.push(message);
            return Ok(());
        }
        if height < state.height {
            // Votes for the height just decided are still checked for equivocation.
            return match self.previous.as_mut() {
                Some(previous) if previous.height == height => {
                    previous.accept(&self.id, &self.verifier, message, actions)
                }
                _ => Err(InputError::StaleHeight { current: state.height, found: height }),
            };
        }
        state.accept(&self.id, &self.verifier, message, actions)?;
        state.progress(&self.id, actions);
        Ok(())
    }

    fn on_certificate(
        &mut self,
        certificate: Certificate,
        actions: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let state = self.state.as_mut().ok_or(InputError::NotStarted)?;
        if certificate.height < state.height {
            return Err(InputError::StaleHeight {
                current: state.height,
                found: certificate.height,
            });
        }
        if certificate.height > state.height {
            return Err(InputError::FutureHeight {
                current: state.height,
                found: certificate.height,
            });
        }
        if state.decision.is_some() {
            return Err(InputError::AlreadyDecided { height: state.height });
        }
        certificate
            .verify(self.id.chain_id, &state.validators)
            .map_err(InputError::InvalidCertificate)?;
        state.decide(certificate, actions);
        Ok(())
    }

    fn on_timeout(
        &mut self,
        timeout: Timeout,
        actions: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let state = self.state.as_mut().ok_or(InputError::NotStarted)?;
        // A timeout of a past round or height has nothing left to do: that is normal, not an
        // error.
        if timeout.height != state.height
            || timeout.round != state.round
            || state.step == RoundStep::Decided
        {
            return Ok(());
        }
        match timeout.kind {
            TimeoutKind::Propose if state.step == RoundStep::Propose => {
                // Rule 57.
                state.vote(&self.id, VoteKind::Prevote, None, actions);
                state.step = RoundStep::Prevote;
            }
            TimeoutKind::Prevote if state.step == RoundStep::Prevote => {
                // Rule 61.
                state.vote(&self.id, VoteKind::Precommit, None, actions);
                state.step = RoundStep::Precommit;
            }
            TimeoutKind::Precommit => {
                // Rule 65.
                if let Some(next) = state.round.checked_add(1) {
                    state.start_round(&self.id, next, actions);
                }
            }
            TimeoutKind::Rebroadcast => state.rebroadcast(&self.id, actions),
            _ => {}
        }
        state.progress(&self.id, actions);
        Ok(())
    }

    fn on_block_built(
        &mut self,
        height: Height,
        round: u32,
        block_hash: Hash,
        actions: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let state = self.state.as_mut().ok_or(InputError::NotStarted)?;
        if height != state.height
            || round != state.round
            || state.building != Some(round)
            || state.step != RoundStep::Propose
        {
            return Err(InputError::Unexpected { height, block_hash });
        }
        state.building = None;
        state.verdicts.insert(block_hash, Verdict::Valid);
        // A valid value learned while the block was being built takes precedence, as in
        // Algorithm 1, where the leader proposes its valid value if it has one.
        match state.valid {
            Some((valid_round, valid_block)) => {
                state.propose(&self.id, valid_block, Some(valid_round), actions)
            }
            None => state.propose(&self.id, block_hash, None, actions),
        }
        state.progress(&self.id, actions);
        Ok(())
    }

    fn on_verdict(
        &mut self,
        height: Height,
        block_hash: Hash,
        valid: bool,
        actions: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let state = self.state.as_mut().ok_or(InputError::NotStarted)?;
        if height != state.height || state.verdicts.get(&block_hash) != Some(&Verdict::Pending) {
            return Err(InputError::Unexpected { height, block_hash });
        }
        state.verdicts.insert(block_hash, if valid { Verdict::Valid } else { Verdict::Invalid });
        state.progress(&self.id, actions);
        Ok(())
    }
}

impl HeightState {
    /// Checks a message for this height and records it: the round is within the window, the
    /// signature recovers to a member, a proposal comes from the round's leader. A second,
    /// different message from one validator for one step is not counted; it is reported.
    fn accept<V: Verifier>(
        &mut self,
        id: &Identity,
        verifier: &V,
        message: SignedMessage,
        actions: &mut Vec<Action>,
    ) -> Result<(), InputError> {
        let (height, round) = (message.height(), message.round());
        let max_ahead = id.config.max_round_lookahead;
        if round > self.round.saturating_add(max_ahead) {
            return Err(InputError::RoundTooFar { current: self.round, found: round, max_ahead });
        }
        if round < self.round.saturating_sub(id.config.max_round_lookback)
            && !self.rounds.contains_key(&round)
        {
            return Err(InputError::StaleRound { current: self.round, found: round });
        }
        let signer = recover_signer(verifier, &message).map_err(InputError::BadSignature)?;
        let index = *self.index_of.get(&signer).ok_or(InputError::UnknownSigner { key: signer })?;
        let power = self.validators.validators[usize::from(index)].power;

        match message {
            SignedMessage::Proposal(proposal) => {
                let leader = self.leaders.leader(height, round);
                if index != leader {
                    return Err(InputError::NotLeader { round, expected: leader, found: index });
                }
                if let Some(pol_round) = proposal.proposal.pol_round
                    && pol_round >= round
                {
                    return Err(InputError::InvalidPolRound { round, pol_round });
                }
                let block_hash = proposal.proposal.block_hash;
                let entry = self.rounds.entry(round).or_default();
                match entry.add_proposal(index, proposal.clone()) {
                    Added::Duplicate | Added::Ignored => return Err(InputError::Duplicate),
                    Added::Conflict(existing) => {
                        self.report(index, round, Step::Propose, actions, || {
                            Evidence::duplicate_proposal(existing, proposal)
                        });
                    }
                    Added::New => {
                        self.note_sender(round, index, power);
                        if self.decision.is_none()
                            && let alloc::collections::btree_map::Entry::Vacant(slot) =
                                self.verdicts.entry(block_hash)
                        {
                            slot.insert(Verdict::Pending);
                            actions.push(Action::CheckBlock { height, round, block_hash });
                        }
                    }
                }
            }
            SignedMessage::Vote(vote) => {
                let kind = vote.vote.kind;
                let entry = self.rounds.entry(round).or_default();
                let set = match kind {
                    VoteKind::Prevote => &mut entry.prevotes,
                    VoteKind::Precommit => &mut entry.precommits,
                };
                match set.add(index, power, vote.clone()) {
                    Added::Duplicate => return Err(InputError::Duplicate),
                    Added::Ignored => {
                        return Err(InputError::TooManyValues { index, max: MAX_VALUES_PER_VOTER });
                    }
                    Added::Conflict(existing) => {
                        self.report(index, round, kind.into(), actions, || {
                            Evidence::duplicate_vote(existing, vote)
                        });
                    }
                    Added::New => self.note_sender(round, index, power),
                }
            }
        }
        Ok(())
    }

    fn is_supermajority(&self, power: Balance) -> bool {
        power > self.two_thirds
    }

    fn is_leader(&self, round: u32) -> bool {
        self.me.is_some_and(|me| self.leaders.leader(self.height, round) == me)
    }

    fn note_sender(&mut self, round: u32, index: u16, power: Balance) {
        if let Some(state) = self.rounds.get_mut(&round)
            && state.senders.insert(index)
        {
            state.sender_power = state.sender_power.saturating_add(power);
        }
    }

    fn report(
        &mut self,
        index: u16,
        round: u32,
        step: Step,
        actions: &mut Vec<Action>,
        evidence: impl FnOnce() -> Evidence,
    ) {
        if self.reported.insert((index, round, step)) {
            let evidence = evidence();
            tracing::info!(target: TARGET, height = self.height, round, validator = index, ?step, evidence = %evidence.hash(), "equivocation");
            actions.push(Action::ReportEvidence(evidence));
        }
    }

    /// Rule 11: StartRound.
    fn start_round(&mut self, id: &Identity, round: u32, actions: &mut Vec<Action>) {
        tracing::debug!(target: TARGET, height = self.height, round, "round starts");
        self.enter_round(id, round, RoundStep::Propose, actions);
        if self.is_leader(round) && !self.own.contains_key(&(round, Step::Propose)) {
            if let Some((valid_round, block_hash)) = self.valid {
                self.propose(id, block_hash, Some(valid_round), actions);
            } else {
                self.building = Some(round);
                actions.push(Action::BuildBlock { height: self.height, round });
            }
        }
    }

    fn enter_round(
        &mut self,
        id: &Identity,
        round: u32,
        step: RoundStep,
        actions: &mut Vec<Action>,
    ) {
        self.round = round;
        self.step = step;
        self.building = None;
        self.rounds.entry(round).or_default();
        self.forget_old_rounds(id);
        let height = self.height;
        if step == RoundStep::Propose {
            actions.push(Action::ScheduleTimeout {
                timeout: Timeout { height, round, kind: TimeoutKind::Propose },
                after: id.config.timeout(TimeoutKind::Propose, round),
            });
        }
        if self.me.is_some() {
            actions.push(Action::ScheduleTimeout {
                timeout: Timeout { height, round, kind: TimeoutKind::Rebroadcast },
                after: id.config.timeout(TimeoutKind::Rebroadcast, round),
            });
        }
    }

    /// Drops rounds more than `max_round_lookback` behind, except those of the lock and of the
    /// valid value, which later proposals may refer to. Own messages of dropped rounds are
    /// dropped too: rounds only increase, so nothing is ever signed for them again.
    fn forget_old_rounds(&mut self, id: &Identity) {
        let oldest = self.round.saturating_sub(id.config.max_round_lookback);
        let keep = |r: u32, locked: Option<(u32, Hash)>, valid: Option<(u32, Hash)>| {
            r >= oldest || locked.is_some_and(|l| l.0 == r) || valid.is_some_and(|v| v.0 == r)
        };
        let (locked, valid) = (self.locked, self.valid);
        self.rounds.retain(|&r, _| keep(r, locked, valid));
        self.own.retain(|&(r, _), _| keep(r, locked, valid));
        let rounds = &self.rounds;
        self.reported.retain(|&(_, r, _)| rounds.contains_key(&r));
        let two_thirds = self.two_thirds;
        let verdicts_in_use: BTreeSet<Hash> = rounds
            .values()
            .flat_map(|r| {
                let polkas = r
                    .prevotes
                    .values()
                    .filter(move |&(_, power)| power > two_thirds)
                    .filter_map(|(value, _)| value);
                r.proposal.as_ref().map(|p| p.proposal.block_hash).into_iter().chain(polkas)
            })
            .chain(locked.map(|l| l.1))
            .chain(valid.map(|v| v.1))
            .collect();
        self.verdicts.retain(|hash, _| verdicts_in_use.contains(hash));
    }

    /// Resumes a height after a restart from what this validator signed: the latest round, the
    /// step after the last message signed in it, and the lock (the last precommit for a block).
    fn restore(
        &mut self,
        id: &Identity,
        own: BTreeMap<(u32, Step), SignedMessage>,
        actions: &mut Vec<Action>,
    ) {
        let round = own.keys().map(|(r, _)| *r).max().unwrap_or(0);
        self.locked = own.values().rev().find_map(|m| match m {
            SignedMessage::Vote(v) if v.vote.kind == VoteKind::Precommit => {
                v.vote.block_hash.map(|hash| (v.vote.round, hash))
            }
            _ => None,
        });
        // The valid value is at least as recent as the lock in Tendermint; after a restart the
        // lock is the best we know. A validator precommits only a block the host found valid,
        // so the locked block's verdict is known too (without it, this validator could not
        // prevote its own re-proposal of the block).
        self.valid = self.locked;
        if let Some((_, block_hash)) = self.locked {
            self.verdicts.insert(block_hash, Verdict::Valid);
        }
        let step = if own.contains_key(&(round, Step::Precommit)) {
            RoundStep::Precommit
        } else if own.contains_key(&(round, Step::Prevote)) {
            RoundStep::Prevote
        } else {
            RoundStep::Propose
        };
        tracing::info!(target: TARGET, height = self.height, round, ?step, locked = ?self.locked, "restored");
        let me = self.me;
        for message in own.values() {
            let entry = self.rounds.entry(message.round()).or_default();
            if let Some(me) = me {
                let power = self.validators.validators[usize::from(me)].power;
                match message {
                    SignedMessage::Proposal(p) => {
                        entry.add_proposal(me, p.clone());
                        self.verdicts.insert(p.proposal.block_hash, Verdict::Valid);
                    }
                    SignedMessage::Vote(v) => {
                        let set = match v.vote.kind {
                            VoteKind::Prevote => &mut entry.prevotes,
                            VoteKind::Precommit => &mut entry.precommits,
                        };
                        set.add(me, power, v.clone());
                    }
                }
                self.note_sender(message.round(), me, power);
            }
        }
        self.own = own;
        self.enter_round(id, round, step, actions);
        // Already persisted: send again, in case the crash came before they went out.
        for message in self.own.range((round, Step::Propose)..).map(|(_, m)| m.clone()) {
            actions.push(Action::Broadcast(message));
        }
        if step == RoundStep::Propose
            && self.is_leader(round)
            && !self.own.contains_key(&(round, Step::Propose))
        {
            if let Some((valid_round, block_hash)) = self.valid {
                self.propose(id, block_hash, Some(valid_round), actions);
            } else {
                self.building = Some(round);
                actions.push(Action::BuildBlock { height: self.height, round });
            }
        }
    }

    /// Signs, persists and broadcasts a message, unless something was already signed for its
    /// step: then nothing is signed (the earlier message stands).
    fn sign(&mut self, message: SignedMessage, actions: &mut Vec<Action>) -> bool {
        let key = (message.round(), message.step());
        if self.own.contains_key(&key) {
            return false;
        }
        self.own.insert(key, message.clone());
        actions.push(Action::Persist(message.clone()));
        actions.push(Action::Broadcast(message));
        true
    }

    fn propose(
        &mut self,
        id: &Identity,
        block_hash: Hash,
        pol_round: Option<u32>,
        actions: &mut Vec<Action>,
    ) {
        let Some(me) = self.me else { return };
        let proposal = Proposal {
            chain_id: id.chain_id,
            height: self.height,
            round: self.round,
            block_hash,
            pol_round,
        };
        if self.own.contains_key(&(self.round, Step::Propose)) {
            return;
        }
        let signed = proposal.sign(&id.key);
        if self.sign(SignedMessage::Proposal(signed.clone()), actions) {
            let power = self.validators.validators[usize::from(me)].power;
            let round = self.round;
            if let Added::New = self.rounds.entry(round).or_default().add_proposal(me, signed) {
                self.note_sender(round, me, power);
            }
            if let Some(pol_round) = pol_round {
                self.broadcast_polka(pol_round, block_hash, actions);
            }
        }
    }

    fn vote(
        &mut self,
        id: &Identity,
        kind: VoteKind,
        block_hash: Option<Hash>,
        actions: &mut Vec<Action>,
    ) {
        let Some(me) = self.me else { return };
        let round = self.round;
        if self.own.contains_key(&(round, kind.into())) {
            return;
        }
        let vote = Vote { chain_id: id.chain_id, height: self.height, round, kind, block_hash };
        let signed = vote.sign(&id.key);
        if self.sign(SignedMessage::Vote(signed.clone()), actions) {
            let power = self.validators.validators[usize::from(me)].power;
            let entry = self.rounds.entry(round).or_default();
            let set = match kind {
                VoteKind::Prevote => &mut entry.prevotes,
                VoteKind::Precommit => &mut entry.precommits,
            };
            match set.add(me, power, signed.clone()) {
                Added::New => self.note_sender(round, me, power),
                Added::Duplicate | Added::Ignored => {}
                // Someone else holds this validator's key and voted first: that is evidence
                // against this key, and it is reported like any other.
                Added::Conflict(existing) => self.report(me, round, kind.into(), actions, || {
                    Evidence::duplicate_vote(existing, signed)
                }),
            }
        }
    }

    /// Sends again everything this validator signed at this height (in the rounds still kept),
    /// and the proof behind its valid value (that round's proposal and the prevotes for it).
    /// Tendermint assumes every message of an honest validator is eventually delivered; this is
    /// how the machine makes that so over a network that loses messages: a validator left
    /// behind in an earlier round needs the old precommits to move on, and one that missed a
    /// polka needs its prevotes to accept a re-proposal of the locked block.
    fn rebroadcast(&mut self, id: &Identity, actions: &mut Vec<Action>) {
        let round = self.round;
        for message in self.own.values() {
            actions.push(Action::Broadcast(message.clone()));
        }
        if let Some((valid_round, block_hash)) = self.valid
            && let Some(state) = self.rounds.get(&valid_round)
        {
            if let Some(proposal) = &state.proposal
                && proposal.proposal.block_hash == block_hash
                && !self.own.contains_key(&(valid_round, Step::Propose))
            {
                actions.push(Action::Broadcast(SignedMessage::Proposal(proposal.clone())));
            }
            self.broadcast_polka(valid_round, block_hash, actions);
        }
        actions.push(Action::ScheduleTimeout {
            timeout: Timeout { height: self.height, round, kind: TimeoutKind::Rebroadcast },
            after: id.config.timeout(TimeoutKind::Rebroadcast, round),
        });
    }

    /// Broadcasts the prevotes of other validators for `block_hash` in `round`: the proof of
    /// lock that a re-proposal refers to.
    fn broadcast_polka(&self, round: u32, block_hash: Hash, actions: &mut Vec<Action>) {
        let Some(state) = self.rounds.get(&round) else { return };
        let own = self.own.get(&(round, Step::Prevote));
        for vote in state.prevotes.votes_for(block_hash) {
            let message = SignedMessage::Vote(vote.clone());
            if own != Some(&message) {
                actions.push(Action::Broadcast(message));
            }
        }
    }

    fn decide(&mut self, certificate: Certificate, actions: &mut Vec<Action>) {
        tracing::info!(target: TARGET, height = self.height, round = certificate.round, block = %certificate.block_hash, signatures = certificate.signatures.len(), "decided");
        self.step = RoundStep::Decided;
        self.building = None;
        self.decision = Some(certificate.clone());
        actions.push(Action::Commit(certificate));
    }

    /// Applies the upon-rules until none fires.
    fn progress(&mut self, id: &Identity, actions: &mut Vec<Action>) {
        // Each rule that fires either moves the step forward, raises the round or sets a
        // one-shot flag, so this ends; the bound guards against a mistake in that argument.
        for _ in 0..64 {
            if self.step == RoundStep::Decided || !self.apply_one_rule(id, actions) {
                return;
            }
        }
    }

    fn apply_one_rule(&mut self, id: &Identity, actions: &mut Vec<Action>) -> bool {
        // Rule 49: more than 2/3 of stake precommitted a block in some round.
        let decided = self.rounds.iter().find_map(|(&round, state)| {
            state
                .precommits
                .values()
                .find(|&(value, power)| value.is_some() && self.is_supermajority(power))
                .and_then(|(value, _)| value.map(|hash| (round, hash, state)))
        });
        if let Some((round, block_hash, state)) = decided {
            let certificate = Certificate {
                height: self.height,
                round,
                block_hash,
                signatures: state.precommits.signatures_for(block_hash),
            };
            self.decide(certificate, actions);
            return true;
        }

        // Rule 55: more than 1/3 of stake is already in a later round.
        let later = self
            .rounds
            .range(self.round.saturating_add(1)..)
            .filter(|(_, state)| state.sender_power > self.one_third)
            .map(|(&round, _)| round)
            .next_back();
        if let Some(round) = later {
            self.start_round(id, round, actions);
            return true;
        }

        let round = self.round;
        let Some(current) = self.rounds.get(&round) else { return false };
        let proposal = current.proposal.as_ref().map(|p| p.proposal.clone());

        if self.step == RoundStep::Propose
            && let Some(proposal) = &proposal
        {
            let value = proposal.block_hash;
            match (proposal.pol_round, self.verdicts.get(&value).copied()) {
                // Rule 22: a fresh proposal.
                (None, Some(v @ (Verdict::Valid | Verdict::Invalid))) => {
                    let acceptable = v == Verdict::Valid
                        && self.locked.is_none_or(|(_, locked)| locked == value);
                    self.vote(id, VoteKind::Prevote, acceptable.then_some(value), actions);
                    self.step = RoundStep::Prevote;
                    return true;
                }
                // Rule 28: a re-proposal with a proof of lock from an earlier round.
                (Some(pol_round), Some(v @ (Verdict::Valid | Verdict::Invalid)))
                    if pol_round < round
                        && self.rounds.get(&pol_round).is_some_and(|r| {
                            self.is_supermajority(r.prevotes.power_for(Some(value)))
                        }) =>
                {
                    let acceptable = v == Verdict::Valid
                        && self.locked.is_none_or(|(locked_round, locked)| {
                            locked_round <= pol_round || locked == value
                        });
                    self.vote(id, VoteKind::Prevote, acceptable.then_some(value), actions);
                    self.step = RoundStep::Prevote;
                    return true;
                }
                _ => {}
            }
        }

        let prevotes_total = current.prevotes.total();
        // Rule 34: prevotes from more than 2/3 of stake, for anything.
        if self.step == RoundStep::Prevote
            && !current.prevote_timeout_scheduled
            && self.is_supermajority(prevotes_total)
        {
            if let Some(state) = self.rounds.get_mut(&round) {
                state.prevote_timeout_scheduled = true;
            }
            actions.push(Action::ScheduleTimeout {
                timeout: Timeout { height: self.height, round, kind: TimeoutKind::Prevote },
                after: id.config.timeout(TimeoutKind::Prevote, round),
            });
            return true;
        }

        // Rule 36: the proposal has prevotes from more than 2/3 of stake (a polka).
        if let Some(proposal) = &proposal
            && matches!(self.step, RoundStep::Prevote | RoundStep::Precommit)
            && !current.polka_handled
            && self.verdicts.get(&proposal.block_hash) == Some(&Verdict::Valid)
            && self.is_supermajority(current.prevotes.power_for(Some(proposal.block_hash)))
        {
            let value = proposal.block_hash;
            if let Some(state) = self.rounds.get_mut(&round) {
                state.polka_handled = true;
            }
            if self.step == RoundStep::Prevote {
                self.locked = Some((round, value));
                self.vote(id, VoteKind::Precommit, Some(value), actions);
                self.step = RoundStep::Precommit;
            }
            self.valid = Some((round, value));
            return true;
        }

        // Beyond Algorithm 1: a polka seen late for an earlier round, later than the valid
        // value's, makes that block the valid value, so that this validator, as leader,
        // re-proposes the block others may be locked on. The polka's round need not have given
        // us its proposal (an equivocating leader may have sent us another): the host is asked
        // to fetch and check the block by hash first. Which value a leader proposes does not
        // matter for safety (others check the proof of lock), only for liveness.
        let after_valid = self.valid.map_or(0, |(r, _)| r.saturating_add(1));
        // (A range whose start is past its end would panic.)
        let later_polka =
            self.rounds.range(after_valid.min(round)..round).rev().find_map(|(&r, state)| {
                state
                    .prevotes
                    .values()
                    .find(|&(value, power)| value.is_some() && self.is_supermajority(power))
                    .and_then(|(value, _)| value.map(|hash| (r, hash)))
            });
        if let Some((polka_round, value)) = later_polka {
            match self.verdicts.get(&value) {
                Some(Verdict::Valid) => {
                    self.valid = Some((polka_round, value));
                    return true;
                }
                None => {
                    self.verdicts.insert(value, Verdict::Pending);
                    actions.push(Action::CheckBlock {
                        height: self.height,
                        round: polka_round,
                        block_hash: value,
                    });
                    return true;
                }
                Some(Verdict::Pending | Verdict::Invalid) => {}
            }
        }

        // Rule 44: prevotes for nil from more than 2/3 of stake.
        if self.step == RoundStep::Prevote
            && self.is_supermajority(current.prevotes.power_for(None))
        {
            self.vote(id, VoteKind::Precommit, None, actions);
            self.step = RoundStep::Precommit;
            return true;
        }

        // Rule 47: precommits from more than 2/3 of stake, for anything.
        let Some(current) = self.rounds.get_mut(&round) else { return false };
        if !current.precommit_timeout_scheduled && current.precommits.total() > self.two_thirds {
            current.precommit_timeout_scheduled = true;
            actions.push(Action::ScheduleTimeout {
                timeout: Timeout { height: self.height, round, kind: TimeoutKind::Precommit },
                after: id.config.timeout(TimeoutKind::Precommit, round),
            });
            return true;
        }
        false
    }
}

/// The key that signed a message.
fn recover_signer<V: Verifier>(
    verifier: &V,
    message: &SignedMessage,
) -> Result<PublicKey, altan_primitives::SignatureError> {
    match message {
        SignedMessage::Proposal(p) => verifier.recover(&p.proposal.signing_hash(), &p.signature),
        SignedMessage::Vote(v) => verifier.recover(&v.vote.signing_hash(), &v.signature),
    }
}

/// `floor(2 * total / 3)`, without overflow: power above it is more than 2/3 of `total`
/// exactly (3p > 2t if and only if p > floor(2t/3), for integers).
fn two_thirds_floor(total: Balance) -> Balance {
    let third = total.checked_div(3).unwrap_or(0);
    let rest = total.checked_rem(3).unwrap_or(0);
    third.saturating_mul(2).saturating_add(rest.saturating_mul(2).checked_div(3).unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use altan_primitives::{Address, Validator};

    #[test]
    fn thresholds_match_the_certificate_rule() {
        let interesting = [0u128, 1, 2, 3, 4, 5, 6, 7, 99, 100, 101, u128::MAX - 1, u128::MAX];
        for total in interesting {
            let set = ValidatorSet {
                validators: alloc::vec![Validator {
                    address: Address([0; 20]),
                    consensus_key: PublicKey([2; 33]),
                    power: total,
                }],
            };
            let two_thirds = two_thirds_floor(total);
            let one_third = total.checked_div(3).unwrap_or(0);
            for power in [0, 1, two_thirds, two_thirds.saturating_add(1), one_third, total] {
                assert_eq!(power > two_thirds, set.is_supermajority(power), "{power} of {total}");
                // 3p > t, in 256 bits.
                let more_than_third = power > u128::MAX / 3 || power * 3 > total;
                assert_eq!(power > one_third, more_than_third, "{power} of {total}");
            }
        }
    }
}
