//! Native staking: validators, delegation, unbonding, epochs, rewards and slashing.
//!
//! Everything lives in the Merkle state as SCALE-encoded system records (keys from
//! [`StateKey::staking`]), so every rule here is part of the state root:
//!
//! | kind | parts | record |
//! |------|-------|--------|
//! | `config` | | [`StakingConfig`], written at genesis |
//! | `totals` | | [`Totals`]: bonded, unbonding, reward pool, minted, slashed |
//! | `validator/` | address | [`ValidatorRecord`] |
//! | `consensus-key/` | 33-byte key | the validator's address (a key serves one validator) |
//! | `candidates` | | the set of validators eligible for the next epoch (`BTreeSet<Address>`) |
//! | `delegator/` | address | [`DelegatorRecord`]: bonds and unbondings of one account |
//! | `pool/` | validator, epoch (BE) | [`UnbondingPool`]: tokens unbonded from a validator in an epoch |
//! | `set/` | epoch (BE) | the epoch's [`ValidatorSet`] |
//!
//! Stake is accounted in shares, so that a slash or a payout touches one record and not every
//! delegator: a validator holds `tokens` against `shares`, a delegation holds shares, and a
//! delegation is worth `shares * tokens / total shares`. Unbonding tokens go to a pool per
//! (validator, epoch) with shares of its own, so that a slash reaches them in one write too.
//! Rewards use an accumulator of reward per share (F1 fee distribution): a payout adds to the
//! validator's accumulator, and a delegator collects `shares * (accumulator now - accumulator
//! when it last collected)` whenever its bond changes or it withdraws. A block's cost therefore
//! depends on the number of validators it pays, never on the number of delegators.
//!
//! Transactions ([`StakingAction`](altan_primitives::StakingAction)) run in `execute`; the end
//! of every block (certificate and evidence checks, slashing, rewards, the next epoch's set) in
//! `finish_block`. The rules, with the reasons for them, are in `docs/staking.md`.

mod block;
pub(crate) mod math;
mod ops;

use std::collections::{BTreeMap, BTreeSet};

use altan_primitives::{Address, Balance, Height, PublicKey, StakingParams, ValidatorSet};
use parity_scale_codec::{Decode, Encode};

use crate::state::{Overlay, StateKey, StateRead, StoreError};

pub use block::{ConsensusError, EvidenceRejection};
pub(crate) use block::{check_inputs_on, finish_block, genesis};
pub(crate) use ops::execute;

/// Rewards per share are kept multiplied by this (10^18), so that a reward much smaller than the
/// shares it is spread over still moves the accumulator.
pub const REWARD_SCALE: u128 = 1_000_000_000_000_000_000;

/// Basis points in one whole.
pub const BPS: u128 = 10_000;

/// An epoch number: epoch `e` is heights `e * epoch_length ..= (e + 1) * epoch_length - 1`
/// (genesis is height 0 of epoch 0).
pub type Epoch = u64;

/// The chain's staking configuration, written at genesis.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct StakingConfig {
    /// Blocks per epoch (at least 1).
    pub epoch_length: u64,
    /// The staking parameters of the chain spec.
    pub params: StakingParams,
}

impl StakingConfig {
    /// The epoch containing `height`.
    pub fn epoch_of(&self, height: Height) -> Epoch {
        height.checked_div(self.epoch_length).unwrap_or(0)
    }

    /// The first height of `epoch` (saturating at `u64::MAX`).
    pub fn first_height(&self, epoch: Epoch) -> Height {
        epoch.saturating_mul(self.epoch_length)
    }

    /// Whether `height` is the last block of its epoch: the one at whose end the next epoch's
    /// validator set is fixed.
    pub fn is_epoch_end(&self, height: Height) -> bool {
        height.checked_add(1).and_then(|next| next.checked_rem(self.epoch_length)) == Some(0)
    }
}

/// Chain-wide staking sums. With the accounts' balances they account for every token:
/// `sum(balances) + bonded + unbonding + rewards_pool = genesis supply + minted - slashed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Totals {
    /// Tokens bonded to validators (the sum of their `tokens`).
    pub bonded: Balance,
    /// Tokens unbonding or unbonded and not yet withdrawn (the sum of the pools' `tokens`).
    pub unbonding: Balance,
    /// Rewards credited to delegators and not yet collected, plus rounding dust.
    pub rewards_pool: Balance,
    /// Block rewards minted since genesis.
    pub minted: Balance,
    /// Tokens burnt by slashing since genesis.
    pub slashed: Balance,
}

/// A registered validator.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ValidatorRecord {
    /// The key its consensus messages are signed with.
    pub consensus_key: PublicKey,
    /// The share of its rewards it keeps before delegators are paid, in basis points.
    pub commission_bps: u16,
    /// Tokens bonded to it (self-bond and delegations, after slashing).
    pub tokens: Balance,
    /// Shares issued to its delegators; a delegation is worth `shares * tokens / self.shares`.
    pub shares: Balance,
    /// Rewards per share paid to its delegators since registration, times [`REWARD_SCALE`].
    pub reward_per_share: u128,
    /// The height at which it was jailed for equivocation; a jailed validator is never chosen
    /// again and takes no new bonds.
    pub jailed_at: Option<Height>,
    /// The height of the block that registered it (0 for genesis validators).
    pub registered_at: Height,
}

impl ValidatorRecord {
    /// Whether it can be chosen for an epoch: not jailed, and at least the minimum stake.
    pub fn is_eligible(&self, min_stake: Balance) -> bool {
        self.jailed_at.is_none() && self.tokens > 0 && self.tokens >= min_stake
    }
}

/// A delegator's bond to one validator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Delegation {
    /// Its shares of the validator's tokens.
    pub shares: Balance,
    /// The validator's reward per share when the delegator last collected.
    pub reward_per_share: u128,
}

/// Tokens on their way out of a validator.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Unbonding {
    /// The validator unbonded from.
    pub validator: Address,
    /// The epoch of the unbond: its tokens are in the pool of (validator, epoch).
    pub epoch: Epoch,
    /// Its shares of that pool.
    pub shares: Balance,
    /// The first height at which it can be withdrawn.
    pub completes_at: Height,
}

/// Everything one account has staked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct DelegatorRecord {
    /// Bonds by validator (at most [`crate::gas::MAX_DELEGATIONS`]).
    pub delegations: BTreeMap<Address, Delegation>,
    /// Unbondings in the order they started (at most [`crate::gas::MAX_UNBONDINGS`]).
    pub unbondings: Vec<Unbonding>,
}

/// The tokens unbonded from one validator during one epoch, held until withdrawn.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct UnbondingPool {
    /// Tokens in the pool (after slashing).
    pub tokens: Balance,
    /// Shares of the pool held by unbondings.
    pub shares: Balance,
}

/// One bond as the node shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondView {
    /// The validator.
    pub validator: Address,
    /// The delegation's shares.
    pub shares: Balance,
    /// What the shares are worth now.
    pub tokens: Balance,
    /// Rewards earned and not yet collected.
    pub pending_reward: Balance,
}

/// One unbonding as the node shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbondingView {
    /// The validator.
    pub validator: Address,
    /// What it is worth now (less if the validator was slashed since).
    pub tokens: Balance,
    /// The first height at which it can be withdrawn.
    pub completes_at: Height,
}

/// What an account has staked, as the node shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelegatorView {
    /// Its bonds, by validator address.
    pub bonds: Vec<BondView>,
    /// Its unbondings, in the order they started.
    pub unbondings: Vec<UnbondingView>,
}

fn config_key() -> Vec<u8> {
    StateKey::staking(b"config", &[])
}

fn totals_key() -> Vec<u8> {
    StateKey::staking(b"totals", &[])
}

fn validator_key(address: &Address) -> Vec<u8> {
    StateKey::staking(b"validator/", &[address.as_bytes()])
}

fn consensus_key_key(key: &PublicKey) -> Vec<u8> {
    StateKey::staking(b"consensus-key/", &[&key.0])
}

fn candidates_key() -> Vec<u8> {
    StateKey::staking(b"candidates", &[])
}

fn delegator_key(address: &Address) -> Vec<u8> {
    StateKey::staking(b"delegator/", &[address.as_bytes()])
}

fn pool_key(validator: &Address, epoch: Epoch) -> Vec<u8> {
    StateKey::staking(b"pool/", &[validator.as_bytes(), &epoch.to_be_bytes()])
}

fn set_key(epoch: Epoch) -> Vec<u8> {
    StateKey::staking(b"set/", &[&epoch.to_be_bytes()])
}

/// Reads records: from an [`Overlay`] while executing, from a committed state for queries.
pub(crate) trait Reader {
    /// The value of `key`, or `None`.
    fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

impl Reader for Overlay {
    fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(key)
    }
}

/// A committed state, read-only.
pub(crate) struct View<'a>(pub(crate) &'a dyn StateRead);

impl Reader for View<'_> {
    fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key)
    }
}

fn load<T: Decode>(reader: &mut impl Reader, key: &[u8]) -> Result<Option<T>, StoreError> {
    match reader.read(key)? {
        Some(bytes) => T::decode(&mut bytes.as_slice())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("staking record {}: {e}", hex_key(key)))),
        None => Ok(None),
    }
}

fn save<T: Encode>(overlay: &mut Overlay, key: Vec<u8>, value: &T) {
    overlay.set(key, Some(value.encode()));
}

/// Deletes `key` if it has a value, so that no deletion of an absent key reaches the state.
fn delete(overlay: &mut Overlay, key: Vec<u8>) -> Result<(), StoreError> {
    if overlay.get(&key)?.is_some() {
        overlay.set(key, None);
    }
    Ok(())
}

fn hex_key(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A broken invariant of the staking records: the state is corrupt, since execution never
/// writes records that break one.
fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("staking: {what}"))
}

fn load_config(reader: &mut impl Reader) -> Result<StakingConfig, StoreError> {
    load(reader, &config_key())?.ok_or_else(|| corrupt("no staking config (was genesis written?)"))
}

fn load_totals(reader: &mut impl Reader) -> Result<Totals, StoreError> {
    Ok(load(reader, &totals_key())?.unwrap_or_default())
}

fn load_validator(
    reader: &mut impl Reader,
    address: &Address,
) -> Result<Option<ValidatorRecord>, StoreError> {
    load(reader, &validator_key(address))
}

fn load_delegator(
    reader: &mut impl Reader,
    address: &Address,
) -> Result<DelegatorRecord, StoreError> {
    Ok(load(reader, &delegator_key(address))?.unwrap_or_default())
}

fn save_delegator(overlay: &mut Overlay, address: &Address, record: &DelegatorRecord) {
    let value = (*record != DelegatorRecord::default()).then(|| record.encode());
    overlay.set(delegator_key(address), value);
}

fn load_candidates(reader: &mut impl Reader) -> Result<BTreeSet<Address>, StoreError> {
    Ok(load(reader, &candidates_key())?.unwrap_or_default())
}

fn load_set(reader: &mut impl Reader, epoch: Epoch) -> Result<Option<ValidatorSet>, StoreError> {
    load(reader, &set_key(epoch))
}

/// What a delegation of `shares` to `validator` is worth now.
fn shares_value(shares: Balance, validator: &ValidatorRecord) -> Result<Balance, StoreError> {
    if shares == 0 {
        return Ok(0);
    }
    math::mul_div(shares, validator.tokens, validator.shares)
        .ok_or_else(|| corrupt("a delegation holds more shares than its validator"))
}

/// Rewards `delegation` has earned from `validator` and not collected.
fn pending_reward(
    delegation: &Delegation,
    validator: &ValidatorRecord,
) -> Result<Balance, StoreError> {
    let per_share = validator
        .reward_per_share
        .checked_sub(delegation.reward_per_share)
        .ok_or_else(|| corrupt("a delegation's reward snapshot is ahead of its validator"))?;
    math::mul_div(delegation.shares, per_share, REWARD_SCALE)
        .ok_or_else(|| corrupt("a pending reward exceeds any balance"))
}

/// The chain's staking configuration.
pub fn config(state: &dyn StateRead) -> Result<StakingConfig, StoreError> {
    load_config(&mut View(state))
}

/// The chain-wide staking sums.
pub fn totals(state: &dyn StateRead) -> Result<Totals, StoreError> {
    load_totals(&mut View(state))
}

/// The epoch containing `height`.
pub fn epoch_of(state: &dyn StateRead, height: Height) -> Result<Epoch, StoreError> {
    Ok(config(state)?.epoch_of(height))
}

/// A validator's record, if `address` is registered.
pub fn validator(
    state: &dyn StateRead,
    address: &Address,
) -> Result<Option<ValidatorRecord>, StoreError> {
    load_validator(&mut View(state), address)
}

/// The validator set of `epoch`, if the state keeps it. A state at height `h` keeps the sets of
/// the epochs whose evidence may still land, the current epoch's, and (when `h` is the last
/// block of its epoch) the next epoch's.
pub fn validator_set(
    state: &dyn StateRead,
    epoch: Epoch,
) -> Result<Option<ValidatorSet>, StoreError> {
    load_set(&mut View(state), epoch)
}

/// The validator set of the epoch containing `height`, if the state keeps it (see
/// [`validator_set`]): from the state of block `h`, the set that signs block `h + 1`.
pub fn validator_set_at(
    state: &dyn StateRead,
    height: Height,
) -> Result<Option<ValidatorSet>, StoreError> {
    let mut view = View(state);
    let epoch = load_config(&mut view)?.epoch_of(height);
    load_set(&mut view, epoch)
}

/// The validators eligible for the next epoch's set, by address.
pub fn candidates(state: &dyn StateRead) -> Result<Vec<Address>, StoreError> {
    Ok(load_candidates(&mut View(state))?.into_iter().collect())
}

/// What `address` has staked: its bonds with their value and uncollected rewards, and its
/// unbondings with their value now.
pub fn delegator(state: &dyn StateRead, address: &Address) -> Result<DelegatorView, StoreError> {
    let mut view = View(state);
    let record = load_delegator(&mut view, address)?;
    let mut bonds = Vec::with_capacity(record.delegations.len());
    for (validator, delegation) in &record.delegations {
        let v = load_validator(&mut view, validator)?
            .ok_or_else(|| corrupt("a delegation to an unregistered validator"))?;
        bonds.push(BondView {
            validator: *validator,
            shares: delegation.shares,
            tokens: shares_value(delegation.shares, &v)?,
            pending_reward: pending_reward(delegation, &v)?,
        });
    }
    let mut unbondings = Vec::with_capacity(record.unbondings.len());
    for unbonding in &record.unbondings {
        let pool: UnbondingPool =
            load(&mut view, &pool_key(&unbonding.validator, unbonding.epoch))?
                .ok_or_else(|| corrupt("an unbonding without its pool"))?;
        let tokens = math::mul_div(unbonding.shares, pool.tokens, pool.shares)
            .ok_or_else(|| corrupt("an unbonding holds more shares than its pool"))?;
        unbondings.push(UnbondingView {
            validator: unbonding.validator,
            tokens,
            completes_at: unbonding.completes_at,
        });
    }
    Ok(DelegatorView { bonds, unbondings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_split_heights_into_runs_of_epoch_length() {
        let config = StakingConfig { epoch_length: 4, params: StakingParams::default() };
        let epochs: Vec<Epoch> = (0..9).map(|h| config.epoch_of(h)).collect();
        assert_eq!(epochs, [0, 0, 0, 0, 1, 1, 1, 1, 2]);
        let ends: Vec<Height> = (0..12).filter(|&h| config.is_epoch_end(h)).collect();
        assert_eq!(ends, [3, 7, 11]);
        assert_eq!(config.first_height(2), 8);
        assert_eq!(config.first_height(u64::MAX), u64::MAX);
        assert!(!config.is_epoch_end(u64::MAX), "no height follows the last");
        let single = StakingConfig { epoch_length: 1, ..config };
        assert!(single.is_epoch_end(0) && single.is_epoch_end(1));
        assert_eq!(single.epoch_of(5), 5);
    }

    #[test]
    fn staking_keys_of_different_kinds_never_collide() {
        let address = Address([7; 20]);
        let keys = [
            config_key(),
            totals_key(),
            candidates_key(),
            validator_key(&address),
            delegator_key(&address),
            pool_key(&address, 3),
            set_key(3),
            consensus_key_key(&PublicKey([2; 33])),
        ];
        let unique: BTreeSet<&Vec<u8>> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len());
        assert!(keys.iter().all(|k| k.starts_with(&StateKey::system(b"staking/"))));
    }
}
