//! Stake-weighted leader selection: deterministic, proportional to stake, and bounded for RPC.

use altan_consensus::{LeaderSchedule, MAX_SCHEDULE_SPAN, ValidatorSetError};
use altan_primitives::{Balance, ValidatorSet, blake3};

use crate::common::Net;

const HEIGHTS: u64 = 10_000;

/// Each validator's share of the round-0 leaderships of 10,000 heights is within 2 percentage
/// points of its share of stake. A share p over N draws has a standard deviation of
/// sqrt(p(1-p)/N) <= 0.5 points here, so 2 points is four standard deviations: a schedule that
/// ignored stake (or weighted it wrongly) fails, a fair one passes for any seed but the rarest.
#[test]
fn shares_of_proposals_follow_shares_of_stake() {
    for powers in [
        vec![1, 2, 3, 4],
        vec![70, 10, 10, 5, 5],
        vec![1_000_000_000_000_000_000, 3_000_000_000_000_000_000, 1, 6_000_000_000_000_000_000],
        (1..=20).collect::<Vec<Balance>>(),
    ] {
        let net = Net::new(&powers);
        let total: Balance = powers.iter().sum();
        let mut counts = vec![0u64; powers.len()];
        for height in 1..=HEIGHTS {
            counts[net.leader(height, 0)] += 1;
        }
        for (i, (&count, &power)) in counts.iter().zip(&powers).enumerate() {
            let share = count as f64 / HEIGHTS as f64;
            let stake = power as f64 / total as f64;
            assert!(
                (share - stake).abs() <= 0.02,
                "validator {i} of {powers:?}: {share:.4} of proposals for {stake:.4} of stake"
            );
        }
    }
}

/// Later rounds of one height draw independently: over 10,000 (height, round 3) pairs the
/// shares follow stake as well.
#[test]
fn later_rounds_follow_stake_too() {
    let powers = [5, 15, 30, 50];
    let net = Net::new(&powers);
    let mut counts = [0u64; 4];
    for height in 1..=HEIGHTS {
        counts[net.leader(height, 3)] += 1;
    }
    for (count, power) in counts.iter().zip(powers) {
        let share = *count as f64 / HEIGHTS as f64;
        assert!((share - power as f64 / 100.0).abs() <= 0.02, "{counts:?}");
    }
}

#[test]
fn the_schedule_depends_only_on_the_set_and_the_seed() {
    let net = Net::new(&[3, 1, 4, 1, 5]);
    let again = LeaderSchedule::new(&net.set, net.seed).unwrap();
    let other = LeaderSchedule::new(&net.set, blake3(b"another seed")).unwrap();
    let mine: Vec<u16> = (1..200).map(|h| net.leaders.leader(h, 0)).collect();
    let same: Vec<u16> = (1..200).map(|h| again.leader(h, 0)).collect();
    let different: Vec<u16> = (1..200).map(|h| other.leader(h, 0)).collect();
    assert_eq!(mine, same);
    assert_ne!(mine, different, "a new epoch seed gives a new schedule");
    assert_ne!(
        (1..200).map(|h| net.leaders.leader(h, 1)).collect::<Vec<_>>(),
        mine,
        "each round draws anew"
    );
}

#[test]
fn validators_without_power_never_lead() {
    let net = Net::new(&[0, 7, 0, 3, 0]);
    for height in 1..2_000 {
        for round in 0..3 {
            let leader = net.leader(height, round);
            assert!(leader == 1 || leader == 3, "validator {leader} has no power");
        }
    }
}

#[test]
fn the_rpc_schedule_lists_a_bounded_range() {
    let net = Net::new(&[2, 2, 6]);
    let schedule = net.leaders.schedule(100..=199, 0).unwrap();
    assert_eq!(schedule.len(), 100);
    for entry in &schedule {
        assert_eq!(usize::from(entry.index), net.leader(entry.height, 0));
        assert_eq!(entry.address, net.set.validators[usize::from(entry.index)].address);
    }
    assert!(net.leaders.schedule(1..=MAX_SCHEDULE_SPAN, 2).is_ok());
    assert!(net.leaders.schedule(1..=MAX_SCHEDULE_SPAN + 1, 0).is_err());
    #[allow(clippy::reversed_empty_ranges)]
    let empty = 5..=4;
    assert!(net.leaders.schedule(empty, 0).is_err());
}

#[test]
fn unusable_sets_are_refused() {
    let seed = blake3(b"s");
    assert_eq!(LeaderSchedule::new(&ValidatorSet::default(), seed), Err(ValidatorSetError::Empty));
    assert_eq!(LeaderSchedule::new(&Net::set_of(&[0, 0]), seed), Err(ValidatorSetError::NoPower));
    assert_eq!(
        LeaderSchedule::new(&Net::set_of(&[u128::MAX, 1]), seed),
        Err(ValidatorSetError::PowerOverflow)
    );
    let mut twice = Net::set_of(&[1, 1]);
    twice.validators[1].consensus_key = twice.validators[0].consensus_key;
    assert!(matches!(
        LeaderSchedule::new(&twice, seed),
        Err(ValidatorSetError::DuplicateKey { .. })
    ));
}
