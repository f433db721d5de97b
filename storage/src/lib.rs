//! The disk side of Altan's storage traits: the versioned Merkle state on rocksdb
//! ([`RocksStore`]) and the compiled-module cache as checked files ([`DiskArtifactStore`]).
//!
//! # Why a separate crate
//!
//! `altan-runtime` defines what it needs from storage as traits ([`StateStore`], which is jmt's
//! `TreeReader` plus commit and prune, and [`ArtifactStore`]) and implements them in memory. It
//! never links rocksdb: the state machine stays free of I/O, its tests stay fast and
//! deterministic, and rocksdb's long C++ build is paid only by the crates that run a node. This
//! crate is the other side of that line, used by the node alone.
//!
//! # The state on rocksdb
//!
//! Each part of the tree has its own column family (layout in the `codec` module): tree nodes,
//! values by key hash and version, the two stale indexes that pruning walks, and the latest and
//! oldest versions. A commit is one synced `WriteBatch` holding all of a version, so a crash
//! leaves every version either complete or absent; [`RocksStore::commit_with`] lets the node
//! put its blocks and receipts in the same batch. Reads at a version are a point lookup per node
//! and a backwards seek per value, which the prefix bloom filter on the values keeps cheap.
//!
//! Bytes read from disk are never trusted to be well formed: anything that does not decode, or
//! breaks an invariant that jmt would assert, is a [`StoreError::Corrupt`], not a panic.
//!
//! [`StateStore`]: altan_runtime::state::StateStore
//! [`ArtifactStore`]: altan_runtime::vm::ArtifactStore
//! [`StoreError::Corrupt`]: altan_runtime::state::StoreError::Corrupt

mod artifact;
mod codec;
mod rocks;

pub use artifact::{DiskArtifactStore, MAX_ARTIFACT_BYTES};
pub use rocks::{
    FORMAT_VERSION, META_CF, NODES_CF, RocksStore, STALE_NODES_CF, STALE_VALUES_CF,
    STATE_COLUMN_FAMILIES, StoreOptions, VALUES_CF,
};
/// rocksdb, re-exported so that callers of [`RocksStore::commit_with`] and
/// [`RocksStore::db`] use the same version.
pub use rocksdb;
