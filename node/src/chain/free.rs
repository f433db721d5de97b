//! Free execution: contract queries, dry runs and gas estimates, which any RPC client can ask for
//! without paying.
//!
//! They never compete with blocks for what executes a block:
//! - they run on a VM of their own (its own wasmtime engine, instance pool and module cache), so
//!   no number of them can exhaust the instances that block execution uses, nor evict its
//!   compiled contracts;
//! - that VM's pool has room for exactly as many transactions as the [`WorkPool`] in front of it
//!   has threads, so it is never exhausted either: a request beyond the pool is a [`Busy`]
//!   refusal, not a failure deep inside wasmtime;
//! - the VM only loads compiled artifacts from the disk and never saves one, so code that only a
//!   dry run deployed costs no disk;
//! - their gas is capped below a block's ([`FreeConfig::gas_cap`]).

use std::sync::Arc;
use std::time::Duration;

use altan_primitives::{Address, ChainSpec, Gas, Height, Receipt, SignedTransaction, Transaction};
use altan_runtime::exec::{BlockContext, InvalidTransaction, QueryOutcome, Runtime, TxError};
use altan_runtime::vm::{ArtifactStore, VmConfig};

use super::{Chain, ChainError};
use crate::work::{Busy, PoolConfig, WorkPool};

/// Compiled contracts the free VM keeps in memory. Small: each costs up to a few hundred KiB,
/// and the contracts that queries touch are on chain, so a miss loads their artifact from disk.
const FREE_MODULE_CACHE: usize = 64;

/// The limits of free execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreeConfig {
    /// Threads and queue of the pool that runs it.
    pub pool: PoolConfig,
    /// The most gas one query, dry run or estimate may use; `None` for a quarter of the block
    /// gas limit. Never more than the block gas limit.
    pub gas_cap: Option<Gas>,
}

impl Default for FreeConfig {
    fn default() -> Self {
        FreeConfig {
            pool: PoolConfig { threads: 2, queue: 64, max_wait: Duration::from_secs(2) },
            gas_cap: None,
        }
    }
}

/// Why a query or dry run was not answered.
#[derive(Debug, thiserror::Error)]
pub enum FreeError {
    /// The pool is full: try again later.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The node failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// The VM and the pool of free execution.
pub(super) struct FreeExecution {
    runtime: Runtime,
    pool: WorkPool,
    gas_cap: Gas,
}

impl FreeExecution {
    pub(super) fn new(
        config: FreeConfig,
        spec: &ChainSpec,
        artifacts: Arc<dyn ArtifactStore>,
    ) -> Result<FreeExecution, ChainError> {
        let pool = WorkPool::new("free-execution", config.pool)
            .map_err(|e| ChainError::Vm(format!("starting the free-execution pool: {e}")))?;
        let vm = VmConfig {
            cache_capacity: std::num::NonZeroUsize::new(FREE_MODULE_CACHE)
                .unwrap_or(std::num::NonZeroUsize::MIN),
            artifacts: Some(artifacts),
            save_artifacts: false,
            // One transaction per thread of the pool, and nothing else runs on this VM.
            instances: VmConfig::instances_for(pool.config().threads),
        };
        let runtime = Runtime::for_spec(spec, vm).map_err(|e| ChainError::Vm(e.to_string()))?;
        let block_gas_limit = spec.block_gas_limit;
        let gas_cap = config.gas_cap.unwrap_or(block_gas_limit / 4).min(block_gas_limit);
        Ok(FreeExecution { runtime, pool, gas_cap })
    }
}

impl Chain {
    /// The most gas a query, dry run or estimate may use.
    pub fn free_gas_cap(&self) -> Gas {
        self.free.gas_cap
    }

    /// Calls a contract read-only on the state of `height`, with at most
    /// [`Chain::free_gas_cap`] gas.
    pub async fn query(
        self: &Arc<Self>,
        height: Height,
        caller: Address,
        contract: Address,
        input: Vec<u8>,
        gas_limit: Gas,
    ) -> Result<QueryOutcome, FreeError> {
        let chain = Arc::clone(self);
        let gas_limit = gas_limit.min(self.free.gas_cap);
        self.free
            .pool
            .run(move || {
                let header = chain.header_at(height)?;
                let context = BlockContext::new(
                    chain.spec.chain_id,
                    header.height,
                    header.timestamp_ms,
                    header.proposer,
                    header.gas_limit,
                );
                let state = chain.state_at(height)?;
                let runtime = &chain.free.runtime;
                runtime
                    .query(state, context, caller, contract, input, gas_limit)
                    .map_err(|e| FreeError::Chain(e.into()))
            })
            .await?
    }

    /// Executes `transaction` as if `sender` had signed it, on top of the head, and throws the
    /// result away: gas used, return data and events. The rules apply as in a block (nonce,
    /// balance for the fee); the signature is not checked, and the gas limit is capped at
    /// [`Chain::free_gas_cap`].
    pub async fn dry_run(
        self: &Arc<Self>,
        sender: Address,
        mut transaction: Transaction,
        now_ms: u64,
    ) -> Result<Result<Receipt, InvalidTransaction>, FreeError> {
        let chain = Arc::clone(self);
        transaction.gas_limit = transaction.gas_limit.min(self.free.gas_cap);
        self.free
            .pool
            .run(move || {
                let head = chain.head();
                let state = chain.state_at(head.height)?;
                let context = chain.next_context(&head, now_ms);
                let mut executor = chain.free.runtime.begin_block(state, context);
                let unsigned = SignedTransaction {
                    transaction,
                    signature: altan_primitives::Signature([0; 65]),
                };
                match executor.apply_recovered(&unsigned, sender) {
                    Ok(receipt) => Ok(Ok(receipt.clone())),
                    Err(TxError::Invalid(reason)) => Ok(Err(reason)),
                    Err(TxError::Fatal(error)) => Err(ChainError::from(error).into()),
                }
            })
            .await?
    }
}
