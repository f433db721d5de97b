//! The authenticated, versioned key-value state.
//!
//! # Shape
//!
//! Two halves, split along what must be durable and what must be fast:
//!
//! - The **values** of every version are durable, in a [`StateStore`]: each write is kept under
//!   its key hash and the version that made it, so any kept version can be read, and each version's
//!   root is stored beside them. A block's commit is one atomic write of its values and root, the
//!   same bytes a plain key-value store would write plus a version number.
//! - The **Merkle tree** ([`tree`]) lives in memory: a 16-ary sparse Merkle tree whose recent
//!   versions share structure. A block's root costs one hash per touched node and no I/O. At open,
//!   [`State::open`] rebuilds the tree from the latest values and checks it against the stored
//!   root, so a torn or corrupted store is found before it is used.
//!
//! Proofs of inclusion and exclusion come from the tree: straight from memory for the versions it
//! keeps ([`StateConfig::tree_versions`]), by rebuilding the tree of that version from the store
//! for older kept versions.
//!
//! ADR 0002 explains why this replaced a persistent Jellyfish Merkle tree (the `jmt` crate): it
//! missed the commit and state-root targets by far, writing every touched tree node of every
//! version to disk.
//!
//! [`MemoryStore`] implements the store here; the rocksdb implementation lives in
//! `altan-storage`, so that this crate never links a database. Execution reads through
//! [`StateRead`] and collects writes in an [`Overlay`]; at the end of a block the overlay's changes
//! become a [`StateCommit`] ([`State::prepare`]) whose root goes in the header, and
//! [`State::commit`] makes it durable.

mod keys;
mod memory;
mod overlay;
pub mod tree;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use altan_primitives::Hash;
use parity_scale_codec::{Decode, Encode};

pub use keys::{Account, StateKey};
pub use memory::MemoryStore;
pub use overlay::Overlay;
pub use tree::{KeyHash, ProofError, Tree, TreeProof};

/// A state version: the height of the block whose execution produced it (genesis is 0).
pub type Version = u64;

/// Writes to apply: a value to set, or `None` to delete. Ordered so that whatever iterates it
/// (commits, encoders) sees the same order on every node.
pub type StateChanges = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A failure of the storage backend, or a request it cannot serve. Execution treats every one
/// of these as fatal for the block: it is never turned into a receipt, because another node with
/// a healthy disk would not see it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption detected by the database).
    #[error("storage backend: {0}")]
    Backend(String),
    /// Stored bytes do not decode, or do not hash to the stored root.
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// The version was pruned or is not committed yet.
    #[error("state version {version} is not available (kept: {kept})")]
    VersionUnavailable {
        /// The version asked for.
        version: Version,
        /// The range of versions the store keeps, for the message.
        kept: String,
    },
    /// A commit does not follow the latest committed version.
    #[error("commit of version {found} does not follow version {expected:?}")]
    OutOfOrder {
        /// The version the store expects next (`None` when empty: version 0).
        expected: Option<Version>,
        /// The version offered.
        found: Version,
    },
}

/// A version's writes by key hash, in strictly increasing key-hash order; `None` deletes.
pub type Writes = Vec<(KeyHash, Option<Vec<u8>>)>;

/// A version's writes and root, ready to be made durable. Only [`State::prepare`] makes one, so
/// its writes, root and tree always agree.
#[derive(Debug, Clone)]
pub struct StateCommit {
    version: Version,
    root: Hash,
    writes: Writes,
    /// For each write, in the same order, the version that wrote the value it replaces or
    /// deletes, or `None` when the key has no value before this version (it never had one, or its
    /// last write was a deletion). The tree knows this, so a store files superseded values for
    /// pruning without reading anything.
    replaced: Vec<Option<Version>>,
    tree: Tree,
}

impl StateCommit {
    /// The new version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The new root.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// The version's writes by key hash, in strictly increasing key-hash order; `None` deletes.
    pub fn writes(&self) -> &[(KeyHash, Option<Vec<u8>>)] {
        &self.writes
    }

    /// The entries a store keeps for this version, in key-hash order: every write except the
    /// deletion of a key that has no value (it would hide nothing), each with the versions of
    /// the key's entries that become stale at this version (see [`StateStore::commit`]).
    pub fn stored_writes(&self) -> impl Iterator<Item = StoredWrite<'_>> {
        self.writes.iter().zip(&self.replaced).filter_map(|((key, value), replaced)| {
            let tombstone = value.is_none().then_some(self.version);
            (value.is_some() || replaced.is_some()).then_some(StoredWrite {
                key,
                value: value.as_deref(),
                replaced: *replaced,
                tombstone,
            })
        })
    }
}

/// One entry a store keeps for a version ([`StateCommit::stored_writes`]).
#[derive(Debug, Clone, Copy)]
pub struct StoredWrite<'a> {
    /// The key hash written.
    pub key: &'a KeyHash,
    /// The new value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// The version of the value this write replaces, if any: superseded at this version.
    pub replaced: Option<Version>,
    /// For a tombstone, its own version: it hides only the value it replaces, so it is
    /// superseded (and pruned) with it.
    tombstone: Option<Version>,
}

impl StoredWrite<'_> {
    /// The versions of this key's entries that become stale at the commit's version.
    pub fn stale(&self) -> impl Iterator<Item = Version> {
        self.replaced.into_iter().chain(self.tombstone)
    }
}

/// Hashes writes into tree updates (on two threads for a large batch), both in key-hash order.
fn hash_writes(changes: &StateChanges) -> (Writes, Vec<tree::Update>) {
    let entries: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = changes.iter().collect();
    let hash = |part: &[(&Vec<u8>, &Option<Vec<u8>>)]| -> Vec<tree::Update> {
        part.iter()
            .map(|(key, value)| {
                tree::Update::new(KeyHash::of(key), value.as_deref().map(tree::value_hash))
            })
            .collect()
    };
    let hashed = if entries.len() >= 2_048 {
        let (low, high) = entries.split_at(entries.len() / 2);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| hash(high));
            let mut first = hash(low);
            match other.join() {
                Ok(second) => first.extend(second),
                Err(panic) => std::panic::resume_unwind(panic),
            }
            first
        })
    } else {
        hash(&entries)
    };
    // Sorting indices moves 16 bytes per swap instead of a whole update and value. Key hashes
    // are uniform, so their first eight bytes almost always decide the order: the sort compares
    // integers and reads whole keys only on a tie.
    let mut order: Vec<(u64, usize)> =
        hashed.iter().enumerate().map(|(i, update)| (update.key.prefix(), i)).collect();
    order
        .sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| hashed[a.1].key.cmp(&hashed[b.1].key)));
    // The values are copied on purpose: moving them instead (taking the changes by value) made
    // this 0.6 ms faster per 10,000 writes but the store's batch 1.3 ms slower, reading them
    // where execution left them rather than fresh copies (BENCHMARKS.md, state commit).
    let writes = order.iter().map(|&(_, i)| (hashed[i].key, entries[i].1.clone())).collect();
    let updates = order.iter().map(|&(_, i)| hashed[i]).collect();
    (writes, updates)
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Superseded values deleted.
    pub values: u64,
    /// Roots of pruned versions deleted.
    pub roots: u64,
}

/// Durable storage of the state's versions: values by key hash and version, and each version's
/// root. Implementations must make [`StateStore::commit`] atomic: after a crash, either all of a
/// version is there or none of it.
pub trait StateStore: Send + Sync + 'static {
    /// The newest committed version, if any.
    fn latest_version(&self) -> Result<Option<Version>, StoreError>;

    /// The oldest version that can still be read (versions below were pruned).
    fn oldest_version(&self) -> Result<Option<Version>, StoreError>;

    /// The root of `version`, if it is kept.
    fn root(&self, version: Version) -> Result<Option<Hash>, StoreError>;

    /// The value of `key` as of `version`: the newest write at or below it.
    fn get(&self, key: &KeyHash, version: Version) -> Result<Option<Vec<u8>>, StoreError>;

    /// Visits every key that has a value as of `version`, in key-hash order, with the version
    /// that wrote the value.
    fn scan(
        &self,
        version: Version,
        visit: &mut dyn FnMut(&KeyHash, Version, &[u8]),
    ) -> Result<(), StoreError>;

    /// Writes a version atomically. It must be `latest_version() + 1`, or 0 on an empty store.
    ///
    /// It keeps the entries of [`StateCommit::stored_writes`]: each value written, and each
    /// entry's stale versions filed as superseded at this version (the value a write replaces,
    /// and a deletion's own tombstone: once the values it hides are pruned, it hides nothing).
    /// A deletion of a key without a value writes nothing.
    fn commit(&self, commit: &StateCommit) -> Result<(), StoreError>;

    /// Deletes what only versions below `keep_from` need. Reads at versions `>= keep_from` are
    /// unaffected; reads below it fail with [`StoreError::VersionUnavailable`].
    fn prune(&self, keep_from: Version) -> Result<PruneStats, StoreError>;
}

/// Reads state at one fixed version; what execution sees.
pub trait StateRead: Send + Sync {
    /// The value of `key`, or `None`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Checks that the version of a proposed commit follows the store's latest.
pub fn check_next_version(latest: Option<Version>, found: Version) -> Result<(), StoreError> {
    let expected = latest.map_or(Some(0), |v| v.checked_add(1));
    if expected == Some(found) {
        Ok(())
    } else {
        Err(StoreError::OutOfOrder { expected: latest.and_then(|v| v.checked_add(1)), found })
    }
}

/// How much of the tree [`State`] keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateConfig {
    /// How many recent versions' trees to keep for proofs (at least 1: the latest). They share
    /// every node they have in common, so this costs only what the versions changed.
    pub tree_versions: usize,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { tree_versions: 64 }
    }
}

/// The state over a store: roots, reads, proofs and commits.
pub struct State<S> {
    store: Arc<S>,
    trees: Arc<RwLock<BTreeMap<Version, Tree>>>,
    config: StateConfig,
}

impl<S> Clone for State<S> {
    fn clone(&self) -> Self {
        State {
            store: Arc::clone(&self.store),
            trees: Arc::clone(&self.trees),
            config: self.config,
        }
    }
}

/// Builds the tree of `version` from the store and checks it against the stored root.
fn rebuild<S: StateStore>(store: &S, version: Version) -> Result<Tree, StoreError> {
    let mut leaves = Vec::new();
    store.scan(version, &mut |key, written, value| {
        leaves.push((*key, tree::value_hash(value), written));
    })?;
    if !leaves.is_sorted_by(|a, b| a.0 < b.0) {
        return Err(StoreError::Corrupt(format!("scan of version {version} is not in key order")));
    }
    if let Some((_, _, written)) = leaves.iter().find(|(_, _, written)| *written > version) {
        return Err(StoreError::Corrupt(format!(
            "scan of version {version} gave a value written at later version {written}"
        )));
    }
    let tree = Tree::from_sorted(&leaves);
    let stored = store
        .root(version)?
        .ok_or_else(|| StoreError::Corrupt(format!("no root stored for kept version {version}")))?;
    if tree.root_hash() != stored {
        return Err(StoreError::Corrupt(format!(
            "values of version {version} hash to {}, but its stored root is {stored}",
            tree.root_hash()
        )));
    }
    Ok(tree)
}

impl<S: StateStore> State<S> {
    /// Opens the state in `store`, rebuilding the latest version's tree and checking it.
    pub fn open(store: Arc<S>) -> Result<Self, StoreError> {
        Self::open_with(store, StateConfig::default())
    }

    /// [`State::open`] with a configuration.
    pub fn open_with(store: Arc<S>, config: StateConfig) -> Result<Self, StoreError> {
        let mut trees = BTreeMap::new();
        if let Some(latest) = store.latest_version()? {
            trees.insert(latest, rebuild(&*store, latest)?);
        }
        Ok(State { store, trees: Arc::new(RwLock::new(trees)), config })
    }

    /// The backend.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The newest committed version.
    pub fn latest_version(&self) -> Result<Option<Version>, StoreError> {
        self.store.latest_version()
    }

    fn check_readable(&self, version: Version) -> Result<(), StoreError> {
        let latest = self.store.latest_version()?;
        let oldest = self.store.oldest_version()?;
        match (oldest, latest) {
            (Some(oldest), Some(latest)) if (oldest..=latest).contains(&version) => Ok(()),
            (Some(oldest), Some(latest)) => Err(StoreError::VersionUnavailable {
                version,
                kept: format!("{oldest}..={latest}"),
            }),
            _ => Err(StoreError::VersionUnavailable { version, kept: "none".into() }),
        }
    }

    fn trees(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Version, Tree>> {
        // Trees are replaced whole under the lock, never left half-written.
        self.trees.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The oldest version whose tree is kept in memory: proofs from it on are cheap, older ones
    /// rebuild their tree from the store.
    pub fn oldest_kept_tree(&self) -> Option<Version> {
        self.trees().keys().next().copied()
    }

    /// The root at `version`.
    pub fn root(&self, version: Version) -> Result<Hash, StoreError> {
        self.check_readable(version)?;
        self.store.root(version)?.ok_or_else(|| {
            StoreError::Corrupt(format!("no root stored for kept version {version}"))
        })
    }

    /// The value of `key` at `version`.
    pub fn get(&self, key: &[u8], version: Version) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_readable(version)?;
        self.store.get(&KeyHash::of(key), version)
    }

    /// The value of `key` at `version` with a proof of it (or of its absence) against the root
    /// of that version. Recent versions are proved from memory; older kept versions by rebuilding
    /// their tree from the store, which costs time in proportion to the state's size.
    pub fn get_with_proof(
        &self,
        key: &[u8],
        version: Version,
    ) -> Result<(Option<Vec<u8>>, StateProof), StoreError> {
        self.check_readable(version)?;
        let key_hash = KeyHash::of(key);
        let value = self.store.get(&key_hash, version)?;
        let kept = self.trees().get(&version).cloned();
        let tree = match kept {
            Some(tree) => tree,
            None => rebuild(&*self.store, version)?,
        };
        // The tree keeps no values' hashes: the leaf that ends the path has its value read here
        // (the key's own, already read, or the key that owns its path, for an exclusion proof).
        let proof = tree.prove(&key_hash, |leaf| {
            if *leaf == key_hash
                && let Some(value) = &value
            {
                return Ok(tree::value_hash(value));
            }
            let stored = self.store.get(leaf, version)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "a leaf of the tree of version {version} has no value in the store"
                ))
            })?;
            Ok(tree::value_hash(&stored))
        })?;
        Ok((value, StateProof(proof)))
    }

    /// A read view of `version`, for execution.
    pub fn snapshot(&self, version: Version) -> Result<Snapshot<S>, StoreError> {
        self.check_readable(version)?;
        Ok(Snapshot { store: Arc::clone(&self.store), version: Some(version) })
    }

    /// A read view of the state before genesis: empty.
    pub fn empty_snapshot(&self) -> Snapshot<S> {
        Snapshot { store: Arc::clone(&self.store), version: None }
    }

    /// Computes the root of applying `changes` on top of the latest version as `version`.
    /// Nothing is written until [`State::commit`].
    pub fn prepare(
        &self,
        version: Version,
        changes: &StateChanges,
    ) -> Result<StateCommit, StoreError> {
        let latest = self.store.latest_version()?;
        check_next_version(latest, version)?;
        let (writes, mut updates) = hash_writes(changes);

        let base = match latest {
            Some(latest) => self.trees().get(&latest).cloned().ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the tree of the latest version {latest} is not loaded"
                ))
            })?,
            None => Tree::empty(),
        };
        let tree = base.apply(&mut updates, version);
        let replaced = updates.iter().map(|update| update.replaced).collect();
        Ok(StateCommit { version, root: tree.root_hash(), writes, replaced, tree })
    }

    /// Makes a prepared commit durable and its tree the latest.
    pub fn commit(&self, commit: &StateCommit) -> Result<(), StoreError> {
        self.commit_using(commit, |store, commit| store.commit(commit))
    }

    /// Like [`State::commit`], with `write` making the commit durable: a node uses it to write the
    /// block's own records in the same atomic batch (for example with
    /// `altan_storage::ChainStore`, which writes the block beside its state). The tree advances only if `write` succeeds.
    pub fn commit_using(
        &self,
        commit: &StateCommit,
        write: impl FnOnce(&S, &StateCommit) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        write(&self.store, commit)?;
        let expired: Vec<Tree> = {
            let mut trees = self.trees.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            trees.insert(commit.version, commit.tree.clone());
            let keep = self.config.tree_versions.max(1);
            let mut expired = Vec::new();
            while trees.len() > keep {
                expired.extend(trees.pop_first().map(|(_, tree)| tree));
            }
            expired
        };
        // Freeing an old version's nodes takes milliseconds in a large state; it need not hold up
        // the block.
        if !expired.is_empty() {
            std::thread::spawn(move || drop(expired));
        }
        Ok(())
    }

    /// Prepares and commits `changes` as `version`, returning the new root.
    pub fn apply(&self, version: Version, changes: &StateChanges) -> Result<Hash, StoreError> {
        let commit = self.prepare(version, changes)?;
        self.commit(&commit)?;
        Ok(commit.root)
    }

    /// Deletes what only versions below `keep_from` need (see [`StateStore::prune`]).
    pub fn prune(&self, keep_from: Version) -> Result<PruneStats, StoreError> {
        let stats = self.store.prune(keep_from)?;
        let mut trees = self.trees.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let latest = trees.last_key_value().map(|(v, _)| *v);
        trees.retain(|version, _| *version >= keep_from || Some(*version) == latest);
        Ok(stats)
    }
}

/// A read view of one committed version (or of the empty pre-genesis state).
pub struct Snapshot<S> {
    store: Arc<S>,
    version: Option<Version>,
}

impl<S: StateStore> Snapshot<S> {
    /// The version this view reads.
    pub fn version(&self) -> Option<Version> {
        self.version
    }
}

impl<S: StateStore> StateRead for Snapshot<S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.version {
            Some(version) => self.store.get(&KeyHash::of(key), version),
            None => Ok(None),
        }
    }
}

/// A proof that a key has a value, or has none, under a state root. It verifies with the root
/// alone, so a light client can trust a single value without the database.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct StateProof(pub TreeProof);

impl StateProof {
    /// Checks the proof for `key` having `value` (or no value) under `root`.
    pub fn verify(&self, root: Hash, key: &[u8], value: Option<&[u8]>) -> Result<(), ProofError> {
        let value_hash = value.map(tree::value_hash);
        self.0.verify(&root, &KeyHash::of(key), value_hash.as_ref())
    }

    /// The proof's canonical bytes (SCALE).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }

    /// Reads a proof from bytes made by [`StateProof::to_bytes`].
    pub fn from_bytes(mut bytes: &[u8]) -> Result<StateProof, parity_scale_codec::Error> {
        use parity_scale_codec::DecodeAll;
        StateProof::decode_all(&mut bytes)
    }
}
