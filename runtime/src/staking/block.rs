//! The staking work of a block: checking its parent certificate, proposer and evidence,
//! slashing, paying rewards and fixing the next epoch's validator set; and the genesis records.

use std::sync::Arc;

use altan_primitives::{
    Address, Balance, CertificateError, ChainId, ChainSpec, EvidenceError, FailureReason, Hash,
    Height, PublicKey, Validator, ValidatorSet,
};

use super::ops::{self, Funding, OpError};
use super::{
    BPS, Epoch, REWARD_SCALE, StakingConfig, Totals, UnbondingPool, View, config_key, corrupt,
    delete, load, load_candidates, load_config, load_set, load_totals, load_validator, math,
    pool_key, save, set_key, totals_key, validator_key,
};
use crate::accounts;
use crate::exec::{BlockContext, BlockError, GenesisError};
use crate::gas::MAX_BLOCK_EVIDENCE;
use crate::state::{Overlay, StateChanges, StateRead, StoreError};

use super::Reader;

/// Why a piece of evidence cannot be in a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceRejection {
    /// It does not prove an equivocation.
    #[error(transparent)]
    Invalid(#[from] EvidenceError),
    /// It is for another chain.
    #[error("evidence for chain {found} on chain {expected}")]
    WrongChain {
        /// This chain.
        expected: ChainId,
        /// The evidence's.
        found: ChainId,
    },
    /// The offence is above the block's height.
    #[error("offence at height {height} is above the block's height {block}")]
    FromTheFuture {
        /// The offence's height.
        height: Height,
        /// The block's.
        block: Height,
    },
    /// The offence is older than the evidence age allows.
    #[error("offence at height {height} is older than the oldest accepted, {oldest}")]
    Expired {
        /// The offence's height.
        height: Height,
        /// The oldest height evidence may prove at this block.
        oldest: Height,
    },
    /// The offending key is not in the validator set of the offence's epoch.
    #[error("{key} is not a validator of epoch {epoch}")]
    UnknownOffender {
        /// The key that signed both messages.
        key: PublicKey,
        /// The offence's epoch.
        epoch: Epoch,
    },
}

/// Why a block's consensus inputs (parent certificate, proposer, evidence) are invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    /// Height 0 is genesis; no block executes at it.
    #[error("no block executes at height 0")]
    GenesisHeight,
    /// The parent state does not hold the validator set of an epoch the block needs: it is not
    /// the state of the block's parent.
    #[error("the parent state has no validator set for epoch {epoch}")]
    MissingValidatorSet {
        /// The epoch.
        epoch: Epoch,
    },
    /// The parent was signed by validators, so the block must carry their certificate.
    #[error("the block carries no certificate for its parent")]
    MissingParentCertificate,
    /// The block carries a certificate where there is nothing to certify (height 1, or a
    /// parent epoch without validators).
    #[error("the block carries a parent certificate where none is expected")]
    UnexpectedParentCertificate,
    /// The certificate is for another block than the parent.
    #[error(
        "the certificate is for block {found_hash} at height {found_height}, \
         the parent is {expected_hash} at height {expected_height}"
    )]
    WrongCertificateTarget {
        /// The parent's height.
        expected_height: Height,
        /// The parent's hash.
        expected_hash: Hash,
        /// The certificate's height.
        found_height: Height,
        /// The certificate's block.
        found_hash: Hash,
    },
    /// The certificate does not verify against the parent epoch's validator set.
    #[error("invalid parent certificate: {0}")]
    InvalidParentCertificate(#[from] CertificateError),
    /// The proposer is not a validator of the block's epoch.
    #[error("proposer {proposer} is not a validator of epoch {epoch}")]
    ProposerNotInSet {
        /// The header's proposer.
        proposer: Address,
        /// The block's epoch.
        epoch: Epoch,
    },
    /// The block carries more evidence than a block may.
    #[error("{count} pieces of evidence; a block may carry {max}")]
    TooMuchEvidence {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A piece of evidence is invalid.
    #[error("evidence {index} is invalid: {reason}")]
    InvalidEvidence {
        /// Its position in the block.
        index: usize,
        /// Why.
        reason: EvidenceRejection,
    },
}

/// A block's consensus inputs, checked.
pub(crate) struct CheckedInputs {
    /// Whether the block's epoch has validators (a chain without any pays its proposer
    /// directly and carries no certificates).
    has_validators: bool,
    /// The signers of the parent certificate with their voting power, in set order.
    voters: Vec<(Address, Balance)>,
    /// Offenders proven by the evidence, with the epoch of each offence, in block order.
    offenders: Vec<(Address, Epoch)>,
}

fn block_error(error: impl Into<ConsensusError>) -> BlockError {
    BlockError::Consensus(error.into())
}

fn set_of(reader: &mut impl Reader, epoch: Epoch) -> Result<ValidatorSet, BlockError> {
    load_set(reader, epoch)?
        .ok_or_else(|| block_error(ConsensusError::MissingValidatorSet { epoch }))
}

/// Checks the block's parent certificate, proposer and evidence against the parent state,
/// without changing anything.
pub(crate) fn check_inputs(
    reader: &mut impl Reader,
    chain_id: ChainId,
    context: &BlockContext,
) -> Result<CheckedInputs, BlockError> {
    let config = load_config(reader)?;
    let height = context.height;
    let parent_height =
        height.checked_sub(1).ok_or_else(|| block_error(ConsensusError::GenesisHeight))?;
    let epoch = config.epoch_of(height);
    let current = set_of(reader, epoch)?;
    let parent = set_of(reader, config.epoch_of(parent_height))?;

    let mut voters = Vec::new();
    match (&context.parent_certificate, parent_height == 0 || parent.validators.is_empty()) {
        (None, true) => {}
        (Some(_), true) => return Err(block_error(ConsensusError::UnexpectedParentCertificate)),
        (None, false) => return Err(block_error(ConsensusError::MissingParentCertificate)),
        (Some(certificate), false) => {
            if certificate.height != parent_height || certificate.block_hash != context.parent_hash
            {
                return Err(block_error(ConsensusError::WrongCertificateTarget {
                    expected_height: parent_height,
                    expected_hash: context.parent_hash,
                    found_height: certificate.height,
                    found_hash: certificate.block_hash,
                }));
            }
            certificate.verify(chain_id, &parent).map_err(block_error)?;
            for signature in &certificate.signatures {
                // `verify` checked every index against the set.
                if let Some(v) = parent.validators.get(usize::from(signature.validator_index)) {
                    voters.push((v.address, v.power));
                }
            }
        }
    }

    let has_validators = !current.validators.is_empty();
    if has_validators && !current.validators.iter().any(|v| v.address == context.proposer) {
        return Err(block_error(ConsensusError::ProposerNotInSet {
            proposer: context.proposer,
            epoch,
        }));
    }

    if context.evidence.len() > MAX_BLOCK_EVIDENCE {
        return Err(block_error(ConsensusError::TooMuchEvidence {
            count: context.evidence.len(),
            max: MAX_BLOCK_EVIDENCE,
        }));
    }
    let oldest = height.saturating_sub(config.params.evidence_max_age);
    let mut offenders = Vec::with_capacity(context.evidence.len());
    for (index, evidence) in context.evidence.iter().enumerate() {
        let reject = |reason| block_error(ConsensusError::InvalidEvidence { index, reason });
        if evidence.chain_id() != chain_id {
            return Err(reject(EvidenceRejection::WrongChain {
                expected: chain_id,
                found: evidence.chain_id(),
            }));
        }
        let key = evidence.verify().map_err(|e| reject(EvidenceRejection::Invalid(e)))?;
        let offence_height = evidence.height();
        if offence_height > height {
            return Err(reject(EvidenceRejection::FromTheFuture {
                height: offence_height,
                block: height,
            }));
        }
        if offence_height < oldest {
            return Err(reject(EvidenceRejection::Expired { height: offence_height, oldest }));
        }
        let offence_epoch = config.epoch_of(offence_height);
        let set = load_set(reader, offence_epoch)?
            .ok_or_else(|| reject(EvidenceRejection::Expired { height: offence_height, oldest }))?;
        let offender = set.validators.iter().find(|v| v.consensus_key == key).ok_or_else(|| {
            reject(EvidenceRejection::UnknownOffender { key, epoch: offence_epoch })
        })?;
        offenders.push((offender.address, offence_epoch));
    }
    Ok(CheckedInputs { has_validators, voters, offenders })
}

/// The staking work at the end of a block: checks its inputs, slashes and jails the offenders
/// its evidence proves, mints the block reward and pays it with the block's `fees` to the
/// proposer and the parent's voters, and at an epoch's end fixes the next epoch's set.
pub(crate) fn finish_block(
    overlay: &mut Overlay,
    chain_id: ChainId,
    context: &BlockContext,
    fees: Balance,
) -> Result<(), BlockError> {
    let inputs = check_inputs(overlay, chain_id, context)?;
    let config = load_config(overlay)?;
    let before = load_totals(overlay)?;
    let mut totals = before.clone();
    for (offender, epoch) in &inputs.offenders {
        slash(overlay, &config, &mut totals, offender, *epoch, context.height)?;
    }

    let reward = config.params.block_reward;
    totals.minted = totals.minted.checked_add(reward).ok_or_else(|| corrupt("minted total"))?;
    let pot = reward.checked_add(fees).ok_or_else(|| corrupt("block reward and fees"))?;
    if inputs.has_validators {
        distribute(overlay, &config, &mut totals, &context.proposer, &inputs.voters, pot)?;
    } else if pot > 0 {
        accounts::credit(overlay, &context.proposer, pot)?;
    }

    if config.is_epoch_end(context.height) {
        end_epoch(overlay, &config, context.height)?;
    }
    if totals != before {
        save(overlay, totals_key(), &totals);
    }
    Ok(())
}

/// Splits `pot` between the proposer (its bonus) and the voters (by power); the rounding
/// remainder of the voters' share goes to the proposer too, so nothing is lost.
fn distribute(
    overlay: &mut Overlay,
    config: &StakingConfig,
    totals: &mut Totals,
    proposer: &Address,
    voters: &[(Address, Balance)],
    pot: Balance,
) -> Result<(), StoreError> {
    let bonus = math::mul_div(pot, config.params.proposer_bonus_bps.into(), BPS)
        .ok_or_else(|| corrupt("proposer bonus"))?;
    let voters_share = pot.saturating_sub(bonus);
    let signed = voters.iter().fold(0, |sum: Balance, (_, power)| sum.saturating_add(*power));
    let mut paid: Balance = 0;
    if signed > 0 {
        for (voter, power) in voters {
            let share = math::mul_div(voters_share, *power, signed)
                .ok_or_else(|| corrupt("voter share"))?;
            reward_validator(overlay, totals, voter, share)?;
            paid = paid.saturating_add(share);
        }
    }
    let proposer_share = pot.saturating_sub(paid);
    reward_validator(overlay, totals, proposer, proposer_share)
}

/// Pays `amount` to `address`'s validator: its commission to the operator's account at once,
/// the rest to its delegators through the reward accumulator.
fn reward_validator(
    overlay: &mut Overlay,
    totals: &mut Totals,
    address: &Address,
    amount: Balance,
) -> Result<(), StoreError> {
    if amount == 0 {
        return Ok(());
    }
    let mut record =
        load_validator(overlay, address)?.ok_or_else(|| corrupt("a set member is unregistered"))?;
    let commission = math::mul_div(amount, record.commission_bps.into(), BPS)
        .ok_or_else(|| corrupt("commission"))?;
    let rest = amount.saturating_sub(commission);
    // With no delegators the operator takes everything. The accumulator only fails to move if
    // a reward per share would not fit 128 bits (a huge reward over a handful of shares); the
    // operator takes that reward too rather than lose it.
    let accumulated = if record.shares == 0 || rest == 0 {
        None
    } else {
        math::mul_div(rest, REWARD_SCALE, record.shares)
            .and_then(|per_share| record.reward_per_share.checked_add(per_share))
    };
    let to_operator = match accumulated {
        Some(per_share) => {
            record.reward_per_share = per_share;
            totals.rewards_pool =
                totals.rewards_pool.checked_add(rest).ok_or_else(|| corrupt("reward pool"))?;
            save(overlay, validator_key(address), &record);
            commission
        }
        None => amount,
    };
    accounts::credit(overlay, address, to_operator)
}

/// Burns the slash fraction of `address`'s bonded tokens and of its unbonding pools from the
/// offence's epoch on, and jails it. A validator already jailed has been punished: later
/// evidence against it changes nothing.
fn slash(
    overlay: &mut Overlay,
    config: &StakingConfig,
    totals: &mut Totals,
    address: &Address,
    offence_epoch: Epoch,
    height: Height,
) -> Result<(), StoreError> {
    let mut record = load_validator(overlay, address)?
        .ok_or_else(|| corrupt("an offender in a set is unregistered"))?;
    if record.jailed_at.is_some() {
        return Ok(());
    }
    let was_eligible = record.is_eligible(config.params.min_validator_stake);
    let fraction = u128::from(config.params.slash_fraction_bps);
    let cut = math::mul_div(record.tokens, fraction, BPS).ok_or_else(|| corrupt("slash"))?;
    record.tokens = record.tokens.saturating_sub(cut);
    totals.bonded = totals.bonded.checked_sub(cut).ok_or_else(|| corrupt("bonded total"))?;
    let mut burnt = cut;
    let mut epoch = offence_epoch;
    while epoch <= config.epoch_of(height) {
        let key = pool_key(address, epoch);
        if let Some(mut pool) = load::<UnbondingPool>(overlay, &key)? {
            let cut = math::mul_div(pool.tokens, fraction, BPS).ok_or_else(|| corrupt("slash"))?;
            pool.tokens = pool.tokens.saturating_sub(cut);
            totals.unbonding =
                totals.unbonding.checked_sub(cut).ok_or_else(|| corrupt("unbonding total"))?;
            burnt = burnt.saturating_add(cut);
            save(overlay, key, &pool);
        }
        let Some(next) = epoch.checked_add(1) else { break };
        epoch = next;
    }
    totals.slashed = totals.slashed.checked_add(burnt).ok_or_else(|| corrupt("slashed total"))?;
    record.jailed_at = Some(height);
    save(overlay, validator_key(address), &record);
    ops::update_candidate(overlay, config, address, was_eligible, &record)
}

/// At the end of the last block of an epoch: fixes the next epoch's set and drops the set that
/// no evidence or certificate can need any more.
fn end_epoch(
    overlay: &mut Overlay,
    config: &StakingConfig,
    height: Height,
) -> Result<(), StoreError> {
    let current = config.epoch_of(height);
    let next = current.saturating_add(1);
    let mut set = select(overlay, config)?;
    if set.validators.is_empty() {
        // Nobody is eligible: keep the current validators rather than halt the chain.
        set = load_set(overlay, current)?.unwrap_or_default();
    }
    save(overlay, set_key(next), &set);

    // From the next epoch on, blocks need the sets of the epochs of their parent (for the
    // certificate) and of offences down to `evidence_max_age` blocks back. The oldest of those
    // advances by exactly one epoch per epoch, so dropping one set per epoch keeps the rest.
    let age = config.params.evidence_max_age.max(1);
    let oldest_needed = config.epoch_of(config.first_height(next).saturating_sub(age));
    if let Some(stale) = oldest_needed.checked_sub(1) {
        delete(overlay, set_key(stale))?;
    }
    Ok(())
}

/// The top `max_validators` eligible validators by stake; ties go to the lower address. The
/// order of the set is that order, so it depends only on the records, never on the order of
/// the operations that made them.
fn select(reader: &mut impl Reader, config: &StakingConfig) -> Result<ValidatorSet, StoreError> {
    let candidates = load_candidates(reader)?;
    let mut validators = Vec::with_capacity(candidates.len());
    for address in candidates {
        let record = load_validator(reader, &address)?
            .ok_or_else(|| corrupt("a candidate is unregistered"))?;
        if record.is_eligible(config.params.min_validator_stake) {
            validators.push(Validator {
                address,
                consensus_key: record.consensus_key,
                power: record.tokens,
            });
        }
    }
    validators.sort_by(|a, b| b.power.cmp(&a.power).then_with(|| a.address.cmp(&b.address)));
    validators.truncate(usize::from(config.params.max_validators));
    Ok(ValidatorSet { validators })
}

/// A state with nothing in it, under genesis.
struct Empty;

impl StateRead for Empty {
    fn get(&self, _: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
}

fn invalid(reason: &'static str) -> GenesisError {
    GenesisError::InvalidStakingParams { reason }
}

/// The staking records of `spec`'s genesis: the configuration, the genesis validators
/// registered and self-bonded with their stake (created at genesis, not taken from an account),
/// and the epoch-0 set (and epoch 1's, if an epoch is one block long).
pub(crate) fn genesis(spec: &ChainSpec) -> Result<StateChanges, GenesisError> {
    let params = &spec.staking;
    if spec.epoch_length == 0 {
        return Err(invalid("epoch_length must be at least 1"));
    }
    if params.max_validators == 0 {
        return Err(invalid("max_validators must be at least 1"));
    }
    if u128::from(params.proposer_bonus_bps) > BPS || u128::from(params.slash_fraction_bps) > BPS {
        return Err(invalid("proposer_bonus_bps and slash_fraction_bps must be at most 10,000"));
    }
    if params.evidence_max_age.saturating_add(spec.epoch_length) > params.unbonding_period {
        return Err(invalid("evidence_max_age + epoch_length must not exceed unbonding_period"));
    }
    if spec.validators.len() > usize::from(params.max_validators) {
        return Err(GenesisError::TooManyValidators {
            count: spec.validators.len(),
            max: params.max_validators,
        });
    }

    let config = StakingConfig { epoch_length: spec.epoch_length, params: params.clone() };
    let mut overlay = Overlay::new(Arc::new(Empty));
    save(&mut overlay, config_key(), &config);
    save(&mut overlay, totals_key(), &Totals::default());
    for validator in &spec.validators {
        let address = validator.address;
        if validator.stake < params.min_validator_stake || validator.stake == 0 {
            return Err(GenesisError::ValidatorStakeTooLow {
                address,
                stake: validator.stake,
                min: params.min_validator_stake,
            });
        }
        let genesis_error = |error: OpError| match error {
            OpError::Failed(FailureReason::Staking(
                altan_primitives::StakingFailure::AlreadyValidator,
            )) => GenesisError::DuplicateValidator(address),
            OpError::Failed(reason) => GenesisError::InvalidValidator { address, reason },
            OpError::Store(error) => GenesisError::Store(error.to_string()),
        };
        ops::register(
            &mut overlay,
            &address,
            &validator.consensus_key,
            validator.commission_bps,
            0,
        )
        .map_err(genesis_error)?;
        ops::bond(&mut overlay, &config, &address, &address, validator.stake, Funding::Genesis)
            .map_err(genesis_error)?;
    }
    let set = select(&mut overlay, &config).map_err(|e| GenesisError::Store(e.to_string()))?;
    save(&mut overlay, set_key(0), &set);
    if config.is_epoch_end(0) {
        end_epoch(&mut overlay, &config, 0).map_err(|e| GenesisError::Store(e.to_string()))?;
    }
    Ok(overlay.into_changes())
}

/// Reads through a committed state: the block checks of [`crate::exec::Runtime`] on a parent
/// state without an overlay.
pub(crate) fn check_inputs_on(
    state: &dyn StateRead,
    chain_id: ChainId,
    context: &BlockContext,
) -> Result<(), BlockError> {
    check_inputs(&mut View(state), chain_id, context).map(|_| ())
}
