//! [`RocksStore`]: the durable half of the versioned state on rocksdb.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use altan_primitives::Hash;
use altan_runtime::state::{
    KeyHash, PruneStats, StateCommit, StateStore, StoreError, Version, check_next_version,
};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    DBRawIterator, Options, ReadOptions, SliceTransform, WriteBatch, WriteOptions,
};
use tracing::{debug, info};

use crate::codec::{
    KEY_HASH_LEN, STALE_VALUE_KEY_LEN, VALUE_KEY_LEN, VERSION_LEN, decode_root,
    decode_stale_value_key, decode_value, decode_value_key, decode_version, encode_value_into,
    encode_version, stale_value_key, value_key, value_key_version,
};

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
/// Bits per key of the bloom filters.
const BLOOM_BITS_PER_KEY: f64 = 10.0;
/// Memtable size of the values column family.
const VALUES_WRITE_BUFFER_BYTES: usize = 16 << 20;
/// Read-ahead of the full scan that rebuilds the tree.
const SCAN_READAHEAD_BYTES: usize = 4 << 20;
/// Bytes a batch entry costs beside its key and value (tag, column family, lengths).
const BATCH_ENTRY_OVERHEAD: usize = 8;

const TARGET: &str = "altan::storage";

/// How to open a [`RocksStore`].
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
    /// batch as a commit ([`RocksStore::commit_with`]). Families already in the database are
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

/// A stale index entry's key, and the `state_values` key of the value it names.
type StaleEntry = ([u8; STALE_VALUE_KEY_LEN], [u8; VALUE_KEY_LEN]);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Meta {
    latest: Option<Version>,
    oldest: Option<Version>,
}

/// The durable half of the versioned state on rocksdb: values by key hash and version, each
/// version's root, and the index of superseded values that pruning walks. Every commit and prune
/// is one synced `WriteBatch`, so after a crash the database holds either all of a version or
/// none of it. The Merkle tree is not stored: `State::open` rebuilds it from
/// [`StateStore::scan`] and checks it against the stored root.
///
/// The latest and oldest versions are cached in memory; commits and prunes are serialized by a
/// writer lock. Reads need no lock: rocksdb gives each read a consistent view.
pub struct RocksStore {
    db: DB,
    path: PathBuf,
    write_options: WriteOptions,
    meta: RwLock<Meta>,
    writer: Mutex<()>,
}

fn backend(context: &str) -> impl FnOnce(rocksdb::Error) -> StoreError + '_ {
    move |error| StoreError::Backend(format!("rocksdb: {context}: {error}"))
}

fn base_options(cache: &Cache) -> (Options, BlockBasedOptions) {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    let mut options = Options::default();
    options.set_compression_type(DBCompressionType::Lz4);
    options.set_level_compaction_dynamic_level_bytes(true);
    (options, table)
}

fn cf_options(name: &str, cache: &Cache) -> Options {
    let (mut options, mut table) = base_options(cache);
    if name == VALUES_CF {
        // Every read of a value is a backwards seek within one key hash: a prefix bloom filter
        // on the key hash lets that seek skip the memtable and every file that does not hold the
        // key at all, which is what makes reads of absent keys cheap.
        options.set_prefix_extractor(SliceTransform::create_fixed_prefix(KEY_HASH_LEN));
        // Memtables of 16 MiB, not rocksdb's 64: a block's commit inserts its values into the
        // memtable's skiplist, and inserts into a smaller one miss the cache less. The commit of
        // 10,000 keys took 15-25 ms with 64 MiB and 9-15 ms with 16 MiB (8 MiB: no better);
        // gets of absent keys went from 1.1 to 2.2 us on a 400,000-key state, as more of it
        // sits in files than in the memtable (BENCHMARKS.md).
        options.set_write_buffer_size(VALUES_WRITE_BUFFER_BYTES);
        // The memtable's filter takes 1% of the write buffer: about 1.3 Mbit for some 100,000
        // entries, 12 bits each. At 10% of a 64 MiB buffer a get of an absent key was no faster
        // (0.6 us either way, 2.7 us without a filter), but every insert missed the cache: the
        // commit of 10,000 keys took 1.5-2 ms longer (BENCHMARKS.md).
        options.set_memtable_prefix_bloom_ratio(0.01);
        table.set_whole_key_filtering(false);
    }
    options.set_block_based_table_factory(&table);
    options
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data is `()`: a panic while holding the lock leaves nothing half-written.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The value of `key_hash` as of `max_version`: its newest entry at or below that version, or
/// `None` if that entry is a deletion or there is none. `iterator` must read the values column
/// family with `prefix_same_as_start`.
fn value_at(
    iterator: &mut DBRawIterator<'_>,
    key_hash: &KeyHash,
    max_version: Version,
) -> Result<Option<Vec<u8>>, StoreError> {
    iterator.seek_for_prev(value_key(key_hash, max_version));
    match iterator.item() {
        Some((key, value)) => match value_key_version(key, key_hash)? {
            Some(version) if version <= max_version => Ok(decode_value(value)?.map(<[u8]>::to_vec)),
            Some(version) => Err(StoreError::Corrupt(format!(
                "seek below version {max_version} found version {version}"
            ))),
            None => Ok(None),
        },
        None => {
            iterator.status().map_err(backend("seeking value"))?;
            Ok(None)
        }
    }
}

impl RocksStore {
    /// Opens (or creates) the state database at `path`. Opening the same path again after the
    /// store is dropped gives back the same versions, roots and values.
    pub fn open(path: impl AsRef<Path>, options: &StoreOptions) -> Result<RocksStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        for extra in &options.extra_column_families {
            if STATE_COLUMN_FAMILIES.contains(&extra.as_str()) {
                return Err(StoreError::Backend(format!(
                    "column family {extra:?} is reserved for the state"
                )));
            }
        }
        let cache = Cache::new_lru_cache(options.cache_bytes);
        let (mut db_options, _) = base_options(&cache);
        db_options.create_if_missing(options.create_if_missing);
        db_options.create_missing_column_families(options.create_if_missing);
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        db_options.increase_parallelism(i32::try_from(parallelism).unwrap_or(i32::MAX));

        // rocksdb refuses to open a database without naming all of its column families.
        let existing = DB::list_cf(&db_options, &path).unwrap_or_default();
        let mut names: BTreeSet<String> =
            STATE_COLUMN_FAMILIES.iter().map(|name| (*name).to_owned()).collect();
        names.extend(options.extra_column_families.iter().cloned());
        names.extend(existing);
        let descriptors = names
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, cf_options(name, &cache)))
            .collect::<Vec<_>>();
        let db = DB::open_cf_descriptors(&db_options, &path, descriptors)
            .map_err(backend(&format!("opening {}", path.display())))?;

        let mut write_options = WriteOptions::default();
        write_options.set_sync(options.sync_writes);
        let store = RocksStore {
            db,
            path,
            write_options,
            meta: RwLock::new(Meta::default()),
            writer: Mutex::new(()),
        };
        let meta = store.load_meta()?;
        store.set_meta(meta);
        info!(
            target: TARGET,
            path = %store.path.display(),
            latest = ?meta.latest,
            oldest = ?meta.oldest,
            "opened state database"
        );
        Ok(store)
    }

    /// The options every write uses (synced or not, as opened).
    pub(crate) fn write_options(&self) -> &WriteOptions {
        &self.write_options
    }

    /// Reads and checks the versions, and writes the format marker of a new database.
    fn load_meta(&self) -> Result<Meta, StoreError> {
        let cf = self.cf(META_CF)?;
        let read = |key: &[u8]| -> Result<Option<Version>, StoreError> {
            let bytes = self.db.get_pinned_cf(cf, key).map_err(backend("reading meta"))?;
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
                let mut batch = WriteBatch::default();
                batch.put_cf(cf, META_FORMAT, encode_version(FORMAT_VERSION));
                self.write(batch)?;
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

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw database: for this crate's [`crate::ChainStore`] (its column families are named in
    /// [`StoreOptions::extra_column_families`]) and this crate's tests, which corrupt it on
    /// purpose. No other crate touches rocksdb. The state's column families must only be written
    /// through [`StateStore::commit`], `commit_with` and [`StateStore::prune`].
    #[doc(hidden)]
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// A column family by name.
    pub fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Backend(format!("rocksdb: no column family {name:?}")))
    }

    fn meta(&self) -> Meta {
        *self.meta.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_meta(&self, meta: Meta) {
        *self.meta.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = meta;
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        self.db.write_opt(batch, &self.write_options).map_err(backend("writing batch"))
    }

    /// Flushes every memtable to files. Not needed for durability (the write-ahead log gives
    /// that); it shortens recovery at the next open.
    pub fn flush(&self) -> Result<(), StoreError> {
        for name in STATE_COLUMN_FAMILIES {
            self.db.flush_cf(self.cf(name)?).map_err(backend("flushing"))?;
        }
        Ok(())
    }

    /// An iterator over the values for backwards seeks within one key hash.
    fn value_iterator(&self) -> Result<DBRawIterator<'_>, StoreError> {
        let mut read_options = ReadOptions::default();
        read_options.set_prefix_same_as_start(true);
        Ok(self.db.raw_iterator_cf_opt(self.cf(VALUES_CF)?, read_options))
    }

    /// Writes a commit and whatever `extra` adds in one synced batch: [`crate::ChainStore`]
    /// writes its blocks, receipts and indexes this way, so that they and the state they lead to are on
    /// disk together or not at all. `extra` runs only once the version order has been checked.
    ///
    /// The batch holds each write under `key hash ‖ version`, a stale-index entry for each value
    /// a write replaces and for each tombstone (the tree tells which: nothing is read), the
    /// version's root, and the latest version.
    #[doc(hidden)]
    pub fn commit_with(
        &self,
        commit: &StateCommit,
        extra: impl FnOnce(&mut WriteBatch),
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

        let values_cf = self.cf(VALUES_CF)?;
        let stale_values_cf = self.cf(STALE_VALUES_CF)?;
        let capacity = commit.writes().iter().fold(0_usize, |bytes, (_, value)| {
            let value_len = value.as_ref().map_or(0, Vec::len);
            bytes.saturating_add(VALUE_KEY_LEN + 1 + BATCH_ENTRY_OVERHEAD).saturating_add(value_len)
        });
        let mut batch = WriteBatch::with_capacity_bytes(capacity);
        let mut encoded = Vec::new();
        let mut superseded = 0_usize;
        for write in commit.stored_writes() {
            for stale in write.stale() {
                batch.put_cf(stale_values_cf, stale_value_key(version, write.key, stale), []);
            }
            superseded = superseded.saturating_add(usize::from(write.replaced.is_some()));
            encode_value_into(write.value, &mut encoded);
            batch.put_cf(values_cf, value_key(write.key, version), &encoded);
        }

        batch.put_cf(self.cf(ROOTS_CF)?, encode_version(version), commit.root().0);
        let meta_cf = self.cf(META_CF)?;
        meta.latest = Some(version);
        batch.put_cf(meta_cf, META_LATEST, encode_version(version));
        if meta.oldest.is_none() {
            meta.oldest = Some(version);
            batch.put_cf(meta_cf, META_OLDEST, encode_version(version));
        }
        extra(&mut batch);
        self.write(batch)?;
        self.set_meta(meta);
        debug!(target: TARGET, version, writes = commit.writes().len(), superseded,
            "committed state version");
        Ok(())
    }

    /// Counts the stored value entries, deletions included (a full scan: for tests and
    /// diagnostics).
    pub fn value_count(&self) -> Result<u64, StoreError> {
        self.count(VALUES_CF)
    }

    /// Counts the stored roots (a full scan: for tests and diagnostics).
    pub fn root_count(&self) -> Result<u64, StoreError> {
        self.count(ROOTS_CF)
    }

    /// Counts the entries of the stale-value index (a full scan: for tests and diagnostics).
    pub fn stale_value_count(&self) -> Result<u64, StoreError> {
        self.count(STALE_VALUES_CF)
    }

    fn count(&self, name: &str) -> Result<u64, StoreError> {
        let mut read_options = ReadOptions::default();
        read_options.set_total_order_seek(true);
        let mut iterator = self.db.raw_iterator_cf_opt(self.cf(name)?, read_options);
        iterator.seek_to_first();
        let mut count = 0_u64;
        while iterator.valid() {
            count = count.saturating_add(1);
            iterator.next();
        }
        iterator.status().map_err(backend("counting"))?;
        Ok(count)
    }

    /// The stale-index entries superseded at or before `keep_from`, with the value keys they
    /// name. Gathered before anything is deleted, so a malformed entry fails the prune whole.
    fn stale_entries(&self, keep_from: Version) -> Result<Vec<StaleEntry>, StoreError> {
        let mut iterator = self.db.raw_iterator_cf(self.cf(STALE_VALUES_CF)?);
        iterator.seek_to_first();
        let mut entries = Vec::new();
        while let Some(key) = iterator.key() {
            let (since, named) = decode_stale_value_key(key)?;
            if since > keep_from {
                break;
            }
            let mut index_key = [0; STALE_VALUE_KEY_LEN];
            index_key.copy_from_slice(key);
            entries.push((index_key, named));
            iterator.next();
        }
        iterator.status().map_err(backend("scanning the stale index"))?;
        Ok(entries)
    }

    /// Adds to `batch` the deletion of each stale entry and of the value it names, counting
    /// the named values that exist.
    fn delete_stale(
        &self,
        batch: &mut WriteBatch,
        entries: &[StaleEntry],
    ) -> Result<u64, StoreError> {
        let index = self.cf(STALE_VALUES_CF)?;
        let values = self.cf(VALUES_CF)?;
        let mut deleted = 0_u64;
        for chunk in entries.chunks(PRUNE_LOOKUP_CHUNK) {
            let found =
                self.db.batched_multi_get_cf(values, chunk.iter().map(|(_, named)| named), false);
            for ((key, named), found) in chunk.iter().zip(found) {
                if found.map_err(backend("looking up a stale value"))?.is_some() {
                    deleted = deleted.saturating_add(1);
                }
                batch.delete_cf(values, named);
                batch.delete_cf(index, key);
            }
        }
        Ok(deleted)
    }

    /// Adds to `batch` the deletion of every root below `keep_from`, and counts them.
    fn delete_roots(&self, batch: &mut WriteBatch, keep_from: Version) -> Result<u64, StoreError> {
        let roots = self.cf(ROOTS_CF)?;
        let mut iterator = self.db.raw_iterator_cf(roots);
        iterator.seek_to_first();
        let mut deleted = 0_u64;
        while let Some(key) = iterator.key() {
            if decode_version(key, "root key")? >= keep_from {
                break;
            }
            batch.delete_cf(roots, key);
            deleted = deleted.saturating_add(1);
            iterator.next();
        }
        iterator.status().map_err(backend("scanning roots"))?;
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

impl StateStore for RocksStore {
    fn latest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.meta().latest)
    }

    fn oldest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.meta().oldest)
    }

    fn root(&self, version: Version) -> Result<Option<Hash>, StoreError> {
        let bytes = self
            .db
            .get_pinned_cf(self.cf(ROOTS_CF)?, encode_version(version))
            .map_err(backend("reading a root"))?;
        bytes.map(|bytes| decode_root(&bytes, version)).transpose()
    }

    fn get(&self, key: &KeyHash, version: Version) -> Result<Option<Vec<u8>>, StoreError> {
        value_at(&mut self.value_iterator()?, key, version)
    }

    /// One forward pass over the values in key-hash order. Each key's entries come oldest
    /// first, so the newest one at or below `version` is the last such entry before the key
    /// changes; it is copied into one reused buffer until then.
    fn scan(
        &self,
        version: Version,
        visit: &mut dyn FnMut(&KeyHash, Version, &[u8]),
    ) -> Result<(), StoreError> {
        let mut read_options = ReadOptions::default();
        read_options.set_total_order_seek(true);
        read_options.set_readahead_size(SCAN_READAHEAD_BYTES);
        // A full pass would push the working set out of the block cache.
        read_options.fill_cache(false);
        let mut iterator = self.db.raw_iterator_cf_opt(self.cf(VALUES_CF)?, read_options);
        iterator.seek_to_first();
        let mut current: Option<KeyHash> = None;
        let mut pending = Pending::Nothing;
        let mut buffer = Vec::new();
        while let Some((key, value)) = iterator.item() {
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
            iterator.next();
        }
        iterator.status().map_err(backend("scanning values"))?;
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
        let mut batch = WriteBatch::default();
        let stats = PruneStats {
            values: self.delete_stale(&mut batch, &stale)?,
            roots: self.delete_roots(&mut batch, keep_from)?,
        };
        let oldest = meta.oldest.map_or(keep_from, |oldest| oldest.max(keep_from));
        batch.put_cf(self.cf(META_CF)?, META_OLDEST, encode_version(oldest));
        self.write(batch)?;
        meta.oldest = Some(oldest);
        self.set_meta(meta);
        debug!(target: TARGET, keep_from, values = stats.values, roots = stats.roots,
            "pruned state");
        Ok(stats)
    }
}

// The layout's constants agree with each other.
const _: () = assert!(VALUE_KEY_LEN == KEY_HASH_LEN + VERSION_LEN);
