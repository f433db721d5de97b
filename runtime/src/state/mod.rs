//! The authenticated, versioned key-value state.
//!
//! # Choice of tree
//!
//! The state is a Jellyfish Merkle tree (the `jmt` crate, maintained by Penumbra, descended from
//! Diem's): a sparse Merkle tree over 256-bit key hashes with 16-ary internal nodes stored by
//! `(version, nibble path)`. It gives everything the chain needs without our writing a trie:
//! one root per version (version = block height), reads at any kept version, inclusion and
//! exclusion proofs that verify against a root alone, and, for every commit, the list of nodes it
//! made stale, which is exactly what pruning needs. Writes come out as a batch of new nodes and
//! values that a backend stores in one atomic write. Node hashing is blake3, through
//! [`Blake3Hasher`].
//!
//! # Shape
//!
//! The tree reads and writes through the [`StateStore`] trait. [`MemoryStore`] implements it here;
//! the rocksdb implementation lives in the `altan-storage` crate, so that this crate never links a
//! database and its tests stay fast and deterministic. Execution reads through the [`StateRead`]
//! trait and collects writes in an [`Overlay`]; at the end of a block the overlay's changes become
//! a [`StateCommit`] ([`State::prepare`]) whose root goes in the header, and the store writes it
//! ([`StateStore::commit`]).

mod keys;
mod memory;
mod overlay;

use std::collections::BTreeMap;
use std::sync::Arc;

use altan_primitives::Hash;
use jmt::storage::{NibblePath, NodeKey, StaleNodeIndex, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, RootHash};

pub use keys::{Account, StateKey};
pub use memory::MemoryStore;
pub use overlay::Overlay;

/// A state version: the height of the block whose execution produced it (genesis is 0).
pub type Version = u64;

/// Writes to apply: a value to set, or `None` to delete. Ordered so that whatever iterates it
/// (commits, encoders) sees the same order on every node.
pub type StateChanges = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// blake3 as the tree's hash function.
pub struct Blake3Hasher(blake3::Hasher);

impl jmt::SimpleHasher for Blake3Hasher {
    fn new() -> Self {
        Blake3Hasher(blake3::Hasher::new())
    }

    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

type Tree<'a, S> = JellyfishMerkleTree<'a, S, Blake3Hasher>;

/// The tree's key for a state key.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash(*blake3::hash(key).as_bytes())
}

/// A failure of the storage backend, or a request it cannot serve. Execution treats every one
/// of these as fatal for the block: it is never turned into a receipt, because another node with
/// a healthy disk would not see it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, corruption detected by the database).
    #[error("storage backend: {0}")]
    Backend(String),
    /// Stored bytes do not decode.
    #[error("corrupt state entry: {0}")]
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

impl From<anyhow::Error> for StoreError {
    fn from(error: anyhow::Error) -> Self {
        // A store's own error comes back through jmt's `anyhow` results: keep its kind, so
        // that corrupt bytes on disk are reported as `Corrupt`, not as a backend failure.
        match error.downcast::<StoreError>() {
            Ok(error) => error,
            Err(error) => StoreError::Backend(format!("{error:#}")),
        }
    }
}

/// The result of committing a block's changes, ready to be written atomically.
#[derive(Debug, Clone)]
pub struct StateCommit {
    /// The new version.
    pub version: Version,
    /// The new root.
    pub root: Hash,
    /// New nodes and values, and the nodes this version made stale.
    pub update: TreeUpdateBatch,
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Tree nodes deleted.
    pub nodes: u64,
    /// Superseded values deleted.
    pub values: u64,
}

/// A backend for the versioned state. Implementations must make [`StateStore::commit`] atomic:
/// after a crash, either all of a version is there or none of it.
pub trait StateStore: TreeReader + Send + Sync + 'static {
    /// The newest committed version, if any.
    fn latest_version(&self) -> Result<Option<Version>, StoreError>;

    /// The oldest version that can still be read (versions below were pruned).
    fn oldest_version(&self) -> Result<Option<Version>, StoreError>;

    /// Writes a commit atomically. It must be for `latest_version() + 1`, or 0 on an empty store.
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

/// jmt (0.12) gives a version that changes nothing (an empty block) a copy of the previous root
/// but does not mark the previous root stale, so pruning would never delete it: one node leaked
/// per empty block. This marks it, as jmt itself does whenever a version replaces the root.
fn mark_previous_root_stale(update: &mut TreeUpdateBatch, version: Version) {
    let Some(previous) = version.checked_sub(1) else { return };
    let stale = &mut update.stale_node_index_batch;
    if stale.iter().all(|index| index.node_key.nibble_path().num_nibbles() != 0) {
        let root_path: NibblePath = std::iter::empty().collect();
        stale.insert(StaleNodeIndex {
            stale_since_version: version,
            node_key: NodeKey::new(previous, root_path),
        });
    }
}

/// The state over a store: roots, reads, proofs and commits.
pub struct State<S> {
    store: Arc<S>,
}

impl<S> Clone for State<S> {
    fn clone(&self) -> Self {
        State { store: Arc::clone(&self.store) }
    }
}

impl<S: StateStore> State<S> {
    /// The state in `store`.
    pub fn new(store: Arc<S>) -> Self {
        State { store }
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

    /// The root at `version`.
    pub fn root(&self, version: Version) -> Result<Hash, StoreError> {
        self.check_readable(version)?;
        let root = Tree::new(&*self.store).get_root_hash(version)?;
        Ok(Hash(root.0))
    }

    /// The value of `key` at `version`.
    pub fn get(&self, key: &[u8], version: Version) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_readable(version)?;
        Ok(self.store.get_value_option(version, key_hash(key))?)
    }

    /// The value of `key` at `version` with a proof of it (or of its absence) against the root
    /// of that version.
    pub fn get_with_proof(
        &self,
        key: &[u8],
        version: Version,
    ) -> Result<(Option<Vec<u8>>, StateProof), StoreError> {
        self.check_readable(version)?;
        let (value, proof) = Tree::new(&*self.store).get_with_proof(key_hash(key), version)?;
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

    /// Computes the tree update that applies `changes` on top of the latest version, making
    /// `version`. Nothing is written until [`StateStore::commit`] (or [`State::commit`]).
    pub fn prepare(
        &self,
        version: Version,
        changes: &StateChanges,
    ) -> Result<StateCommit, StoreError> {
        check_next_version(self.store.latest_version()?, version)?;
        let set = changes.iter().map(|(key, value)| (key_hash(key), value.clone()));
        let (root, mut update) = Tree::new(&*self.store).put_value_set(set, version)?;
        mark_previous_root_stale(&mut update, version);
        Ok(StateCommit { version, root: Hash(root.0), update })
    }

    /// Writes a prepared commit.
    pub fn commit(&self, commit: &StateCommit) -> Result<(), StoreError> {
        self.store.commit(commit)
    }

    /// Prepares and writes `changes` as `version`, returning the new root.
    pub fn apply(&self, version: Version, changes: &StateChanges) -> Result<Hash, StoreError> {
        let commit = self.prepare(version, changes)?;
        self.store.commit(&commit)?;
        Ok(commit.root)
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
            Some(version) => Ok(self.store.get_value_option(version, key_hash(key))?),
            None => Ok(None),
        }
    }
}

/// Why a proof does not verify.
#[derive(Debug, thiserror::Error)]
#[error("state proof does not verify: {0}")]
pub struct ProofError(String);

/// A proof that a key has a value, or has none, under a state root. It verifies with the root
/// alone, so a light client can trust a single value without the database.
#[derive(Debug, Clone, PartialEq)]
pub struct StateProof(jmt::proof::SparseMerkleProof<Blake3Hasher>);

impl StateProof {
    /// Checks the proof for `key` having `value` (or no value) under `root`.
    pub fn verify(&self, root: Hash, key: &[u8], value: Option<&[u8]>) -> Result<(), ProofError> {
        self.0
            .verify(RootHash(root.0), key_hash(key), value)
            .map_err(|e| ProofError(format!("{e:#}")))
    }

    /// The proof's canonical bytes (borsh, as jmt defines it).
    pub fn to_bytes(&self) -> Vec<u8> {
        borsh::to_vec(&self.0).unwrap_or_default()
    }

    /// Reads a proof from bytes made by [`StateProof::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<StateProof, ProofError> {
        borsh::from_slice(bytes).map(StateProof).map_err(|e| ProofError(e.to_string()))
    }
}
