//! Why an input was refused.

use altan_primitives::{CertificateError, ChainId, Hash, Height, PublicKey, SignatureError};

use crate::Step;

/// Why a validator set cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// The set has no validators.
    #[error("the validator set is empty")]
    Empty,
    /// More validators than a certificate's `u16` index can name.
    #[error("{len} validators; at most {max} can be named in a certificate")]
    TooMany {
        /// The number of validators.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Two validators share a consensus key, so their votes could not be told apart.
    #[error("consensus key {key} appears twice")]
    DuplicateKey {
        /// The repeated key.
        key: PublicKey,
    },
    /// The total power does not fit in a `u128`.
    #[error("the total power overflows")]
    PowerOverflow,
    /// The total power is zero: nobody can be leader and no certificate can be formed.
    #[error("the validators hold no power")]
    NoPower,
}

/// Why the machine refused an input. Refusing changes nothing. Most refusals are ordinary on a
/// gossip network (a message seen twice, one for a height already done);
/// [`InputError::is_misbehaviour`] tells which ones no honest peer would send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// An input other than `StartHeight` came before the first height started.
    #[error("no height has started")]
    NotStarted,
    /// A new height must be above the current one.
    #[error("height {found} does not follow the current height {current}")]
    HeightNotIncreasing {
        /// The current height.
        current: Height,
        /// The height given.
        found: Height,
    },
    /// The validator set of a new height cannot be used.
    #[error("invalid validator set: {0}")]
    ValidatorSet(#[from] ValidatorSetError),
    /// A message restored after a restart is not one this validator signed for this height.
    #[error("restored message for height {height}, round {round}, step {step:?} is not ours")]
    NotOurs {
        /// The message's height.
        height: Height,
        /// The message's round.
        round: u32,
        /// The message's step.
        step: Step,
    },
    /// The restored messages hold two different messages for one step: the store is corrupt,
    /// and going on could sign a third.
    #[error("restored messages conflict at round {round}, step {step:?}")]
    RestoredConflict {
        /// The round.
        round: u32,
        /// The step.
        step: Step,
    },
    /// The message is for another chain.
    #[error("message for chain {found}, expected {expected}")]
    WrongChain {
        /// Our chain.
        expected: ChainId,
        /// The message's chain.
        found: ChainId,
    },
    /// The message is for a height that is already decided here.
    #[error("message for height {found}, below the current height {current}")]
    StaleHeight {
        /// The current height.
        current: Height,
        /// The message's height.
        found: Height,
    },
    /// The message is for a height beyond the next one; the host should sync.
    #[error("message for height {found}, more than one above the current height {current}")]
    FutureHeight {
        /// The current height.
        current: Height,
        /// The message's height.
        found: Height,
    },
    /// The buffer of messages for the next height is full.
    #[error("{max} messages for the next height are already buffered")]
    PendingFull {
        /// The bound ([`crate::Config::max_pending_messages`]).
        max: usize,
    },
    /// The message is for a round too far ahead of the current one.
    #[error("message for round {found}, more than {max_ahead} rounds ahead of round {current}")]
    RoundTooFar {
        /// The current round.
        current: u32,
        /// The message's round.
        found: u32,
        /// The bound ([`crate::Config::max_round_lookahead`]).
        max_ahead: u32,
    },
    /// The message is for a round this validator has moved past and forgotten.
    #[error("message for round {found}, forgotten at round {current}")]
    StaleRound {
        /// The current round.
        current: u32,
        /// The message's round.
        found: u32,
    },
    /// The signature does not recover to a key.
    #[error("invalid signature: {0}")]
    BadSignature(SignatureError),
    /// The signer is not in this height's validator set.
    #[error("signer {key} is not a validator at this height")]
    UnknownSigner {
        /// The key that signed.
        key: PublicKey,
    },
    /// A proposal signed by a validator that is not the round's leader.
    #[error("proposal for round {round} by validator {found}; the leader is {expected}")]
    NotLeader {
        /// The round.
        round: u32,
        /// The leader's index.
        expected: u16,
        /// The signer's index.
        found: u16,
    },
    /// A proposal whose valid round is not below its round.
    #[error("proposal for round {round} claims valid round {pol_round}")]
    InvalidPolRound {
        /// The proposal's round.
        round: u32,
        /// The claimed valid round.
        pol_round: u32,
    },
    /// This exact message was already received.
    #[error("duplicate message")]
    Duplicate,
    /// The validator's votes for this step already count for the most values kept
    /// ([`crate::MAX_VALUES_PER_VOTER`]); it equivocated, and was reported for it.
    #[error("validator {index} already voted for {max} values in this step")]
    TooManyValues {
        /// The validator's index.
        index: u16,
        /// The bound.
        max: usize,
    },
    /// A certificate for the current height does not verify against its validator set.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(CertificateError),
    /// The height is already decided here.
    #[error("height {height} is already decided")]
    AlreadyDecided {
        /// The height.
        height: Height,
    },
    /// A built block or a verdict that the machine did not ask for (or no longer needs).
    #[error("unexpected answer about block {block_hash} at height {height}")]
    Unexpected {
        /// The height given.
        height: Height,
        /// The block given.
        block_hash: Hash,
    },
}

impl InputError {
    /// Whether a peer that sent this message misbehaved (so the network may lower its score):
    /// no honest validator signs a message with a bad signature, for the wrong chain, as a
    /// non-member or as the wrong leader. Everything else can reach an honest node by delay or
    /// duplication.
    pub fn is_misbehaviour(&self) -> bool {
        matches!(
            self,
            InputError::WrongChain { .. }
                | InputError::BadSignature(_)
                | InputError::UnknownSigner { .. }
                | InputError::NotLeader { .. }
                | InputError::InvalidPolRound { .. }
                | InputError::TooManyValues { .. }
                | InputError::InvalidCertificate(_)
        )
    }
}
