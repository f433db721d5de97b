//! The node's core: the chain's store, the runtime, the mempool and the head, with the
//! operations the producer and the RPC server call.
//!
//! Writes (building and committing a block) are serialized by one lock; reads go to rocksdb
//! snapshots of committed versions and never wait for a block to be built. Every committed block
//! is announced on a bounded broadcast channel that subscriptions read from.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use altan_primitives::{
    Address, Block, Certificate, ChainSpec, CommitSignature, Gas, Hash, Header, Height, Receipt,
    SecretKey, SignedTransaction, Transaction, ValidatorSet, merkle,
};
use altan_runtime::exec::{
    BlockContext, InvalidTransaction, QueryOutcome, Runtime, TxError, intrinsic_gas,
};
use altan_runtime::gas::MAX_TX_SIZE;
use altan_runtime::state::{Account, StateConfig, StateKey, StateProof, StateRead, StoreError};
use altan_runtime::vm::{ExecutionError, VmConfig};
use altan_storage::{DiskArtifactStore, StoreOptions};
use parity_scale_codec::{Decode, Encode};
use rayon::prelude::*;
use tokio::sync::{Notify, broadcast};
use tracing::{debug, info, warn};

use crate::mempool::{
    AccountView, Admitted, Mempool, MempoolConfig, MempoolError, PooledTransaction,
};
use crate::metrics::Metrics;
use crate::store::{BlockCommit, BlockRef, ChainStore, ChainStoreError, EventLocation};

const TARGET: &str = "altan::chain";

/// Committed blocks a slow subscriber may fall behind before it is dropped.
pub const BLOCK_CHANNEL_CAPACITY: usize = 256;
/// The most transactions one block takes (the gas limit usually binds first).
pub const MAX_BLOCK_TRANSACTIONS: usize = 20_000;
/// The most transactions one `submit_batch` call takes.
pub const MAX_SUBMIT_BATCH: usize = 10_000;

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

/// The outcome of a dry run or query.
pub type DryRun = QueryOutcome;

/// The node's core.
pub struct Chain {
    spec: ChainSpec,
    runtime: Runtime,
    store: ChainStore,
    mempool: Mutex<Mempool>,
    head: RwLock<Arc<Header>>,
    final_head: RwLock<BlockRef>,
    blocks: broadcast::Sender<Arc<CommittedBlock>>,
    transaction_arrived: Notify,
    producing: Mutex<()>,
    validator: Option<ValidatorKey>,
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
        let artifacts = DiskArtifactStore::open(config.data_dir.join("artifacts"))?;
        let vm = VmConfig { artifacts: Some(Arc::new(artifacts)), ..VmConfig::default() };
        let runtime = Runtime::new(spec.chain_id, vm).map_err(|e| ChainError::Vm(e.to_string()))?;
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
            store,
            mempool: Mutex::new(Mempool::new(config.mempool)),
            head: RwLock::new(Arc::new(head_block.header)),
            final_head: RwLock::new(final_head),
            blocks,
            transaction_arrived: Notify::new(),
            producing: Mutex::new(()),
            validator,
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

    /// A raw state value with its proof against the root of `height`.
    pub fn proof_at(
        &self,
        key: &[u8],
        height: Height,
    ) -> Result<(Option<Vec<u8>>, StateProof, Hash), ChainError> {
        let state = self.store.state();
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

    /// Checks what can be checked without the state: size, chain id, gas limit, signature.
    fn precheck(&self, transaction: SignedTransaction) -> Result<PooledTransaction, SubmitError> {
        let size = transaction.encoded_size();
        if size > MAX_TX_SIZE {
            return Err(InvalidTransaction::TooLarge { size, max: MAX_TX_SIZE }.into());
        }
        let tx = &transaction.transaction;
        if tx.chain_id != self.spec.chain_id {
            return Err(InvalidTransaction::WrongChainId {
                expected: self.spec.chain_id,
                found: tx.chain_id,
            }
            .into());
        }
        let intrinsic = intrinsic_gas(&transaction, size);
        if tx.gas_limit < intrinsic {
            return Err(
                InvalidTransaction::GasLimitTooLow { limit: tx.gas_limit, intrinsic }.into()
            );
        }
        if tx.gas_limit > self.spec.block_gas_limit {
            return Err(SubmitError::GasLimitAboveBlock {
                limit: tx.gas_limit,
                max: self.spec.block_gas_limit,
            });
        }
        let sender = transaction.recover_sender().map_err(InvalidTransaction::BadSignature)?;
        Ok(PooledTransaction::new(transaction, sender)?)
    }

    /// Admits one transaction to the mempool.
    pub fn submit(&self, transaction: SignedTransaction) -> Result<Hash, SubmitError> {
        let pooled = self.precheck(transaction)?;
        let mut results = self.admit(vec![Ok(pooled)]);
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
        self.admit(checked)
    }

    fn admit(
        &self,
        checked: Vec<Result<PooledTransaction, SubmitError>>,
    ) -> Vec<Result<Hash, SubmitError>> {
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
                        mempool.insert(pooled, view).map(|_: Admitted| id).map_err(Into::into)
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
    fn next_context(&self, head: &Header, timestamp_ms: u64) -> BlockContext {
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

    /// Calls a contract read-only on the state of `height`.
    pub fn query(
        &self,
        height: Height,
        caller: Address,
        contract: Address,
        input: Vec<u8>,
        gas_limit: Gas,
    ) -> Result<QueryOutcome, ChainError> {
        let header = self.header_at(height)?;
        let context = BlockContext::new(
            self.spec.chain_id,
            header.height,
            header.timestamp_ms,
            header.proposer,
            header.gas_limit,
        );
        let state = self.state_at(height)?;
        Ok(self.runtime.query(state, context, caller, contract, input, gas_limit)?)
    }

    /// Executes `transaction` as if `sender` had signed it, on top of the head, and throws the
    /// result away: gas used, return data and events. The rules apply as in a block (nonce,
    /// balance for the fee); the signature is not checked.
    pub fn dry_run(
        &self,
        sender: Address,
        transaction: Transaction,
        now_ms: u64,
    ) -> Result<Result<Receipt, InvalidTransaction>, ChainError> {
        let head = self.head();
        let state = self.state_at(head.height)?;
        let mut executor = self.runtime.begin_block(state, self.next_context(&head, now_ms));
        let unsigned =
            SignedTransaction { transaction, signature: altan_primitives::Signature([0; 65]) };
        match executor.apply_recovered(&unsigned, sender) {
            Ok(receipt) => Ok(Ok(receipt.clone())),
            Err(TxError::Invalid(reason)) => Ok(Err(reason)),
            Err(TxError::Fatal(error)) => Err(error.into()),
        }
    }

    /// The header of the block at `height`.
    pub fn header_at(&self, height: Height) -> Result<Header, ChainError> {
        self.store
            .block_at(height)?
            .map(|block| block.header)
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

    /// Builds, executes and commits a block from the mempool on top of the head, made final at
    /// once by this node's (single) validator key. With `allow_empty` false and nothing ready,
    /// builds nothing.
    pub fn produce_block(
        &self,
        now_ms: u64,
        allow_empty: bool,
    ) -> Result<Option<Arc<CommittedBlock>>, ChainError> {
        let Some(validator) = self.validator.clone() else {
            return Err(ChainError::Spec("this node has no validator key".into()));
        };
        let _producing = lock(&self.producing);
        let started = Instant::now();
        let candidates = lock(&self.mempool).ready(MAX_BLOCK_TRANSACTIONS);
        if candidates.is_empty() && !allow_empty {
            return Ok(None);
        }
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
        let mut executor = self.runtime.begin_block(state, context);
        let mut included = Vec::with_capacity(candidates.len());
        let mut rejected = Vec::new();
        let mut skipped_senders = std::collections::HashSet::new();
        for candidate in &candidates {
            if skipped_senders.contains(&candidate.sender) {
                continue;
            }
            match executor.apply_recovered(&candidate.transaction, candidate.sender) {
                Ok(_) => included.push(candidate.transaction.clone()),
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
            evidence_root: Block::compute_evidence_root(&[]),
            gas_used: outcome.gas_used,
            gas_limit: self.spec.block_gas_limit,
        };
        let block =
            Block { header, transactions: included, parent_certificate, evidence: Vec::new() };
        let hash = block.hash();
        // The set that signs block h is the one the state after block h - 1 names for h's epoch.
        let set = altan_runtime::staking::validator_set_at(&*self.state_at(head.height)?, height)?
            .unwrap_or_default();
        let certificate = self.certify(&validator, &set, height, hash);
        self.store.commit_block(BlockCommit {
            block: &block,
            receipts: &outcome.receipts,
            state: &commit,
            certificate: certificate.as_ref(),
        })?;
        let is_final = certificate.is_some();
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(block.header.clone());
        if is_final {
            *self.final_head.write().unwrap_or_else(|p| p.into_inner()) = BlockRef { height, hash };
        }

        {
            let mut mempool = lock(&self.mempool);
            for id in &rejected {
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
        info!(target: TARGET, height, %hash, transactions = count, gas_used = outcome.gas_used,
            ms = started.elapsed().as_millis() as u64, "block committed");
        let committed =
            Arc::new(CommittedBlock { block, hash, receipts: outcome.receipts, is_final });
        // No receivers is fine: nobody subscribed.
        let _ = self.blocks.send(Arc::clone(&committed));
        Ok(Some(committed))
    }

    /// The certificate of a block this node alone can finalize: its precommit, if its key is the
    /// whole validator set's supermajority.
    fn certify(
        &self,
        validator: &ValidatorKey,
        set: &ValidatorSet,
        height: Height,
        hash: Hash,
    ) -> Option<Certificate> {
        let public = validator.key.public_key();
        let index = set.validators.iter().position(|v| v.consensus_key == public)?;
        let power = set.validators.get(index)?.power;
        if !set.is_supermajority(power) {
            return None;
        }
        let mut certificate =
            Certificate { height, round: 0, block_hash: hash, signatures: Vec::new() };
        let vote = certificate.precommit(self.spec.chain_id);
        certificate.signatures.push(CommitSignature {
            validator_index: u16::try_from(index).ok()?,
            signature: vote.sign(&validator.key).signature,
        });
        Some(certificate)
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
