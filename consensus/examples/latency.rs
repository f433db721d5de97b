//! Finality latency in the simulation's good case: from the moment a leader broadcasts its
//! proposal to the moment each validator commits the block, in message delays and in
//! milliseconds, for 4, 10 and 100 validators with unequal stake.
//!
//! ```text
//! cargo run --release -p altan-consensus --example latency
//! ```
//!
//! Links take 50 ms (or 40 to 60 ms, uniformly, in the jittered rows). Hosts are charged CPU
//! time as measured in BENCHMARKS.md for k256 0.14: 58.9 µs to recover the signer of each
//! consensus message they receive and 24.9 µs to sign each message they send, processed one
//! at a time per host. Building, checking and applying blocks are not charged (they depend on
//! the block, not on consensus). The figures are virtual time, so they are exact and repeat.
#![allow(clippy::print_stdout, clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use altan_consensus::sim::{self, MS, Options, Report, Scenario};

const DELAY: u64 = 50 * MS;

fn percentile(sorted: &[u64], p: usize) -> u64 {
    sorted[(sorted.len() - 1) * p / 100]
}

/// Proposal-to-commit latency of every commit (µs), and the time between consecutive heights.
fn latencies(report: &Report) -> (Vec<u64>, Vec<u64>) {
    let proposed: BTreeMap<u64, u64> =
        report.proposals.iter().filter(|p| p.round == 0).map(|p| (p.height, p.time)).collect();
    let mut latencies: Vec<u64> = report
        .commits
        .iter()
        .map(|c| {
            assert_eq!(c.round, 0, "the good case decides in round 0");
            c.time - proposed[&c.height]
        })
        .collect();
    latencies.sort_unstable();
    let mut first_commit = BTreeMap::new();
    for c in &report.commits {
        first_commit.entry(c.height).or_insert(c.time);
    }
    let times: Vec<u64> = first_commit.values().copied().collect();
    let mut intervals: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    intervals.sort_unstable();
    (latencies, intervals)
}

fn main() {
    println!(
        "| validators | links | CPU charged | message delays min / p50 / max | latency p50 | p99 | max | block interval p50 | heights |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in [4usize, 10, 100] {
        // Unequal stakes: 10, 20, ..., 100, repeating.
        let stakes: Vec<u128> = (0..n).map(|i| (i as u128 % 10 + 1) * 10).collect();
        let heights = if n == 100 { 20 } else { 50 };
        for (jitter, cpu) in [(false, false), (false, true), (true, true)] {
            let mut scenario = Scenario::good_case(1, stakes.clone(), DELAY, heights);
            if jitter {
                scenario.network.min_delay = 40 * MS;
                scenario.network.max_delay = 60 * MS;
            }
            if cpu {
                scenario.network.verify_cost = 59;
                scenario.network.sign_cost = 25;
            }
            let report = match sim::run(&scenario, &Options::default()) {
                Ok(report) => report,
                Err(failure) => panic!("n = {n}: {failure}"),
            };
            let (latencies, intervals) = latencies(&report);
            assert_eq!(latencies.len(), n * heights as usize);
            let delays = if jitter || cpu {
                String::from("-")
            } else {
                format!(
                    "{} / {} / {}",
                    latencies[0] / DELAY,
                    percentile(&latencies, 50) / DELAY,
                    latencies.last().unwrap() / DELAY
                )
            };
            let ms = |us: u64| format!("{:.1} ms", us as f64 / 1_000.0);
            println!(
                "| {n} | {} | {} | {delays} | {} | {} | {} | {} | {heights} |",
                if jitter { "40-60 ms" } else { "50 ms" },
                if cpu { "yes" } else { "no" },
                ms(percentile(&latencies, 50)),
                ms(percentile(&latencies, 99)),
                ms(*latencies.last().unwrap()),
                ms(percentile(&intervals, 50)),
            );
        }
    }
}
