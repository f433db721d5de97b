//! A simulated validator: the real [`Chain`] on a [`MemoryDisk`] and the real engine on a
//! [`SimHost`], started, crashed (with or without a power loss) and started again on what its
//! disk kept.

use std::sync::Arc;

use altan_node::chain::{Chain, ChainConfig, DataDir, MemoryDisk, ValidatorKey};
use altan_node::engine::{self, EngineConfig};
use altan_primitives::{Address, ChainSpec, Height, SecretKey};
use altan_runtime::vm::MemoryArtifactStore;
use commonware_runtime::deterministic::Context;
use commonware_runtime::{Handle, Spawner, Supervisor};
use tokio::sync::mpsc;

use crate::host::{SimHost, Skew, WorkCost};
use crate::network::SimNet;

/// Events a node's network may queue before gossip is dropped (the real service's default).
const EVENT_CAPACITY: usize = 1_024;

/// What every node shares: the chain, the engine's settings, the network, the clocks.
pub struct Shared {
    /// The chain spec.
    pub spec: ChainSpec,
    /// The engine's settings.
    pub engine: EngineConfig,
    /// The network.
    pub net: SimNet,
    /// What blocking work costs.
    pub cost: WorkCost,
    /// Compiled contracts, by code hash (a cache: compiling is deterministic).
    pub artifacts: Arc<MemoryArtifactStore>,
}

struct Running {
    chain: Arc<Chain>,
    task: Handle<()>,
}

/// A validator of the simulation.
pub struct SimNode {
    index: usize,
    key: SecretKey,
    account: Address,
    disk: MemoryDisk,
    skew: Skew,
    running: Option<Running>,
    /// The final height it had when it last went down.
    final_when_down: Height,
}

impl SimNode {
    /// Validator `index`, signing with `key`, paid at `account`, its clocks off by `skew`.
    pub fn new(index: usize, key: SecretKey, account: Address, skew: Skew) -> SimNode {
        SimNode {
            index,
            key,
            account,
            disk: MemoryDisk::new(),
            skew,
            running: None,
            final_when_down: 0,
        }
    }

    /// Its chain, while it runs.
    pub fn chain(&self) -> Option<&Arc<Chain>> {
        self.running.as_ref().map(|running| &running.chain)
    }

    /// Opens its chain on its disk and starts its engine. A final block it had before it went
    /// down but that its disk lost is a violation.
    pub fn start(&mut self, context: &Context, shared: &Shared) -> Result<(), String> {
        if self.running.is_some() {
            return Ok(());
        }
        let config = ChainConfig {
            data_dir: DataDir::Memory {
                disk: self.disk.clone(),
                artifacts: Arc::clone(&shared.artifacts),
            },
            sync_writes: true,
            mempool: Default::default(),
            cache_bytes: 0,
            free: Default::default(),
        };
        let validator = ValidatorKey { key: self.key.clone(), address: self.account };
        let chain = Chain::open(shared.spec.clone(), &config, Some(validator), Default::default())
            .map_err(|e| format!("node {} does not reopen its chain: {e}", self.index))?;
        let kept = chain.final_head().height;
        if kept < self.final_when_down {
            return Err(format!(
                "node {} had final height {} before it went down and {kept} after",
                self.index, self.final_when_down
            ));
        }
        let (events, receiver) = mpsc::channel(EVENT_CAPACITY);
        let (net, engine_config) = (shared.net.clone(), shared.engine.clone());
        let (engine_chain, index) = (Arc::clone(&chain), self.index);
        let (skew, cost) = (self.skew, shared.cost);
        let task = context.child("node").spawn(move |context| async move {
            let host = SimHost::new(context, skew, cost);
            let network = net.handle(index);
            if let Err(error) =
                engine::run(engine_chain, host, network, receiver, engine_config).await
            {
                net.violation(format!("node {index}'s engine stopped: {error}"));
            }
        });
        shared.net.join(self.index, events);
        shared.net.record(&[b'S', u8::try_from(self.index).unwrap_or(u8::MAX)]);
        self.running = Some(Running { chain, task });
        Ok(())
    }

    /// Stops the node as a crash does. With `power_loss`, its disk keeps only what was synced
    /// and, of the rest, the prefix `keep` chooses from the count of unsynced writes.
    pub fn crash(&mut self, net: &SimNet, power_loss: Option<&mut dyn FnMut(usize) -> usize>) {
        let Some(running) = self.running.take() else { return };
        self.final_when_down = running.chain.final_head().height;
        running.task.abort();
        net.leave(self.index);
        match power_loss {
            Some(keep) => {
                self.disk.power_loss(keep);
            }
            None => self.disk.crash(),
        }
        net.record(&[b'C', u8::try_from(self.index).unwrap_or(u8::MAX)]);
    }
}
