//! Binary Merkle roots over lists of hashes (transactions, receipts), in the RFC 6962 shape:
//! leaves and inner nodes are hashed with different prefixes, and a list of n leaves splits at
//! the largest power of two below n. A proof for one leaf is therefore at most log2(n) hashes.

use crate::{Hash, blake3};

const LEAF: u8 = 0;
const NODE: u8 = 1;

/// The root of `leaves`; the root of the empty list is blake3 of nothing.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => blake3(&[]),
        1 => {
            let mut buf = [0; 33];
            buf[0] = LEAF;
            buf[1..].copy_from_slice(leaves[0].as_bytes());
            blake3(&buf)
        }
        n => {
            let split = n.next_power_of_two() / 2;
            let (left, right) = leaves.split_at(split);
            let mut buf = [0; 65];
            buf[0] = NODE;
            buf[1..33].copy_from_slice(root(left).as_bytes());
            buf[33..].copy_from_slice(root(right).as_bytes());
            blake3(&buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn root_depends_on_every_leaf_and_its_position() {
        let leaves: Vec<Hash> = (0u8..7).map(|i| blake3(&[i])).collect();
        let base = root(&leaves);
        for i in 0..leaves.len() {
            let mut changed = leaves.clone();
            changed[i] = blake3(b"other");
            assert_ne!(root(&changed), base);
        }
        let mut swapped = leaves.clone();
        swapped.swap(0, 1);
        assert_ne!(root(&swapped), base);
        // A leaf is never mistaken for an inner node of the same bytes.
        assert_ne!(root(&leaves[..1]), leaves[0]);
        assert_ne!(root(&leaves[..2]), root(&[root(&leaves[..2])]));
    }
}
