//! Everything Altan keeps on disk: the versioned state's values and roots on rocksdb
//! ([`DiskStore`]), the chain beside them in the same database ([`ChainStore`]: blocks,
//! receipts, certificates, indexes and the consensus write-ahead log) and the compiled-module
//! cache as checked files ([`DiskArtifactStore`]). rocksdb is linked by this crate alone; no
//! other crate sees its types or handles.
//!
//! The same stores open on a [`MemoryDisk`] instead of a directory: ordered maps that keep
//! rocksdb's crash promise (an atomic batch; a synced write survives with all before it; of
//! the unsynced writes a power loss keeps a prefix) and nothing more. The simulation runs the
//! node's real storage code on it and pulls the plug. Both sit under one small key-value
//! interface (the `kv` module), so the layouts, batches and recovery are written once.
//!
//! # Why a separate crate
//!
//! `altan-runtime` defines what it needs from storage as traits ([`StateStore`] and
//! [`ArtifactStore`]) and implements them in memory. It never links rocksdb: the state machine
//! stays free of I/O, its tests stay fast and deterministic, and rocksdb's long C++ build is paid
//! only by the crates that run a node. This crate is the other side of that line, used by the
//! node alone.
//!
//! # The state on rocksdb
//!
//! The Merkle tree lives in memory, in the runtime's `State` (ADR 0002); the store keeps what
//! must survive a restart. Each part has its own column family (layout in the `codec` module):
//! values by key hash and version (a deletion as a tombstone), each version's root, the index of
//! superseded values that pruning walks, and the format, latest and oldest versions. A commit
//! reads nothing: the tree tells it which stored value each write replaces
//! (`StateCommit::stored_writes`). It is one synced write batch holding all of a version, so a
//! crash leaves every version either complete or absent; [`ChainStore`] puts a block, its
//! receipts and indexes in the same batch. A read at a version is one backwards
//! seek, which the prefix bloom filter on the values keeps cheap; `State::open` rebuilds the tree
//! from one forward scan of the values and checks it against the stored root.
//!
//! Bytes read from disk are never trusted to be well formed: anything that does not decode is a
//! [`StoreError::Corrupt`], not a panic, and values that decode but were changed are caught by
//! the root check when the tree is rebuilt.
//!
//! [`StateStore`]: altan_runtime::state::StateStore
//! [`ArtifactStore`]: altan_runtime::vm::ArtifactStore
//! [`StoreError::Corrupt`]: altan_runtime::state::StoreError::Corrupt

mod artifact;
mod chain;
mod codec;
mod kv;
mod store;

pub use artifact::{DiskArtifactStore, MAX_ARTIFACT_BYTES};
pub use chain::{BlockCommit, BlockRef, ChainLocation, ChainStore, ChainStoreError, EventLocation};
pub use kv::MemoryDisk;
pub use store::{
    DiskStore, FORMAT_VERSION, META_CF, ROOTS_CF, STALE_VALUES_CF, STATE_COLUMN_FAMILIES,
    StoreOptions, VALUES_CF,
};
