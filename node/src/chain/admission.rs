//! Admission: transactions from clients and peers into the pool, each checked by the runtime's
//! stateless rules, its signature and the sender's account, then gossiped if it came from a
//! client.

use std::time::Instant;

use altan_primitives::{Address, Gas, Hash, SignedTransaction};
use altan_runtime::accounts;
use altan_runtime::exec::InvalidTransaction;
use rayon::prelude::*;
use tracing::warn;

use super::{Chain, ChainError, TARGET, lock};
use crate::mempool::{AccountView, Admitted, MempoolError, PooledTransaction};

/// The most transactions one `submit_batch` call takes.
pub const MAX_SUBMIT_BATCH: usize = 10_000;

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

impl Chain {
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
        self.submit_many(transactions, true)
    }

    /// Admits transactions gossiped by a peer, as [`Chain::submit_batch`] but without gossiping
    /// them again (gossipsub forwards what the node accepts).
    pub fn submit_from_peer(
        &self,
        transactions: Vec<SignedTransaction>,
    ) -> Vec<Result<Hash, SubmitError>> {
        self.submit_many(transactions, false)
    }

    /// Checks signatures in parallel, then admits; `local` ones are gossiped.
    fn submit_many(
        &self,
        transactions: Vec<SignedTransaction>,
        local: bool,
    ) -> Vec<Result<Hash, SubmitError>> {
        let checked: Vec<_> =
            transactions.into_par_iter().map(|transaction| self.precheck(transaction)).collect();
        self.admit(checked, local)
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
        let mut known = std::collections::HashMap::new();
        let mut results = Vec::with_capacity(checked.len());
        let mut views = Vec::with_capacity(checked.len());
        for item in &checked {
            let view = match item {
                Ok(pooled) => match known.get(&pooled.sender) {
                    Some(view) => Ok(*view),
                    None => accounts::read(&*state, &pooled.sender).map(|account| {
                        let view = AccountView { nonce: account.nonce, balance: account.balance };
                        known.insert(pooled.sender, view);
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
                    (Ok(_), Err(error)) => Err(ChainError::from(error).into()),
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
}
