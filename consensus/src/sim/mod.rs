//! A deterministic simulation of a validator network, for tests and benchmarks.
//!
//! Every validator runs the real [`crate::Consensus`] machine; the simulator plays the hosts
//! and the network in virtual time (microseconds), with one seeded generator ([`Rng`]) for
//! every random choice, so a seed always gives the same run and the same [`Report::trace`]. A
//! run checks its invariants as it goes and returns the first [`Violation`].
//!
//! The network delays every message by a random time within bounds (which reorders them),
//! drops and duplicates messages until the scenario's faults end, cuts links during partitions,
//! and relays what honest validators accept (as gossip does), with a per-node "seen" cache
//! that is lost in a crash. Hosts persist what the machine asks to, crash (also between two
//! actions of one batch) and restart from what they persisted, build and check blocks, and
//! catch up by fetching a certificate from a peer when they see messages of higher heights.
//! Byzantine validators ([`Behaviour`]) run the honest machine but change what they send:
//! silence, withheld votes, conflicting twins of their votes and proposals, invalid blocks and
//! malformed messages.
//!
//! Signature recovery is memoized across the whole simulation ([`SharedMemo`]): recovery is a
//! pure function of (prehash, signature), so every validator recovering the same message gets
//! exactly the answer k256 gave the first time. This keeps a thousand seeds fast in the dev
//! profile. Certificates are checked with `Certificate::verify` itself, once per distinct
//! certificate.
//!
//! Invariants checked:
//! - an honest validator never signs two different messages for one (height, round, step),
//!   across restarts, and persists each before broadcasting it;
//! - every block an honest validator finalizes has a certificate that verifies against the
//!   validator set;
//! - with less than 1/3 of stake byzantine, no two honest validators finalize different blocks
//!   at one height;
//! - every piece of evidence an honest validator reports verifies, and an honest validator that
//!   is given two conflicting messages of one validator for a step it still holds reports it;
//! - with less than 1/3 of stake byzantine, after the last fault ends every honest validator
//!   finalizes a new block within [`liveness_bound`], and all reach the target height;
//! - with 1/3 of stake or more byzantine, a fork leaves verifiable evidence (from what honest
//!   validators received and the certificates they hold) against at least 1/3 of stake.

// The simulator is test machinery: its counters and virtual clock stay far below any overflow,
// and an overflow would panic (overflow checks are on in every profile), failing the run.
#![allow(clippy::arithmetic_side_effects)]

mod rng;
mod world;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::time::Duration;

use altan_primitives::{Balance, Height};

pub use rng::Rng;
pub use world::{
    CommitRecord, Failure, Options, ProposalRecord, Report, SharedMemo, Violation, liveness_bound,
    run,
};

use crate::Config;

/// One millisecond of virtual time.
pub const MS: u64 = 1_000;

/// How a byzantine validator deviates. It runs the honest machine; these change what it sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Sends nothing.
    pub silent: bool,
    /// Sends each vote to only about half of its peers.
    pub withhold_votes: bool,
    /// Signs a conflicting twin of each vote: the original goes to one side of the scenario's
    /// split, the twin to the other.
    pub equivocate: bool,
    /// As leader, proposes a second, different valid block to the other side of the split.
    pub conflicting_proposals: bool,
    /// As leader, proposes blocks that do not execute.
    pub invalid_proposals: bool,
    /// Also sends malformed messages: corrupted signatures, another chain, rounds far ahead,
    /// proposals out of turn.
    pub garbage: bool,
}

/// The simulated network and hosts. Times are in microseconds of virtual time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// The least delay of a message.
    pub min_delay: u64,
    /// The greatest delay of a message.
    pub max_delay: u64,
    /// Chance in 1000 that a message is lost, before `lossy_until`.
    pub drop_permille: u32,
    /// Chance in 1000 that a message is delivered twice (past the seen cache).
    pub duplicate_permille: u32,
    /// Messages are dropped only before this time.
    pub lossy_until: u64,
    /// Whether honest validators relay what they accept to all their peers.
    pub relay: bool,
    /// CPU time a host spends on each consensus message it is given (signature recovery).
    pub verify_cost: u64,
    /// CPU time a host spends on each message its validator signs.
    pub sign_cost: u64,
    /// Time to build a block.
    pub build_delay: u64,
    /// Time to check a proposed block.
    pub check_delay: u64,
    /// Time from a commit to the start of the next height (applying the block).
    pub apply_delay: u64,
}

/// Links between the two sides cut from `from` until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// When the links are cut.
    pub from: u64,
    /// When they heal.
    pub until: u64,
    /// Each node's side; nodes with `None` reach both sides.
    pub side: Vec<Option<bool>>,
}

/// A crash of an honest validator and its restart from what it persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    /// The node.
    pub node: usize,
    /// When it crashes.
    pub at: u64,
    /// When it restarts.
    pub restart_at: u64,
    /// If set, the crash waits for the node's next batch of actions and comes after this many
    /// of them (so a message can be persisted and not yet sent).
    pub after_actions: Option<usize>,
}

/// Everything a run depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// The seed of the run's generator.
    pub seed: u64,
    /// Each validator's stake; node `i` is validator `i`.
    pub stakes: Vec<Balance>,
    /// The byzantine validators.
    pub byzantine: BTreeMap<usize, Behaviour>,
    /// Which side of the byzantine validators' split each node is on (`true`: it gets their
    /// original messages, `false`: their twins).
    pub split: Vec<bool>,
    /// The network.
    pub network: Network,
    /// Partitions.
    pub partitions: Vec<Partition>,
    /// Crashes.
    pub crashes: Vec<Crash>,
    /// How many heights to finalize (heights 1 to `heights`).
    pub heights: Height,
    /// Heights per epoch; each epoch's leader seed is the hash of the previous epoch's last
    /// block.
    pub epoch_length: Height,
    /// The machines' configuration.
    pub config: Config,
}

/// A name for each kind of scenario, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Faults of every kind with byzantine validators holding less than 1/3 of stake.
    Faulty,
    /// A coalition with 1/3 of stake or more sends conflicting votes and proposals to two
    /// halves of the honest validators while the network keeps the halves apart.
    Attack,
}

impl Scenario {
    /// The total stake.
    pub fn total_stake(&self) -> Balance {
        self.stakes.iter().sum()
    }

    /// The byzantine validators' stake.
    pub fn byzantine_stake(&self) -> Balance {
        self.byzantine.keys().map(|&i| self.stakes[i]).sum()
    }

    /// Whether the byzantine validators hold less than 1/3 of stake, so that safety and
    /// liveness are promised.
    pub fn is_within_fault_bound(&self) -> bool {
        3 * self.byzantine_stake() < self.total_stake()
    }

    /// When the last fault ends: partitions heal, crashed nodes restart and drops stop.
    pub fn heal_time(&self) -> u64 {
        let partitions = self.partitions.iter().map(|p| p.until);
        let crashes = self.crashes.iter().map(|c| c.restart_at);
        partitions.chain(crashes).fold(self.network.lossy_until, u64::max)
    }

    /// A network with no faults: every message takes exactly `delay`, nothing is lost, and
    /// hosts cost nothing unless costs are set afterwards.
    pub fn good_case(seed: u64, stakes: Vec<Balance>, delay: u64, heights: Height) -> Scenario {
        let n = stakes.len();
        Scenario {
            seed,
            split: alloc::vec![true; n],
            stakes,
            byzantine: BTreeMap::new(),
            network: Network {
                min_delay: delay,
                max_delay: delay,
                drop_permille: 0,
                duplicate_permille: 0,
                lossy_until: 0,
                relay: false,
                verify_cost: 0,
                sign_cost: 0,
                build_delay: 0,
                check_delay: 0,
                apply_delay: 0,
            },
            partitions: Vec::new(),
            crashes: Vec::new(),
            heights,
            epoch_length: 4,
            config: Config::for_message_delay(Duration::from_micros(delay)),
        }
    }

    /// The scenario of `seed`: its kind, validators, stakes, faults and byzantine behaviour
    /// all drawn from the seed. One seed in five is an [`Kind::Attack`].
    pub fn random(seed: u64) -> (Kind, Scenario) {
        let mut rng = Rng::new(seed);
        let n = [4usize, 7, 10][rng.below(3) as usize];
        let stakes: Vec<Balance> = (0..n).map(|_| Balance::from(rng.between(1, 100))).collect();
        let total: Balance = stakes.iter().sum();
        let kind = if rng.below(5) == 0 { Kind::Attack } else { Kind::Faulty };

        let min_delay = rng.between(1, 20) * MS;
        let max_delay = min_delay + rng.between(0, 100) * MS;
        let mut network = Network {
            min_delay,
            max_delay,
            drop_permille: 0,
            duplicate_permille: rng.below(101) as u32,
            lossy_until: 0,
            relay: true,
            verify_cost: 0,
            sign_cost: 0,
            build_delay: rng.between(0, 5) * MS,
            check_delay: rng.between(0, 5) * MS,
            apply_delay: rng.between(0, 5) * MS,
        };
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut rng, &mut order);
        let mut byzantine = BTreeMap::new();
        let mut split: Vec<bool> = (0..n).map(|_| rng.below(2) == 0).collect();
        let mut partitions = Vec::new();
        let mut crashes = Vec::new();

        match kind {
            Kind::Faulty => {
                if rng.below(2) == 0 {
                    network.drop_permille = rng.below(201) as u32;
                    network.lossy_until = rng.between(0, 3_000) * MS;
                }
                let mut byzantine_stake = 0;
                let wanted = rng.below(n as u64 / 3 + 1) as usize;
                for &node in order.iter().take(wanted) {
                    if 3 * (byzantine_stake + stakes[node]) < total {
                        byzantine_stake += stakes[node];
                        byzantine.insert(node, random_behaviour(&mut rng));
                    }
                }
                for _ in 0..rng.below(3) {
                    let from = rng.between(0, 3_000) * MS;
                    let until = from + rng.between(200, 4_000) * MS;
                    let side = (0..n).map(|_| Some(rng.below(2) == 0)).collect();
                    partitions.push(Partition { from, until, side });
                }
                let honest: Vec<usize> =
                    order.iter().copied().filter(|i| !byzantine.contains_key(i)).collect();
                for &node in honest.iter().take(rng.below(3) as usize) {
                    let at = rng.between(0, 4_000) * MS;
                    let restart_at = at + rng.between(100, 3_000) * MS;
                    let after_actions =
                        if rng.below(2) == 0 { Some(rng.below(4) as usize) } else { None };
                    crashes.push(Crash { node, at, restart_at, after_actions });
                }
            }
            Kind::Attack => {
                let mut byzantine_stake = 0;
                for &node in &order {
                    if 3 * byzantine_stake >= total {
                        break;
                    }
                    if 3 * (byzantine_stake + stakes[node]) < 2 * total {
                        byzantine_stake += stakes[node];
                        let behaviour = Behaviour {
                            equivocate: true,
                            conflicting_proposals: true,
                            ..Behaviour::default()
                        };
                        byzantine.insert(node, behaviour);
                    }
                }
                // Honest validators split into two sides of about equal stake, kept apart.
                let (mut a, mut b) = (0, 0);
                for &node in &order {
                    if byzantine.contains_key(&node) {
                        split[node] = true;
                    } else if a <= b {
                        split[node] = true;
                        a += stakes[node];
                    } else {
                        split[node] = false;
                        b += stakes[node];
                    }
                }
                let side = (0..n)
                    .map(|i| if byzantine.contains_key(&i) { None } else { Some(split[i]) })
                    .collect();
                partitions.push(Partition { from: 0, until: rng.between(1_000, 5_000) * MS, side });
            }
        }

        let config = Config::for_message_delay(Duration::from_micros(max_delay));
        let scenario = Scenario {
            seed,
            stakes,
            byzantine,
            split,
            network,
            partitions,
            crashes,
            heights: 3,
            epoch_length: 2,
            config,
        };
        (kind, scenario)
    }
}

fn random_behaviour(rng: &mut Rng) -> Behaviour {
    match rng.below(6) {
        0 => Behaviour { silent: true, ..Behaviour::default() },
        1 => Behaviour { withhold_votes: true, garbage: true, ..Behaviour::default() },
        2 => Behaviour { equivocate: true, ..Behaviour::default() },
        3 => Behaviour { conflicting_proposals: true, ..Behaviour::default() },
        4 => Behaviour { invalid_proposals: true, garbage: true, ..Behaviour::default() },
        _ => Behaviour {
            equivocate: true,
            conflicting_proposals: true,
            withhold_votes: rng.below(2) == 0,
            garbage: rng.below(2) == 0,
            ..Behaviour::default()
        },
    }
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}
