//! The key-value database under the stores: column families of ordered keys, atomic write
//! batches, point reads and forward scans. Two kinds, one interface:
//!
//! - [`Kv::Rocks`]: rocksdb in a directory, what a node runs on;
//! - [`Kv::Memory`]: a [`MemoryDisk`], ordered maps that keep rocksdb's crash promise and
//!   nothing more, so that a simulation can run the chain's real storage code (its layouts,
//!   its batches, its recovery at open) and pull the plug on it (see [`memory`]).
//!
//! The stores above ([`crate::DiskStore`], [`crate::ChainStore`]) are written once against
//! this module. A write batch is a neutral list of operations ([`Batch`]) that either kind
//! applies atomically, and a column family is an index into the database's list of families
//! ([`Cf`]), so nothing of one kind can be handed to the other.

pub mod memory;
mod rocks;

use std::path::Path;

use altan_runtime::state::StoreError;

pub use memory::MemoryDisk;

/// What a scan calls with each entry (key, value); it returns whether to go on.
pub(crate) type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool, StoreError> + 'a;

/// A column family of an open database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cf(u8);

/// How a forward scan reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// A short read: uses and fills the block cache.
    Short,
    /// A pass over much of a family (rebuilding the tree, pruning): reads ahead and leaves the
    /// block cache to the working set.
    Bulk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Put,
    Delete,
    /// Deletes the keys in `key..value`.
    DeleteRange,
}

#[derive(Debug, Clone, Copy)]
struct Op {
    kind: OpKind,
    cf: Cf,
    key: (usize, usize),
    value: (usize, usize),
}

/// Writes applied together or not at all: their bytes in one buffer, their operations in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Batch {
    ops: Vec<Op>,
    bytes: Vec<u8>,
}

impl Batch {
    /// A batch with room for about `bytes` bytes of keys and values.
    pub(crate) fn with_capacity(bytes: usize) -> Batch {
        Batch { ops: Vec::new(), bytes: Vec::with_capacity(bytes) }
    }

    fn push(&mut self, kind: OpKind, cf: Cf, key: &[u8], value: &[u8]) {
        let key_start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let value_start = self.bytes.len();
        self.bytes.extend_from_slice(value);
        let end = self.bytes.len();
        self.ops.push(Op { kind, cf, key: (key_start, value_start), value: (value_start, end) });
    }

    /// Sets `key` to `value`.
    pub(crate) fn put(&mut self, cf: Cf, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.push(OpKind::Put, cf, key.as_ref(), value.as_ref());
    }

    /// Removes `key`.
    pub(crate) fn delete(&mut self, cf: Cf, key: impl AsRef<[u8]>) {
        self.push(OpKind::Delete, cf, key.as_ref(), &[]);
    }

    /// Removes every key in `from..to`.
    pub(crate) fn delete_range(&mut self, cf: Cf, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) {
        self.push(OpKind::DeleteRange, cf, from.as_ref(), to.as_ref());
    }

    /// The operations in order: kind, family, key, value (the range's end for a range).
    fn iter(&self) -> impl Iterator<Item = (OpKind, Cf, &[u8], &[u8])> + '_ {
        self.ops.iter().map(|op| {
            let slice = |(start, end): (usize, usize)| self.bytes.get(start..end).unwrap_or(&[]);
            (op.kind, op.cf, slice(op.key), slice(op.value))
        })
    }
}

/// A column family to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Family {
    /// Its name.
    pub name: String,
    /// For a family read by backwards seeks within a fixed-length key prefix (the state's
    /// values by key hash): the prefix's length, which rocksdb's filters are built on.
    pub seek_prefix: Option<usize>,
}

/// What to open and how.
pub(crate) struct OpenKv<'a> {
    /// Column families to have (created if missing, when `create_if_missing`). Families already
    /// in the database are opened whether listed or not.
    pub families: &'a [Family],
    /// Create the database if it does not exist.
    pub create_if_missing: bool,
    /// Whether each write is durable when it returns.
    pub sync_writes: bool,
    /// Bytes of block cache (rocksdb).
    pub cache_bytes: usize,
}

/// An open database of either kind.
pub(crate) enum Kv {
    /// rocksdb in a directory.
    Rocks(rocks::RocksKv),
    /// Memory with rocksdb's crash promise.
    Memory(memory::MemoryKv),
}

impl Kv {
    /// Opens the rocksdb database at `path`.
    pub(crate) fn open_rocks(path: &Path, open: &OpenKv<'_>) -> Result<Kv, StoreError> {
        rocks::RocksKv::open(path, open).map(Kv::Rocks)
    }

    /// Opens the database on `disk`.
    pub(crate) fn open_memory(disk: &MemoryDisk, open: &OpenKv<'_>) -> Result<Kv, StoreError> {
        memory::MemoryKv::open(disk, open).map(Kv::Memory)
    }

    /// A column family by name.
    pub(crate) fn cf(&self, name: &str) -> Result<Cf, StoreError> {
        let names = match self {
            Kv::Rocks(kv) => kv.names(),
            Kv::Memory(kv) => kv.names(),
        };
        names
            .iter()
            .position(|known| known == name)
            .and_then(|index| u8::try_from(index).ok())
            .map(Cf)
            .ok_or_else(|| StoreError::Backend(format!("no column family {name:?}")))
    }

    /// The value of `key`.
    pub(crate) fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Kv::Rocks(kv) => kv.get(cf, key),
            Kv::Memory(kv) => kv.get(cf, key),
        }
    }

    /// Whether each of `keys` is present.
    pub(crate) fn contains_many(&self, cf: Cf, keys: &[&[u8]]) -> Result<Vec<bool>, StoreError> {
        match self {
            Kv::Rocks(kv) => kv.contains_many(cf, keys),
            Kv::Memory(kv) => kv.contains_many(cf, keys),
        }
    }

    /// The last entry at or before `key`, which `read` gets as (key, value). In a family with a
    /// prefix extractor an entry of another prefix may or may not be found: `read` checks.
    pub(crate) fn seek_for_prev<T>(
        &self,
        cf: Cf,
        key: &[u8],
        read: impl FnOnce(Option<(&[u8], &[u8])>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self {
            Kv::Rocks(kv) => kv.seek_for_prev(cf, key, read),
            Kv::Memory(kv) => kv.seek_for_prev(cf, key, read),
        }
    }

    /// Visits the entries from `from` on in key order, while `visit` returns `true`. The memory
    /// kind holds its lock while visiting: `visit` must not touch the database.
    pub(crate) fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        kind: Scan,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        match self {
            Kv::Rocks(kv) => kv.scan(cf, from, kind, visit),
            Kv::Memory(kv) => kv.scan(cf, from, visit),
        }
    }

    /// Applies `batch` atomically; durable when it returns if the database syncs its writes.
    pub(crate) fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        match self {
            Kv::Rocks(kv) => kv.write(batch),
            Kv::Memory(kv) => kv.write(batch),
        }
    }

    /// Flushes memtables to files (rocksdb; nothing in memory).
    pub(crate) fn flush(&self, families: &[Cf]) -> Result<(), StoreError> {
        match self {
            Kv::Rocks(kv) => kv.flush(families),
            Kv::Memory(_) => Ok(()),
        }
    }

    /// Where the database lives, for messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Kv::Rocks(kv) => kv.path().display().to_string(),
            Kv::Memory(_) => "a memory disk".to_owned(),
        }
    }

    /// The directory of a rocksdb database.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Kv::Rocks(kv) => Some(kv.path()),
            Kv::Memory(_) => None,
        }
    }
}
