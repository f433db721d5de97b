//! The node's core: the chain's store, the runtime, the mempool and the head, with the
//! operations the engine and the RPC server call.
//!
//! Writes (building and committing a block) are serialized by one lock; reads go to rocksdb
//! snapshots of committed versions and never wait for a block to be built. Every committed block
//! is announced on a bounded broadcast channel that subscriptions read from.
//!
//! Here: the chain's handles, its opening and its reads. Admission to the pool is in
//! `admission.rs`, the block path (build, check, import, commit) in `blocks.rs`, queries and dry
//! runs in `free.rs`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use altan_primitives::{
    Address, Block, ChainSpec, Evidence, Hash, Header, Height, Receipt, SecretKey,
    SignedTransaction, merkle,
};
use altan_runtime::accounts;
use altan_runtime::exec::{BlockContext, BlockError, GenesisError, Runtime};
use altan_runtime::state::{Account, StateConfig, StateKey, StateProof, StateRead, StoreError};
use altan_runtime::vm::{ArtifactStore, ExecutionError, MemoryArtifactStore, VmConfig};
pub use altan_storage::MemoryDisk;
use altan_storage::{
    BlockRef, ChainLocation, ChainStore, ChainStoreError, DiskArtifactStore, EventLocation,
    StoreOptions,
};
use tokio::sync::{Notify, broadcast};
use tracing::info;

use free::FreeExecution;

use crate::mempool::{Mempool, MempoolConfig, PooledTransaction};
use crate::metrics::Metrics;

mod admission;
mod blocks;
mod free;

pub use admission::{MAX_SUBMIT_BATCH, SubmitError};
pub use blocks::{
    BlockRejection, ExecutedBlock, InvalidBlock, MAX_BLOCK_EVIDENCE, MAX_BLOCK_TRANSACTION_BYTES,
    MAX_BLOCK_TRANSACTIONS, MAX_PENDING_EVIDENCE,
};
pub use free::{FreeConfig, FreeError};

const TARGET: &str = "altan::chain";

/// Committed blocks a slow subscriber may fall behind before it is dropped.
pub const BLOCK_CHANNEL_CAPACITY: usize = 256;

/// Where a chain keeps its database and its cache of compiled contracts.
#[derive(Debug, Clone)]
pub enum DataDir {
    /// In a directory: rocksdb under `db/`, compiled contracts under `artifacts/`.
    Path(PathBuf),
    /// On a simulated disk, which keeps what rocksdb promises across crashes and power losses
    /// and nothing more, with compiled contracts in a memory cache that may be shared (a cache
    /// keyed by code hash, as the directory's is).
    Memory {
        /// The database's disk.
        disk: MemoryDisk,
        /// The compiled-contract cache.
        artifacts: Arc<MemoryArtifactStore>,
    },
}

impl DataDir {
    /// The compiled-contract cache, and the database's directory (made if missing) when the
    /// chain lives in a directory.
    fn open_artifacts(&self) -> Result<(Arc<dyn ArtifactStore>, Option<PathBuf>), ChainError> {
        match self {
            DataDir::Path(path) => {
                std::fs::create_dir_all(path).map_err(|e| ChainError::DataDir {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let artifacts = DiskArtifactStore::open(path.join("artifacts"))?;
                Ok((Arc::new(artifacts), Some(path.join("db"))))
            }
            DataDir::Memory { artifacts, .. } => Ok((Arc::clone(artifacts) as _, None)),
        }
    }
}

/// How to open a chain.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// Where the database and the compiled-contract cache live.
    pub data_dir: DataDir,
    /// Whether each block waits for fsync (off only for throwaway dev chains).
    pub sync_writes: bool,
    /// Mempool limits.
    pub mempool: MempoolConfig,
    /// rocksdb block cache bytes.
    pub cache_bytes: usize,
    /// The limits of queries, dry runs and gas estimates.
    pub free: FreeConfig,
}

/// A failure of the node itself (storage, execution infrastructure).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ChainStoreError),
    /// The state failed.
    #[error(transparent)]
    State(#[from] StoreError),
    /// Execution could not run.
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    /// Stored state does not decode.
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// The data directory could not be made.
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The genesis spec is invalid.
    #[error("invalid chain spec: {0}")]
    Genesis(#[from] GenesisError),
    /// A block was to be built by a node with no validator key.
    #[error("this node has no validator key")]
    NoValidatorKey,
    /// The VM could not be built.
    #[error("vm: {0}")]
    Vm(String),
    /// A block this node built does not execute (its parent certificate or evidence).
    #[error("a block built here does not execute: {0}")]
    Block(BlockError),
    /// A state proof was asked for a block older than those whose trees the node keeps.
    #[error(
        "state proofs are served from block {oldest} on (the newest blocks' trees); block {height} is older"
    )]
    ProofTooOld {
        /// The block asked for.
        height: Height,
        /// The oldest block with a proof.
        oldest: Height,
    },
}

/// A committed block and what it produced, as announced to subscribers.
#[derive(Debug)]
pub struct CommittedBlock {
    /// The block.
    pub block: Block,
    /// Its hash.
    pub hash: Hash,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// Whether it is final (with a single validator, at once).
    pub is_final: bool,
}

/// The validator key of a node that produces blocks.
#[derive(Clone)]
pub struct ValidatorKey {
    /// The consensus key.
    pub key: SecretKey,
    /// The validator's account (where fees go).
    pub address: Address,
}

/// The node's core.
pub struct Chain {
    spec: ChainSpec,
    /// Executes blocks; nothing else runs on its VM.
    runtime: Runtime,
    /// Executes queries and dry runs.
    free: free::FreeExecution,
    store: ChainStore,
    mempool: Mutex<Mempool>,
    head: RwLock<Arc<Header>>,
    final_head: RwLock<BlockRef>,
    blocks: broadcast::Sender<Arc<CommittedBlock>>,
    transaction_arrived: Notify,
    producing: Mutex<()>,
    validator: Option<ValidatorKey>,
    evidence: Mutex<Vec<Evidence>>,
    /// Where transactions admitted from this node's clients go to be gossiped, once the
    /// network runs.
    gossip: std::sync::OnceLock<tokio::sync::mpsc::Sender<SignedTransaction>>,
    status: crate::status::NodeStatus,
    metrics: Arc<Metrics>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The header of the genesis block of `spec` with the given state root.
pub fn genesis_header(spec: &ChainSpec, state_root: Hash) -> Header {
    Header {
        chain_id: spec.chain_id,
        height: 0,
        parent_hash: Hash::ZERO,
        timestamp_ms: spec.genesis_time_ms,
        proposer: Address::ZERO,
        state_root,
        transactions_root: merkle::root(&[]),
        receipts_root: merkle::root(&[]),
        parent_certificate_hash: Block::compute_parent_certificate_hash(None),
        evidence_root: Block::compute_evidence_root(&[]),
        gas_used: 0,
        gas_limit: spec.block_gas_limit,
    }
}

impl Chain {
    /// Opens (or creates) the chain of `spec` in `config.data_dir`.
    pub fn open(
        spec: ChainSpec,
        config: &ChainConfig,
        validator: Option<ValidatorKey>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Chain>, ChainError> {
        let (artifacts, db_path) = config.data_dir.open_artifacts()?;
        let location = match (&config.data_dir, &db_path) {
            (DataDir::Memory { disk, .. }, _) => ChainLocation::Memory(disk),
            (DataDir::Path(path), db) => ChainLocation::Disk(db.as_deref().unwrap_or(path)),
        };
        let vm = VmConfig { artifacts: Some(Arc::clone(&artifacts)), ..VmConfig::default() };
        let runtime = Runtime::for_spec(&spec, vm).map_err(|e| ChainError::Vm(e.to_string()))?;
        let free = FreeExecution::new(config.free, &spec, artifacts)?;
        let genesis_changes = Runtime::genesis(&spec)?;
        let options = StoreOptions {
            sync_writes: config.sync_writes,
            cache_bytes: config.cache_bytes,
            ..StoreOptions::default()
        };
        let store = ChainStore::open(
            location,
            &spec,
            |state| {
                let commit = state.prepare(0, &genesis_changes)?;
                let header = genesis_header(&spec, commit.root());
                Ok((
                    Block {
                        header,
                        transactions: Vec::new(),
                        parent_certificate: None,
                        evidence: Vec::new(),
                    },
                    commit,
                ))
            },
            options,
            StateConfig::default(),
        )?;
        let head = store.head()?;
        let head_block = store.block(&head.hash)?.ok_or_else(|| {
            ChainError::Corrupt(format!("the head block {} is missing", head.hash))
        })?;
        let final_head = store.final_head()?;
        let (blocks, _) = broadcast::channel(BLOCK_CHANNEL_CAPACITY);
        metrics.height.set(i64::try_from(head.height).unwrap_or(i64::MAX));
        metrics.final_height.set(i64::try_from(final_head.height).unwrap_or(i64::MAX));
        info!(target: TARGET, chain = %spec.name, chain_id = spec.chain_id, height = head.height,
            hash = %head.hash, "chain opened");
        Ok(Arc::new(Chain {
            runtime,
            free,
            store,
            mempool: Mutex::new(Mempool::new(config.mempool)),
            head: RwLock::new(Arc::new(head_block.header)),
            final_head: RwLock::new(final_head),
            blocks,
            transaction_arrived: Notify::new(),
            producing: Mutex::new(()),
            validator,
            evidence: Mutex::new(Vec::new()),
            gossip: std::sync::OnceLock::new(),
            status: crate::status::NodeStatus::default(),
            metrics,
            spec,
        }))
    }

    /// The chain spec.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// The store.
    pub fn store(&self) -> &ChainStore {
        &self.store
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// What the network and consensus report for RPC: peers, sync progress, consensus position.
    pub fn status(&self) -> &crate::status::NodeStatus {
        &self.status
    }

    /// This node's validator key, if it has one.
    pub fn validator(&self) -> Option<&ValidatorKey> {
        self.validator.as_ref()
    }

    /// The newest block's header.
    pub fn head(&self) -> Arc<Header> {
        Arc::clone(&self.head.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The newest final block.
    pub fn final_head(&self) -> BlockRef {
        *self.final_head.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Receives every committed block from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.blocks.subscribe()
    }

    /// Resolves when a transaction was admitted since the last call.
    pub async fn transaction_arrived(&self) {
        self.transaction_arrived.notified().await;
    }

    /// Whether a transaction is ready for the next block.
    pub fn has_ready_transactions(&self) -> bool {
        lock(&self.mempool).has_ready()
    }

    /// Pending transactions.
    pub fn mempool_len(&self) -> usize {
        lock(&self.mempool).len()
    }

    /// A pending transaction by id.
    pub fn pending_transaction(&self, id: &Hash) -> Option<Arc<PooledTransaction>> {
        lock(&self.mempool).get(id)
    }

    /// A read view of the state after the block at `height`.
    pub fn state_at(&self, height: Height) -> Result<Arc<dyn StateRead>, ChainError> {
        Ok(Arc::new(self.store.state().snapshot(height)?))
    }

    /// An account as of `height`: a missing account is empty.
    pub fn account_at(&self, address: &Address, height: Height) -> Result<Account, ChainError> {
        Ok(accounts::read(&*self.state_at(height)?, address)?)
    }

    /// A raw state value with its proof against the root of `height`, for a height whose tree
    /// is kept in memory (the newest [`StateConfig::tree_versions`] blocks). An older proof
    /// would rebuild that height's whole tree, at a cost that grows with the state, for one
    /// request: it is refused with [`ChainError::ProofTooOld`].
    pub fn proof_at(
        &self,
        key: &[u8],
        height: Height,
    ) -> Result<(Option<Vec<u8>>, StateProof, Hash), ChainError> {
        let state = self.store.state();
        let oldest = state.oldest_kept_tree().unwrap_or(Height::MAX);
        if height < oldest {
            return Err(ChainError::ProofTooOld { height, oldest });
        }
        let (value, proof) = state.get_with_proof(key, height)?;
        Ok((value, proof, state.root(height)?))
    }

    /// The code of a contract as of `height`.
    pub fn code_at(
        &self,
        contract: &Address,
        height: Height,
    ) -> Result<Option<Vec<u8>>, ChainError> {
        let state = self.state_at(height)?;
        let Some(code_hash) = accounts::read(&*state, contract)?.code_hash else { return Ok(None) };
        Ok(state.get(&StateKey::code(&code_hash))?)
    }

    /// The context of the block after the head, as a dry run or query sees it.
    pub(crate) fn next_context(&self, head: &Header, timestamp_ms: u64) -> BlockContext {
        let mut context = BlockContext::new(
            self.spec.chain_id,
            head.height.saturating_add(1),
            timestamp_ms.max(head.timestamp_ms.saturating_add(1)),
            self.validator.as_ref().map_or(head.proposer, |v| v.address),
            self.spec.block_gas_limit,
        );
        context.parent_hash = head.hash();
        context
    }

    /// The header of the block at `height`.
    pub fn header_at(&self, height: Height) -> Result<Header, ChainError> {
        self.store
            .header_at(height)?
            .ok_or_else(|| ChainError::Corrupt(format!("no block at height {height}")))
    }

    /// A block by height.
    pub fn block_at(&self, height: Height) -> Result<Option<Block>, ChainError> {
        Ok(self.store.block_at(height)?)
    }

    /// A block by hash.
    pub fn block(&self, hash: &Hash) -> Result<Option<Block>, ChainError> {
        Ok(self.store.block(hash)?)
    }

    /// An included transaction with its block and receipt.
    pub fn transaction(
        &self,
        id: &Hash,
    ) -> Result<Option<(Block, u32, SignedTransaction, Receipt)>, ChainError> {
        let Some((height, index)) = self.store.transaction_location(id)? else { return Ok(None) };
        let Some(block) = self.store.block_at(height)? else { return Ok(None) };
        let receipts = self.store.receipts(&block.hash())?.unwrap_or_default();
        let position = usize::try_from(index).unwrap_or(usize::MAX);
        let (Some(transaction), Some(receipt)) =
            (block.transactions.get(position).cloned(), receipts.get(position).cloned())
        else {
            return Err(ChainError::Corrupt(format!("transaction {id} is indexed but missing")));
        };
        Ok(Some((block, index, transaction, receipt)))
    }

    /// The events of `contract` in blocks `from..=to`, at most `limit`.
    pub fn events_of(
        &self,
        contract: &Address,
        from: Height,
        to: Height,
        limit: usize,
    ) -> Result<Vec<EventLocation>, ChainError> {
        Ok(self.store.events_of(contract, from, to, limit)?)
    }
}
