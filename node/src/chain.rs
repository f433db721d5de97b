//! The node's core: the chain's store, the runtime, the mempool and the head, with the
//! operations the engine and the RPC server call.
//!
//! Writes (building and committing a block) are serialized by one lock; reads go to rocksdb
//! snapshots of committed versions and never wait for a block to be built. Every committed block
//! is announced on a bounded broadcast channel that subscriptions read from.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use altan_primitives::{
    Address, Block, Certificate, ChainSpec, Evidence, EvidenceError, Gas, Hash, Header, Height,
    Receipt, SecretKey, SignedTransaction, ValidatorSet, merkle,
};
use altan_runtime::exec::{BlockContext, BlockOutcome, InvalidTransaction, Runtime, TxError};
use altan_runtime::state::{
    Account, StateCommit, StateConfig, StateKey, StateProof, StateRead, StoreError,
};
use altan_runtime::vm::{ArtifactStore, ExecutionError, VmConfig};
use altan_storage::{
    BlockCommit, BlockRef, ChainStore, ChainStoreError, DiskArtifactStore, EventLocation,
    StoreOptions,
};
use parity_scale_codec::{Decode, Encode};
use rayon::prelude::*;
use tokio::sync::{Notify, broadcast};
use tracing::{debug, info, warn};

use free::FreeExecution;

use crate::mempool::{
    AccountView, Admitted, Mempool, MempoolConfig, MempoolError, PooledTransaction,
};
use crate::metrics::Metrics;

mod free;

pub use free::{FreeConfig, FreeError};

const TARGET: &str = "altan::chain";

/// Committed blocks a slow subscriber may fall behind before it is dropped.
pub const BLOCK_CHANNEL_CAPACITY: usize = 256;
/// The most transactions one block takes (the gas limit usually binds first).
pub const MAX_BLOCK_TRANSACTIONS: usize = 20_000;
/// The most transactions one `submit_batch` call takes.
pub const MAX_SUBMIT_BATCH: usize = 10_000;
/// The most bytes of transactions a block built here carries, so that a proposal with its block
/// fits one gossip message.
pub const MAX_BLOCK_TRANSACTION_BYTES: usize = 3 << 20;
/// The largest block (encoded) this node accepts from a peer.
pub const MAX_BLOCK_BYTES: usize = MAX_BLOCK_TRANSACTION_BYTES + (256 << 10);
/// How far ahead of this node's clock a proposed block's timestamp may be.
pub const MAX_CLOCK_DRIFT_MS: u64 = 5_000;
/// Pieces of evidence held for inclusion.
pub const MAX_PENDING_EVIDENCE: usize = 64;
/// Pieces of evidence one built block carries.
pub const MAX_BLOCK_EVIDENCE: usize = 16;

/// How to open a chain.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    /// Where the database and the compiled-contract cache live.
    pub data_dir: PathBuf,
    /// Whether each block waits for fsync (off only for throwaway dev chains).
    pub sync_writes: bool,
    /// Mempool limits.
    pub mempool: MempoolConfig,
    /// rocksdb block cache bytes.
    pub cache_bytes: usize,
    /// The limits of queries, dry runs and gas estimates.
    pub free: FreeConfig,
}

/// Why a transaction was refused at submission. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction's rules refuse it (signature, chain id, size, gas).
    #[error(transparent)]
    Invalid(#[from] InvalidTransaction),
    /// The pool refuses it.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// The gas limit exceeds the block's.
    #[error("gas limit {limit} exceeds the block gas limit {max}")]
    GasLimitAboveBlock {
        /// The transaction's gas limit.
        limit: Gas,
        /// The block's.
        max: Gas,
    },
    /// The node could not read the state.
    #[error(transparent)]
    Internal(#[from] ChainError),
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
    /// The genesis spec is invalid.
    #[error("invalid chain spec: {0}")]
    Spec(String),
    /// The VM could not be built.
    #[error("vm: {0}")]
    Vm(String),
    /// A block this node built does not execute (its parent certificate or evidence).
    #[error("block: {0}")]
    Block(String),
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

/// A block executed on top of the head but not committed: built by this node or received from
/// another validator, waiting for consensus to decide it.
pub struct ExecutedBlock {
    /// The block.
    pub block: Block,
    /// Its hash.
    pub hash: Hash,
    /// Its receipts.
    pub receipts: Vec<Receipt>,
    /// The sender of each transaction.
    pub senders: Vec<Address>,
    commit: StateCommit,
    /// Pool transactions found invalid while building, dropped from the pool at commit.
    rejected: Vec<Hash>,
}

impl ExecutedBlock {
    fn new(
        block: Block,
        outcome: BlockOutcome,
        commit: StateCommit,
        rejected: Vec<Hash>,
    ) -> ExecutedBlock {
        ExecutedBlock {
            hash: block.hash(),
            block,
            receipts: outcome.receipts,
            senders: outcome.senders,
            commit,
            rejected,
        }
    }
}

impl std::fmt::Debug for ExecutedBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutedBlock")
            .field("height", &self.block.header.height)
            .field("hash", &self.hash)
            .field("transactions", &self.block.transactions.len())
            .finish()
    }
}

/// Why a block from a peer was not executed or imported.
#[derive(Debug, thiserror::Error)]
pub enum BlockRejection {
    /// The block breaks the chain's rules: the peer that sent it misbehaves.
    #[error("invalid block: {0}")]
    Invalid(String),
    /// The block does not follow this node's head (it is behind or ahead): no fault of the
    /// block's.
    #[error("block {height} does not follow the head {head}")]
    NotNext {
        /// The block's height.
        height: Height,
        /// The head's.
        head: Height,
    },
    /// This node failed.
    #[error(transparent)]
    Internal(#[from] ChainError),
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
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            ChainError::Spec(format!("creating {}: {e}", config.data_dir.display()))
        })?;
        let artifacts: Arc<dyn ArtifactStore> =
            Arc::new(DiskArtifactStore::open(config.data_dir.join("artifacts"))?);
        let vm = VmConfig { artifacts: Some(Arc::clone(&artifacts)), ..VmConfig::default() };
        let runtime = Runtime::for_spec(&spec, vm).map_err(|e| ChainError::Vm(e.to_string()))?;
        let free = FreeExecution::new(config.free, &spec, artifacts)?;
        let genesis_changes =
            Runtime::genesis(&spec).map_err(|e| ChainError::Spec(e.to_string()))?;
        let options = StoreOptions {
            sync_writes: config.sync_writes,
            cache_bytes: config.cache_bytes,
            ..StoreOptions::default()
        };
        let store = ChainStore::open(
            &config.data_dir.join("db"),
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
        read_account(&*self.state_at(height)?, address)
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
        let Some(code_hash) = read_account(&*state, contract)?.code_hash else { return Ok(None) };
        Ok(state.get(&StateKey::code(&code_hash))?)
    }

    /// The next nonce `sender` should use, counting its ready pending transactions.
    pub fn next_nonce(&self, sender: &Address) -> Result<u64, ChainError> {
        let account = self.account_at(sender, self.head().height)?;
        let view = AccountView { nonce: account.nonce, balance: account.balance };
        Ok(lock(&self.mempool).next_nonce(sender, view))
    }

    /// Checks what can be checked without the state: the runtime's stateless rules, a gas
    /// limit that fits a block, and the signature.
    fn precheck(&self, transaction: SignedTransaction) -> Result<PooledTransaction, SubmitError> {
        self.runtime.check_stateless(&transaction)?;
        let tx = &transaction.transaction;
        if tx.gas_limit > self.spec.block_gas_limit {
            return Err(SubmitError::GasLimitAboveBlock {
                limit: tx.gas_limit,
                max: self.spec.block_gas_limit,
            });
        }
        let sender = transaction.recover_sender().map_err(InvalidTransaction::BadSignature)?;
        Ok(PooledTransaction::new(transaction, sender)?)
    }

    /// Sends every transaction admitted from this node's clients from now on to `sender`, to be
    /// gossiped to peers. A full channel drops the gossip, not the transaction. Set once.
    pub fn gossip_transactions_to(&self, sender: tokio::sync::mpsc::Sender<SignedTransaction>) {
        if self.gossip.set(sender).is_err() {
            warn!(target: TARGET, "transaction gossip was already set up");
        }
    }

    /// Admits one transaction to the mempool.
    pub fn submit(&self, transaction: SignedTransaction) -> Result<Hash, SubmitError> {
        let pooled = self.precheck(transaction)?;
        let mut results = self.admit(vec![Ok(pooled)], true);
        results
            .pop()
            .unwrap_or_else(|| Err(ChainError::Corrupt("no admission result".into()).into()))
    }

    /// Admits many transactions, checking their signatures in parallel. One result each, in
    /// order.
    pub fn submit_batch(
        &self,
        transactions: Vec<SignedTransaction>,
    ) -> Vec<Result<Hash, SubmitError>> {
        let checked: Vec<_> =
            transactions.into_par_iter().map(|transaction| self.precheck(transaction)).collect();
        self.admit(checked, true)
    }

    /// Admits transactions gossiped by a peer, as [`Chain::submit_batch`] but without gossiping
    /// them again (gossipsub forwards what the node accepts).
    pub fn submit_from_peer(
        &self,
        transactions: Vec<SignedTransaction>,
    ) -> Vec<Result<Hash, SubmitError>> {
        let checked: Vec<_> =
            transactions.into_par_iter().map(|transaction| self.precheck(transaction)).collect();
        self.admit(checked, false)
    }

    fn admit(
        &self,
        checked: Vec<Result<PooledTransaction, SubmitError>>,
        local: bool,
    ) -> Vec<Result<Hash, SubmitError>> {
        let gossip = if local { self.gossip.get() } else { None };
        let started = Instant::now();
        // Accounts are read before taking the pool's lock; a block committed in between is
        // caught by the revalidation that follows it.
        let head = self.head().height;
        let state = match self.state_at(head) {
            Ok(state) => state,
            Err(error) => {
                let message = error.to_string();
                return checked
                    .into_iter()
                    .map(|_| Err(ChainError::Corrupt(message.clone()).into()))
                    .collect();
            }
        };
        let mut accounts = std::collections::HashMap::new();
        let mut results = Vec::with_capacity(checked.len());
        let mut views = Vec::with_capacity(checked.len());
        for item in &checked {
            let view = match item {
                Ok(pooled) => match accounts.get(&pooled.sender) {
                    Some(view) => Ok(*view),
                    None => read_account(&*state, &pooled.sender).map(|account| {
                        let view = AccountView { nonce: account.nonce, balance: account.balance };
                        accounts.insert(pooled.sender, view);
                        view
                    }),
                },
                Err(_) => Ok(AccountView::default()),
            };
            views.push(view);
        }
        let mut admitted = 0_u64;
        {
            let mut mempool = lock(&self.mempool);
            for (item, view) in checked.into_iter().zip(views) {
                let result = match (item, view) {
                    (Err(error), _) => Err(error),
                    (Ok(_), Err(error)) => Err(error.into()),
                    (Ok(pooled), Ok(view)) => {
                        let id = pooled.id;
                        let copy = gossip.map(|_| pooled.transaction.clone());
                        let admitted =
                            mempool.insert(pooled, view).map(|_: Admitted| id).map_err(Into::into);
                        if let (Ok(_), Some(sender), Some(copy)) = (&admitted, gossip, copy)
                            && sender.try_send(copy).is_err()
                        {
                            self.metrics.gossip_dropped.inc();
                        }
                        admitted
                    }
                };
                if result.is_ok() {
                    admitted = admitted.saturating_add(1);
                }
                results.push(result);
            }
            self.metrics.mempool_size.set(i64::try_from(mempool.len()).unwrap_or(i64::MAX));
        }
        self.metrics.transactions_admitted.inc_by(admitted);
        self.metrics.admission_seconds.observe(started.elapsed().as_secs_f64());
        if admitted > 0 {
            self.transaction_arrived.notify_one();
        }
        results
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

    /// Builds and executes a block on top of the head from the mempool (and the evidence this
    /// node holds), proposed by this node's validator key; nothing is committed. Consensus
    /// proposes it and commits it with [`Chain::commit_executed`] once it is decided.
    pub fn build_block(&self, now_ms: u64) -> Result<ExecutedBlock, ChainError> {
        let Some(validator) = self.validator.clone() else {
            return Err(ChainError::Spec("this node has no validator key".into()));
        };
        let started = Instant::now();
        let candidates = lock(&self.mempool).ready(MAX_BLOCK_TRANSACTIONS);
        let head = self.head();
        let mut context = self.next_context(&head, now_ms);
        let height = context.height;
        let timestamp_ms = context.timestamp_ms;
        // The parent's precommits go in the block: the runtime rewards those voters. Genesis is
        // not voted on.
        let parent_certificate =
            if head.height == 0 { None } else { self.store.certificate(head.height)? };
        context.parent_certificate = parent_certificate.clone();
        let state = self.state_at(head.height)?;
        context.evidence = self.includable_evidence(&*state, &context);
        let evidence = context.evidence.clone();
        let mut executor = self.runtime.begin_block(Arc::clone(&state), context);
        let mut included = Vec::with_capacity(candidates.len());
        let mut rejected = Vec::new();
        let mut skipped_senders = std::collections::HashSet::new();
        let mut bytes = 0usize;
        for candidate in &candidates {
            if skipped_senders.contains(&candidate.sender) {
                continue;
            }
            let size = candidate.transaction.encoded_size();
            if bytes.saturating_add(size) > MAX_BLOCK_TRANSACTION_BYTES {
                skipped_senders.insert(candidate.sender);
                continue;
            }
            match executor.apply_recovered(&candidate.transaction, candidate.sender) {
                Ok(_) => {
                    bytes = bytes.saturating_add(size);
                    included.push(candidate.transaction.clone());
                }
                Err(TxError::Invalid(InvalidTransaction::BlockGasExceeded { .. })) => {
                    // It waits for the next block, and so do the sender's later nonces.
                    skipped_senders.insert(candidate.sender);
                }
                Err(TxError::Invalid(reason)) => {
                    debug!(target: TARGET, id = %candidate.id, %reason, "dropping invalid transaction");
                    skipped_senders.insert(candidate.sender);
                    rejected.push(candidate.id);
                }
                Err(TxError::Fatal(error)) => return Err(error.into()),
            }
        }
        let outcome = executor.finish().map_err(|e| ChainError::Block(e.to_string()))?;
        let commit = self.store.state().prepare(height, &outcome.changes)?;
        let header = Header {
            chain_id: self.spec.chain_id,
            height,
            parent_hash: head.hash(),
            timestamp_ms,
            proposer: validator.address,
            state_root: commit.root(),
            transactions_root: outcome.transactions_root,
            receipts_root: outcome.receipts_root,
            parent_certificate_hash: Block::compute_parent_certificate_hash(
                parent_certificate.as_ref(),
            ),
            evidence_root: Block::compute_evidence_root(&evidence),
            gas_used: outcome.gas_used,
            gas_limit: self.spec.block_gas_limit,
        };
        let block = Block { header, transactions: included, parent_certificate, evidence };
        let executed = ExecutedBlock::new(block, outcome, commit, rejected);
        debug!(target: TARGET, height, hash = %executed.hash,
            transactions = executed.block.transactions.len(),
            ms = started.elapsed().as_millis() as u64, "block built");
        Ok(executed)
    }

    /// The pieces of evidence held for inclusion that a block with `context` may carry: each
    /// is checked alone against the parent state (it may have expired, or already been
    /// punished).
    fn includable_evidence(&self, parent: &dyn StateRead, context: &BlockContext) -> Vec<Evidence> {
        let pool = lock(&self.evidence).clone();
        let mut chosen = Vec::new();
        for evidence in pool {
            let mut trial = context.clone();
            trial.evidence = chosen.iter().cloned().chain([evidence.clone()]).collect();
            match self.runtime.check_block_inputs(parent, &trial) {
                Ok(()) => chosen.push(evidence),
                Err(error) => {
                    debug!(target: TARGET, evidence = %evidence.hash(), %error, "evidence not includable");
                }
            }
            if chosen.len() >= MAX_BLOCK_EVIDENCE {
                break;
            }
        }
        chosen
    }

    /// Holds evidence of equivocation for inclusion in a block this node proposes. Returns
    /// whether it was new. The pool is bounded; evidence that cannot be included is dropped
    /// when it is found to be so.
    pub fn add_evidence(&self, evidence: Evidence) -> Result<bool, EvidenceError> {
        evidence.verify()?;
        let mut pool = lock(&self.evidence);
        let hash = evidence.hash();
        if pool.iter().any(|e| e.hash() == hash) {
            return Ok(false);
        }
        if pool.len() >= MAX_PENDING_EVIDENCE {
            pool.remove(0);
        }
        info!(target: TARGET, evidence = %hash, "holding evidence of equivocation");
        pool.push(evidence);
        Ok(true)
    }

    /// Checks a block proposed by another validator on top of the head and executes it: the
    /// header must follow the head, its timestamp must be after the parent's and at most
    /// [`MAX_CLOCK_DRIFT_MS`] ahead of `now_ms` (when given: blocks imported from sync are
    /// final and are not held to this node's clock), and what execution gives must match the
    /// header. Nothing is committed.
    pub fn execute_block(
        &self,
        block: Block,
        now_ms: Option<u64>,
    ) -> Result<ExecutedBlock, BlockRejection> {
        let started = Instant::now();
        let head = self.head();
        let header = &block.header;
        let invalid = |why: String| Err(BlockRejection::Invalid(why));
        if header.chain_id != self.spec.chain_id {
            return invalid(format!("chain id {} is not {}", header.chain_id, self.spec.chain_id));
        }
        if Some(header.height) != head.height.checked_add(1) {
            return Err(BlockRejection::NotNext { height: header.height, head: head.height });
        }
        if header.parent_hash != head.hash() {
            return invalid(format!(
                "parent {} is not the head {}",
                header.parent_hash,
                head.hash()
            ));
        }
        if header.gas_limit != self.spec.block_gas_limit {
            return invalid(format!(
                "gas limit {} is not {}",
                header.gas_limit, self.spec.block_gas_limit
            ));
        }
        if header.timestamp_ms <= head.timestamp_ms {
            return invalid(format!(
                "timestamp {} is not after the parent's {}",
                header.timestamp_ms, head.timestamp_ms
            ));
        }
        if let Some(now) = now_ms
            && header.timestamp_ms > now.saturating_add(MAX_CLOCK_DRIFT_MS)
        {
            return invalid(format!(
                "timestamp {} is ahead of this node's clock {now}",
                header.timestamp_ms
            ));
        }
        let size = block.encoded_size();
        if size > MAX_BLOCK_BYTES {
            return invalid(format!("{size} bytes; a block has at most {MAX_BLOCK_BYTES}"));
        }
        let height = header.height;
        let state = self.state_at(head.height).map_err(BlockRejection::Internal)?;
        let outcome = match self.runtime.execute_block(state, &block) {
            Ok(outcome) => outcome,
            Err(altan_runtime::exec::BlockError::Fatal(error)) => {
                return Err(BlockRejection::Internal(error.into()));
            }
            Err(error) => return invalid(error.to_string()),
        };
        let commit = self
            .store
            .state()
            .prepare(height, &outcome.changes)
            .map_err(|e| BlockRejection::Internal(e.into()))?;
        let header = &block.header;
        let mismatch = [
            ("state root", commit.root(), header.state_root),
            ("transactions root", outcome.transactions_root, header.transactions_root),
            ("receipts root", outcome.receipts_root, header.receipts_root),
        ]
        .into_iter()
        .find(|(_, computed, claimed)| computed != claimed);
        if let Some((what, computed, claimed)) = mismatch {
            return invalid(format!("{what} {claimed} does not match the execution's {computed}"));
        }
        if outcome.gas_used != header.gas_used {
            return invalid(format!(
                "gas used {} does not match the execution's {}",
                header.gas_used, outcome.gas_used
            ));
        }
        let executed = ExecutedBlock::new(block, outcome, commit, Vec::new());
        debug!(target: TARGET, height, hash = %executed.hash,
            ms = started.elapsed().as_millis() as u64, "block executed");
        Ok(executed)
    }

    /// Imports a final block from a peer: its certificate must be for it and verify against the
    /// validator set of its height (which the state after its parent names, so a chain of
    /// imports checks each epoch's set with the set the previous epoch chose), then it is
    /// executed, checked and committed.
    pub fn import_block(
        &self,
        block: Block,
        certificate: Certificate,
    ) -> Result<Arc<CommittedBlock>, BlockRejection> {
        let height = block.header.height;
        let hash = block.hash();
        if certificate.height != height || certificate.block_hash != hash {
            return Err(BlockRejection::Invalid(format!(
                "the certificate is for block {} at {}, not {hash} at {height}",
                certificate.block_hash, certificate.height
            )));
        }
        let head = self.head().height;
        if Some(height) != head.checked_add(1) {
            return Err(BlockRejection::NotNext { height, head });
        }
        let set = self.validator_set_for(height).map_err(BlockRejection::Internal)?;
        certificate
            .verify(self.spec.chain_id, &set)
            .map_err(|e| BlockRejection::Invalid(format!("certificate: {e}")))?;
        let executed = self.execute_block(block, None)?;
        self.commit_executed(&executed, Some(certificate)).map_err(BlockRejection::Internal)
    }

    /// The validator set that signs the block at `height`: the one the state after block
    /// `height - 1` names for the epoch of `height`. Empty before the parent is committed.
    pub fn validator_set_for(&self, height: Height) -> Result<ValidatorSet, ChainError> {
        let parent = height.saturating_sub(1);
        let state = self.state_at(parent)?;
        Ok(altan_runtime::staking::validator_set_at(&*state, height)?.unwrap_or_default())
    }

    /// The leader seed of the epoch of `height`: the hash of the last block of the previous
    /// epoch, the genesis hash in epoch 0. `None` while that block is not committed.
    pub fn leader_seed_for(&self, height: Height) -> Result<Option<Hash>, ChainError> {
        let state = self.state_at(self.head().height)?;
        let config = altan_runtime::staking::config(&*state)?;
        let seed_height = config.first_height(config.epoch_of(height)).saturating_sub(1);
        Ok(self.store.block_hash(seed_height)?)
    }

    /// Commits a block built or executed on the head, with its certificate when it is final.
    /// Fails with [`ChainStoreError::NotNext`] if another block was committed since it was
    /// executed.
    pub fn commit_executed(
        &self,
        executed: &ExecutedBlock,
        certificate: Option<Certificate>,
    ) -> Result<Arc<CommittedBlock>, ChainError> {
        let _committing = lock(&self.producing);
        let started = Instant::now();
        let block = &executed.block;
        let height = block.header.height;
        let hash = executed.hash;
        let head = self.head();
        if block.header.parent_hash != head.hash() {
            return Err(ChainStoreError::NotNext { height, head: head.height }.into());
        }
        self.store.commit_block(BlockCommit {
            block,
            receipts: &executed.receipts,
            senders: &executed.senders,
            state: &executed.commit,
            certificate: certificate.as_ref(),
        })?;
        let is_final = certificate.is_some();
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(block.header.clone());
        if is_final {
            *self.final_head.write().unwrap_or_else(|p| p.into_inner()) = BlockRef { height, hash };
        }
        if !block.evidence.is_empty() {
            let included: std::collections::HashSet<Hash> =
                block.evidence.iter().map(Evidence::hash).collect();
            lock(&self.evidence).retain(|e| !included.contains(&e.hash()));
        }

        {
            let mut mempool = lock(&self.mempool);
            for id in &executed.rejected {
                mempool.remove(id);
            }
            let state = self.state_at(height)?;
            mempool.revalidate(|address| match read_account(&*state, address) {
                Ok(account) => AccountView { nonce: account.nonce, balance: account.balance },
                Err(error) => {
                    warn!(target: TARGET, %address, %error, "cannot read account; dropping its transactions");
                    AccountView::default()
                }
            });
            self.metrics.mempool_size.set(i64::try_from(mempool.len()).unwrap_or(i64::MAX));
        }

        let count = block.transactions.len();
        let metrics = &self.metrics;
        metrics.height.set(i64::try_from(height).unwrap_or(i64::MAX));
        if is_final {
            metrics.final_height.set(i64::try_from(height).unwrap_or(i64::MAX));
        }
        metrics.transactions_included.inc_by(u64::try_from(count).unwrap_or(u64::MAX));
        metrics.block_seconds.observe(started.elapsed().as_secs_f64());
        info!(target: TARGET, height, %hash, transactions = count, gas_used = block.header.gas_used,
            ms = started.elapsed().as_millis() as u64, "block committed");
        let committed = Arc::new(CommittedBlock {
            block: block.clone(),
            hash,
            receipts: executed.receipts.clone(),
            is_final,
        });
        // No receivers is fine: nobody subscribed.
        let _ = self.blocks.send(Arc::clone(&committed));
        Ok(committed)
    }
}

/// Reads an account; a missing one is empty.
pub fn read_account(state: &dyn StateRead, address: &Address) -> Result<Account, ChainError> {
    match state.get(&StateKey::account(address))? {
        Some(bytes) => Account::decode(&mut &bytes[..])
            .map_err(|e| ChainError::Corrupt(format!("account {address}: {e}"))),
        None => Ok(Account { nonce: 0, balance: 0, code_hash: None }),
    }
}
