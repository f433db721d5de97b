//! The block path: building a block from the pool, checking a proposed block with the runtime's
//! rules and execution, importing a final block from sync, and committing a decided block.

use std::sync::Arc;
use std::time::Instant;

use altan_primitives::{
    Address, Block, Certificate, CertificateError, Evidence, EvidenceError, Hash, Header, Height,
    Receipt, ValidatorSet,
};
use altan_runtime::accounts;
use altan_runtime::exec::{
    BlockContext, BlockError, BlockOutcome, InvalidTransaction, Runtime, TxError,
};
use altan_runtime::state::{StateCommit, StateRead};
use altan_runtime::validate::{GotExpected, HeaderError, OutcomeError};
use altan_storage::{BlockCommit, BlockRef, ChainStoreError};
use parity_scale_codec::Encode;
use tracing::{debug, info, warn};

use super::{Chain, ChainError, CommittedBlock, TARGET, lock};
use crate::mempool::AccountView;

/// The most transactions one block takes (the gas limit usually binds first).
pub const MAX_BLOCK_TRANSACTIONS: usize = 20_000;
/// The most bytes of transactions a block built here carries, so that a proposal with its block
/// fits one gossip message.
pub const MAX_BLOCK_TRANSACTION_BYTES: usize = 3 << 20;
/// Pieces of evidence held for inclusion.
pub const MAX_PENDING_EVIDENCE: usize = 64;
/// Pieces of evidence one built block carries.
pub const MAX_BLOCK_EVIDENCE: usize = 16;

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

/// The rule a block breaks.
#[derive(Debug, thiserror::Error)]
pub enum InvalidBlock {
    /// Its header does not follow the parent, the clock or the spec.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// Its body does not execute: a transaction, the parent certificate, the proposer or the
    /// evidence is invalid.
    #[error(transparent)]
    Execution(BlockError),
    /// Its header does not match its execution.
    #[error(transparent)]
    Outcome(#[from] OutcomeError),
    /// Its certificate (from sync) is not for it.
    #[error(
        "the certificate is for block {certified} at {certified_height}, not {hash} at {height}"
    )]
    CertificateFor {
        /// The block the certificate is for.
        certified: Hash,
        /// Its height.
        certified_height: Height,
        /// The block's hash.
        hash: Hash,
        /// Its height.
        height: Height,
    },
    /// Its certificate (from sync) does not verify against the validator set of its height.
    #[error("certificate: {0}")]
    Certificate(CertificateError),
}

/// Why a block from a peer was not executed or imported.
#[derive(Debug, thiserror::Error)]
pub enum BlockRejection {
    /// The block breaks the chain's rules: the peer that sent it misbehaves.
    #[error("invalid block: {0}")]
    Invalid(#[from] InvalidBlock),
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

impl Chain {
    /// Builds and executes a block on top of the head from the mempool (and the evidence this
    /// node holds), proposed by this node's validator key; nothing is committed. Consensus
    /// proposes it and commits it with [`Chain::commit_executed`] once it is decided.
    pub fn build_block(&self, now_ms: u64) -> Result<ExecutedBlock, ChainError> {
        let Some(validator) = self.validator.clone() else {
            return Err(ChainError::NoValidatorKey);
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
        let outcome = executor.finish().map_err(ChainError::Block)?;
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
    /// runtime's header rules ([`Runtime::validate_header`]; `now_ms` is this node's clock, not
    /// given for final blocks from sync), then execution, whose outcome must match the header
    /// ([`Runtime::validate_outcome`]). Nothing is committed.
    pub fn execute_block(
        &self,
        block: Block,
        now_ms: Option<u64>,
    ) -> Result<ExecutedBlock, BlockRejection> {
        let started = Instant::now();
        let head = self.head();
        match self.runtime.validate_header(&head, &block, now_ms) {
            Ok(()) => {}
            Err(HeaderError::Height(GotExpected { got, .. })) => {
                return Err(BlockRejection::NotNext { height: got, head: head.height });
            }
            Err(error) => return Err(InvalidBlock::Header(error).into()),
        }
        let height = block.header.height;
        let state = self.state_at(head.height).map_err(BlockRejection::Internal)?;
        let outcome = match self.runtime.execute_block(state, &block) {
            Ok(outcome) => outcome,
            Err(BlockError::Fatal(error)) => return Err(BlockRejection::Internal(error.into())),
            Err(error) => return Err(InvalidBlock::Execution(error).into()),
        };
        let commit = self
            .store
            .state()
            .prepare(height, &outcome.changes)
            .map_err(|e| BlockRejection::Internal(e.into()))?;
        Runtime::validate_outcome(&block.header, &outcome, commit.root())
            .map_err(InvalidBlock::Outcome)?;
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
            return Err(InvalidBlock::CertificateFor {
                certified: certificate.block_hash,
                certified_height: certificate.height,
                hash,
                height,
            }
            .into());
        }
        let head = self.head().height;
        if Some(height) != head.checked_add(1) {
            return Err(BlockRejection::NotNext { height, head });
        }
        let set = self.validator_set_for(height).map_err(BlockRejection::Internal)?;
        certificate.verify(self.spec.chain_id, &set).map_err(InvalidBlock::Certificate)?;
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
            mempool.revalidate(|address| match accounts::read(&*state, address) {
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
