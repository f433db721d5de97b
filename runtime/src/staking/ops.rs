//! Staking transactions: register a validator, bond, unbond, withdraw.
//!
//! Each operation either succeeds or fails with a [`FailureReason`] for the receipt; the caller
//! runs it inside a checkpoint and rolls back every write of a failed one, so an operation may
//! write before it finds that it fails.

use altan_primitives::{
    Address, Balance, FailureReason, Height, PublicKey, StakingAction, StakingFailure,
};

use super::{
    BPS, Delegation, StakingConfig, Totals, Unbonding, UnbondingPool, ValidatorRecord,
    candidates_key, consensus_key_key, corrupt, delete, load, load_candidates, load_config,
    load_delegator, load_totals, load_validator, math, pending_reward, pool_key, save,
    save_delegator, shares_value, totals_key, validator_key,
};
use crate::accounts;
use crate::gas::{MAX_DELEGATIONS, MAX_UNBONDINGS};
use crate::state::{Overlay, StoreError};

/// Why an operation stopped: a rule it broke, or a storage failure that aborts the block.
pub(crate) enum OpError {
    /// The receipt's failure reason.
    Failed(FailureReason),
    /// Fatal for the block.
    Store(StoreError),
}

impl From<StoreError> for OpError {
    fn from(error: StoreError) -> Self {
        OpError::Store(error)
    }
}

impl From<StakingFailure> for OpError {
    fn from(failure: StakingFailure) -> Self {
        OpError::Failed(FailureReason::Staking(failure))
    }
}

/// Runs `action` for `sender` in the block at `height`. `Ok(Err(reason))` is a failed
/// operation (the caller rolls its writes back); `Err` aborts the block.
pub(crate) fn execute(
    overlay: &mut Overlay,
    sender: &Address,
    action: &StakingAction,
    height: Height,
) -> Result<Result<(), FailureReason>, StoreError> {
    let result = match action {
        StakingAction::RegisterValidator { consensus_key, commission_bps } => {
            register(overlay, sender, consensus_key, *commission_bps, height)
        }
        StakingAction::Bond { validator, amount } => {
            load_config(overlay).map_err(OpError::from).and_then(|config| {
                bond(overlay, &config, sender, validator, *amount, Funding::FromBalance)
            })
        }
        StakingAction::Unbond { validator, amount } => load_config(overlay)
            .map_err(OpError::from)
            .and_then(|config| unbond(overlay, &config, sender, validator, *amount, height)),
        StakingAction::Withdraw => withdraw(overlay, sender, height),
    };
    match result {
        Ok(()) => Ok(Ok(())),
        Err(OpError::Failed(reason)) => Ok(Err(reason)),
        Err(OpError::Store(error)) => Err(error),
    }
}

/// Registers `sender` as a validator with no stake yet.
pub(super) fn register(
    overlay: &mut Overlay,
    sender: &Address,
    consensus_key: &PublicKey,
    commission_bps: u16,
    height: Height,
) -> Result<(), OpError> {
    if u128::from(commission_bps) > BPS {
        return Err(StakingFailure::InvalidCommission.into());
    }
    if consensus_key.verifying_key().is_err() {
        return Err(StakingFailure::InvalidConsensusKey.into());
    }
    if load_validator(overlay, sender)?.is_some() {
        return Err(StakingFailure::AlreadyValidator.into());
    }
    let key_index = consensus_key_key(consensus_key);
    if overlay.get(&key_index)?.is_some() {
        return Err(StakingFailure::ConsensusKeyInUse.into());
    }
    let record = ValidatorRecord {
        consensus_key: *consensus_key,
        commission_bps,
        tokens: 0,
        shares: 0,
        reward_per_share: 0,
        jailed_at: None,
        registered_at: height,
    };
    save(overlay, validator_key(sender), &record);
    save(overlay, key_index, sender);
    Ok(())
}

/// Where bonded tokens come from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Funding {
    /// The sender's balance.
    FromBalance,
    /// Nowhere: genesis creates the stake of its validators.
    Genesis,
}

/// Bonds `amount` of `sender`'s tokens to `validator`.
pub(super) fn bond(
    overlay: &mut Overlay,
    config: &StakingConfig,
    sender: &Address,
    validator: &Address,
    amount: Balance,
    funding: Funding,
) -> Result<(), OpError> {
    if amount == 0 {
        return Err(StakingFailure::ZeroAmount.into());
    }
    let mut record = load_validator(overlay, validator)?.ok_or(StakingFailure::NotAValidator)?;
    if record.jailed_at.is_some() {
        return Err(StakingFailure::ValidatorJailed.into());
    }
    let was_eligible = record.is_eligible(config.params.min_validator_stake);
    let mut delegator = load_delegator(overlay, sender)?;
    if !delegator.delegations.contains_key(validator)
        && delegator.delegations.len() >= MAX_DELEGATIONS
    {
        return Err(StakingFailure::TooManyDelegations.into());
    }
    if funding == Funding::FromBalance && !debit(overlay, sender, amount)? {
        return Err(OpError::Failed(FailureReason::InsufficientBalance));
    }
    let mut totals = load_totals(overlay)?;
    let mut delegation = delegator.delegations.get(validator).cloned().unwrap_or_default();
    collect(overlay, &mut totals, sender, &record, &mut delegation)?;

    // A validator's shares are never fewer than its tokens (only slashing moves the rate), so
    // a bond always gets at least one share per token.
    let issued = if record.shares == 0 {
        amount
    } else {
        math::mul_div(amount, record.shares, record.tokens).ok_or(StakingFailure::Overflow)?
    };
    record.tokens = record.tokens.checked_add(amount).ok_or(StakingFailure::Overflow)?;
    record.shares = record.shares.checked_add(issued).ok_or(StakingFailure::Overflow)?;
    delegation.shares = delegation.shares.checked_add(issued).ok_or(StakingFailure::Overflow)?;
    totals.bonded = totals.bonded.checked_add(amount).ok_or(StakingFailure::Overflow)?;

    delegator.delegations.insert(*validator, delegation);
    save_delegator(overlay, sender, &delegator);
    save(overlay, totals_key(), &totals);
    save(overlay, validator_key(validator), &record);
    update_candidate(overlay, config, validator, was_eligible, &record)?;
    Ok(())
}

/// Starts unbonding `amount` of `sender`'s stake from `validator`.
fn unbond(
    overlay: &mut Overlay,
    config: &StakingConfig,
    sender: &Address,
    validator: &Address,
    amount: Balance,
    height: Height,
) -> Result<(), OpError> {
    if amount == 0 {
        return Err(StakingFailure::ZeroAmount.into());
    }
    let mut record = load_validator(overlay, validator)?.ok_or(StakingFailure::NotAValidator)?;
    let was_eligible = record.is_eligible(config.params.min_validator_stake);
    let mut delegator = load_delegator(overlay, sender)?;
    let mut delegation =
        delegator.delegations.get(validator).cloned().ok_or(StakingFailure::InsufficientBond)?;
    let value = shares_value(delegation.shares, &record)?;
    if amount > value {
        return Err(StakingFailure::InsufficientBond.into());
    }
    if delegator.unbondings.len() >= MAX_UNBONDINGS {
        return Err(StakingFailure::TooManyUnbondings.into());
    }
    let mut totals = load_totals(overlay)?;
    collect(overlay, &mut totals, sender, &record, &mut delegation)?;

    // Shares are rounded up against the leaver; the last one out takes the rounding dust.
    let (shares, tokens) = if amount == value && delegation.shares == record.shares {
        (record.shares, record.tokens)
    } else if amount == value {
        (delegation.shares, amount)
    } else {
        let shares = math::mul_div_ceil(amount, record.shares, record.tokens)
            .ok_or(StakingFailure::Overflow)?;
        (shares.min(delegation.shares), amount)
    };
    record.shares = record.shares.checked_sub(shares).ok_or_else(|| corrupt("unbond shares"))?;
    record.tokens = record.tokens.checked_sub(tokens).ok_or_else(|| corrupt("unbond tokens"))?;
    delegation.shares =
        delegation.shares.checked_sub(shares).ok_or_else(|| corrupt("unbond delegation"))?;

    let epoch = config.epoch_of(height);
    let key = pool_key(validator, epoch);
    let mut pool: UnbondingPool = load(overlay, &key)?.unwrap_or_default();
    let pool_shares = if pool.shares == 0 {
        tokens
    } else {
        math::mul_div(tokens, pool.shares, pool.tokens).ok_or(StakingFailure::Overflow)?
    };
    pool.tokens = pool.tokens.checked_add(tokens).ok_or(StakingFailure::Overflow)?;
    pool.shares = pool.shares.checked_add(pool_shares).ok_or(StakingFailure::Overflow)?;
    totals.bonded = totals.bonded.checked_sub(tokens).ok_or_else(|| corrupt("bonded total"))?;
    totals.unbonding = totals.unbonding.checked_add(tokens).ok_or(StakingFailure::Overflow)?;

    if delegation.shares == 0 {
        delegator.delegations.remove(validator);
    } else {
        delegator.delegations.insert(*validator, delegation);
    }
    delegator.unbondings.push(Unbonding {
        validator: *validator,
        epoch,
        shares: pool_shares,
        completes_at: height.saturating_add(config.params.unbonding_period),
    });
    save(overlay, key, &pool);
    save_delegator(overlay, sender, &delegator);
    save(overlay, totals_key(), &totals);
    save(overlay, validator_key(validator), &record);
    update_candidate(overlay, config, validator, was_eligible, &record)?;
    Ok(())
}

/// Pays `sender` every uncollected reward and every unbonding complete at `height`.
fn withdraw(overlay: &mut Overlay, sender: &Address, height: Height) -> Result<(), OpError> {
    let mut delegator = load_delegator(overlay, sender)?;
    let mut totals = load_totals(overlay)?;
    let mut paid: Balance = 0;
    let mut delegations = std::mem::take(&mut delegator.delegations);
    for (validator, delegation) in &mut delegations {
        let record = load_validator(overlay, validator)?
            .ok_or_else(|| corrupt("a delegation to an unregistered validator"))?;
        let reward = collect(overlay, &mut totals, sender, &record, delegation)?;
        paid = paid.saturating_add(reward);
    }
    delegator.delegations = delegations;

    let mut completed = false;
    let mut kept = Vec::with_capacity(delegator.unbondings.len());
    for unbonding in std::mem::take(&mut delegator.unbondings) {
        if unbonding.completes_at > height {
            kept.push(unbonding);
            continue;
        }
        completed = true;
        let key = pool_key(&unbonding.validator, unbonding.epoch);
        let mut pool: UnbondingPool =
            load(overlay, &key)?.ok_or_else(|| corrupt("an unbonding without its pool"))?;
        let tokens = if unbonding.shares == pool.shares {
            pool.tokens
        } else {
            math::mul_div(unbonding.shares, pool.tokens, pool.shares)
                .ok_or_else(|| corrupt("an unbonding holds more shares than its pool"))?
        };
        pool.tokens = pool.tokens.checked_sub(tokens).ok_or_else(|| corrupt("pool tokens"))?;
        pool.shares =
            pool.shares.checked_sub(unbonding.shares).ok_or_else(|| corrupt("pool shares"))?;
        if pool.shares == 0 {
            delete(overlay, key)?;
        } else {
            save(overlay, key, &pool);
        }
        totals.unbonding =
            totals.unbonding.checked_sub(tokens).ok_or_else(|| corrupt("unbonding total"))?;
        accounts::credit(overlay, sender, tokens)?;
        paid = paid.saturating_add(tokens);
    }
    delegator.unbondings = kept;
    if paid == 0 && !completed {
        return Err(StakingFailure::NothingToWithdraw.into());
    }
    save_delegator(overlay, sender, &delegator);
    save(overlay, totals_key(), &totals);
    Ok(())
}

/// Pays `delegator` the rewards its `delegation` to `validator` earned, out of the reward pool,
/// and moves its snapshot up to the validator's accumulator. Returns what was paid.
fn collect(
    overlay: &mut Overlay,
    totals: &mut Totals,
    delegator: &Address,
    validator: &ValidatorRecord,
    delegation: &mut Delegation,
) -> Result<Balance, StoreError> {
    let reward = pending_reward(delegation, validator)?;
    delegation.reward_per_share = validator.reward_per_share;
    if reward > 0 {
        totals.rewards_pool = totals
            .rewards_pool
            .checked_sub(reward)
            .ok_or_else(|| corrupt("the reward pool holds less than a pending reward"))?;
        accounts::credit(overlay, delegator, reward)?;
    }
    Ok(reward)
}

/// Takes `amount` from `address`'s balance; `false` (and no change) if it has less.
fn debit(overlay: &mut Overlay, address: &Address, amount: Balance) -> Result<bool, StoreError> {
    let mut account = accounts::load(overlay, address)?;
    let Some(rest) = account.balance.checked_sub(amount) else { return Ok(false) };
    account.balance = rest;
    accounts::store(overlay, address, &account);
    Ok(true)
}

/// Keeps the candidate index in step with `record`: eligible validators are in it, others not.
/// `was_eligible` is the record's eligibility before the change; the index (one record listing
/// every candidate) is only read and written when eligibility changes.
pub(super) fn update_candidate(
    overlay: &mut Overlay,
    config: &StakingConfig,
    address: &Address,
    was_eligible: bool,
    record: &ValidatorRecord,
) -> Result<(), StoreError> {
    let eligible = record.is_eligible(config.params.min_validator_stake);
    if eligible == was_eligible {
        return Ok(());
    }
    let mut candidates = load_candidates(overlay)?;
    let changed = if eligible { candidates.insert(*address) } else { candidates.remove(address) };
    if changed {
        save(overlay, candidates_key(), &candidates);
    }
    Ok(())
}
