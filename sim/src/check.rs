//! The invariants read from the nodes' chains as the simulation runs: one final block per
//! height across all nodes, and each node's stored state root equal to the one its block
//! header commits to; and what the final blocks hold (transactions, evidence). (Double signing is checked on the network; a final block lost across a
//! restart, when the node starts again.)

use std::collections::BTreeMap;

use altan_node::chain::Chain;
use altan_primitives::{Hash, Height};

/// The final blocks seen so far, by height, and how far each node has been read.
#[derive(Debug, Default)]
pub struct Ledger {
    blocks: BTreeMap<Height, (Hash, Hash)>,
    read: Vec<Height>,
    transactions: u64,
    evidence: u64,
}

impl Ledger {
    /// A ledger for `nodes` nodes.
    pub fn new(nodes: usize) -> Ledger {
        Ledger { blocks: BTreeMap::new(), read: vec![0; nodes], transactions: 0, evidence: 0 }
    }

    /// Reads node `index`'s final blocks it has not read yet. Returns what was newly learned,
    /// for the trace, and the violations found.
    pub fn read(&mut self, index: usize, chain: &Chain) -> (Vec<(Height, Hash)>, Vec<String>) {
        let mut learned = Vec::new();
        let mut violations = Vec::new();
        let Some(read) = self.read.get(index).copied() else { return (learned, violations) };
        let final_height = chain.final_head().height;
        // A restarted node may have less than was read (a power loss); that is checked when it
        // starts again. Re-read from where its chain is.
        let from = read.min(final_height);
        for height in from.saturating_add(1)..=final_height {
            let block = match chain.block_at(height) {
                Ok(Some(block)) => block,
                other => {
                    violations
                        .push(format!("node {index}: final block {height} unreadable: {other:?}"));
                    break;
                }
            };
            let hash = block.hash();
            let root = block.header.state_root;
            match chain.store().state().root(height) {
                Ok(stored) if stored == root => {}
                Ok(stored) => violations.push(format!(
                    "node {index}: state root at {height} is {stored}, its block says {root}"
                )),
                // Older trees may be pruned; the root is still in the header everyone agreed on.
                Err(_) => {}
            }
            match self.blocks.get(&height) {
                Some((known, _)) if *known != hash => violations.push(format!(
                    "two final blocks at height {height}: {known} and {hash} (node {index})"
                )),
                Some(_) => {}
                None => {
                    self.blocks.insert(height, (hash, root));
                    let count = u64::try_from(block.transactions.len()).unwrap_or(u64::MAX);
                    self.transactions = self.transactions.saturating_add(count);
                    let proofs = u64::try_from(block.evidence.len()).unwrap_or(u64::MAX);
                    self.evidence = self.evidence.saturating_add(proofs);
                    learned.push((height, hash));
                }
            }
        }
        if let Some(slot) = self.read.get_mut(index) {
            *slot = final_height;
        }
        (learned, violations)
    }

    /// The highest final height any node reached.
    pub fn height(&self) -> Height {
        self.blocks.keys().next_back().copied().unwrap_or(0)
    }

    /// Proofs of equivocation in the final blocks.
    pub fn evidence(&self) -> u64 {
        self.evidence
    }

    /// Transactions in the final blocks.
    pub fn transactions(&self) -> u64 {
        self.transactions
    }
}
