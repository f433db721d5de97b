//! The seeded simulation: a thousand random scenarios in CI, each checked against the
//! invariants listed in `altan_consensus::sim`, plus targeted scenarios.
//!
//! A failing seed panics with the command that replays it, event by event.

use std::collections::BTreeMap;

use altan_consensus::sim::{self, Behaviour, Crash, Kind, MS, Options, Report, Scenario};

/// Seeds in CI: four tests of 250, so that two cores share them.
const SEEDS_PER_TEST: u64 = 250;

#[derive(Default)]
struct Tally {
    faulty: u64,
    attacks: u64,
    forks: u64,
    equivocators: usize,
    caught: usize,
}

fn run_seeds(first: u64) -> Tally {
    let mut tally = Tally::default();
    for seed in first..first + SEEDS_PER_TEST {
        let (kind, scenario) = Scenario::random(seed);
        match sim::run(&scenario, &Options::default()) {
            Ok(report) => {
                match kind {
                    Kind::Faulty => tally.faulty += 1,
                    Kind::Attack => tally.attacks += 1,
                }
                tally.forks += u64::from(!report.forks.is_empty());
                tally.equivocators += report.equivocators.len();
                tally.caught += report.equivocators.intersection(&report.offenders).count();
            }
            Err(failure) => panic!(
                "seed {seed} ({kind:?}) failed {failure}\nreplay: cargo run --release -p \
                 altan-consensus --example simulate -- --seed {seed} --verbose"
            ),
        }
    }
    // The runs are not vacuous: attacks do fork (and every fork was accounted for), and most
    // equivocators are caught by honest validators (not all can be: in an attack, the network
    // keeps each twin away from the other side).
    assert!(tally.faulty > 150 && tally.attacks > 25, "{} / {}", tally.faulty, tally.attacks);
    assert!(tally.forks > 0, "no attack forked");
    assert!(2 * tally.caught > tally.equivocators, "{} of {}", tally.caught, tally.equivocators);
    tally
}

#[test]
fn seeds_0_to_249() {
    run_seeds(0);
}

#[test]
fn seeds_250_to_499() {
    run_seeds(250);
}

#[test]
fn seeds_500_to_749() {
    run_seeds(500);
}

#[test]
fn seeds_750_to_999() {
    run_seeds(750);
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 14, 43] {
        let (_, scenario) = Scenario::random(seed);
        let one = sim::run(&scenario, &Options::default()).unwrap();
        let two = sim::run(&scenario, &Options::default()).unwrap();
        assert_eq!(one.trace, two.trace, "seed {seed}");
        assert_eq!(one.commits, two.commits, "seed {seed}");
        assert_eq!(one.events, two.events, "seed {seed}");
    }
    let traces: Vec<u64> = (0..20)
        .map(|seed| sim::run(&Scenario::random(seed).1, &Options::default()).unwrap().trace)
        .collect();
    let distinct: std::collections::BTreeSet<_> = traces.iter().collect();
    assert_eq!(distinct.len(), traces.len(), "different seeds give different runs");
}

fn good_case(stakes: Vec<u128>, delay: u64) -> Report {
    let scenario = Scenario::good_case(7, stakes, delay, 5);
    sim::run(&scenario, &Options::default()).unwrap()
}

/// The delays from each round-0 proposal to each commit of its height.
fn delays_to_commit(report: &Report, delay: u64) -> Vec<u64> {
    let proposed: BTreeMap<u64, u64> =
        report.proposals.iter().filter(|p| p.round == 0).map(|p| (p.height, p.time)).collect();
    report
        .commits
        .iter()
        .map(|c| {
            assert_eq!(c.round, 0, "{c:?}");
            let elapsed = c.time - proposed[&c.height];
            assert_eq!(elapsed % delay, 0, "{c:?}");
            elapsed / delay
        })
        .collect()
}

/// In the good case a block is final three message delays after its proposal: the proposal,
/// the prevotes, the precommits. With equal stakes every node takes exactly three; with
/// unequal stakes a node whose own vote and the leader's already exceed 2/3 can take two.
#[test]
fn the_good_case_takes_three_message_delays() {
    let delay = 50 * MS;
    for n in [4, 10] {
        let delays = delays_to_commit(&good_case(vec![10; n], delay), delay);
        assert_eq!(delays.len(), n * 5);
        assert!(delays.iter().all(|&d| d == 3), "n = {n}, equal stakes: {delays:?}");

        let delays = delays_to_commit(&good_case((1..=n as u128).collect(), delay), delay);
        assert_eq!(delays.len(), n * 5);
        assert!(delays.iter().all(|&d| d == 2 || d == 3), "n = {n}, unequal: {delays:?}");
    }
}

fn equal_stakes_with(byzantine: Behaviour) -> Scenario {
    let mut scenario = Scenario::good_case(11, vec![10; 7], 10 * MS, 6);
    scenario.network.max_delay = 60 * MS;
    scenario.network.relay = true;
    scenario.byzantine.insert(2, byzantine);
    scenario.split = vec![true, false, true, true, false, true, false];
    scenario
}

/// On a network that loses nothing, an equivocator is caught: its twins reach honest nodes
/// through their gossip.
#[test]
fn an_equivocator_is_caught() {
    let scenario = equal_stakes_with(Behaviour {
        equivocate: true,
        conflicting_proposals: true,
        ..Behaviour::default()
    });
    let report = sim::run(&scenario, &Options::default()).unwrap();
    assert!(report.equivocators.contains(&2));
    assert_eq!(report.offenders, [2].into());
}

/// A crash between persisting a message and sending it, at several points of a run: the
/// restarted node sends what it persisted and signs nothing that conflicts (the simulator
/// checks both), and the chain goes on.
#[test]
fn crashes_between_persist_and_broadcast() {
    for (at, after_actions) in [(0, 0), (0, 1), (5, 2), (40, 1), (80, 3), (150, 1)] {
        let mut scenario = Scenario::good_case(5, vec![10, 20, 30, 40], 10 * MS, 4);
        scenario.network.max_delay = 30 * MS;
        for node in [1, 3] {
            scenario.crashes.push(Crash {
                node,
                at: at * MS,
                restart_at: (at + 500) * MS,
                after_actions: Some(after_actions),
            });
        }
        let report = sim::run(&scenario, &Options::default()).unwrap();
        assert!(report.heights.iter().all(|&h| h >= 4), "{:?}", report.heights);
    }
}
