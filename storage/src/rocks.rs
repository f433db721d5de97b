//! [`RocksStore`]: the versioned Merkle state on rocksdb.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use altan_runtime::state::{
    PruneStats, StateCommit, StateStore, StoreError, Version, check_next_version,
};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType,
    DBRawIterator, Options, ReadOptions, SliceTransform, WriteBatch, WriteOptions,
};
use tracing::{debug, info};

use crate::codec::{
    KEY_HASH_LEN, decode_node, decode_node_key, decode_stale_node_key, decode_stale_value_key,
    decode_value, decode_version, encode_node, encode_node_key, encode_value, encode_version,
    is_leaf_bytes, root_node_key, stale_node_key, stale_value_key, value_key, value_key_version,
};

/// Tree nodes: borsh `NodeKey` → borsh `Node`.
pub const NODES_CF: &str = "state_nodes";
/// Values by key hash and the version that wrote them: `key hash ‖ version (BE)` → tag ‖ value.
pub const VALUES_CF: &str = "state_values";
/// Nodes that later versions replaced: `stale since (BE) ‖ borsh NodeKey` → nothing.
pub const STALE_NODES_CF: &str = "state_stale_nodes";
/// Values that later versions replaced: `superseded at (BE) ‖ key hash ‖ old version (BE)`.
pub const STALE_VALUES_CF: &str = "state_stale_values";
/// The format, latest and oldest versions.
pub const META_CF: &str = "state_meta";
/// Every column family the state uses. Other column families in the same database (the node's
/// blocks and receipts) are the caller's.
pub const STATE_COLUMN_FAMILIES: [&str; 5] =
    [NODES_CF, VALUES_CF, STALE_NODES_CF, STALE_VALUES_CF, META_CF];

const META_FORMAT: &[u8] = b"format";
const META_LATEST: &[u8] = b"latest";
const META_OLDEST: &[u8] = b"oldest";
/// The layout version written at creation; a database with another one is refused.
pub const FORMAT_VERSION: u64 = 1;

/// How many stale entries a prune looks up in one multi-get.
const PRUNE_LOOKUP_CHUNK: usize = 4_096;
/// Bits per key of the bloom filters.
const BLOOM_BITS_PER_KEY: f64 = 10.0;

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

/// A stale index entry's key, and the key of the entry it names.
type StaleEntry = (Box<[u8]>, Vec<u8>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Meta {
    latest: Option<Version>,
    oldest: Option<Version>,
}

/// The versioned state on rocksdb. Every commit and prune is one synced `WriteBatch`, so after
/// a crash the database holds either all of a version or none of it.
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
        // on the key hash lets that seek skip files that do not hold the key at all.
        options.set_prefix_extractor(SliceTransform::create_fixed_prefix(KEY_HASH_LEN));
        options.set_memtable_prefix_bloom_ratio(0.1);
        table.set_whole_key_filtering(false);
    }
    options.set_block_based_table_factory(&table);
    options
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data is `()`: a panic while holding the lock leaves nothing half-written.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
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
        *store.meta.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = meta;
        info!(
            target: TARGET,
            path = %store.path.display(),
            latest = ?meta.latest,
            oldest = ?meta.oldest,
            "opened state database"
        );
        Ok(store)
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
                let root = root_node_key(latest);
                let nodes = self.cf(NODES_CF)?;
                let bytes = self.db.get_pinned_cf(nodes, root).map_err(backend("reading root"))?;
                if bytes.map(|bytes| decode_node(&bytes)).transpose()?.is_none() {
                    return Err(StoreError::Corrupt(format!(
                        "the root node of the latest version {latest} is missing"
                    )));
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

    /// The database, for the caller's own column families (named in
    /// [`StoreOptions::extra_column_families`]). The state's column families must only be
    /// written through [`StateStore::commit`], [`RocksStore::commit_with`] and
    /// [`StateStore::prune`].
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

    fn node(&self, node_key: &NodeKey) -> Result<Option<Node>, StoreError> {
        let key = encode_node_key(node_key)?;
        let bytes =
            self.db.get_pinned_cf(self.cf(NODES_CF)?, key).map_err(backend("reading node"))?;
        bytes.map(|bytes| decode_node(&bytes)).transpose()
    }

    fn value_iterator(&self) -> Result<DBRawIterator<'_>, StoreError> {
        let mut read_options = ReadOptions::default();
        read_options.set_prefix_same_as_start(true);
        Ok(self.db.raw_iterator_cf_opt(self.cf(VALUES_CF)?, read_options))
    }

    /// The newest entry of `key_hash` at or below `max_version` (a deletion included), as its
    /// version and raw bytes, handed to `read`.
    fn newest_entry<T>(
        iterator: &mut DBRawIterator<'_>,
        key_hash: KeyHash,
        max_version: Version,
        read: impl FnOnce(Version, &[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        iterator.seek_for_prev(value_key(key_hash, max_version));
        match iterator.item() {
            Some((key, value)) => match value_key_version(key, key_hash)? {
                Some(version) if version <= max_version => read(version, value).map(Some),
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

    /// Writes a commit and whatever `extra` adds in one synced batch: the node writes its
    /// blocks, receipts and indexes this way, so that they and the state they lead to are on
    /// disk together or not at all. `extra` runs only once the version order has been checked.
    pub fn commit_with(
        &self,
        commit: &StateCommit,
        extra: impl FnOnce(&mut WriteBatch),
    ) -> Result<(), StoreError> {
        let _writer = lock(&self.writer);
        let mut meta = self.meta();
        check_next_version(meta.latest, commit.version)?;

        let values_cf = self.cf(VALUES_CF)?;
        let stale_values_cf = self.cf(STALE_VALUES_CF)?;
        let nodes_cf = self.cf(NODES_CF)?;
        let stale_nodes_cf = self.cf(STALE_NODES_CF)?;
        let node_batch = &commit.update.node_batch;
        let mut batch = WriteBatch::default();

        // As in `MemoryStore`: each written key's previous entry becomes stale at this version.
        // Values come ordered by version, so an earlier version in the same batch counts too.
        let mut in_batch: HashMap<KeyHash, Version> = HashMap::new();
        let mut iterator = self.value_iterator()?;
        for (&(version, key_hash), value) in node_batch.values() {
            let stored = Self::newest_entry(&mut iterator, key_hash, version, |v, _| Ok(v))?;
            let previous = stored.max(in_batch.get(&key_hash).copied()).filter(|&p| p < version);
            if let Some(previous) = previous {
                batch.put_cf(stale_values_cf, stale_value_key(version, key_hash, previous), b"");
            }
            batch.put_cf(values_cf, value_key(key_hash, version), encode_value(value.as_deref()));
            in_batch.insert(key_hash, version);
        }
        drop(iterator);
        for (key, node) in node_batch.nodes() {
            batch.put_cf(nodes_cf, encode_node_key(key)?, encode_node(node)?);
        }
        for index in &commit.update.stale_node_index_batch {
            let key = stale_node_key(index.stale_since_version, &encode_node_key(&index.node_key)?);
            batch.put_cf(stale_nodes_cf, key, b"");
        }

        let meta_cf = self.cf(META_CF)?;
        meta.latest = Some(commit.version);
        batch.put_cf(meta_cf, META_LATEST, encode_version(commit.version));
        if meta.oldest.is_none() {
            meta.oldest = Some(commit.version);
            batch.put_cf(meta_cf, META_OLDEST, encode_version(commit.version));
        }
        extra(&mut batch);
        self.write(batch)?;
        self.set_meta(meta);
        debug!(target: TARGET, version = commit.version, nodes = node_batch.nodes().len(),
            values = node_batch.values().len(), "committed state version");
        Ok(())
    }

    /// Counts the stored tree nodes (a full scan: for tests and diagnostics).
    pub fn node_count(&self) -> Result<u64, StoreError> {
        self.count(NODES_CF)
    }

    /// Counts the stored value entries, deletions included (a full scan: for tests and
    /// diagnostics).
    pub fn value_count(&self) -> Result<u64, StoreError> {
        self.count(VALUES_CF)
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

    /// Collects the keys of the stale entries in `cf` that are stale at or before `keep_from`,
    /// with the keys of the entries they name.
    fn stale_entries(
        &self,
        cf: &str,
        keep_from: Version,
        decode: impl Fn(&[u8]) -> Result<(Version, Vec<u8>), StoreError>,
    ) -> Result<Vec<StaleEntry>, StoreError> {
        let mut iterator = self.db.raw_iterator_cf(self.cf(cf)?);
        iterator.seek_to_first();
        let mut entries = Vec::new();
        while let Some(key) = iterator.key() {
            let (since, target) = decode(key)?;
            if since > keep_from {
                break;
            }
            entries.push((Box::from(key), target));
            iterator.next();
        }
        iterator.status().map_err(backend("scanning stale entries"))?;
        Ok(entries)
    }

    /// Adds to `batch` the deletion of each stale entry and of the entry it names, counting
    /// the named entries that exist.
    fn delete_stale(
        &self,
        batch: &mut WriteBatch,
        index_cf: &str,
        target_cf: &str,
        entries: &[StaleEntry],
    ) -> Result<u64, StoreError> {
        let index = self.cf(index_cf)?;
        let target = self.cf(target_cf)?;
        let mut deleted = 0_u64;
        for chunk in entries.chunks(PRUNE_LOOKUP_CHUNK) {
            let found = self.db.batched_multi_get_cf(target, chunk.iter().map(|(_, t)| t), false);
            for ((key, target_key), found) in chunk.iter().zip(found) {
                if found.map_err(backend("looking up a stale entry"))?.is_some() {
                    deleted = deleted.saturating_add(1);
                }
                batch.delete_cf(target, target_key);
                batch.delete_cf(index, key);
            }
        }
        Ok(deleted)
    }
}

impl TreeReader for RocksStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.node(node_key)?)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let mut iterator = self.value_iterator()?;
        let value = Self::newest_entry(&mut iterator, key_hash, max_version, |_, bytes| {
            decode_value(bytes)
        })?;
        Ok(value.flatten())
    }

    /// The leaf with the greatest key hash (ties go to the newest node). This scans every
    /// node; jmt calls it only when restoring a tree from a snapshot.
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        let mut iterator = self.db.raw_iterator_cf(self.cf(NODES_CF)?);
        iterator.seek_to_first();
        let mut best: Option<(NodeKey, LeafNode)> = None;
        while let Some((key, value)) = iterator.item() {
            if is_leaf_bytes(value) {
                let Node::Leaf(leaf) = decode_node(value)? else {
                    return Err(StoreError::Corrupt("leaf tag on a non-leaf node".into()).into());
                };
                let key = decode_node_key(key)?;
                let better = best.as_ref().is_none_or(|(best_key, best_leaf)| {
                    (leaf.key_hash(), key.version()) > (best_leaf.key_hash(), best_key.version())
                });
                if better {
                    best = Some((key, leaf));
                }
            }
            iterator.next();
        }
        iterator.status().map_err(backend("scanning nodes"))?;
        Ok(best)
    }
}

impl StateStore for RocksStore {
    fn latest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.meta().latest)
    }

    fn oldest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.meta().oldest)
    }

    fn commit(&self, commit: &StateCommit) -> Result<(), StoreError> {
        self.commit_with(commit, |_| {})
    }

    /// Deletes, in one synced batch, every node and value that became stale at or before
    /// `keep_from`, exactly as `MemoryStore` does. The entries to delete are gathered in memory
    /// first, so pruning many versions at once costs memory in proportion.
    fn prune(&self, keep_from: Version) -> Result<PruneStats, StoreError> {
        let _writer = lock(&self.writer);
        let mut meta = self.meta();
        let Some(latest) = meta.latest else { return Ok(PruneStats::default()) };
        let keep_from = keep_from.min(latest);

        let stale_nodes = self.stale_entries(STALE_NODES_CF, keep_from, |key| {
            let (since, node_key) = decode_stale_node_key(key)?;
            Ok((since, node_key.to_vec()))
        })?;
        let stale_values = self.stale_entries(STALE_VALUES_CF, keep_from, |key| {
            let (since, value_key) = decode_stale_value_key(key)?;
            Ok((since, value_key.to_vec()))
        })?;
        let mut batch = WriteBatch::default();
        let stats = PruneStats {
            nodes: self.delete_stale(&mut batch, STALE_NODES_CF, NODES_CF, &stale_nodes)?,
            values: self.delete_stale(&mut batch, STALE_VALUES_CF, VALUES_CF, &stale_values)?,
        };
        let oldest = meta.oldest.map_or(keep_from, |oldest| oldest.max(keep_from));
        batch.put_cf(self.cf(META_CF)?, META_OLDEST, encode_version(oldest));
        self.write(batch)?;
        meta.oldest = Some(oldest);
        self.set_meta(meta);
        debug!(target: TARGET, keep_from, nodes = stats.nodes, values = stats.values,
            "pruned state");
        Ok(stats)
    }
}
