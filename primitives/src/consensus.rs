//! Proposals, votes, validator sets, commit certificates and evidence of equivocation: what
//! consensus signs, what proves a block final to anyone who knows the epoch's validator set, and
//! what proves a validator signed two conflicting messages.

use alloc::vec::Vec;
use core::cmp::Ordering;

use parity_scale_codec::{Decode, Encode};

use crate::crypto::{PublicKey, SecretKey, Signature, SignatureError};
use crate::{Address, Balance, ChainId, Hash, Height, blake3_tagged, domain};

/// A leader's proposal of a block for a (height, round). The block itself travels separately;
/// the proposal names it by hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Proposal {
    /// The chain.
    pub chain_id: ChainId,
    /// The height proposed for.
    pub height: Height,
    /// The round within the height.
    pub round: u32,
    /// The proposed block.
    pub block_hash: Hash,
    /// Tendermint's valid round: the round in which the proposer saw more than 2/3 of stake
    /// prevote this block (a proof of lock), or `None` for a block proposed fresh.
    pub pol_round: Option<u32>,
}

impl Proposal {
    /// The prehash a leader signs: the proposal domain tag, the chain id and the proposal.
    pub fn signing_hash(&self) -> Hash {
        blake3_tagged(domain::PROPOSAL, &[&self.chain_id.to_le_bytes(), &self.encode()])
    }

    /// Signs the proposal with a consensus key.
    pub fn sign(self, key: &SecretKey) -> SignedProposal {
        let signature = key.sign_prehash(&self.signing_hash());
        SignedProposal { proposal: self, signature }
    }
}

/// A proposal and its signature.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// The consensus key's signature over [`Proposal::signing_hash`].
    pub signature: Signature,
}

impl SignedProposal {
    /// The consensus key that signed the proposal.
    pub fn signer(&self) -> Result<PublicKey, SignatureError> {
        self.signature.recover_public_key(&self.proposal.signing_hash())
    }
}

/// The step a vote belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum VoteKind {
    /// The first voting step of a round.
    Prevote,
    /// The second voting step; more than 2/3 of stake precommitting a block makes it final.
    Precommit,
}

/// A consensus vote for a block, or for nothing (`block_hash: None`) when a round fails.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Vote {
    /// The chain.
    pub chain_id: ChainId,
    /// The height voted on.
    pub height: Height,
    /// The round within the height.
    pub round: u32,
    /// The step.
    pub kind: VoteKind,
    /// The block voted for, or `None` for nil.
    pub block_hash: Option<Hash>,
}

impl Vote {
    /// The prehash a validator signs: the vote domain tag, the chain id and the vote.
    pub fn signing_hash(&self) -> Hash {
        blake3_tagged(domain::VOTE, &[&self.chain_id.to_le_bytes(), &self.encode()])
    }

    /// Signs the vote with a consensus key.
    pub fn sign(self, key: &SecretKey) -> SignedVote {
        let signature = key.sign_prehash(&self.signing_hash());
        SignedVote { vote: self, signature }
    }
}

/// A vote and its signature.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The consensus key's signature over [`Vote::signing_hash`].
    pub signature: Signature,
}

impl SignedVote {
    /// The consensus key that signed the vote.
    pub fn signer(&self) -> Result<PublicKey, SignatureError> {
        self.signature.recover_public_key(&self.vote.signing_hash())
    }
}

/// A validator of an epoch.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Validator {
    /// The validator's account (where rewards go and stake is held).
    pub address: Address,
    /// The key its votes are signed with.
    pub consensus_key: PublicKey,
    /// Voting power: its bonded stake.
    pub power: Balance,
}

/// The validators of an epoch, in a canonical order (the staking module fixes it), with their
/// voting power.
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct ValidatorSet {
    /// The validators.
    pub validators: Vec<Validator>,
}

impl ValidatorSet {
    /// The sum of all voting power.
    pub fn total_power(&self) -> Balance {
        self.validators.iter().fold(0, |sum: Balance, v| sum.saturating_add(v.power))
    }

    /// Whether `power` is more than two thirds of the total. Computed without division so that
    /// no rounding can let a certificate through with exactly two thirds.
    pub fn is_supermajority(&self, power: Balance) -> bool {
        // 3 * power > 2 * total, exactly, in 256 bits held as (high, low) pairs of u128 (which
        // compare as numbers). The total is summed in 256 bits too: a total clamped at u128::MAX
        // would let half the real stake through.
        let total = self.validators.iter().fold((0, 0), |sum, v| wide_add(sum, (0, v.power)));
        let power = (0, power);
        wide_add(wide_add(power, power), power) > wide_add(total, total)
    }
}

/// The sum of two 256-bit numbers held as (high, low) pairs of u128. The high half only counts
/// carries, a few per validator, so it cannot come near overflowing.
fn wide_add(a: (u128, u128), b: (u128, u128)) -> (u128, u128) {
    let (low, carry) = a.1.overflowing_add(b.1);
    (a.0.saturating_add(b.0).saturating_add(u128::from(carry)), low)
}

/// One validator's precommit signature in a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CommitSignature {
    /// The validator's index in the epoch's [`ValidatorSet`].
    pub validator_index: u16,
    /// Its signature over the precommit for the certificate's block.
    pub signature: Signature,
}

/// Proof that a block is final: precommits for it from more than 2/3 of the epoch's stake.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Certificate {
    /// The height.
    pub height: Height,
    /// The round in which the block was committed.
    pub round: u32,
    /// The committed block.
    pub block_hash: Hash,
    /// Precommit signatures, by strictly increasing validator index.
    pub signatures: Vec<CommitSignature>,
}

/// Why a certificate does not prove finality.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// A signature names a validator index outside the set.
    #[error("validator index {index} is outside a set of {len}")]
    UnknownValidator {
        /// The index given.
        index: u16,
        /// The size of the set.
        len: usize,
    },
    /// Validator indices are not strictly increasing (a duplicate or unordered signature).
    #[error("validator indices are not strictly increasing at index {index}")]
    Unordered {
        /// The offending index.
        index: u16,
    },
    /// A signature does not recover to the validator's consensus key.
    #[error("signature of validator {index} is invalid")]
    BadSignature {
        /// The validator's index.
        index: u16,
    },
    /// The signers hold too little stake.
    #[error("signers hold {signed} of {total} voting power; more than 2/3 is needed")]
    InsufficientPower {
        /// The signers' power.
        signed: Balance,
        /// The set's total power.
        total: Balance,
    },
}

impl Certificate {
    /// The precommit every signature in this certificate must sign.
    pub fn precommit(&self, chain_id: ChainId) -> Vote {
        Vote {
            chain_id,
            height: self.height,
            round: self.round,
            kind: VoteKind::Precommit,
            block_hash: Some(self.block_hash),
        }
    }

    /// Checks every signature against the epoch's validator set and that the signers hold more
    /// than 2/3 of its power.
    pub fn verify(&self, chain_id: ChainId, set: &ValidatorSet) -> Result<(), CertificateError> {
        let prehash = self.precommit(chain_id).signing_hash();
        let mut signed: Balance = 0;
        let mut previous: Option<u16> = None;
        for commit in &self.signatures {
            let index = commit.validator_index;
            if previous.is_some_and(|p| p >= index) {
                return Err(CertificateError::Unordered { index });
            }
            previous = Some(index);
            let validator = set
                .validators
                .get(usize::from(index))
                .ok_or(CertificateError::UnknownValidator { index, len: set.validators.len() })?;
            let key = commit
                .signature
                .recover_public_key(&prehash)
                .map_err(|_| CertificateError::BadSignature { index })?;
            if key != validator.consensus_key {
                return Err(CertificateError::BadSignature { index });
            }
            signed = signed.saturating_add(validator.power);
        }
        if set.is_supermajority(signed) {
            Ok(())
        } else {
            Err(CertificateError::InsufficientPower { signed, total: set.total_power() })
        }
    }
}

/// Which of the two messages of a piece of [`Evidence`] an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidencePart {
    /// `first`.
    First,
    /// `second`.
    Second,
}

/// Why a piece of evidence does not prove an equivocation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// A signature does not recover to any key.
    #[error("the {part:?} message's signature is invalid: {error}")]
    BadSignature {
        /// The message whose signature failed.
        part: EvidencePart,
        /// Why it failed.
        error: SignatureError,
    },
    /// The two messages were signed by different keys: no one equivocated.
    #[error("the messages have different signers: {first} and {second}")]
    DifferentSigners {
        /// The first message's signer.
        first: PublicKey,
        /// The second message's signer.
        second: PublicKey,
    },
    /// The messages are for different chains.
    #[error("the messages are for chains {first} and {second}")]
    DifferentChains {
        /// The first message's chain.
        first: ChainId,
        /// The second message's chain.
        second: ChainId,
    },
    /// The messages are for different heights.
    #[error("the messages are for heights {first} and {second}")]
    DifferentHeights {
        /// The first message's height.
        first: Height,
        /// The second message's height.
        second: Height,
    },
    /// The messages are for different rounds.
    #[error("the messages are for rounds {first} and {second}")]
    DifferentRounds {
        /// The first message's round.
        first: u32,
        /// The second message's round.
        second: u32,
    },
    /// The votes are of different kinds (a prevote and a precommit may differ legitimately).
    #[error("the votes are a {first:?} and a {second:?}")]
    DifferentKinds {
        /// The first vote's kind.
        first: VoteKind,
        /// The second vote's kind.
        second: VoteKind,
    },
    /// The two messages say the same thing: signing one message twice is no offence.
    #[error("the two messages have the same content")]
    SameContent,
    /// `first` does not sort before `second` by the canonical rule (see [`Evidence`]); the
    /// canonical form is the only accepted one, so that one offence has one encoding.
    #[error("the messages are not in canonical order")]
    NotCanonical,
}

/// Proof that a validator signed two conflicting consensus messages for one (height, round,
/// step). Anyone who knows the chain id can check it with [`Evidence::verify`]; mapping the
/// offender's consensus key to a validator needs the validator set of the evidence's epoch.
///
/// Canonical form: `first` is the message whose SCALE encoding (without its signature) is the
/// lexicographically smaller one. [`Evidence::duplicate_vote`] and
/// [`Evidence::duplicate_proposal`] build that form and [`Evidence::verify`] refuses any other,
/// so the same two signed messages always make the same bytes and the same [`Evidence::hash`].
/// A signer can produce more than one valid signature for one message (RFC 6979 is a convention,
/// not something a verifier can check), so whoever punishes should count offences by
/// [`Evidence::offence`], not by hash.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Evidence {
    /// Two different votes of one kind for one (height, round).
    DuplicateVote {
        /// The vote whose encoding sorts first.
        first: SignedVote,
        /// The other vote.
        second: SignedVote,
    },
    /// Two different proposals for one (height, round).
    DuplicateProposal {
        /// The proposal whose encoding sorts first.
        first: SignedProposal,
        /// The other proposal.
        second: SignedProposal,
    },
}

/// What a piece of evidence accuses: one key, at one (height, round, step). Two pieces of
/// evidence with the same offence are the same misbehaviour, whatever their signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Offence {
    /// The offender's consensus key.
    pub offender: PublicKey,
    /// The height.
    pub height: Height,
    /// The round.
    pub round: u32,
    /// The step: `None` for a proposal, the vote kind for a vote.
    pub step: Option<VoteKind>,
}

impl Evidence {
    /// Evidence of two votes, in canonical order whichever order they are given in.
    pub fn duplicate_vote(a: SignedVote, b: SignedVote) -> Evidence {
        if canonical_order(&a.vote, &b.vote) == Ordering::Greater {
            Evidence::DuplicateVote { first: b, second: a }
        } else {
            Evidence::DuplicateVote { first: a, second: b }
        }
    }

    /// Evidence of two proposals, in canonical order whichever order they are given in.
    pub fn duplicate_proposal(a: SignedProposal, b: SignedProposal) -> Evidence {
        if canonical_order(&a.proposal, &b.proposal) == Ordering::Greater {
            Evidence::DuplicateProposal { first: b, second: a }
        } else {
            Evidence::DuplicateProposal { first: a, second: b }
        }
    }

    /// The chain the messages claim to be for (of the first message; [`Evidence::verify`]
    /// checks that both agree). A chain must refuse evidence for another chain.
    pub fn chain_id(&self) -> ChainId {
        match self {
            Evidence::DuplicateVote { first, .. } => first.vote.chain_id,
            Evidence::DuplicateProposal { first, .. } => first.proposal.chain_id,
        }
    }

    /// The height of the offence (of the first message; [`Evidence::verify`] checks that both
    /// agree). It selects the validator set that the offender belonged to.
    pub fn height(&self) -> Height {
        match self {
            Evidence::DuplicateVote { first, .. } => first.vote.height,
            Evidence::DuplicateProposal { first, .. } => first.proposal.height,
        }
    }

    /// The round of the offence (of the first message).
    pub fn round(&self) -> u32 {
        match self {
            Evidence::DuplicateVote { first, .. } => first.vote.round,
            Evidence::DuplicateProposal { first, .. } => first.proposal.round,
        }
    }

    /// The identifier of this exact evidence: blake3 of the evidence tag and its encoding.
    pub fn hash(&self) -> Hash {
        blake3_tagged(domain::EVIDENCE, &[&self.encode()])
    }

    /// Checks that this proves an equivocation and returns the offender's consensus key: both
    /// signatures are valid and by one key, both messages are for one chain, height and round
    /// (and, for votes, one kind), their contents differ, and they are in canonical order.
    pub fn verify(&self) -> Result<PublicKey, EvidenceError> {
        match self {
            Evidence::DuplicateVote { first, second } => {
                let (a, b) = (&first.vote, &second.vote);
                same(a.chain_id, b.chain_id, |first, second| EvidenceError::DifferentChains {
                    first,
                    second,
                })?;
                same(a.height, b.height, |first, second| EvidenceError::DifferentHeights {
                    first,
                    second,
                })?;
                same(a.round, b.round, |first, second| EvidenceError::DifferentRounds {
                    first,
                    second,
                })?;
                same(a.kind, b.kind, |first, second| EvidenceError::DifferentKinds {
                    first,
                    second,
                })?;
                check_order(a, b)?;
                same_signer(first.signer(), second.signer())
            }
            Evidence::DuplicateProposal { first, second } => {
                let (a, b) = (&first.proposal, &second.proposal);
                same(a.chain_id, b.chain_id, |first, second| EvidenceError::DifferentChains {
                    first,
                    second,
                })?;
                same(a.height, b.height, |first, second| EvidenceError::DifferentHeights {
                    first,
                    second,
                })?;
                same(a.round, b.round, |first, second| EvidenceError::DifferentRounds {
                    first,
                    second,
                })?;
                check_order(a, b)?;
                same_signer(first.signer(), second.signer())
            }
        }
    }

    /// Verifies the evidence and names the offence it proves.
    pub fn offence(&self) -> Result<Offence, EvidenceError> {
        let offender = self.verify()?;
        let step = match self {
            Evidence::DuplicateVote { first, .. } => Some(first.vote.kind),
            Evidence::DuplicateProposal { .. } => None,
        };
        Ok(Offence { offender, height: self.height(), round: self.round(), step })
    }
}

/// The canonical order of two messages: by their SCALE encodings, as byte strings.
fn canonical_order<T: Encode>(a: &T, b: &T) -> Ordering {
    a.using_encoded(|a| b.using_encoded(|b| a.cmp(b)))
}

fn check_order<T: Encode>(first: &T, second: &T) -> Result<(), EvidenceError> {
    match canonical_order(first, second) {
        Ordering::Less => Ok(()),
        Ordering::Equal => Err(EvidenceError::SameContent),
        Ordering::Greater => Err(EvidenceError::NotCanonical),
    }
}

fn same<T: PartialEq>(
    first: T,
    second: T,
    error: impl FnOnce(T, T) -> EvidenceError,
) -> Result<(), EvidenceError> {
    if first == second { Ok(()) } else { Err(error(first, second)) }
}

fn same_signer(
    first: Result<PublicKey, SignatureError>,
    second: Result<PublicKey, SignatureError>,
) -> Result<PublicKey, EvidenceError> {
    let first =
        first.map_err(|error| EvidenceError::BadSignature { part: EvidencePart::First, error })?;
    let second = second
        .map_err(|error| EvidenceError::BadSignature { part: EvidencePart::Second, error })?;
    if first == second { Ok(first) } else { Err(EvidenceError::DifferentSigners { first, second }) }
}
