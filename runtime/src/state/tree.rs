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
//! Internal nodes are immutable and shared through `Arc`: a new version copies only the paths its
//! batch touches. Keeping the roots of recent versions keeps their whole trees, at the cost of the
//! nodes they do not share with the latest.
//!
//! # Layout
//!
//! An internal node is one allocation: its present children in nibble order, each with its hash.
//! Leaves are stored inline there, not behind a pointer of their own, so a copied node copies its
//! leaves' bytes instead of touching (and reference-counting) one allocation per leaf, and a new
//! key costs no allocation of its own. A leaf holds its key hash and the version that wrote its
//! value, outside the hash: it is how a commit learns which stored value each write replaces. It
//! does not hold its value's hash, which its own hash already commits to: keeping it made every
//! child 32 bytes larger (120 bytes instead of 88) for the sake of proofs, and every block copies
//! the nodes on its paths. A proof that ends at a leaf reads the leaf's value from the store.

use std::cell::RefCell;
use std::sync::Arc;

use altan_primitives::Hash;
use parity_scale_codec::{Decode, Encode};

use super::Version;

/// The blake3 hash of a state key: its position in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    /// The key hash of `key`.
    pub fn of(key: &[u8]) -> KeyHash {
        KeyHash(*blake3::hash(key).as_bytes())
    }

    /// The first eight bytes as a big-endian integer: orders like the whole key unless equal.
    pub fn prefix(&self) -> u64 {
        let mut first = [0; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(first)
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

/// Bytes hashed for an internal node with all 16 children: tag, bitmap, hashes.
const INTERNAL_PREIMAGE: usize = 3 + 16 * 32;

// Each hash below is one `blake3::hash` call over a preimage assembled on the stack: for inputs
// this small, one call costs about half of feeding a `Hasher` the same bytes piece by piece.

fn leaf_hash(key: &KeyHash, value_hash: &Hash) -> Hash {
    let mut preimage = [0_u8; 65];
    preimage[1..33].copy_from_slice(&key.0);
    preimage[33..].copy_from_slice(value_hash.as_bytes());
    Hash(*blake3::hash(&preimage).as_bytes())
}

fn internal_hash<'a>(bitmap: u16, children: impl Iterator<Item = &'a Hash>) -> Hash {
    let mut preimage = [0_u8; INTERNAL_PREIMAGE];
    preimage[0] = 1;
    preimage[1..3].copy_from_slice(&bitmap.to_le_bytes());
    let mut len: usize = 3;
    for (slot, child) in preimage[3..].chunks_exact_mut(32).zip(children) {
        slot.copy_from_slice(child.as_bytes());
        len = len.saturating_add(32);
    }
    Hash(*blake3::hash(&preimage[..len]).as_bytes())
}

/// The hash of a value, as leaves commit to it.
pub fn value_hash(value: &[u8]) -> Hash {
    Hash(*blake3::hash(value).as_bytes())
}

/// A key's value in the tree. Leaves are held inline in their parent's child list: a batch that
/// copies a node copies its leaves' bytes rather than touching one allocation per leaf. The
/// value's hash is in the leaf's hash, kept by the parent.
#[derive(Clone, Copy, Debug)]
struct Leaf {
    key: KeyHash,
    /// The version that wrote this value: what the store files the value under. It is not part
    /// of the hash; it tells a commit which stored value each write replaces, so the store need
    /// not look that up.
    version: Version,
}

/// A subtree: a leaf, or an internal node's children (two or more) in nibble order. Cloning
/// shares an internal node.
#[derive(Clone, Debug)]
enum Node {
    Leaf(Leaf),
    Internal(Arc<[Child]>),
}

/// A child of an internal node: where it sits, its hash, and the subtree. Hashes live in the
/// parent, so rebuilding a node after one child changed reads only the node itself.
#[derive(Clone, Debug)]
struct Child {
    nibble: u8,
    hash: Hash,
    node: Node,
}

/// A subtree with its hash: what building or updating one gives.
type Subtree = (Hash, Node);

fn new_leaf(key: KeyHash, value_hash: Hash, version: Version) -> Subtree {
    (leaf_hash(&key, &value_hash), Node::Leaf(Leaf { key, version }))
}

/// The bitmap of which nibbles `children` occupy.
fn bitmap(children: &[Child]) -> u16 {
    children.iter().fold(0, |bitmap, child| bitmap | (1 << child.nibble))
}

/// The canonical subtree of `children` (in nibble order), which it empties: nothing for none,
/// the leaf itself for a lone leaf (a lone internal child keeps its parent: the path encodes its
/// prefix), an internal node otherwise.
fn internal(children: &mut Vec<Child>) -> Option<Subtree> {
    match children.as_slice() {
        [] => None,
        [Child { hash, node: Node::Leaf(leaf), .. }] => {
            let subtree = (*hash, Node::Leaf(*leaf));
            children.clear();
            Some(subtree)
        }
        _ => {
            let hash = internal_hash(bitmap(children), children.iter().map(|child| &child.hash));
            // Draining has an exact length, so the node is allocated once, at its size.
            Some((hash, Node::Internal(children.drain(..).collect())))
        }
    }
}

thread_local! {
    /// Child lists to assemble nodes in, one per level of the recursion in progress: reused, so
    /// that building a node allocates only the node.
    static BUFFERS: RefCell<Vec<Vec<Child>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `assemble` with an empty child list from this thread's pool.
fn with_buffer<R>(assemble: impl FnOnce(&mut Vec<Child>) -> R) -> R {
    let buffer = BUFFERS.with_borrow_mut(Vec::pop);
    let mut buffer = buffer.unwrap_or_else(|| Vec::with_capacity(16));
    let result = assemble(&mut buffer);
    buffer.clear();
    BUFFERS.with_borrow_mut(|pool| pool.push(buffer));
    result
}

/// The child at `nibble` of a subtree built or updated at `depth + 1`.
fn child(nibble: usize, subtree: Option<Subtree>) -> Option<Child> {
    // A nibble is below 16.
    let nibble = u8::try_from(nibble).unwrap_or(u8::MAX);
    subtree.map(|(hash, node)| Child { nibble, hash, node })
}

/// One write of a batch: a key hash and the hash of its new value, or `None` to delete it.
/// [`Tree::apply`] fills in `replaced`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    /// The key written.
    pub key: KeyHash,
    /// The hash of its new value, or `None` to delete it.
    pub value_hash: Option<Hash>,
    /// The version that wrote the value this update replaces or deletes, or `None` if the key
    /// had no value: the tree knows it, so a store can index superseded values for pruning
    /// without reading anything.
    pub replaced: Option<Version>,
}

impl Update {
    /// An update of `key` to the value hashed as `value_hash` (`None`: a deletion).
    pub fn new(key: KeyHash, value_hash: Option<Hash>) -> Update {
        Update { key, value_hash, replaced: None }
    }
}

/// A version of the tree. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    root: Option<Subtree>,
}

/// The lengths of the runs of `items` (sorted by key) that share each nibble at `depth`.
fn nibble_runs<T>(items: &[T], depth: usize, key: impl Fn(&T) -> &KeyHash) -> [usize; 16] {
    let mut runs = [0; 16];
    for item in items {
        let run = &mut runs[key(item).nibble(depth)];
        *run = usize::saturating_add(*run, 1);
    }
    runs
}

/// Splits `items` (sorted by key) into the runs that share the nibble at `depth`.
fn by_nibble<T>(items: &[T], depth: usize, key: impl Fn(&T) -> &KeyHash) -> [&[T]; 16] {
    let runs = nibble_runs(items, depth, key);
    let mut rest = items;
    runs.map(|len| {
        let (group, tail) = rest.split_at(len);
        rest = tail;
        group
    })
}

/// [`by_nibble`] for updates that are written to.
fn updates_by_nibble(updates: &mut [Update], depth: usize) -> [&mut [Update]; 16] {
    let runs = nibble_runs(updates, depth, |update| &update.key);
    let mut rest = updates;
    runs.map(|len| {
        let (group, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        group
    })
}

/// Builds the canonical subtree at `depth` of `existing` (a leaf kept from the tree with its
/// hash, whose key is not among the items) and of the items that `value` gives a value hash
/// and version (sorted, distinct keys). A kept leaf is moved down as it is, not rehashed.
fn build<T>(
    depth: usize,
    items: &[T],
    existing: Option<(&Hash, &Leaf)>,
    key: &impl Fn(&T) -> &KeyHash,
    value: &impl Fn(&T) -> Option<(Hash, Version)>,
) -> Option<Subtree> {
    let mut values = items.iter().filter_map(|item| value(item).map(|value| (item, value)));
    match (existing, values.next(), values.next()) {
        (None, None, _) => None,
        (Some((hash, leaf)), None, _) => Some((*hash, Node::Leaf(*leaf))),
        (None, Some((item, (value_hash, version))), None) => {
            Some(new_leaf(*key(item), value_hash, version))
        }
        _ if depth >= MAX_DEPTH => None,
        _ => {
            let groups = by_nibble(items, depth, key);
            let existing_nibble = existing.map(|(_, leaf)| leaf.key.nibble(depth));
            with_buffer(|children| {
                for (nibble, group) in groups.iter().enumerate() {
                    let existing = existing.filter(|_| existing_nibble == Some(nibble));
                    if !group.is_empty() || existing.is_some() {
                        let subtree = build(depth.saturating_add(1), group, existing, key, value);
                        children.extend(child(nibble, subtree));
                    }
                }
                internal(children)
            })
        }
    }
}

/// [`build`] of updates written at `version`, beside `existing`.
fn build_updates(
    depth: usize,
    updates: &[Update],
    existing: Option<(&Hash, &Leaf)>,
    version: Version,
) -> Option<Subtree> {
    build(depth, updates, existing, &|update| &update.key, &|update| {
        update.value_hash.map(|value_hash| (value_hash, version))
    })
}

/// Applies `updates` (sorted, distinct keys, all under this subtree) written at `version` to
/// `subtree` at `depth`, recording in each update the version of the value it replaces.
fn update(
    subtree: Option<(&Hash, &Node)>,
    depth: usize,
    updates: &mut [Update],
    version: Version,
) -> Option<Subtree> {
    match subtree {
        None => build_updates(depth, updates, None, version),
        Some((hash, Node::Leaf(leaf))) => {
            match updates.binary_search_by(|update| update.key.cmp(&leaf.key)) {
                // The leaf is overwritten or deleted.
                Ok(index) => {
                    updates[index].replaced = Some(leaf.version);
                    build_updates(depth, updates, None, version)
                }
                Err(_) => build_updates(depth, updates, Some((hash, leaf)), version),
            }
        }
        Some((_, Node::Internal(children))) => {
            let mut groups = updates_by_nibble(updates, depth);
            with_buffer(|new| {
                update_children(children, &mut groups, 0, depth, version, new);
                internal(new)
            })
        }
    }
}

/// Pushes to `new`, in nibble order, the children of an internal node at `depth` (whose old
/// children are `old`) at the nibbles from `first` on, one per group of updates in `groups`.
/// Children without updates are shared with the old node.
fn update_children(
    old: &[Child],
    groups: &mut [&mut [Update]],
    first: usize,
    depth: usize,
    version: Version,
    new: &mut Vec<Child>,
) {
    let mut old = old.iter().skip_while(|child| usize::from(child.nibble) < first).peekable();
    for (nibble, group) in (first..).zip(groups) {
        let previous = old.next_if(|child| usize::from(child.nibble) == nibble);
        if group.is_empty() {
            new.extend(previous.cloned());
        } else {
            let subtree = previous.map(|child| (&child.hash, &child.node));
            new.extend(child(nibble, update(subtree, depth.saturating_add(1), group, version)));
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
        self.root.as_ref().map_or(EMPTY_ROOT, |(hash, _)| *hash)
    }

    /// A tree holding exactly `leaves`: key hash, value hash, and the version that wrote the
    /// value (sorted by key hash, distinct).
    pub fn from_sorted(leaves: &[(KeyHash, Hash, Version)]) -> Tree {
        let root = build(0, leaves, None, &|(key, _, _)| key, &|(_, value_hash, version)| {
            Some((*value_hash, *version))
        });
        Tree { root }
    }

    /// A new version with `updates` (sorted by key hash, distinct) written at `version`;
    /// `self` is unchanged. Sets each update's `replaced`.
    ///
    /// A large batch is split between two threads at the root (the two halves of the key space
    /// are independent subtrees); the result is the same either way.
    pub fn apply(&self, updates: &mut [Update], version: Version) -> Tree {
        if updates.is_empty() {
            return self.clone();
        }
        let root = self.root.as_ref().map(|(hash, node)| (hash, node));
        match root {
            Some((_, Node::Internal(children))) if updates.len() >= PARALLEL_UPDATES => {
                let mut groups = updates_by_nibble(updates, 0);
                let (low, high) = groups.split_at_mut(8);
                let mut new = Vec::with_capacity(16);
                let mut upper = Vec::with_capacity(8);
                std::thread::scope(|scope| {
                    let other = scope.spawn(|| {
                        update_children(children, high, 8, 0, version, &mut upper);
                    });
                    update_children(children, low, 0, 0, version, &mut new);
                    if let Err(panic) = other.join() {
                        std::panic::resume_unwind(panic);
                    }
                });
                new.append(&mut upper);
                Tree { root: internal(&mut new) }
            }
            root => Tree { root: update(root, 0, updates, version) },
        }
    }

    /// A proof of `key`'s value (or absence) in this tree. A path that ends at a leaf needs the
    /// hash of that leaf's value, which the tree does not keep: `value_hash_of` gives it for the
    /// leaf's key (the key asked about, or the one that owns its path).
    pub fn prove<E>(
        &self,
        key: &KeyHash,
        value_hash_of: impl FnOnce(&KeyHash) -> Result<Hash, E>,
    ) -> Result<TreeProof, E> {
        let mut steps = Vec::new();
        let mut node = self.root.as_ref().map(|(_, node)| node);
        let mut depth = 0;
        loop {
            match node {
                None => return Ok(TreeProof { steps, terminal: Terminal::Empty }),
                Some(Node::Leaf(leaf)) => {
                    let value_hash = value_hash_of(&leaf.key)?;
                    return Ok(TreeProof {
                        steps,
                        terminal: Terminal::Leaf { key: leaf.key, value_hash },
                    });
                }
                Some(Node::Internal(children)) => {
                    let nibble = key.nibble(depth);
                    let on_path = |child: &&Child| usize::from(child.nibble) == nibble;
                    let siblings = children.iter().filter(|child| !on_path(child));
                    let siblings = siblings.map(|child| child.hash).collect();
                    steps.push(ProofStep { bitmap: bitmap(children), siblings });
                    node = children.iter().find(on_path).map(|child| &child.node);
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

    /// The model: each key's value hash and the version that wrote it.
    type Model = BTreeMap<KeyHash, (Hash, Version)>;

    /// A proof of `key` in `tree`, whose leaves' values `model` holds.
    fn prove(tree: &Tree, model: &Model, key: &KeyHash) -> TreeProof {
        let value_hash_of = |leaf: &KeyHash| model.get(leaf).map(|(value, _)| *value).ok_or(*leaf);
        tree.prove(key, value_hash_of).expect("every leaf of the tree is in the model")
    }

    fn tree_of(model: &Model) -> Tree {
        let leaves: Vec<_> = model.iter().map(|(k, (v, version))| (*k, *v, *version)).collect();
        Tree::from_sorted(&leaves)
    }

    /// Applies `writes` to the tree and the model as `version`, checking that every update
    /// reports the version of the value it replaced, and that the tree has the root of a tree
    /// built from scratch from the model.
    fn apply_and_check(
        tree: &Tree,
        model: &mut Model,
        writes: BTreeMap<KeyHash, Option<Hash>>,
        version: Version,
    ) -> Result<Tree, TestCaseError> {
        let mut updates: Vec<Update> =
            writes.into_iter().map(|(key, value)| Update::new(key, value)).collect();
        let next = tree.apply(&mut updates, version);
        for update in &updates {
            let before = match update.value_hash {
                Some(value) => model.insert(update.key, (value, version)),
                None => model.remove(&update.key),
            };
            prop_assert_eq!(update.replaced, before.map(|(_, written)| written));
        }
        prop_assert_eq!(next.root_hash(), tree_of(model).root_hash());
        Ok(next)
    }

    fn writes(pairs: &[(u32, Option<u32>)]) -> BTreeMap<KeyHash, Option<Hash>> {
        pairs.iter().map(|(k, v)| (key(*k), v.map(value))).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// The integer prefix that sorts a batch orders key hashes as the whole hash does
        /// whenever the prefixes differ (keys sharing their first bytes included).
        #[test]
        fn key_prefixes_order_like_whole_keys(
            a in prop::array::uniform32(any::<u8>()),
            b in prop::array::uniform32(any::<u8>()),
            shared in 0usize..=8,
        ) {
            let mut b = b;
            b[..shared].copy_from_slice(&a[..shared]);
            let (a, b) = (KeyHash(a), KeyHash(b));
            if a.prefix() != b.prefix() {
                prop_assert_eq!(a.prefix().cmp(&b.prefix()), a.cmp(&b));
            } else {
                prop_assert_eq!(&a.0[..8], &b.0[..8]);
            }
        }

        /// Batches of inserts, overwrites and deletes against a BTreeMap: the incrementally
        /// updated tree always has the root of a tree built from scratch from the same contents,
        /// each update learns the version of the value it replaced, and every key's proof
        /// (present or absent) verifies, while a wrong claim fails.
        #[test]
        fn incremental_updates_match_a_rebuild_and_prove(
            batches in prop::collection::vec(prop::collection::vec((0u32..64, prop::option::of(0u32..4)), 0..24), 1..8)
        ) {
            let mut model = Model::new();
            let mut tree = Tree::empty();
            for (version, batch) in (0..).zip(batches) {
                tree = apply_and_check(&tree, &mut model, writes(&batch), version)?;
                let root = tree.root_hash();
                for k in 0..64 {
                    let k = key(k);
                    let proof = prove(&tree, &model, &k);
                    let value = model.get(&k).map(|(v, _)| v);
                    prop_assert_eq!(proof.verify(&root, &k, value), Ok(()));
                    let wrong = self::value(99);
                    prop_assert!(proof.verify(&root, &k, Some(&wrong)).is_err());
                    if model.contains_key(&k) {
                        prop_assert!(proof.verify(&root, &k, None).is_err());
                    }
                }
            }
        }
    }

    /// Batches large enough to be applied on two threads give what the model says, including
    /// the replaced versions, across inserts, overwrites and deletes in both halves.
    #[test]
    fn large_batches_split_across_threads_match_the_model() {
        let mut model = Model::new();
        let first: Vec<_> = (0..6_000).map(|k| (k, Some(k))).collect();
        let tree = apply_and_check(&Tree::empty(), &mut model, writes(&first), 0).unwrap();
        // Every third key deleted, every third overwritten, and as many fresh keys.
        let second: Vec<_> = (0..9_000)
            .map(|k| match k % 3 {
                0 if k < 6_000 => (k, None),
                1 if k < 6_000 => (k, Some(k + 1)),
                _ => (k, Some(k)),
            })
            .collect();
        assert!(second.len() >= PARALLEL_UPDATES);
        let tree = apply_and_check(&tree, &mut model, writes(&second), 1).unwrap();
        let third: Vec<_> = (3_000..12_000).map(|k| (k, Some(7))).collect();
        apply_and_check(&tree, &mut model, writes(&third), 2).unwrap();
    }

    #[test]
    fn the_empty_tree_has_the_empty_root_and_proves_absence() {
        let tree = Tree::empty();
        assert_eq!(tree.root_hash(), EMPTY_ROOT);
        let mut model = Model::new();
        assert_eq!(prove(&tree, &model, &key(1)).verify(&EMPTY_ROOT, &key(1), None), Ok(()));
        let one = apply_and_check(&tree, &mut model, writes(&[(1, Some(1))]), 0).unwrap();
        let deleted = apply_and_check(&one, &mut model, writes(&[(1, None)]), 1).unwrap();
        assert_eq!(deleted.root_hash(), EMPTY_ROOT);
    }

    #[test]
    fn old_versions_are_unchanged_by_new_ones() {
        let mut model = Model::new();
        let v1 =
            apply_and_check(&Tree::empty(), &mut model, writes(&[(1, Some(1)), (2, Some(2))]), 0)
                .unwrap();
        let root1 = v1.root_hash();
        let model1 = model.clone();
        let v2 = apply_and_check(&v1, &mut model, writes(&[(1, None), (3, Some(3))]), 1).unwrap();
        assert_eq!(v1.root_hash(), root1);
        assert_ne!(v2.root_hash(), root1);
        let proof = prove(&v1, &model1, &key(1));
        assert_eq!(proof.verify(&root1, &key(1), Some(&value(1))), Ok(()));
    }

    /// The node hashes are pinned to the rule in the module docs, computed outside this code
    /// (a Python script over the `blake3` package): 40 keys, leaves down to depth 3. A change
    /// here changes every state root, so it must be deliberate.
    #[test]
    fn node_hashes_match_an_independent_computation() {
        let mut leaves: Vec<_> = (0..40).map(|k| (key(k), value(k * 7), 0)).collect();
        leaves.sort();
        assert_eq!(
            Tree::from_sorted(&leaves).root_hash().to_string(),
            "0x8bc5f91e2a6ff6e73578206a8266954d226527cb96751e074ff24cc10b8aee13"
        );
    }

    #[test]
    fn tampered_proofs_fail() {
        let model: Model = (0..200).map(|i| (key(i), (value(i), 0))).collect();
        let tree = tree_of(&model);
        let root = tree.root_hash();
        let proof = prove(&tree, &model, &key(7));
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
