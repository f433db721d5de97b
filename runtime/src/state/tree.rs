//! A 16-ary sparse Merkle tree over blake3 key hashes, updated in batches, held in memory with
//! structural sharing between versions.
//!
//! # Shape
//!
//! Keys are placed by the nibbles (4-bit digits) of their blake3 hash. A subtree holding one key
//! is a leaf at the highest position its prefix allows; a subtree holding two or more keys is an
//! internal node with up to 16 children. The shape therefore depends only on the set of keys,
//! never on the order in which they were written, and so does the root.
//!
//! - leaf hash = blake3(`0x00` || key hash || blake3(value))
//! - internal hash = blake3(`0x01` || children bitmap (u16 LE) || the children's hashes in
//!   nibble order)
//! - the empty tree's root is all zeroes
//!
//! One hash per node (a 16-ary node hashes its children in one blake3 call, not as a binary tree
//! of 15 calls) and one pass per batch (updates are sorted and split by nibble, so each touched
//! node is rebuilt once) are what make a block's root cheap.
//!
//! # Versions
//!
//! Nodes are immutable and shared through `Arc`: a new version copies only the paths its batch
//! touches. Keeping the roots of recent versions keeps their whole trees, at the cost of the
//! nodes they do not share with the latest.

use std::sync::Arc;

use altan_primitives::Hash;
use parity_scale_codec::{Decode, Encode};

/// The blake3 hash of a state key: its position in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// The key hash of `key`.
    pub fn of(key: &[u8]) -> KeyHash {
        KeyHash(*blake3::hash(key).as_bytes())
    }

    /// The nibble at `depth` (0 is the high half of the first byte).
    fn nibble(&self, depth: usize) -> usize {
        let byte = self.0[depth / 2];
        usize::from(if depth.is_multiple_of(2) { byte >> 4 } else { byte & 0x0f })
    }
}

/// The root of the empty tree.
pub const EMPTY_ROOT: Hash = Hash([0; 32]);

/// Batches at least this large are applied on two threads.
const PARALLEL_UPDATES: usize = 2_048;

/// The deepest a node can sit: 64 nibbles of a 32-byte hash.
const MAX_DEPTH: usize = 64;

fn leaf_hash(key: &KeyHash, value_hash: &Hash) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[0]);
    hasher.update(&key.0);
    hasher.update(value_hash.as_bytes());
    Hash(*hasher.finalize().as_bytes())
}

fn internal_hash<'a>(bitmap: u16, children: impl Iterator<Item = &'a Hash>) -> Hash {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[1]);
    hasher.update(&bitmap.to_le_bytes());
    for child in children {
        hasher.update(child.as_bytes());
    }
    Hash(*hasher.finalize().as_bytes())
}

/// The hash of a value, as leaves commit to it.
pub fn value_hash(value: &[u8]) -> Hash {
    Hash(*blake3::hash(value).as_bytes())
}

#[derive(Debug)]
struct Leaf {
    key: KeyHash,
    value_hash: Hash,
    hash: Hash,
}

#[derive(Debug)]
struct Internal {
    children: [Option<Node>; 16],
    /// The children's hashes, kept inline (zero where there is no child): rebuilding a node after
    /// one child changed reads this array instead of every other child's memory.
    hashes: [Hash; 16],
    hash: Hash,
}

/// A node; cloning shares it.
#[derive(Clone, Debug)]
enum Node {
    Leaf(Arc<Leaf>),
    Internal(Arc<Internal>),
}

impl Node {
    fn hash(&self) -> &Hash {
        match self {
            Node::Leaf(leaf) => &leaf.hash,
            Node::Internal(internal) => &internal.hash,
        }
    }

    fn leaf(key: KeyHash, value_hash: Hash) -> Node {
        let hash = leaf_hash(&key, &value_hash);
        Node::Leaf(Arc::new(Leaf { key, value_hash, hash }))
    }

    /// An internal node from its children and their hashes, or what a canonical tree has
    /// instead: nothing for no children, the leaf itself for a lone leaf.
    fn internal(children: [Option<Node>; 16], hashes: [Hash; 16]) -> Option<Node> {
        let mut present = children.iter().flatten();
        match (present.next(), present.next()) {
            (None, _) => return None,
            (Some(Node::Leaf(leaf)), None) => return Some(Node::Leaf(Arc::clone(leaf))),
            _ => {}
        }
        let bitmap = children
            .iter()
            .enumerate()
            .filter(|(_, child)| child.is_some())
            .fold(0u16, |bitmap, (i, _)| bitmap | (1 << i));
        let present_hashes =
            hashes.iter().enumerate().filter(|(i, _)| bitmap & (1 << i) != 0).map(|(_, h)| h);
        let hash = internal_hash(bitmap, present_hashes);
        Some(Node::Internal(Arc::new(Internal { children, hashes, hash })))
    }

    /// An internal node from freshly built children.
    fn internal_of(children: [Option<Node>; 16]) -> Option<Node> {
        let hashes =
            std::array::from_fn(|i| children[i].as_ref().map_or(Hash::ZERO, |c| *c.hash()));
        Node::internal(children, hashes)
    }
}

/// One write of a batch: a key hash and the hash of its new value, or `None` to delete it.
pub type Update = (KeyHash, Option<Hash>);

/// A version of the tree. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    root: Option<Node>,
}

/// Splits `updates` (sorted by key) into runs that share the nibble at `depth`.
fn by_nibble<T>(items: &[T], depth: usize, key: impl Fn(&T) -> &KeyHash) -> [&[T]; 16] {
    let mut groups: [&[T]; 16] = [&[]; 16];
    let mut rest = items;
    while let Some(first) = rest.first() {
        let nibble = key(first).nibble(depth);
        let len = rest.iter().take_while(|item| key(item).nibble(depth) == nibble).count();
        let (group, tail) = rest.split_at(len);
        groups[nibble] = group;
        rest = tail;
    }
    groups
}

/// Builds the canonical subtree at `depth` of `pairs` (sorted, distinct keys).
fn build(depth: usize, pairs: &[(KeyHash, Hash)]) -> Option<Node> {
    match pairs {
        [] => None,
        [(key, value_hash)] => Some(Node::leaf(*key, *value_hash)),
        _ if depth >= MAX_DEPTH => None,
        _ => {
            let groups = by_nibble(pairs, depth, |(key, _)| key);
            let children = groups.map(|group| build(depth.saturating_add(1), group));
            Node::internal_of(children)
        }
    }
}

/// Applies `updates` (sorted, distinct keys, all under this subtree) to `node` at `depth`.
fn update(node: Option<&Node>, depth: usize, updates: &[Update]) -> Option<Node> {
    if updates.is_empty() {
        return node.cloned();
    }
    match node {
        None => {
            let pairs: Vec<(KeyHash, Hash)> =
                updates.iter().filter_map(|(key, value)| value.map(|v| (*key, v))).collect();
            build(depth, &pairs)
        }
        Some(Node::Leaf(leaf)) => {
            // Merge the existing leaf into the updates (unless they overwrite or delete it).
            let mut pairs: Vec<(KeyHash, Hash)> =
                Vec::with_capacity(updates.len().saturating_add(1));
            let mut leaf_pending = !updates.iter().any(|(key, _)| *key == leaf.key);
            for (key, value) in updates {
                if leaf_pending && leaf.key < *key {
                    pairs.push((leaf.key, leaf.value_hash));
                    leaf_pending = false;
                }
                if let Some(value) = value {
                    pairs.push((*key, *value));
                }
            }
            if leaf_pending {
                pairs.push((leaf.key, leaf.value_hash));
            }
            if let [(key, value_hash)] = pairs.as_slice()
                && *key == leaf.key
                && *value_hash == leaf.value_hash
            {
                return Some(Node::Leaf(Arc::clone(leaf)));
            }
            build(depth, &pairs)
        }
        Some(Node::Internal(internal)) => {
            let groups = by_nibble(updates, depth, |(key, _)| key);
            let mut children = internal.children.clone();
            let mut hashes = internal.hashes;
            for ((child, hash), group) in children.iter_mut().zip(&mut hashes).zip(groups) {
                if !group.is_empty() {
                    *child = update(child.as_ref(), depth.saturating_add(1), group);
                    *hash = child.as_ref().map_or(Hash::ZERO, |c| *c.hash());
                }
            }
            Node::internal(children, hashes)
        }
    }
}

impl Tree {
    /// The empty tree.
    pub fn empty() -> Tree {
        Tree { root: None }
    }

    /// The root hash.
    pub fn root_hash(&self) -> Hash {
        self.root.as_ref().map_or(EMPTY_ROOT, |node| *node.hash())
    }

    /// A tree holding exactly `pairs` (sorted by key hash, distinct).
    pub fn from_sorted(pairs: &[(KeyHash, Hash)]) -> Tree {
        Tree { root: build(0, pairs) }
    }

    /// A new version with `updates` (sorted by key hash, distinct) applied; `self` is unchanged.
    ///
    /// A large batch is split between two threads at the root (the two halves of the key space
    /// are independent subtrees); the result is the same either way.
    pub fn apply(&self, updates: &[Update]) -> Tree {
        match &self.root {
            Some(Node::Internal(internal)) if updates.len() >= PARALLEL_UPDATES => {
                let groups = by_nibble(updates, 0, |(key, _)| key);
                let mut children = internal.children.clone();
                let mut hashes = internal.hashes;
                let (low, high) = children.split_at_mut(8);
                let (low_hashes, high_hashes) = hashes.split_at_mut(8);
                let (low_groups, high_groups) = groups.split_at(8);
                let update_all =
                    |children: &mut [Option<Node>], hashes: &mut [Hash], groups: &[&[Update]]| {
                        for ((child, hash), group) in children.iter_mut().zip(hashes).zip(groups) {
                            if !group.is_empty() {
                                *child = update(child.as_ref(), 1, group);
                                *hash = child.as_ref().map_or(Hash::ZERO, |c| *c.hash());
                            }
                        }
                    };
                std::thread::scope(|scope| {
                    let other = scope.spawn(|| update_all(high, high_hashes, high_groups));
                    update_all(low, low_hashes, low_groups);
                    if let Err(panic) = other.join() {
                        std::panic::resume_unwind(panic);
                    }
                });
                Tree { root: Node::internal(children, hashes) }
            }
            root => Tree { root: update(root.as_ref(), 0, updates) },
        }
    }

    /// A proof of `key`'s value (or absence) in this tree.
    pub fn prove(&self, key: &KeyHash) -> TreeProof {
        let mut steps = Vec::new();
        let mut node = self.root.as_ref();
        let mut depth = 0;
        loop {
            match node {
                None => return TreeProof { steps, terminal: Terminal::Empty },
                Some(Node::Leaf(leaf)) => {
                    return TreeProof {
                        steps,
                        terminal: Terminal::Leaf { key: leaf.key, value_hash: leaf.value_hash },
                    };
                }
                Some(Node::Internal(internal)) => {
                    let nibble = key.nibble(depth);
                    let mut bitmap = 0u16;
                    let mut siblings = Vec::new();
                    for (i, child) in internal.children.iter().enumerate() {
                        if child.is_some() {
                            bitmap |= 1 << i;
                            if i != nibble {
                                siblings.push(internal.hashes[i]);
                            }
                        }
                    }
                    steps.push(ProofStep { bitmap, siblings });
                    node = internal.children[nibble].as_ref();
                    depth = depth.saturating_add(1);
                }
            }
        }
    }
}

/// One internal node on the path of a proof: which children it has, and the hashes of all of
/// them but the one on the path.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ProofStep {
    /// Bit `i` is set when child `i` exists.
    pub bitmap: u16,
    /// The hashes of the other children, in nibble order.
    pub siblings: Vec<Hash>,
}

/// Where a proof's path ends.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Terminal {
    /// An empty slot: the key is absent.
    Empty,
    /// A leaf: the key itself (inclusion) or another key that owns the path (exclusion).
    Leaf {
        /// The leaf's key hash.
        key: KeyHash,
        /// The hash of its value.
        value_hash: Hash,
    },
}

/// A Merkle proof for one key: the path from the root down, and where it ends.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TreeProof {
    /// Internal nodes from the root down.
    pub steps: Vec<ProofStep>,
    /// Where the path ends.
    pub terminal: Terminal,
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof is longer than any path in the tree.
    #[error("proof has {0} steps; at most 64 are possible")]
    TooDeep(usize),
    /// A step's sibling count does not match its bitmap, or the path's child is missing.
    #[error("proof step {0} is malformed")]
    MalformedStep(usize),
    /// The proof says something else about the key than the claim.
    #[error("the proof does not show the claimed value")]
    WrongClaim,
    /// The recomputed root differs.
    #[error("the proof leads to root {found}, not {expected}")]
    RootMismatch {
        /// The root given.
        expected: Hash,
        /// The root the proof computes.
        found: Hash,
    },
}

impl TreeProof {
    /// Checks that under `root`, `key` has the value whose hash is `value_hash` (or, for
    /// `None`, no value).
    pub fn verify(
        &self,
        root: &Hash,
        key: &KeyHash,
        value_hash: Option<&Hash>,
    ) -> Result<(), ProofError> {
        let depth = self.steps.len();
        if depth > MAX_DEPTH {
            return Err(ProofError::TooDeep(depth));
        }
        let mut current = match (&self.terminal, value_hash) {
            (Terminal::Empty, None) => None,
            (Terminal::Leaf { key: leaf_key, value_hash: leaf_value }, Some(claimed))
                if leaf_key == key && leaf_value == claimed =>
            {
                Some(leaf_hash(leaf_key, leaf_value))
            }
            (Terminal::Leaf { key: leaf_key, value_hash: leaf_value }, None)
                if leaf_key != key && (0..depth).all(|d| leaf_key.nibble(d) == key.nibble(d)) =>
            {
                Some(leaf_hash(leaf_key, leaf_value))
            }
            _ => return Err(ProofError::WrongClaim),
        };
        for (index, step) in self.steps.iter().enumerate().rev() {
            let nibble = key.nibble(index);
            let on_path = step.bitmap & (1 << nibble) != 0;
            let expected_siblings =
                (step.bitmap.count_ones() as usize).saturating_sub(usize::from(on_path));
            if step.siblings.len() != expected_siblings || on_path != current.is_some() {
                return Err(ProofError::MalformedStep(index));
            }
            let mut siblings = step.siblings.iter();
            let mut children = Vec::with_capacity(16);
            for i in 0..16 {
                if step.bitmap & (1 << i) == 0 {
                    continue;
                }
                let child = if i == nibble { current.as_ref() } else { siblings.next() };
                children.push(*child.ok_or(ProofError::MalformedStep(index))?);
            }
            current = Some(internal_hash(step.bitmap, children.iter()));
        }
        let found = current.unwrap_or(EMPTY_ROOT);
        if found == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch { expected: *root, found })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn key(i: u32) -> KeyHash {
        KeyHash::of(&i.to_le_bytes())
    }

    fn value(v: u32) -> Hash {
        value_hash(&v.to_le_bytes())
    }

    fn tree_of(model: &BTreeMap<KeyHash, Hash>) -> Tree {
        let pairs: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
        Tree::from_sorted(&pairs)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Batches of inserts, overwrites and deletes against a BTreeMap: the incrementally
        /// updated tree always has the root of a tree built from scratch from the same contents,
        /// and every key's proof (present or absent) verifies, while a wrong claim fails.
        #[test]
        fn incremental_updates_match_a_rebuild_and_prove(
            batches in prop::collection::vec(prop::collection::vec((0u32..64, prop::option::of(0u32..4)), 0..24), 1..8)
        ) {
            let mut model = BTreeMap::new();
            let mut tree = Tree::empty();
            for batch in batches {
                let mut updates = BTreeMap::new();
                for (k, v) in batch {
                    updates.insert(key(k), v.map(value));
                }
                let updates: Vec<Update> = updates.into_iter().collect();
                tree = tree.apply(&updates);
                for (k, v) in &updates {
                    match v {
                        Some(v) => model.insert(*k, *v),
                        None => model.remove(k),
                    };
                }
                let root = tree.root_hash();
                prop_assert_eq!(root, tree_of(&model).root_hash());
                for k in 0..64 {
                    let k = key(k);
                    let proof = tree.prove(&k);
                    prop_assert_eq!(proof.verify(&root, &k, model.get(&k)), Ok(()));
                    let wrong = value(99);
                    prop_assert!(proof.verify(&root, &k, Some(&wrong)).is_err());
                    if model.contains_key(&k) {
                        prop_assert!(proof.verify(&root, &k, None).is_err());
                    }
                }
            }
        }
    }

    #[test]
    fn the_empty_tree_has_the_empty_root_and_proves_absence() {
        let tree = Tree::empty();
        assert_eq!(tree.root_hash(), EMPTY_ROOT);
        assert_eq!(tree.prove(&key(1)).verify(&EMPTY_ROOT, &key(1), None), Ok(()));
        let deleted = tree.apply(&[(key(1), Some(value(1)))]).apply(&[(key(1), None)]);
        assert_eq!(deleted.root_hash(), EMPTY_ROOT);
    }

    #[test]
    fn old_versions_are_unchanged_by_new_ones() {
        let v1 = Tree::empty().apply(&[(key(1), Some(value(1))), (key(2), Some(value(2)))]);
        let root1 = v1.root_hash();
        let v2 = v1.apply(&[(key(1), None), (key(3), Some(value(3)))]);
        assert_eq!(v1.root_hash(), root1);
        assert_ne!(v2.root_hash(), root1);
        assert_eq!(v1.prove(&key(1)).verify(&root1, &key(1), Some(&value(1))), Ok(()));
    }

    #[test]
    fn tampered_proofs_fail() {
        let mut updates: Vec<Update> = (0..200).map(|i| (key(i), Some(value(i)))).collect();
        updates.sort();
        let tree = Tree::empty().apply(&updates);
        let root = tree.root_hash();
        let proof = tree.prove(&key(7));
        assert_eq!(proof.verify(&root, &key(7), Some(&value(7))), Ok(()));
        let mut flipped = proof.clone();
        flipped.steps[0].siblings[0].0[0] ^= 1;
        assert!(matches!(
            flipped.verify(&root, &key(7), Some(&value(7))),
            Err(ProofError::RootMismatch { .. })
        ));
        let mut truncated = proof.clone();
        truncated.steps.pop();
        assert!(truncated.verify(&root, &key(7), Some(&value(7))).is_err());
        let mut bad_bitmap = proof;
        bad_bitmap.steps[0].bitmap ^= 0x8000 | 0x0001;
        assert!(bad_bitmap.verify(&root, &key(7), Some(&value(7))).is_err());
    }
}
