//! Transactions waiting for a block.
//!
//! Admission is checked before anything is kept: the caller has already decoded the transaction,
//! checked its size and chain id and recovered its sender (the expensive part, done outside the
//! pool's lock and in parallel); the pool checks the nonce against the sender's account, that the
//! balance covers the maximum fee plus value of everything the sender has pending, and its limits.
//!
//! Per sender, transactions are kept by nonce. Those that follow the account's nonce without a
//! gap are *ready*; the rest wait for the gap to fill (within [`MempoolConfig::max_per_sender`]
//! nonces of the account's). A transaction replaces the one with the same sender and nonce only
//! if its gas price is higher. When the pool is full, a new transaction evicts the cheapest one
//! (with the same sender's later nonces, which it would leave unexecutable) if it pays more.
//!
//! Block building takes ready transactions by gas price, keeping each sender's nonce order; after
//! each block every sender is revalidated against the new state.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

use altan_primitives::{Address, Balance, Gas, Hash, Nonce, SignedTransaction};
use parity_scale_codec::Encode;

/// Limits of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Transactions kept in all.
    pub max_transactions: usize,
    /// Encoded bytes kept in all.
    pub max_bytes: usize,
    /// Transactions kept per sender; also how far past the account's nonce a nonce may be.
    pub max_per_sender: usize,
    /// Transactions behind a nonce gap kept per sender.
    pub max_gapped_per_sender: usize,
    /// Transactions behind a nonce gap kept in all.
    pub max_gapped: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_transactions: 100_000,
            max_bytes: 256 << 20,
            max_per_sender: 4_096,
            max_gapped_per_sender: 16,
            max_gapped: 5_000,
        }
    }
}

/// Why a transaction was not admitted. Nothing in the pool changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The same transaction is already pending.
    #[error("transaction {0} is already pending")]
    AlreadyKnown(Hash),
    /// The nonce was used already.
    #[error("nonce {found} is too low: the account's next nonce is {expected}")]
    NonceTooLow {
        /// The account's next nonce.
        expected: Nonce,
        /// The transaction's.
        found: Nonce,
    },
    /// The nonce is too far ahead of the account's.
    #[error("nonce {found} is too far ahead: the highest accepted now is {max}")]
    NonceTooHigh {
        /// The highest nonce accepted now.
        max: Nonce,
        /// The transaction's.
        found: Nonce,
    },
    /// The sender cannot pay for all its pending transactions with this one.
    #[error(
        "insufficient balance: pending transactions need {needed}, the account has {available}"
    )]
    InsufficientBalance {
        /// Maximum fees plus values of the sender's pending transactions with this one.
        needed: Balance,
        /// The account's balance.
        available: Balance,
    },
    /// A transaction with the same sender and nonce pays as much or more.
    #[error("replacement underpriced: the pending transaction pays {existing}, this one {offered}")]
    ReplacementUnderpriced {
        /// The pending transaction's gas price.
        existing: u128,
        /// This one's.
        offered: u128,
    },
    /// The sender has as many pending transactions as allowed.
    #[error("the sender has {limit} pending transactions, the most allowed")]
    SenderFull {
        /// The limit.
        limit: usize,
    },
    /// The transaction would wait behind a nonce gap, and the sender, or the pool, holds as many
    /// of those as allowed.
    #[error(
        "nonce {nonce} waits behind a gap (the next nonce the sender lacks is {missing}), and {holder} holds {limit} such transactions, the most allowed"
    )]
    TooManyGapped {
        /// The transaction's nonce.
        nonce: Nonce,
        /// The first nonce missing before it.
        missing: Nonce,
        /// "the sender" or "the pool".
        holder: &'static str,
        /// The limit reached.
        limit: usize,
    },
    /// The pool is full and nothing in it pays less.
    #[error("the pool is full and its cheapest transaction pays {cheapest}, not below {offered}")]
    PoolFull {
        /// The cheapest pending gas price.
        cheapest: u128,
        /// This transaction's.
        offered: u128,
    },
    /// Maximum fee plus value does not fit a balance.
    #[error("maximum fee plus value overflows")]
    CostOverflow,
}

/// An admitted transaction with what the pool derived from it.
#[derive(Debug)]
pub struct PooledTransaction {
    /// The transaction.
    pub transaction: SignedTransaction,
    /// Its id.
    pub id: Hash,
    /// Its recovered sender.
    pub sender: Address,
    /// Its encoded size.
    pub size: usize,
    /// Maximum fee plus value (a bond's amount included): what the sender must hold for it, by
    /// the rule blocks apply ([`altan_runtime::exec::upfront_cost`]).
    pub cost: Balance,
}

impl PooledTransaction {
    /// Wraps a transaction whose sender was recovered.
    pub fn new(transaction: SignedTransaction, sender: Address) -> Result<Self, MempoolError> {
        let cost = altan_runtime::exec::upfront_cost(&transaction.transaction)
            .ok_or(MempoolError::CostOverflow)?;
        Ok(PooledTransaction {
            id: transaction.id(),
            size: transaction.encoded_size(),
            transaction,
            sender,
            cost,
        })
    }

    /// The nonce.
    pub fn nonce(&self) -> Nonce {
        self.transaction.transaction.nonce
    }

    /// The gas price.
    pub fn gas_price(&self) -> u128 {
        self.transaction.transaction.gas_price
    }

    /// The gas limit.
    pub fn gas_limit(&self) -> Gas {
        self.transaction.transaction.gas_limit
    }
}

/// A sender's account as of the latest block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountView {
    /// Its next nonce.
    pub nonce: Nonce,
    /// Its balance.
    pub balance: Balance,
}

/// What an admission did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Admitted {
    /// The transaction it replaced (same sender and nonce).
    pub replaced: Option<Hash>,
    /// Transactions evicted to make room.
    pub evicted: Vec<Hash>,
    /// Whether it is ready now (no nonce gap before it).
    pub ready: bool,
}

struct SenderQueue {
    account: AccountView,
    transactions: BTreeMap<Nonce, (u64, Arc<PooledTransaction>)>,
    /// How many of `transactions` wait behind a nonce gap (as of `account`).
    gapped: usize,
}

/// The first nonce from `from` on that `transactions` lacks.
fn first_missing<V>(transactions: &BTreeMap<Nonce, V>, from: Nonce) -> Nonce {
    let mut next = from;
    for nonce in transactions.range(from..).map(|(n, _)| *n) {
        if nonce != next {
            break;
        }
        next = next.saturating_add(1);
    }
    next
}

impl SenderQueue {
    /// The first nonce this sender lacks.
    fn first_missing(&self) -> Nonce {
        first_missing(&self.transactions, self.account.nonce)
    }

    /// Transactions behind the first gap.
    fn count_gapped(&self) -> usize {
        self.transactions.range(self.first_missing()..).count()
    }

    fn total_cost(&self) -> Option<Balance> {
        self.transactions.values().try_fold(0, |sum: Balance, (_, tx)| sum.checked_add(tx.cost))
    }
}

/// The pool. Not synchronized: the node keeps it behind a lock.
pub struct Mempool {
    config: MempoolConfig,
    senders: HashMap<Address, SenderQueue>,
    ids: HashMap<Hash, (Address, Nonce)>,
    /// (gas price, arrival, sender, nonce), cheapest and oldest first: the eviction order.
    by_price: BTreeSet<(u128, u64, Address, Nonce)>,
    bytes: usize,
    arrivals: u64,
    /// The sum of every sender's `gapped`.
    gapped: usize,
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Mempool {
        Mempool {
            config,
            senders: HashMap::new(),
            ids: HashMap::new(),
            by_price: BTreeSet::new(),
            bytes: 0,
            arrivals: 0,
            gapped: 0,
        }
    }

    /// The limits.
    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Transactions pending.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether some transaction is ready for the next block: `!ready(1).is_empty()` without
    /// ranking every sender.
    pub fn has_ready(&self) -> bool {
        self.senders.values().any(|queue| queue.transactions.contains_key(&queue.account.nonce))
    }

    /// Encoded bytes pending.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Transactions pending behind a nonce gap.
    pub fn gapped(&self) -> usize {
        self.gapped
    }

    /// Counts the sender's transactions behind a gap again after its queue or account changed,
    /// and forgets a sender with nothing pending.
    fn recount(&mut self, sender: &Address) {
        let Some(queue) = self.senders.get_mut(sender) else { return };
        let before = queue.gapped;
        queue.gapped = queue.count_gapped();
        self.gapped = self.gapped.saturating_sub(before).saturating_add(queue.gapped);
        if queue.transactions.is_empty() {
            self.senders.remove(sender);
        }
    }

    /// A pending transaction by id.
    pub fn get(&self, id: &Hash) -> Option<Arc<PooledTransaction>> {
        let (sender, nonce) = self.ids.get(id)?;
        self.senders.get(sender)?.transactions.get(nonce).map(|(_, tx)| Arc::clone(tx))
    }

    /// The nonce after the sender's ready transactions: what its next transaction should use.
    pub fn next_nonce(&self, sender: &Address, account: AccountView) -> Nonce {
        let Some(queue) = self.senders.get(sender) else { return account.nonce };
        let mut next = account.nonce;
        while queue.transactions.contains_key(&next) {
            next = next.saturating_add(1);
        }
        next
    }

    /// Admits `tx`, given its sender's account as of the latest block.
    pub fn insert(
        &mut self,
        tx: PooledTransaction,
        account: AccountView,
    ) -> Result<Admitted, MempoolError> {
        if self.ids.contains_key(&tx.id) {
            return Err(MempoolError::AlreadyKnown(tx.id));
        }
        let nonce = tx.nonce();
        if nonce < account.nonce {
            return Err(MempoolError::NonceTooLow { expected: account.nonce, found: nonce });
        }
        let window = u64::try_from(self.config.max_per_sender).unwrap_or(u64::MAX);
        let max = account.nonce.saturating_add(window.saturating_sub(1));
        if nonce > max {
            return Err(MempoolError::NonceTooHigh { max, found: nonce });
        }

        let existing = self.senders.get(&tx.sender);
        let replacing = existing.and_then(|queue| queue.transactions.get(&nonce));
        if let Some((_, old)) = replacing
            && tx.gas_price() <= old.gas_price()
        {
            return Err(MempoolError::ReplacementUnderpriced {
                existing: old.gas_price(),
                offered: tx.gas_price(),
            });
        }
        let pending = existing.map_or(0, |queue| queue.transactions.len());
        if replacing.is_none() && pending >= self.config.max_per_sender {
            return Err(MempoolError::SenderFull { limit: self.config.max_per_sender });
        }
        let missing =
            existing.map_or(account.nonce, |q| first_missing(&q.transactions, account.nonce));
        let ready = nonce <= missing;
        if !ready && replacing.is_none() {
            let gapped = existing.map_or(0, |q| q.transactions.range(missing..).count());
            let refuse =
                |holder, limit| MempoolError::TooManyGapped { nonce, missing, holder, limit };
            if gapped >= self.config.max_gapped_per_sender {
                return Err(refuse("the sender", self.config.max_gapped_per_sender));
            }
            if self.gapped >= self.config.max_gapped {
                return Err(refuse("the pool", self.config.max_gapped));
            }
        }
        let others = existing
            .map(|queue| {
                queue
                    .transactions
                    .iter()
                    .filter(|(n, _)| **n != nonce)
                    .try_fold(0, |sum: Balance, (_, (_, t))| sum.checked_add(t.cost))
            })
            .unwrap_or(Some(0));
        let needed =
            others.and_then(|sum| sum.checked_add(tx.cost)).ok_or(MempoolError::CostOverflow)?;
        if needed > account.balance {
            return Err(MempoolError::InsufficientBalance { needed, available: account.balance });
        }

        let mut admitted = Admitted { ready, ..Admitted::default() };
        if replacing.is_none() {
            admitted.evicted = self.make_room(&tx, ready)?;
        }
        let sender = tx.sender;
        let id = tx.id;
        let size = tx.size;
        let price = tx.gas_price();
        let arrival = self.arrivals;
        self.arrivals = self.arrivals.saturating_add(1);
        let queue = self.senders.entry(sender).or_insert_with(|| SenderQueue {
            account,
            transactions: BTreeMap::new(),
            gapped: 0,
        });
        queue.account = account;
        if let Some((old_arrival, old)) = queue.transactions.insert(nonce, (arrival, Arc::new(tx)))
        {
            self.ids.remove(&old.id);
            self.by_price.remove(&(old.gas_price(), old_arrival, sender, nonce));
            self.bytes = self.bytes.saturating_sub(old.size);
            admitted.replaced = Some(old.id);
        }
        self.ids.insert(id, (sender, nonce));
        self.by_price.insert((price, arrival, sender, nonce));
        self.bytes = self.bytes.saturating_add(size);
        self.recount(&sender);
        Ok(admitted)
    }

    /// Makes room for `tx` if the pool is full. A transaction behind a nonce gap never evicts
    /// anything. A ready one evicts first what waits behind other senders' gaps (whatever it
    /// pays: it cannot run), then the cheapest transactions, if each pays less than `tx`.
    /// Nothing is evicted unless enough room can be made.
    fn make_room(
        &mut self,
        tx: &PooledTransaction,
        ready: bool,
    ) -> Result<Vec<Hash>, MempoolError> {
        let config = self.config;
        let fits = |count: usize, bytes: usize| {
            count < config.max_transactions && bytes.saturating_add(tx.size) <= config.max_bytes
        };
        let cheapest = self.by_price.first().map_or(0, |(price, ..)| *price);
        let full = MempoolError::PoolFull { cheapest, offered: tx.gas_price() };
        // Victims by sender: the lowest nonce evicted (its later nonces go with it).
        let mut victims: HashMap<Address, Nonce> = HashMap::new();
        let (mut count, mut bytes) = (self.ids.len(), self.bytes);
        if !fits(count, bytes) && !ready {
            return Err(full);
        }
        for (sender, queue) in &self.senders {
            if fits(count, bytes) {
                break;
            }
            if queue.gapped == 0 || *sender == tx.sender {
                continue;
            }
            let tail = queue.transactions.range(queue.first_missing()..);
            let Some((first, _)) = tail.clone().next() else { continue };
            for (_, (_, pending)) in tail {
                count = count.saturating_sub(1);
                bytes = bytes.saturating_sub(pending.size);
            }
            victims.insert(*sender, *first);
        }
        let mut candidates = self.by_price.iter();
        while !fits(count, bytes) {
            let Some(&(price, _, sender, nonce)) = candidates.next() else {
                return Err(full);
            };
            let upper = victims.get(&sender).copied();
            if upper.is_some_and(|lowest| lowest <= nonce) {
                continue;
            }
            // Evicting the same sender's earlier nonce would leave `tx` behind a gap.
            if price >= tx.gas_price() || (sender == tx.sender && nonce < tx.nonce()) {
                return Err(full);
            }
            if let Some(queue) = self.senders.get(&sender) {
                for (n, (_, pending)) in queue.transactions.range(nonce..) {
                    if upper.is_some_and(|lowest| *n >= lowest) {
                        break;
                    }
                    count = count.saturating_sub(1);
                    bytes = bytes.saturating_sub(pending.size);
                }
            }
            victims.insert(sender, nonce);
        }
        let mut evicted = Vec::new();
        for (sender, nonce) in victims {
            evicted.extend(self.remove_from(&sender, nonce));
        }
        Ok(evicted)
    }

    /// Removes the sender's transactions from `nonce` on.
    fn remove_from(&mut self, sender: &Address, nonce: Nonce) -> Vec<Hash> {
        let Some(queue) = self.senders.get_mut(sender) else { return Vec::new() };
        let removed = queue.transactions.split_off(&nonce);
        let mut ids = Vec::with_capacity(removed.len());
        for (nonce, (arrival, tx)) in removed {
            self.ids.remove(&tx.id);
            self.by_price.remove(&(tx.gas_price(), arrival, *sender, nonce));
            self.bytes = self.bytes.saturating_sub(tx.size);
            ids.push(tx.id);
        }
        self.recount(sender);
        ids
    }

    /// Ready transactions in block order: by gas price (then arrival), each sender's in nonce
    /// order, at most `max`.
    pub fn ready(&self, max: usize) -> Vec<Arc<PooledTransaction>> {
        // Each sender's next ready transaction competes by price; taking it exposes the next.
        let mut heap = BinaryHeap::new();
        for (sender, queue) in &self.senders {
            if let Some((arrival, tx)) = queue.transactions.get(&queue.account.nonce) {
                heap.push((tx.gas_price(), Reverse(*arrival), *sender, queue.account.nonce));
            }
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some((_, _, sender, nonce)) = heap.pop() else { break };
            let Some(queue) = self.senders.get(&sender) else { continue };
            let Some((_, tx)) = queue.transactions.get(&nonce) else { continue };
            out.push(Arc::clone(tx));
            let next = nonce.saturating_add(1);
            if let Some((arrival, tx)) = queue.transactions.get(&next) {
                heap.push((tx.gas_price(), Reverse(*arrival), sender, next));
            }
        }
        out
    }

    /// Senders with pending transactions.
    pub fn senders(&self) -> Vec<Address> {
        self.senders.keys().copied().collect()
    }

    /// Revalidates every sender against its account after a block: drops used nonces, and from
    /// the first transaction the balance no longer covers, the rest of the sender's. Returns
    /// the ids dropped.
    pub fn revalidate(&mut self, mut account_of: impl FnMut(&Address) -> AccountView) -> Vec<Hash> {
        let mut dropped = Vec::new();
        for sender in self.senders() {
            let account = account_of(&sender);
            let Some(queue) = self.senders.get_mut(&sender) else { continue };
            queue.account = account;
            let used: Vec<Nonce> =
                queue.transactions.range(..account.nonce).map(|(n, _)| *n).collect();
            for nonce in used {
                if let Some((arrival, tx)) = queue.transactions.remove(&nonce) {
                    self.ids.remove(&tx.id);
                    self.by_price.remove(&(tx.gas_price(), arrival, sender, nonce));
                    self.bytes = self.bytes.saturating_sub(tx.size);
                    dropped.push(tx.id);
                }
            }
            let mut spent: Balance = 0;
            let mut cut = None;
            for (nonce, (_, tx)) in &queue.transactions {
                match spent.checked_add(tx.cost) {
                    Some(total) if total <= account.balance => spent = total,
                    _ => {
                        cut = Some(*nonce);
                        break;
                    }
                }
            }
            match cut {
                Some(nonce) => dropped.extend(self.remove_from(&sender, nonce)),
                None => self.recount(&sender),
            }
        }
        dropped
    }

    /// Removes one transaction (and the sender's later ones, now unexecutable), for example one
    /// that turned out invalid when a block was built.
    pub fn remove(&mut self, id: &Hash) -> Vec<Hash> {
        match self.ids.get(id).copied() {
            Some((sender, nonce)) => self.remove_from(&sender, nonce),
            None => Vec::new(),
        }
    }

    /// Checks the pool's internal bookkeeping (for tests).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let counted: usize = self.senders.values().map(|q| q.transactions.len()).sum();
        assert_eq!(counted, self.ids.len());
        assert_eq!(counted, self.by_price.len());
        let bytes: usize =
            self.senders.values().flat_map(|q| q.transactions.values()).map(|(_, t)| t.size).sum();
        assert_eq!(bytes, self.bytes);
        assert!(self.ids.len() <= self.config.max_transactions);
        for queue in self.senders.values() {
            assert!(!queue.transactions.is_empty());
            assert!(queue.total_cost().is_some_and(|c| c <= queue.account.balance));
            assert_eq!(queue.gapped, queue.count_gapped());
            assert!(queue.gapped <= self.config.max_gapped_per_sender);
        }
        assert_eq!(self.gapped, self.senders.values().map(|q| q.gapped).sum::<usize>());
        assert!(self.gapped <= self.config.max_gapped);
    }
}

#[cfg(test)]
mod tests;
