//! What one height remembers about each round: the proposal, the prevotes and precommits by
//! validator, and the power behind each value.

use alloc::collections::{BTreeMap, BTreeSet};

use altan_primitives::{Balance, CommitSignature, Hash, SignedProposal, SignedVote};

/// The outcome of adding a message.
pub(crate) enum Added<T> {
    /// The message is new and counted.
    New,
    /// The same message was already here.
    Duplicate,
    /// The same validator already sent a different message for this step: this earlier one.
    /// (A vote is still counted for its value; a second proposal is not kept.)
    Conflict(T),
    /// A vote for a further value beyond [`MAX_VALUES_PER_VOTER`]: not kept.
    Ignored,
}

/// How many different values one validator's votes of one kind in one round are counted for.
/// An honest validator votes for one; an equivocator's votes count for each value it signed
/// (as in Tendermint, where every message counts for its value), up to this bound on memory.
/// Two values are what a split needs; a validator that signs more loses its weight for the
/// further ones, and is reported for the second.
pub const MAX_VALUES_PER_VOTER: usize = 3;

/// The votes of one kind in one round, by validator and value.
#[derive(Clone, Debug, Default)]
pub(crate) struct VoteSet {
    votes: BTreeMap<(u16, Option<Hash>), SignedVote>,
    /// The number of values each validator voted for.
    values_of: BTreeMap<u16, usize>,
    power: BTreeMap<Option<Hash>, Balance>,
    /// The power of the validators that voted, each counted once.
    total: Balance,
}

impl VoteSet {
    /// Adds validator `index`'s vote with its power. A vote for a value this validator has not
    /// voted for before is counted for that value (up to [`MAX_VALUES_PER_VOTER`] values) and
    /// reported as a conflict with its first vote. Sums cannot overflow: a value's power is at
    /// most the set's total power, checked to fit when the height started.
    pub(crate) fn add(
        &mut self,
        index: u16,
        power: Balance,
        vote: SignedVote,
    ) -> Added<SignedVote> {
        let value = vote.vote.block_hash;
        if let Some(existing) = self.votes.get(&(index, value)) {
            return if existing.vote == vote.vote { Added::Duplicate } else { Added::Ignored };
        }
        let count = self.values_of.entry(index).or_insert(0);
        if *count >= MAX_VALUES_PER_VOTER {
            return Added::Ignored;
        }
        *count = count.saturating_add(1);
        let first = *count == 1;
        let sum = self.power.entry(value).or_insert(0);
        *sum = sum.saturating_add(power);
        if first {
            self.total = self.total.saturating_add(power);
            self.votes.insert((index, value), vote);
            return Added::New;
        }
        let earlier = self
            .votes
            .range((index, None)..=(index, Some(Hash([0xff; 32]))))
            .map(|(_, v)| v.clone())
            .next();
        self.votes.insert((index, value), vote);
        match earlier {
            Some(earlier) => Added::Conflict(earlier),
            None => Added::New,
        }
    }

    /// The power of the votes for `value`.
    pub(crate) fn power_for(&self, value: Option<Hash>) -> Balance {
        self.power.get(&value).copied().unwrap_or(0)
    }

    /// The power of all validators that voted, each counted once.
    pub(crate) fn total(&self) -> Balance {
        self.total
    }

    /// The values voted for and their power, in a fixed order.
    pub(crate) fn values(&self) -> impl Iterator<Item = (Option<Hash>, Balance)> + '_ {
        self.power.iter().map(|(value, power)| (*value, *power))
    }

    /// The votes for `block_hash`, by increasing validator index.
    pub(crate) fn votes_for(&self, block_hash: Hash) -> impl Iterator<Item = &SignedVote> + '_ {
        self.votes.iter().filter(move |((_, value), _)| *value == Some(block_hash)).map(|(_, v)| v)
    }

    /// The signatures of the votes for `block_hash`, by increasing validator index: a
    /// certificate's signatures when these are precommits.
    pub(crate) fn signatures_for(&self, block_hash: Hash) -> alloc::vec::Vec<CommitSignature> {
        self.votes
            .iter()
            .filter(|((_, value), _)| *value == Some(block_hash))
            .map(|(&(validator_index, _), v)| CommitSignature {
                validator_index,
                signature: v.signature,
            })
            .collect()
    }
}

/// Everything a height remembers about one round.
#[derive(Clone, Debug, Default)]
pub(crate) struct RoundState {
    /// The leader's proposal (the first one received).
    pub(crate) proposal: Option<SignedProposal>,
    pub(crate) prevotes: VoteSet,
    pub(crate) precommits: VoteSet,
    /// Validators that sent anything for this round, for the round-skip rule.
    pub(crate) senders: BTreeSet<u16>,
    /// Their power.
    pub(crate) sender_power: Balance,
    /// Tendermint's "for the first time" guards.
    pub(crate) prevote_timeout_scheduled: bool,
    pub(crate) precommit_timeout_scheduled: bool,
    pub(crate) polka_handled: bool,
}

impl RoundState {
    /// Adds the leader's proposal.
    pub(crate) fn add_proposal(
        &mut self,
        index: u16,
        proposal: SignedProposal,
    ) -> Added<SignedProposal> {
        if let Some(existing) = &self.proposal {
            return if existing.proposal == proposal.proposal {
                Added::Duplicate
            } else {
                Added::Conflict(existing.clone())
            };
        }
        self.proposal = Some(proposal);
        self.senders.insert(index);
        Added::New
    }
}
