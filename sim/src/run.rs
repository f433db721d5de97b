//! One simulated run: the scenario, the director that drives it, and its report.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use altan_node::chain::Chain;
use altan_node::dev::derived_key;
use altan_node::engine::{BlockPacing, EngineConfig};
use altan_primitives::{
    Action, Address, ChainSpec, GenesisAccount, GenesisValidator, Hash, SecretKey, StakingParams,
    Transaction,
};
use altan_runtime::vm::MemoryArtifactStore;
use commonware_runtime::deterministic::{Config, Context, Runner};
use commonware_runtime::{Clock, Runner as _, Supervisor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::check::Ledger;
use crate::host::{Skew, WorkCost};
use crate::network::{LinkFaults, SimNet};
use crate::node::{Shared, SimNode};

/// A million tokens of 18 decimals: what each account starts with.
const BALANCE: u128 = 1_000_000_000_000_000_000_000_000;
/// A validator's stake: a thousand tokens.
const STAKE: u128 = 1_000_000_000_000_000_000_000;
/// The simulated chain's id.
const CHAIN_ID: u64 = 7_357;
/// Virtual time at the start: a date, so that block timestamps look like real ones.
const START_MS: u64 = 1_767_225_600_000;
/// Funded accounts that send transfers.
const ACCOUNTS: usize = 16;
/// How often the director acts.
const STEP: Duration = Duration::from_millis(10);
/// How often the invariants are read from the chains.
const CHECK_EVERY: u32 = 25;

/// What a run does.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Validators, of equal stake.
    pub validators: usize,
    /// Virtual time the run lasts.
    pub duration: Duration,
    /// The part of the run during which faults happen; the rest checks liveness.
    pub faults_for: Duration,
    /// The mean time between faults while they happen.
    pub fault_every: Duration,
    /// What the links do while faults happen (after, they keep their latency only).
    pub links: LinkFaults,
    /// Crash and restart validators (never more than can fail at once).
    pub crashes: bool,
    /// Let crashes be power losses.
    pub power_loss: bool,
    /// Cut the network into groups that heal later.
    pub partitions: bool,
    /// Let clocks run at different rates and wall clocks be off.
    pub clock_skew: bool,
    /// Byzantine validators (the first ones) that follow each vote they sign with a
    /// conflicting one.
    pub equivocators: usize,
    /// Transfers submitted per second of virtual time.
    pub transactions_per_second: u32,
    /// Final blocks each node must gain after the faults end.
    pub progress_after_heal: u64,
    /// What blocking work costs.
    pub cost: WorkCost,
}

impl Scenario {
    /// A longer run: 12 s, faults for the first 7.
    pub fn long() -> Scenario {
        Scenario {
            duration: Duration::from_secs(12),
            faults_for: Duration::from_secs(7),
            fault_every: Duration::from_secs(1),
            transactions_per_second: 50,
            progress_after_heal: 3,
            ..Scenario::default()
        }
    }
}

impl Default for Scenario {
    /// The suite's run: 6 s of virtual time, faults every 400 ms or so for the first 2. The
    /// 4 s after are what a node needs at most to be live again: the engine's stall timeout
    /// (2 s) before a node that missed blocks asks for them, and about two failed rounds
    /// (each about 1 s with these links) before a leader that is up to date proposes.
    fn default() -> Self {
        Scenario {
            validators: 4,
            duration: Duration::from_secs(6),
            faults_for: Duration::from_secs(2),
            fault_every: Duration::from_millis(400),
            links: LinkFaults {
                latency: (Duration::from_millis(5), Duration::from_millis(40)),
                drop_ppm: 20_000,
                duplicate_ppm: 20_000,
            },
            crashes: true,
            power_loss: true,
            partitions: true,
            clock_skew: true,
            equivocators: 0,
            transactions_per_second: 30,
            progress_after_heal: 2,
            cost: WorkCost { per_job: Duration::from_millis(2) },
        }
    }
}

/// What a run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// A digest of everything that happened, in order: the same seed gives the same digest.
    pub digest: Hash,
    /// The executor's own audit of its tasks, clock and randomness.
    pub executor_audit: String,
    /// The highest final height.
    pub final_height: u64,
    /// Each node's final height at the end.
    pub heights: Vec<u64>,
    /// Transactions in final blocks.
    pub transactions: u64,
    /// Messages delivered, dropped by the links, and rejected by a node.
    pub messages: (u64, u64, u64),
    /// Crashes (of which power losses) and partitions.
    pub faults: (u32, u32, u32),
    /// Conflicting votes sent by the byzantine validators, and proofs of equivocation in the
    /// final blocks.
    pub equivocation: (u64, u64),
    /// Broken invariants.
    pub violations: Vec<String>,
}

/// Runs `scenario` from `seed`.
pub fn run(seed: u64, scenario: &Scenario) -> Report {
    let start = UNIX_EPOCH.checked_add(Duration::from_millis(START_MS)).unwrap_or(UNIX_EPOCH);
    let config = Config::new()
        .with_seed(seed)
        .with_cycle(Duration::from_micros(1))
        .with_start_time(start)
        .with_timeout(Some(scenario.duration.saturating_mul(4)));
    Runner::new(config).start(|context| async move {
        let auditor = context.auditor();
        let mut director = Director::new(context, seed, scenario.clone());
        director.run().await;
        director.report(auditor.state())
    })
}

fn spec(validators: &[(SecretKey, Address)], accounts: &[SecretKey]) -> ChainSpec {
    let funded = accounts.iter().map(SecretKey::address).chain(validators.iter().map(|(_, a)| *a));
    ChainSpec {
        name: "altan-sim".into(),
        chain_id: CHAIN_ID,
        genesis_time_ms: START_MS,
        block_gas_limit: 200_000_000,
        epoch_length: 50,
        accounts: funded.map(|address| GenesisAccount { address, balance: BALANCE }).collect(),
        validators: validators
            .iter()
            .map(|(key, address)| GenesisValidator {
                address: *address,
                consensus_key: key.public_key(),
                stake: STAKE,
                commission_bps: 1_000,
            })
            .collect(),
        staking: StakingParams::default(),
        min_gas_price: 1,
    }
}

/// A fault that ends later.
#[derive(Debug, Clone, Copy)]
enum Pending {
    Restart { node: usize, at: Duration },
    Heal { at: Duration },
}

struct Director {
    seed: u64,
    context: Context,
    scenario: Scenario,
    rng: StdRng,
    shared: Shared,
    nodes: Vec<SimNode>,
    accounts: Vec<SecretKey>,
    ledger: Ledger,
    pending: Vec<Pending>,
    violations: Vec<String>,
    faults: (u32, u32, u32),
    /// Transfers owed to the workload, in millionths.
    owed: u64,
}

impl Director {
    fn new(context: Context, seed: u64, scenario: Scenario) -> Director {
        let mut rng = StdRng::seed_from_u64(seed);
        let keys: Vec<(SecretKey, Address)> = (0..scenario.validators)
            .map(|i| {
                (
                    derived_key(&format!("sim validator {i}")),
                    derived_key(&format!("sim validator account {i}")).address(),
                )
            })
            .collect();
        let accounts: Vec<SecretKey> =
            (0..ACCOUNTS).map(|i| derived_key(&format!("sim account {i}"))).collect();
        let links = scenario.links.clone();
        let net = SimNet::new(context.child("network"), scenario.validators, links, rng.random());
        for (index, (key, _)) in keys.iter().enumerate().take(scenario.equivocators) {
            net.equivocate(index, key.clone());
        }
        let engine = EngineConfig::with_pacing(
            scenario.links.latency.1,
            BlockPacing::Ready { empty_after: Some(Duration::from_millis(200)) },
        );
        let shared = Shared {
            spec: spec(&keys, &accounts),
            engine,
            net,
            cost: scenario.cost,
            artifacts: Arc::new(MemoryArtifactStore::default()),
        };
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(index, (key, account))| {
                let skew = if scenario.clock_skew {
                    Skew {
                        wall_offset_ms: rng.random_range(-200..=200),
                        rate_ppm: rng.random_range(-2_000..=2_000),
                    }
                } else {
                    Skew::default()
                };
                SimNode::new(index, key, account, skew)
            })
            .collect();
        Director {
            seed,
            ledger: Ledger::new(scenario.validators),
            context,
            scenario,
            rng,
            shared,
            nodes,
            accounts,
            pending: Vec::new(),
            violations: Vec::new(),
            faults: (0, 0, 0),
            owed: 0,
        }
    }

    fn elapsed(&self) -> Duration {
        let start = UNIX_EPOCH.checked_add(Duration::from_millis(START_MS)).unwrap_or(UNIX_EPOCH);
        self.context.current().duration_since(start).unwrap_or_default()
    }

    async fn run(&mut self) {
        for index in 0..self.nodes.len() {
            self.start(index);
        }
        let mut healed_at: Option<u64> = None;
        let mut step = 0_u32;
        while self.elapsed() < self.scenario.duration {
            self.context.sleep(STEP).await;
            step = step.wrapping_add(1);
            let now = self.elapsed();
            if now < self.scenario.faults_for {
                self.maybe_fault(now);
            } else if healed_at.is_none() {
                self.end_faults();
                healed_at = Some(self.ledger.height());
            }
            self.end_pending(now);
            self.submit_transfers();
            if step.is_multiple_of(CHECK_EVERY) {
                self.check();
            }
        }
        self.check();
        self.check_liveness(healed_at.unwrap_or(0));
    }

    fn start(&mut self, index: usize) {
        let Some(node) = self.nodes.get_mut(index) else { return };
        if let Err(violation) = node.start(&self.context, &self.shared) {
            self.violations.push(violation);
        }
    }

    fn down(&self) -> usize {
        self.nodes.iter().filter(|node| node.chain().is_none()).count()
    }

    /// About once each `fault_every`, crashes a node (keeping fewer than a third down) or
    /// splits the network.
    fn maybe_fault(&mut self, now: Duration) {
        let steps =
            self.scenario.fault_every.as_micros().checked_div(STEP.as_micros()).unwrap_or(1).max(1);
        if self.rng.random_range(0..steps) != 0 {
            return;
        }
        let max_faulty = self.nodes.len().saturating_sub(1) / 3;
        let heal_in = Duration::from_millis(self.rng.random_range(200..2_000));
        let at = now.saturating_add(heal_in);
        let partitioned = self.pending.iter().any(|p| matches!(p, Pending::Heal { .. }));
        if self.rng.random_bool(0.5) && self.scenario.crashes && self.down() < max_faulty {
            let up: Vec<usize> =
                (0..self.nodes.len()).filter(|i| self.nodes[*i].chain().is_some()).collect();
            let node = up[self.rng.random_range(0..up.len())];
            let power_loss = self.scenario.power_loss && self.rng.random_bool(0.5);
            self.crash(node, power_loss);
            self.pending.push(Pending::Restart { node, at });
        } else if self.scenario.partitions && !partitioned {
            // Any split: a side may hold a majority or nobody may.
            let groups: Vec<u8> =
                (0..self.nodes.len()).map(|_| self.rng.random_range(0..2)).collect();
            self.shared.net.partition(|index| groups.get(index).copied().unwrap_or(0));
            self.faults.2 = self.faults.2.saturating_add(1);
            self.pending.push(Pending::Heal { at });
        }
    }

    fn crash(&mut self, index: usize, power_loss: bool) {
        let Some(node) = self.nodes.get_mut(index) else { return };
        self.faults.0 = self.faults.0.saturating_add(1);
        if power_loss {
            self.faults.1 = self.faults.1.saturating_add(1);
            let rng = &mut self.rng;
            let mut keep = |unsynced: usize| rng.random_range(0..=unsynced);
            node.crash(&self.shared.net, Some(&mut keep));
        } else {
            node.crash(&self.shared.net, None);
        }
    }

    fn end_pending(&mut self, now: Duration) {
        let (due, later): (Vec<Pending>, Vec<Pending>) =
            self.pending.drain(..).partition(|p| match p {
                Pending::Restart { at, .. } | Pending::Heal { at } => *at <= now,
            });
        self.pending = later;
        for pending in due {
            match pending {
                Pending::Restart { node, .. } => self.start(node),
                Pending::Heal { .. } => self.shared.net.heal(),
            }
        }
    }

    fn end_faults(&mut self) {
        self.pending.clear();
        self.shared.net.heal();
        let latency = self.scenario.links.latency;
        self.shared.net.set_faults(LinkFaults { latency, drop_ppm: 0, duplicate_ppm: 0 });
        for index in 0..self.nodes.len() {
            self.start(index);
        }
    }

    /// Signs and submits the transfers owed at this step, each to a running node.
    fn submit_transfers(&mut self) {
        let per_step = u64::from(self.scenario.transactions_per_second)
            .saturating_mul(u64::try_from(STEP.as_micros()).unwrap_or(0));
        self.owed = self.owed.saturating_add(per_step);
        while self.owed >= 1_000_000 {
            self.owed = self.owed.saturating_sub(1_000_000);
            let up: Vec<usize> =
                (0..self.nodes.len()).filter(|i| self.nodes[*i].chain().is_some()).collect();
            if up.is_empty() {
                return;
            }
            let node = up[self.rng.random_range(0..up.len())];
            let from = self.rng.random_range(0..self.accounts.len());
            let to = self.accounts[self.rng.random_range(0..self.accounts.len())].address();
            let Some(chain) = self.nodes[node].chain() else { continue };
            let key = &self.accounts[from];
            submit_transfer(chain, key, to, self.rng.random_range(1..1_000));
        }
    }

    fn check(&mut self) {
        for index in 0..self.nodes.len() {
            let Some(chain) = self.nodes[index].chain().cloned() else { continue };
            let (learned, violations) = self.ledger.read(index, &chain);
            for (height, hash) in learned {
                self.shared.net.record(&height.to_be_bytes());
                self.shared.net.record(hash.as_bytes());
            }
            self.violations.extend(violations);
        }
    }

    fn check_liveness(&mut self, before_heal: u64) {
        let wanted = before_heal.saturating_add(self.scenario.progress_after_heal);
        for (index, node) in self.nodes.iter().enumerate() {
            let height = node.chain().map_or(0, |chain| chain.final_head().height);
            if height < wanted {
                self.violations.push(format!(
                    "node {index} reached final height {height} after the faults ended; {wanted} wanted (highest before: {before_heal})"
                ));
            }
        }
    }

    fn report(&self, executor_audit: String) -> Report {
        let mut violations = self.violations.clone();
        violations.extend(self.shared.net.violations());
        Report {
            seed: self.seed,
            digest: self.shared.net.digest(),
            executor_audit,
            final_height: self.ledger.height(),
            heights: self
                .nodes
                .iter()
                .map(|n| n.chain().map_or(0, |c| c.final_head().height))
                .collect(),
            transactions: self.ledger.transactions(),
            messages: self.shared.net.counts(),
            faults: self.faults,
            equivocation: (self.shared.net.equivocations(), self.ledger.evidence()),
            violations,
        }
    }
}

/// Submits a transfer of `value` from `key`'s account at its next nonce; a refusal (a full
/// pool, a nonce taken by a transfer pending elsewhere) is part of the workload.
fn submit_transfer(chain: &Chain, key: &SecretKey, to: Address, value: u128) {
    let Ok(nonce) = chain.next_nonce(&key.address()) else { return };
    let transaction = Transaction {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 100_000,
        gas_price: 1,
        action: Action::Transfer { to, value },
    };
    let _ = chain.submit(transaction.sign(key));
}
