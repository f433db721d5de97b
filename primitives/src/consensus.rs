//! Votes, validator sets and commit certificates: what consensus signs and what proves a block
//! final to anyone who knows the epoch's validator set.

use alloc::vec::Vec;

use parity_scale_codec::{Decode, Encode};

use crate::crypto::{PublicKey, SecretKey, Signature, SignatureError};
use crate::{Address, Balance, ChainId, Hash, Height, blake3_tagged, domain};

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
