//! Seeded simulations of the real engine: many seeds under faults, and the same seed twice.

#![allow(clippy::arithmetic_side_effects)]

mod checks;

use std::time::Duration;

use altan_sim::{Report, Scenario, run};

/// Seeds run by the suite, unless `ALTAN_SIM_SEEDS` says how many: spread over the shards
/// below, which the test runner runs in parallel.
const SUITE_SEEDS: u64 = 1_000;
const SHARDS: u64 = 10;

fn seeds() -> u64 {
    std::env::var("ALTAN_SIM_SEEDS").ok().and_then(|n| n.parse().ok()).unwrap_or(SUITE_SEEDS)
}

fn assert_clean(report: &Report) {
    assert!(
        report.violations.is_empty(),
        "seed {} broke invariants: {:#?}\nreplay: cargo run -p altan-sim --release --example seeds -- --seed {}",
        report.seed,
        report.violations,
        report.seed
    );
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let scenario = Scenario::default();
    let first = run(7, &scenario);
    let second = run(7, &scenario);
    assert_clean(&first);
    assert_eq!(first, second);
    // And another seed another run.
    assert_ne!(run(8, &scenario).digest, first.digest);
}

#[test]
fn without_faults_blocks_are_final_every_few_hundred_milliseconds() {
    let scenario = Scenario {
        crashes: false,
        power_loss: false,
        partitions: false,
        clock_skew: false,
        links: altan_sim::network::LinkFaults::default(),
        duration: Duration::from_secs(5),
        faults_for: Duration::ZERO,
        ..Scenario::default()
    };
    let report = run(1, &scenario);
    assert_clean(&report);
    assert!(report.final_height >= 10, "{report:?}");
    assert!(report.transactions >= 100, "{report:?}");
    assert!(report.heights.iter().all(|h| *h + 2 >= report.final_height), "{report:?}");
}

#[test]
fn an_equivocating_validator_is_caught_by_evidence_in_a_final_block() {
    let scenario = Scenario {
        equivocators: 1,
        crashes: false,
        power_loss: false,
        partitions: false,
        ..Scenario::default()
    };
    for seed in 0..5 {
        let report = run(seed, &scenario);
        assert_clean(&report);
        let (sent, proven) = report.equivocation;
        assert!(sent > 0 && proven > 0, "{report:#?}");
    }
}

/// Runs this shard's part of the suite's seeds under crashes, power losses, partitions, clock
/// skew and lossy links.
fn shard(index: u64) {
    let scenario = Scenario::default();
    let per_shard = seeds().div_ceil(SHARDS);
    let first = 1_000 + index * per_shard;
    for seed in first..first + per_shard {
        assert_clean(&run(seed, &scenario));
    }
}

macro_rules! shards {
    ($($name:ident = $index:expr),* $(,)?) => {
        $(#[test] fn $name() { shard($index) })*
    };
}

shards!(
    seeds_shard_0 = 0,
    seeds_shard_1 = 1,
    seeds_shard_2 = 2,
    seeds_shard_3 = 3,
    seeds_shard_4 = 4,
    seeds_shard_5 = 5,
    seeds_shard_6 = 6,
    seeds_shard_7 = 7,
    seeds_shard_8 = 8,
    seeds_shard_9 = 9,
);
