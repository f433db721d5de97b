//! Stake-weighted leader selection.
//!
//! The leader of `(height, round)` is drawn from the epoch's validator set with probability
//! proportional to stake, by a hash of the epoch's seed, the height and the round: every node
//! that knows the seed computes the same schedule, and nobody can steer it after the seed is
//! fixed. The draw is exact (no modulo bias): a 128-bit number is taken from the hash and
//! redrawn, with a counter, when it falls in the incomplete last multiple of the total stake.

use alloc::vec::Vec;
use core::ops::RangeInclusive;

use altan_primitives::{Address, Balance, Hash, Height, ValidatorSet, blake3_tagged, domain};

use crate::ValidatorSetError;

/// The most heights [`LeaderSchedule::schedule`] computes at once, so that an RPC request for a
/// schedule is bounded.
pub const MAX_SCHEDULE_SPAN: u64 = 10_000;

/// The leader schedule of an epoch: its validators' cumulative stake and the epoch's seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderSchedule {
    seed: Hash,
    /// `cumulative[i]` is the power of validators `0..=i`.
    cumulative: Vec<Balance>,
    addresses: Vec<Address>,
}

/// One entry of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduledLeader {
    /// The height.
    pub height: Height,
    /// The round.
    pub round: u32,
    /// The leader's index in the validator set.
    pub index: u16,
    /// The leader's account.
    pub address: Address,
}

impl LeaderSchedule {
    /// The schedule of `set` under `seed`. The node passes the hash of the last block of the
    /// previous epoch as the seed (the genesis hash in epoch 0).
    pub fn new(set: &ValidatorSet, seed: Hash) -> Result<LeaderSchedule, ValidatorSetError> {
        check_set(set)?;
        let mut cumulative = Vec::with_capacity(set.validators.len());
        let mut total: Balance = 0;
        for validator in &set.validators {
            total = total.checked_add(validator.power).ok_or(ValidatorSetError::PowerOverflow)?;
            cumulative.push(total);
        }
        if total == 0 {
            return Err(ValidatorSetError::NoPower);
        }
        let addresses = set.validators.iter().map(|v| v.address).collect();
        Ok(LeaderSchedule { seed, cumulative, addresses })
    }

    /// The seed.
    pub fn seed(&self) -> Hash {
        self.seed
    }

    /// The total power of the set.
    pub fn total_power(&self) -> Balance {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The index in the validator set of the leader of `(height, round)`.
    pub fn leader(&self, height: Height, round: u32) -> u16 {
        let total = self.total_power();
        // The largest multiple of `total` that fits: draws at or above it are redrawn, so every
        // residue is equally likely. `total` >= 1 was checked at construction.
        let accepted = u128::MAX.checked_div(total).unwrap_or(0).saturating_mul(total);
        let mut counter: u32 = 0;
        let point = loop {
            let hash = blake3_tagged(
                domain::LEADER,
                &[
                    self.seed.as_bytes(),
                    &height.to_le_bytes(),
                    &round.to_le_bytes(),
                    &counter.to_le_bytes(),
                ],
            );
            let mut bytes = [0; 16];
            bytes.copy_from_slice(&hash.as_bytes()[..16]);
            let draw = u128::from_le_bytes(bytes);
            // The chance of a redraw is below 1/2 each time, so the loop ends; the counter
            // saturating is out of reach.
            if draw < accepted {
                break draw.checked_rem(total).unwrap_or(0);
            }
            counter = counter.saturating_add(1);
        };
        let index = self.cumulative.partition_point(|&sum| sum <= point);
        // `point < total == cumulative.last()`, so `index < len <= u16::MAX + 1`.
        u16::try_from(index).unwrap_or(u16::MAX)
    }

    /// The leaders of `heights` in `round`, for RPC. At most [`MAX_SCHEDULE_SPAN`] heights.
    pub fn schedule(
        &self,
        heights: RangeInclusive<Height>,
        round: u32,
    ) -> Result<Vec<ScheduledLeader>, ScheduleSpanError> {
        let span = heights.end().saturating_sub(*heights.start()).saturating_add(1);
        if heights.is_empty() || span > MAX_SCHEDULE_SPAN {
            return Err(ScheduleSpanError { start: *heights.start(), end: *heights.end() });
        }
        Ok(heights
            .map(|height| {
                let index = self.leader(height, round);
                ScheduledLeader {
                    height,
                    round,
                    index,
                    address: self.addresses[usize::from(index)],
                }
            })
            .collect())
    }
}

/// A schedule was asked for an empty range or for more than [`MAX_SCHEDULE_SPAN`] heights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("heights {start}..={end} are empty or span more than {MAX_SCHEDULE_SPAN}")]
pub struct ScheduleSpanError {
    /// The first height asked for.
    pub start: Height,
    /// The last height asked for.
    pub end: Height,
}

/// The checks every validator set must pass before consensus runs on it.
pub(crate) fn check_set(set: &ValidatorSet) -> Result<(), ValidatorSetError> {
    if set.validators.is_empty() {
        return Err(ValidatorSetError::Empty);
    }
    let max = usize::from(u16::MAX).saturating_add(1);
    if set.validators.len() > max {
        return Err(ValidatorSetError::TooMany { len: set.validators.len(), max });
    }
    let mut keys = alloc::collections::BTreeSet::new();
    for validator in &set.validators {
        if !keys.insert(validator.consensus_key) {
            return Err(ValidatorSetError::DuplicateKey { key: validator.consensus_key });
        }
    }
    Ok(())
}
