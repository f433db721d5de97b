//! [`DiskStore`]: the durable half of the versioned state, on rocksdb or a [`MemoryDisk`].

use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock};

use altan_primitives::Hash;
use altan_runtime::state::{
    KeyHash, PruneStats, StateCommit, StateStore, StoreError, Version, check_next_version,
};
use tracing::{debug, info};

use crate::codec::{
    KEY_HASH_LEN, STALE_VALUE_KEY_LEN, VALUE_KEY_LEN, VERSION_LEN, decode_root,
    decode_stale_value_key, decode_value, decode_value_key, decode_version, encode_value_into,
    encode_version, stale_value_key, value_key, value_key_version,
};
use crate::kv::{Batch, Cf, Family, Kv, MemoryDisk, OpenKv, Scan};

/// Values by key hash and the version that wrote them: `key hash ‖ version (BE)` → tag ‖ value.
pub const VALUES_CF: &str = "state_values";
/// The root of each kept version: `version (BE)` → 32 bytes.
pub const ROOTS_CF: &str = "state_roots";
/// Values that later versions replaced: `superseded at (BE) ‖ key hash ‖ old version (BE)`.
pub const STALE_VALUES_CF: &str = "state_stale_values";
/// The format, latest and oldest versions.
pub const META_CF: &str = "state_meta";
/// Every column family the state uses. Other column families in the same database (the node's
/// blocks and receipts) are the caller's.
pub const STATE_COLUMN_FAMILIES: [&str; 4] = [VALUES_CF, ROOTS_CF, STALE_VALUES_CF, META_CF];

const META_FORMAT: &[u8] = b"format";
const META_LATEST: &[u8] = b"latest";
const META_OLDEST: &[u8] = b"oldest";
/// The layout version written at creation; a database with another one is refused. Format 1
/// stored the nodes of a Jellyfish Merkle tree; format 2 stores values and roots only.
pub const FORMAT_VERSION: u64 = 2;

/// How many stale entries a prune looks up in one multi-get.
const PRUNE_LOOKUP_CHUNK: usize = 4_096;
const TARGET: &str = "altan::storage";

/// How to open a [`DiskStore`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Create the database (and its column families) if missing. When `false`, opening a path
    /// without a database is an error.
    pub create_if_missing: bool,
    /// Bytes of block cache shared by every column family.
    pub cache_bytes: usize,
    /// Whether each commit waits for the write-ahead log to reach the disk (fsync). With
    /// `false` a commit survives a crash of the process but not of the machine. Default `true`.
    pub sync_writes: bool,
    /// Column families to create beside the state's, for data the caller writes in the same
    /// batch as a commit ([`DiskStore::commit_with`]). Families already in the database are
    /// opened whether listed or not.
    pub extra_column_families: Vec<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            create_if_missing: true,
            cache_bytes: 256 << 20,
            sync_writes: true,
            extra_column_families: Vec::new(),
        }
    }
}

/// Entries of a column family: (key, value).
pub type RawEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// A stale index entry's key, and the `state_values` key of the value it names.
type StaleEntry = ([u8; STALE_VALUE_KEY_LEN], [u8; VALUE_KEY_LEN]);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Meta {
    latest: Option<Version>,
    oldest: Option<Version>,
}

/// The durable half of the versioned state: values by key hash and version, each version's
/// root, and the index of superseded values that pruning walks, on rocksdb ([`DiskStore::open`])
/// or on a simulated [`MemoryDisk`] ([`DiskStore::open_memory`]) with the same layout and code.
/// Every commit and prune is one synced batch, so after a crash the database holds either all
/// of a version or none of it. The Merkle tree is not stored: `State::open` rebuilds it from
/// [`StateStore::scan`] and checks it against the stored root.
///
/// The latest and oldest versions are cached in memory; commits and prunes are serialized by a
/// writer lock. Reads need no lock: the database gives each read a consistent view.
pub struct DiskStore {
    kv: Kv,
    values: Cf,
    roots: Cf,
    stale_values: Cf,
    meta_cf: Cf,
    meta: RwLock<Meta>,
    writer: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data is `()`: a panic while holding the lock leaves nothing half-written.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The value of `key_hash` as of `max_version`: its newest entry at or below that version, or
/// `None` if that entry is a deletion or there is none.
fn value_at(
    kv: &Kv,
    values: Cf,
    key_hash: &KeyHash,
    max_version: Version,
) -> Result<Option<Vec<u8>>, StoreError> {
    kv.seek_for_prev(values, &value_key(key_hash, max_version), |found| match found {
        Some((key, value)) => match value_key_version(key, key_hash)? {
            Some(version) if version <= max_version => Ok(decode_value(value)?.map(<[u8]>::to_vec)),
            Some(version) => Err(StoreError::Corrupt(format!(
                "seek below version {max_version} found version {version}"
            ))),
            None => Ok(None),
        },
        None => Ok(None),
    })
}

/// The families to open: the state's (values read by key-hash prefix) and the caller's.
fn families(options: &StoreOptions) -> Result<Vec<Family>, StoreError> {
    for extra in &options.extra_column_families {
        if STATE_COLUMN_FAMILIES.contains(&extra.as_str()) {
            return Err(StoreError::Backend(format!(
                "column family {extra:?} is reserved for the state"
            )));
        }
    }
    let state = STATE_COLUMN_FAMILIES.iter().map(|name| Family {
        name: (*name).to_owned(),
        seek_prefix: (*name == VALUES_CF).then_some(KEY_HASH_LEN),
    });
    let extra = options
        .extra_column_families
        .iter()
        .map(|name| Family { name: name.clone(), seek_prefix: None });
    Ok(state.chain(extra).collect())
}

impl DiskStore {
    /// Opens (or creates) the state database at `path` on rocksdb. Opening the same path again
    /// after the store is dropped gives back the same versions, roots and values.
    pub fn open(path: impl AsRef<Path>, options: &StoreOptions) -> Result<DiskStore, StoreError> {
        let families = families(options)?;
        let kv = Kv::open_rocks(path.as_ref(), &Self::open_kv(&families, options))?;
        DiskStore::on(kv)
    }

    /// Opens (or creates) the state database on a simulated disk, which keeps what rocksdb
    /// promises across crashes and power losses and nothing more (see [`MemoryDisk`]).
    pub fn open_memory(disk: &MemoryDisk, options: &StoreOptions) -> Result<DiskStore, StoreError> {
        let families = families(options)?;
        DiskStore::on(Kv::open_memory(disk, &Self::open_kv(&families, options))?)
    }

    fn open_kv<'a>(families: &'a [Family], options: &StoreOptions) -> OpenKv<'a> {
        OpenKv {
            families,
            create_if_missing: options.create_if_missing,
            sync_writes: options.sync_writes,
            cache_bytes: options.cache_bytes,
        }
    }

    fn on(kv: Kv) -> Result<DiskStore, StoreError> {
        let store = DiskStore {
            values: kv.cf(VALUES_CF)?,
            roots: kv.cf(ROOTS_CF)?,
            stale_values: kv.cf(STALE_VALUES_CF)?,
            meta_cf: kv.cf(META_CF)?,
            kv,
            meta: RwLock::new(Meta::default()),
            writer: Mutex::new(()),
        };
        let meta = store.load_meta()?;
        store.set_meta(meta);
        info!(
            target: TARGET,
            at = %store.kv.describe(),
            latest = ?meta.latest,
            oldest = ?meta.oldest,
            "opened state database"
        );
        Ok(store)
    }

    /// Reads and checks the versions, and writes the format marker of a new database.
    fn load_meta(&self) -> Result<Meta, StoreError> {
        let read = |key: &[u8]| -> Result<Option<Version>, StoreError> {
            let bytes = self.kv.get(self.meta_cf, key)?;
            bytes.map(|bytes| decode_version(&bytes, "meta entry")).transpose()
        };
        let meta = Meta { latest: read(META_LATEST)?, oldest: read(META_OLDEST)? };
        match read(META_FORMAT)? {
            Some(FORMAT_VERSION) => {}
            Some(found) => {
                return Err(StoreError::Corrupt(format!(
                    "state format {found}, this build reads format {FORMAT_VERSION}"
                )));
            }
            None if meta == Meta::default() => {
                let mut batch = Batch::default();
                batch.put(self.meta_cf, META_FORMAT, encode_version(FORMAT_VERSION));
                self.kv.write(&batch)?;
            }
            None => return Err(StoreError::Corrupt("versions without a format marker".into())),
        }
        match (meta.oldest, meta.latest) {
            (None, None) => {}
            (Some(oldest), Some(latest)) if oldest <= latest => {
                // Every kept version has a root; the two ends are checked here, the rest as
                // they are read.
                for version in [oldest, latest] {
                    if self.root(version)?.is_none() {
                        return Err(StoreError::Corrupt(format!(
                            "the root of kept version {version} is missing"
                        )));
                    }
                }
            }
            (oldest, latest) => {
                return Err(StoreError::Corrupt(format!(
                    "inconsistent versions: oldest {oldest:?}, latest {latest:?}"
                )));
            }
        }
        Ok(meta)
    }

    /// The directory of a database on rocksdb; `None` on a memory disk.
    pub fn path(&self) -> Option<&Path> {
        self.kv.path()
    }

    /// The database under the store, for this crate's [`crate::ChainStore`], whose column
    /// families are named in [`StoreOptions::extra_column_families`]. The state's column
    /// families must only be written through [`StateStore::commit`], `commit_with` and
    /// [`StateStore::prune`].
    pub(crate) fn kv(&self) -> &Kv {
        &self.kv
    }

    fn meta(&self) -> Meta {
        *self.meta.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_meta(&self, meta: Meta) {
        *self.meta.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = meta;
    }

    /// Flushes every memtable to files. Not needed for durability (the write-ahead log gives
    /// that); it shortens recovery at the next open.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.kv.flush(&[self.values, self.roots, self.stale_values, self.meta_cf])
    }

    /// Writes a commit and whatever `extra` adds in one synced batch: [`crate::ChainStore`]
    /// writes its blocks, receipts and indexes this way, so that they and the state they lead
    /// to are on disk together or not at all. `extra` runs only once the version order has
    /// been checked.
    ///
    /// The batch holds each write under `key hash ‖ version`, a stale-index entry for each value
    /// a write replaces and for each tombstone (the tree tells which: nothing is read), the
    /// version's root, and the latest version.
    pub(crate) fn commit_with(
        &self,
        commit: &StateCommit,
        extra: impl FnOnce(&mut Batch),
    ) -> Result<(), StoreError> {
        let _writer = lock(&self.writer);
        let mut meta = self.meta();
        let version = commit.version();
        check_next_version(meta.latest, version)?;
        // `State::prepare` makes the writes strictly increasing by key hash, and its root
        // describes exactly those. Writes in another order or with a repeated key were edited
        // after the root was computed (and a repeated key would leave which of its values is
        // stored to the order of the batch).
        if !commit.writes().is_sorted_by(|a, b| a.0 < b.0) {
            return Err(StoreError::Backend(format!(
                "the writes of version {version} are not in strictly increasing key-hash order"
            )));
        }

        let capacity = commit.writes().iter().fold(0_usize, |bytes, (_, value)| {
            let value_len = value.as_ref().map_or(0, Vec::len);
            bytes.saturating_add(VALUE_KEY_LEN + 1).saturating_add(value_len)
        });
        let mut batch = Batch::with_capacity(capacity);
        let mut encoded = Vec::new();
        let mut superseded = 0_usize;
        for write in commit.stored_writes() {
            for stale in write.stale() {
                batch.put(self.stale_values, stale_value_key(version, write.key, stale), []);
            }
            superseded = superseded.saturating_add(usize::from(write.replaced.is_some()));
            encode_value_into(write.value, &mut encoded);
            batch.put(self.values, value_key(write.key, version), &encoded);
        }

        batch.put(self.roots, encode_version(version), commit.root().0);
        meta.latest = Some(version);
        batch.put(self.meta_cf, META_LATEST, encode_version(version));
        if meta.oldest.is_none() {
            meta.oldest = Some(version);
            batch.put(self.meta_cf, META_OLDEST, encode_version(version));
        }
        extra(&mut batch);
        self.kv.write(&batch)?;
        self.set_meta(meta);
        debug!(target: TARGET, version, writes = commit.writes().len(), superseded,
            "committed state version");
        Ok(())
    }

    /// Counts the stored value entries, deletions included (a full scan: for tests and
    /// diagnostics).
    pub fn value_count(&self) -> Result<u64, StoreError> {
        self.count(self.values)
    }

    /// Counts the stored roots (a full scan: for tests and diagnostics).
    pub fn root_count(&self) -> Result<u64, StoreError> {
        self.count(self.roots)
    }

    /// Counts the entries of the stale-value index (a full scan: for tests and diagnostics).
    pub fn stale_value_count(&self) -> Result<u64, StoreError> {
        self.count(self.stale_values)
    }

    fn count(&self, cf: Cf) -> Result<u64, StoreError> {
        let mut count = 0_u64;
        self.kv.scan(cf, &[], Scan::Bulk, &mut |_, _| {
            count = count.saturating_add(1);
            Ok(true)
        })?;
        Ok(count)
    }

    /// Every entry of the column family `name`, in key order (tests that corrupt the store on
    /// purpose, and diagnostics).
    #[doc(hidden)]
    pub fn raw_entries(&self, name: &str) -> Result<RawEntries, StoreError> {
        let mut entries = Vec::new();
        self.kv.scan(self.kv.cf(name)?, &[], Scan::Bulk, &mut |key, value| {
            entries.push((key.to_vec(), value.to_vec()));
            Ok(true)
        })?;
        Ok(entries)
    }

    /// The raw value of `key` in the column family `name` (tests).
    #[doc(hidden)]
    pub fn raw_get(&self, name: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(self.kv.cf(name)?, key)
    }

    /// Sets (`Some`) or deletes (`None`) `key` in the column family `name`, bypassing every
    /// check: for tests that corrupt the store on purpose.
    #[doc(hidden)]
    pub fn raw_write(
        &self,
        name: &str,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let cf = self.kv.cf(name)?;
        let mut batch = Batch::default();
        match value {
            Some(value) => batch.put(cf, key, value),
            None => batch.delete(cf, key),
        }
        self.kv.write(&batch)
    }

    /// The stale-index entries superseded at or before `keep_from`, with the value keys they
    /// name. Gathered before anything is deleted, so a malformed entry fails the prune whole.
    fn stale_entries(&self, keep_from: Version) -> Result<Vec<StaleEntry>, StoreError> {
        let mut entries = Vec::new();
        self.kv.scan(self.stale_values, &[], Scan::Bulk, &mut |key, _| {
            let (since, named) = decode_stale_value_key(key)?;
            if since > keep_from {
                return Ok(false);
            }
            let mut index_key = [0; STALE_VALUE_KEY_LEN];
            index_key.copy_from_slice(key);
            entries.push((index_key, named));
            Ok(true)
        })?;
        Ok(entries)
    }

    /// Adds to `batch` the deletion of each stale entry and of the value it names, counting
    /// the named values that exist.
    fn delete_stale(&self, batch: &mut Batch, entries: &[StaleEntry]) -> Result<u64, StoreError> {
        let mut deleted = 0_u64;
        for chunk in entries.chunks(PRUNE_LOOKUP_CHUNK) {
            let named: Vec<&[u8]> = chunk.iter().map(|(_, named)| named.as_slice()).collect();
            let found = self.kv.contains_many(self.values, &named)?;
            for ((key, named), found) in chunk.iter().zip(found) {
                deleted = deleted.saturating_add(u64::from(found));
                batch.delete(self.values, named);
                batch.delete(self.stale_values, key);
            }
        }
        Ok(deleted)
    }

    /// Adds to `batch` the deletion of every root below `keep_from`, and counts them.
    fn delete_roots(&self, batch: &mut Batch, keep_from: Version) -> Result<u64, StoreError> {
        let mut deleted = 0_u64;
        self.kv.scan(self.roots, &[], Scan::Short, &mut |key, _| {
            if decode_version(key, "root key")? >= keep_from {
                return Ok(false);
            }
            batch.delete(self.roots, key);
            deleted = deleted.saturating_add(1);
            Ok(true)
        })?;
        Ok(deleted)
    }
}

/// A key's newest entry at or below the scanned version, seen so far in a scan.
enum Pending {
    /// No entry at or below the version yet.
    Nothing,
    /// A deletion.
    Deleted,
    /// A value written at this version, held in the scan's buffer.
    Value(Version),
}

impl StateStore for DiskStore {
    fn latest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.meta().latest)
    }

    fn oldest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.meta().oldest)
    }

    fn root(&self, version: Version) -> Result<Option<Hash>, StoreError> {
        let bytes = self.kv.get(self.roots, &encode_version(version))?;
        bytes.map(|bytes| decode_root(&bytes, version)).transpose()
    }

    fn get(&self, key: &KeyHash, version: Version) -> Result<Option<Vec<u8>>, StoreError> {
        value_at(&self.kv, self.values, key, version)
    }

    /// One forward pass over the values in key-hash order. Each key's entries come oldest
    /// first, so the newest one at or below `version` is the last such entry before the key
    /// changes; it is copied into one reused buffer until then.
    fn scan(
        &self,
        version: Version,
        visit: &mut dyn FnMut(&KeyHash, Version, &[u8]),
    ) -> Result<(), StoreError> {
        let mut current: Option<KeyHash> = None;
        let mut pending = Pending::Nothing;
        let mut buffer = Vec::new();
        self.kv.scan(self.values, &[], Scan::Bulk, &mut |key, value| {
            let (key_hash, written) = decode_value_key(key)?;
            if current != Some(key_hash) {
                if let (Some(previous), Pending::Value(at)) = (&current, &pending) {
                    visit(previous, *at, &buffer);
                }
                current = Some(key_hash);
                pending = Pending::Nothing;
            }
            if written <= version {
                pending = match decode_value(value)? {
                    Some(value) => {
                        buffer.clear();
                        buffer.extend_from_slice(value);
                        Pending::Value(written)
                    }
                    None => Pending::Deleted,
                };
            }
            Ok(true)
        })?;
        if let (Some(last), Pending::Value(at)) = (&current, &pending) {
            visit(last, *at, &buffer);
        }
        Ok(())
    }

    fn commit(&self, commit: &StateCommit) -> Result<(), StoreError> {
        self.commit_with(commit, |_| {})
    }

    /// Deletes, in one synced batch, every value superseded at or before `keep_from` and every
    /// root below it, exactly as `MemoryStore` does. The entries to delete are gathered in
    /// memory first, so pruning many versions at once costs memory in proportion.
    fn prune(&self, keep_from: Version) -> Result<PruneStats, StoreError> {
        let _writer = lock(&self.writer);
        let mut meta = self.meta();
        let Some(latest) = meta.latest else { return Ok(PruneStats::default()) };
        let keep_from = keep_from.min(latest);

        let stale = self.stale_entries(keep_from)?;
        let mut batch = Batch::default();
        let stats = PruneStats {
            values: self.delete_stale(&mut batch, &stale)?,
            roots: self.delete_roots(&mut batch, keep_from)?,
        };
        let oldest = meta.oldest.map_or(keep_from, |oldest| oldest.max(keep_from));
        batch.put(self.meta_cf, META_OLDEST, encode_version(oldest));
        self.kv.write(&batch)?;
        meta.oldest = Some(oldest);
        self.set_meta(meta);
        debug!(target: TARGET, keep_from, values = stats.values, roots = stats.roots,
            "pruned state");
        Ok(stats)
    }
}

// The layout's constants agree with each other.
const _: () = assert!(VALUE_KEY_LEN == KEY_HASH_LEN + VERSION_LEN);

#[cfg(test)]
mod tests;
