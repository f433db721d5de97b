//! Runs the consensus simulation over many seeds, or replays one.
//!
//! ```text
//! cargo run --release -p altan-consensus --example simulate -- --seeds 100000
//! cargo run --release -p altan-consensus --example simulate -- --seed 42 --verbose
//! ```
//!
//! Options: `--seeds N` (default 1000), `--start S` (first seed, default 0), `--seed S` (one
//! seed), `--verbose` (print every event of a single seed), `--list` (one line of figures per
//! seed), `--jobs J` (threads, default: the number of cores). Seeds are independent runs, so
//! threads only share the tally. On failure it prints the smallest failing seed (the same
//! whatever the number of threads) with the command that replays it, and exits with status 1.
#![allow(clippy::print_stdout, clippy::arithmetic_side_effects)]

use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use altan_consensus::sim::{self, Failure, Kind, Options, Scenario};

/// A seed that broke an invariant, with its scenario.
type FailedSeed = (u64, Kind, Scenario, Box<Failure>);

#[derive(Default)]
struct Tally {
    faulty: u64,
    attacks: u64,
    forks: u64,
    equivocators: usize,
    caught: usize,
    events: u64,
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut start, mut count, mut verbose, mut list) = (0u64, 1_000u64, false, false);
    let mut jobs = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
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
            "--jobs" => jobs = number("--jobs").max(1),
            "--verbose" => verbose = true,
            "--list" => list = true,
            _ => {
                eprintln!(
                    "usage: simulate [--seeds N] [--start S] [--seed S] [--jobs J] [--verbose] [--list]"
                );
                return ExitCode::from(2);
            }
        }
    }

    let began = Instant::now();
    let tally = Mutex::new(Tally::default());
    let done = AtomicU64::new(0);
    let first_failure = AtomicU64::new(u64::MAX);
    let failures: Mutex<Vec<FailedSeed>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for job in 0..jobs.min(count) {
            let (tally, done, first_failure, failures) = (&tally, &done, &first_failure, &failures);
            scope.spawn(move || {
                let mut seed = start + job;
                while seed < start + count && seed < first_failure.load(Ordering::SeqCst) {
                    let (kind, scenario) = Scenario::random(seed);
                    let started = Instant::now();
                    match sim::run(&scenario, &Options { verbose }) {
                        Ok(report) => {
                            if verbose {
                                for line in &report.log {
                                    println!("{line}");
                                }
                                println!("{scenario:#?}");
                            }
                            if list {
                                println!(
                                    "seed {seed} {kind:?} ms={} n={} events={} end={}ms \
                                     heights={:?} forks={:?} deliveries={} recover={} signed={}",
                                    started.elapsed().as_millis(),
                                    scenario.stakes.len(),
                                    report.events,
                                    report.end_time / 1000,
                                    report.heights,
                                    report.forks,
                                    report.deliveries,
                                    report.recoveries,
                                    report.signed,
                                );
                            }
                            let mut t = tally.lock().unwrap();
                            match kind {
                                Kind::Faulty => t.faulty += 1,
                                Kind::Attack => t.attacks += 1,
                            }
                            t.forks += u64::from(!report.forks.is_empty());
                            t.equivocators += report.equivocators.len();
                            t.caught += report.equivocators.intersection(&report.offenders).count();
                            t.events += report.events;
                        }
                        Err(failure) => {
                            first_failure.fetch_min(seed, Ordering::SeqCst);
                            failures.lock().unwrap().push((seed, kind, scenario, failure));
                            return;
                        }
                    }
                    let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                    if count >= 10_000 && finished % 10_000 == 0 {
                        println!(
                            "{finished} seeds passed ({:.1} s)",
                            began.elapsed().as_secs_f64()
                        );
                    }
                    seed += jobs;
                }
            });
        }
    });

    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|f| f.0);
    if let Some((seed, kind, scenario, failure)) = failures.into_iter().next() {
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
    let t = tally.into_inner().unwrap();
    println!(
        "{count} seeds passed in {:.1} s on {jobs} threads: {} with faults and < 1/3 byzantine \
         stake, {} with >= 1/3 byzantine stake ({} forked, each with evidence against >= 1/3 of \
         stake); {} of {} equivocators reported by honest nodes; {} events",
        began.elapsed().as_secs_f64(),
        t.faulty,
        t.attacks,
        t.forks,
        t.caught,
        t.equivocators,
        t.events,
    );
    ExitCode::SUCCESS
}
