//! The contract virtual machine: wasmtime configured for determinism, deploy-time validation,
//! the compiled-module cache and the host ABI.

mod artifact;
mod cache;
mod engine;
pub(crate) mod host;
mod imports;
mod validate;

use std::num::NonZeroUsize;
use std::sync::Arc;

use wasmtime::{Engine, Linker};

pub use artifact::{ArtifactStore, MemoryArtifactStore};
pub use cache::CacheStats;
pub use engine::{HOST_MODULE, POOL_INSTANCES};
pub use host::{ExecutionError, HOST_FUNCTIONS, contract_address};
pub use imports::HOST_IMPORTS_WAT;
pub use validate::{CodeError, CodeInfo, REENTRANT_SECTION, validate};

use cache::ModuleCache;
use host::HostState;

/// How to build a [`Vm`].
#[derive(Clone)]
pub struct VmConfig {
    /// How many compiled contracts to keep in memory.
    pub cache_capacity: NonZeroUsize,
    /// Where compiled contracts persist across restarts, if anywhere.
    pub artifacts: Option<Arc<dyn ArtifactStore>>,
    /// Whether contracts this VM compiles are saved to `artifacts`. Off for a VM that runs
    /// free work: code that only a dry run deployed must not cost the node disk.
    pub save_artifacts: bool,
    /// Contract instances alive at once across all executions (the pooling allocator's slots).
    /// One transaction holds at most [`crate::gas::MAX_INSTANCES`].
    pub instances: u32,
}

impl VmConfig {
    /// The instances `executions` concurrent transactions can hold at most.
    pub fn instances_for(executions: usize) -> u32 {
        u32::try_from(executions.saturating_mul(crate::gas::MAX_INSTANCES)).unwrap_or(u32::MAX)
    }
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            cache_capacity: NonZeroUsize::new(1_024).unwrap_or(NonZeroUsize::MIN),
            artifacts: None,
            save_artifacts: true,
            instances: POOL_INSTANCES,
        }
    }
}

/// The engine, the host functions and the compiled-module cache. One per process; shared by
/// every execution.
pub struct Vm {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) cache: ModuleCache,
}

impl Vm {
    /// Builds the engine and the linker.
    pub fn new(config: VmConfig) -> Result<Vm, wasmtime::Error> {
        let engine = engine::build_engine(config.instances)?;
        let mut linker = Linker::new(&engine);
        host::define(&mut linker)?;
        let fingerprint = engine::fingerprint(&engine);
        let artifacts = config.artifacts.map(|store| (store, config.save_artifacts));
        let cache = ModuleCache::new(config.cache_capacity, artifacts, fingerprint);
        Ok(Vm { engine, linker, cache })
    }

    /// The compiled contract for `code_hash` from memory or the artifact store, if either has it.
    pub(crate) fn cached(
        &self,
        code_hash: &altan_primitives::Hash,
    ) -> Option<Arc<cache::Contract>> {
        self.cache
            .get(code_hash)
            .or_else(|| self.cache.load_artifact(&self.engine, &self.linker, code_hash))
    }

    /// How compiled modules were found so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }
}
