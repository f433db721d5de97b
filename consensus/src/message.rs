//! What a validator signs, as one type for persistence and gossip.

use altan_primitives::{ChainId, Height, SignedProposal, SignedVote, VoteKind};
use parity_scale_codec::{Decode, Encode};

/// The step of a round that a signed message belongs to. A validator signs at most one message
/// per (height, round, step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum Step {
    /// The leader's proposal.
    Propose,
    /// The first vote.
    Prevote,
    /// The second vote.
    Precommit,
}

impl From<VoteKind> for Step {
    fn from(kind: VoteKind) -> Step {
        match kind {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        }
    }
}

/// A consensus message: what the machine asks the host to persist and broadcast, and what the
/// host persisted before a restart. Its SCALE encoding is the one to store and send.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum SignedMessage {
    /// A leader's proposal.
    Proposal(SignedProposal),
    /// A prevote or precommit.
    Vote(SignedVote),
}

impl SignedMessage {
    /// The chain the message is for.
    pub fn chain_id(&self) -> ChainId {
        match self {
            SignedMessage::Proposal(p) => p.proposal.chain_id,
            SignedMessage::Vote(v) => v.vote.chain_id,
        }
    }

    /// The height the message is for.
    pub fn height(&self) -> Height {
        match self {
            SignedMessage::Proposal(p) => p.proposal.height,
            SignedMessage::Vote(v) => v.vote.height,
        }
    }

    /// The round the message is for.
    pub fn round(&self) -> u32 {
        match self {
            SignedMessage::Proposal(p) => p.proposal.round,
            SignedMessage::Vote(v) => v.vote.round,
        }
    }

    /// The step the message is for.
    pub fn step(&self) -> Step {
        match self {
            SignedMessage::Proposal(_) => Step::Propose,
            SignedMessage::Vote(v) => v.vote.kind.into(),
        }
    }
}
