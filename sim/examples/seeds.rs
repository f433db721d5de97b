//! Runs simulation seeds on demand and reports what they found.
//!
//! ```text
//! cargo run -p altan-sim --release --example seeds -- --seed 1234        # replay one seed
//! cargo run -p altan-sim --release --example seeds -- --from 0 --count 100000
//! cargo run -p altan-sim --release --example seeds -- --long --count 100  # 12 s runs
//! ```
//!
//! Prints one line per failing seed (and per seed with `--seed`), then the seeds run, the CPU
//! time and the seeds per CPU-second. Exits non-zero if any seed broke an invariant.

#![allow(clippy::print_stdout, clippy::arithmetic_side_effects)]

use std::time::Instant;

use altan_sim::{Scenario, run};

fn arg(args: &[String], name: &str) -> Option<u64> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.parse().ok()
}

fn main() {
    // RUST_LOG=altan=debug shows what the nodes log (each line is a node's, unnamed).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    let mut scenario =
        if args.iter().any(|a| a == "--long") { Scenario::long() } else { Scenario::default() };
    if let Some(ms) = arg(&args, "--duration-ms") {
        scenario.duration = std::time::Duration::from_millis(ms);
        scenario.faults_for = scenario.duration.mul_f64(0.6);
    }
    let (from, count, verbose) = match arg(&args, "--seed") {
        Some(seed) => (seed, 1, true),
        None => (arg(&args, "--from").unwrap_or(0), arg(&args, "--count").unwrap_or(1_000), false),
    };
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let mut failed = 0_u64;
    for seed in from..from.saturating_add(count) {
        let report = run(seed, &scenario);
        if verbose || !report.violations.is_empty() {
            println!("{report:#?}");
        }
        failed += u64::from(!report.violations.is_empty());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{count} seeds from {from}: {failed} failed; {seconds:.1} s, {:.2} seeds per CPU-second",
        count as f64 / seconds
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
