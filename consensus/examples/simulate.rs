//! Runs the consensus simulation over many seeds, or replays one.
//!
//! ```text
//! cargo run --release -p altan-consensus --example simulate -- --seeds 100000
//! cargo run --release -p altan-consensus --example simulate -- --seed 42 --verbose
//! ```
//!
//! Options: `--seeds N` (default 1000), `--start S` (first seed, default 0), `--seed S` (one
//! seed), `--verbose` (print every event of a single seed). Exits with status 1 and prints the
//! replay command on the first failing seed.
#![allow(clippy::print_stdout, clippy::arithmetic_side_effects)]

use std::process::ExitCode;
use std::time::Instant;

use altan_consensus::sim::{self, Kind, Options, Scenario};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut start, mut count, mut verbose) = (0u64, 1_000u64, false);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> u64 {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{name} needs a number");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--seeds" => count = number("--seeds"),
            "--start" => start = number("--start"),
            "--seed" => {
                start = number("--seed");
                count = 1;
            }
            "--verbose" => verbose = true,
            _ => {
                eprintln!("usage: simulate [--seeds N] [--start S] [--seed S] [--verbose]");
                return ExitCode::from(2);
            }
        }
    }

    let began = Instant::now();
    let (mut faulty, mut attacks, mut forks, mut caught, mut equivocators) = (0, 0, 0, 0, 0);
    let mut events = 0u64;
    for seed in start..start + count {
        let (kind, scenario) = Scenario::random(seed);
        let options = Options { verbose };
        let started = Instant::now();
        match sim::run(&scenario, &options) {
            Ok(report) => {
                if verbose {
                    for line in &report.log {
                        println!("{line}");
                    }
                    println!("{scenario:#?}");
                }
                events += report.events;
                if std::env::var("SIM_DEBUG").is_ok() {
                    println!(
                        "seed {seed} {kind:?} ms={} n={} events={} end={}ms heights={:?} forks={:?} deliveries={} recover={} signed={} certsigs={}",
                        started.elapsed().as_millis(),
                        scenario.stakes.len(),
                        report.events,
                        report.end_time / 1000,
                        report.heights,
                        report.forks,
                        report.deliveries,
                        report.recoveries,
                        report.signed,
                        report.certificate_signatures
                    );
                }
                match kind {
                    Kind::Faulty => faulty += 1,
                    Kind::Attack => attacks += 1,
                }
                forks += usize::from(!report.forks.is_empty());
                equivocators += report.equivocators.len();
                caught += report.equivocators.intersection(&report.offenders).count();
            }
            Err(failure) => {
                for line in &failure.log {
                    println!("{line}");
                }
                if verbose {
                    println!("{scenario:#?}");
                }
                println!("seed {seed} ({kind:?}) FAILED {failure}");
                println!(
                    "replay: cargo run --release -p altan-consensus --example simulate -- --seed {seed} --verbose"
                );
                return ExitCode::FAILURE;
            }
        }
        if count >= 10_000 && (seed - start + 1) % 10_000 == 0 {
            println!("{} seeds passed ({:.1} s)", seed - start + 1, began.elapsed().as_secs_f64());
        }
    }
    println!(
        "{count} seeds passed in {:.1} s: {faulty} with faults and < 1/3 byzantine stake, {attacks} \
         with >= 1/3 byzantine stake ({forks} forked, each with evidence against >= 1/3 of stake); \
         {caught} of {equivocators} equivocators reported by honest nodes; {events} events",
        began.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
