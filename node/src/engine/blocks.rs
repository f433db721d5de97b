//! The blocks of the heights being decided: those proposed or built, those of them executed on
//! the head, and those the machine asked to check that have not arrived.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use altan_primitives::{Block, Hash, Height};

use crate::chain::ExecutedBlock;

/// Blocks (proposed or built) held for the heights being decided.
pub const MAX_HELD_BLOCKS: usize = 64;
/// Blocks the machine asked to check that have not arrived yet.
pub const MAX_AWAITED_BLOCKS: usize = 64;

/// Blocks held for the heights being decided, each set bounded.
#[derive(Default)]
pub struct HeldBlocks {
    blocks: HashMap<Hash, Block>,
    executed: HashMap<Hash, Arc<ExecutedBlock>>,
    awaited: HashSet<Hash>,
}

impl HeldBlocks {
    /// Holds a block. Beyond [`MAX_HELD_BLOCKS`] the highest goes: the lowest heights are the
    /// ones being decided. Ties go by hash, so that the map's order decides nothing.
    pub fn hold(&mut self, block: Block) {
        let hash = block.hash();
        if self.blocks.len() >= MAX_HELD_BLOCKS && !self.blocks.contains_key(&hash) {
            let highest = self
                .blocks
                .iter()
                .max_by_key(|(hash, b)| (b.header.height, **hash))
                .map(|(hash, _)| *hash);
            if let Some(highest) = highest {
                self.blocks.remove(&highest);
            }
        }
        self.blocks.insert(hash, block);
    }

    /// A held block.
    pub fn get(&self, hash: &Hash) -> Option<&Block> {
        self.blocks.get(hash)
    }

    /// A held block executed on the head.
    pub fn executed(&self, hash: &Hash) -> Option<&Arc<ExecutedBlock>> {
        self.executed.get(hash)
    }

    /// Holds a block executed on the head (and the block itself, unless it is held already: a
    /// checked block was, and copying a full block again is not free).
    pub fn add_executed(&mut self, executed: ExecutedBlock) {
        if !self.blocks.contains_key(&executed.hash) {
            self.hold(executed.block.clone());
        }
        self.awaited.remove(&executed.hash);
        self.executed.insert(executed.hash, Arc::new(executed));
    }

    /// Notes that the machine wants `hash` checked when it arrives (up to
    /// [`MAX_AWAITED_BLOCKS`] are noted).
    pub fn wait_for(&mut self, hash: Hash) {
        if self.awaited.len() < MAX_AWAITED_BLOCKS {
            self.awaited.insert(hash);
        }
    }

    /// Whether the machine waits for `hash`.
    pub fn is_awaited(&self, hash: &Hash) -> bool {
        self.awaited.contains(hash)
    }

    /// `hash` is no longer waited for (it arrived).
    pub fn arrived(&mut self, hash: &Hash) {
        self.awaited.remove(hash);
    }

    /// Height `height` starts: lower blocks go, and what was executed on the old head is stale.
    pub fn start_height(&mut self, height: Height) {
        self.blocks.retain(|_, block| block.header.height >= height);
        self.executed.clear();
        self.awaited.clear();
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
pub(super) mod tests {
    use altan_primitives::{Address, Header};

    use super::*;

    /// An empty block of `height`, told apart from others of that height by `salt`.
    pub(in crate::engine) fn block(height: Height, salt: u64) -> Block {
        Block {
            header: Header {
                chain_id: 1,
                height,
                parent_hash: Hash::ZERO,
                timestamp_ms: salt,
                proposer: Address::ZERO,
                state_root: Hash::ZERO,
                transactions_root: Hash::ZERO,
                receipts_root: Hash::ZERO,
                parent_certificate_hash: Hash::ZERO,
                evidence_root: Hash::ZERO,
                gas_used: 0,
                gas_limit: 0,
            },
            transactions: Vec::new(),
            parent_certificate: None,
            evidence: Vec::new(),
        }
    }

    #[test]
    fn past_the_bound_the_highest_block_goes_and_ties_go_by_hash() {
        let mut held = HeldBlocks::default();
        let low: Vec<Block> = (0..MAX_HELD_BLOCKS as u64 - 2).map(|i| block(5, i)).collect();
        for b in &low {
            held.hold(b.clone());
        }
        let (a, b) = (block(9, 1), block(9, 2));
        held.hold(a.clone());
        held.hold(b.clone());
        // Full: the next evicts the larger hash of the two highest.
        held.hold(block(6, 0));
        let larger = a.hash().max(b.hash());
        let smaller = a.hash().min(b.hash());
        assert!(held.get(&larger).is_none());
        assert!(held.get(&smaller).is_some());
        assert!(low.iter().all(|b| held.get(&b.hash()).is_some()));
        // Holding one already held evicts nothing.
        held.hold(block(6, 0));
        assert!(held.get(&smaller).is_some());
    }

    #[test]
    fn a_new_height_keeps_only_blocks_at_or_above_it() {
        let mut held = HeldBlocks::default();
        let (old, current, next) = (block(4, 0), block(5, 0), block(6, 0));
        for b in [&old, &current, &next] {
            held.hold(b.clone());
        }
        held.wait_for(Hash([7; 32]));
        held.start_height(5);
        assert!(held.get(&old.hash()).is_none());
        assert!(held.get(&current.hash()).is_some());
        assert!(held.get(&next.hash()).is_some());
        assert!(!held.is_awaited(&Hash([7; 32])));
    }

    #[test]
    fn the_awaited_set_is_bounded() {
        let mut held = HeldBlocks::default();
        for byte in 0..=MAX_AWAITED_BLOCKS as u8 {
            held.wait_for(Hash([byte; 32]));
        }
        assert!(held.is_awaited(&Hash([0; 32])));
        assert!(!held.is_awaited(&Hash([MAX_AWAITED_BLOCKS as u8; 32])));
        held.arrived(&Hash([0; 32]));
        assert!(!held.is_awaited(&Hash([0; 32])));
    }
}
