//! The database on rocksdb: the one place in the workspace that calls it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use altan_runtime::state::StoreError;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options,
    ReadOptions, SliceTransform, WriteBatch, WriteOptions,
};

use super::{Batch, Cf, OpKind, OpenKv, Scan, Visit};

/// Bits per key of the bloom filters.
const BLOOM_BITS_PER_KEY: f64 = 10.0;
/// Memtable size of a prefix-seek family.
const PREFIX_SEEK_WRITE_BUFFER_BYTES: usize = 16 << 20;
/// Read-ahead of a bulk scan.
const BULK_READAHEAD_BYTES: usize = 4 << 20;
/// Bytes a batch entry costs beside its key and value (tag, column family, lengths).
const BATCH_ENTRY_OVERHEAD: usize = 8;

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

fn family_options(seek_prefix: Option<usize>, cache: &Cache) -> Options {
    let (mut options, mut table) = base_options(cache);
    if let Some(prefix) = seek_prefix {
        // Every read is a backwards seek within one prefix: a prefix bloom filter lets that
        // seek skip the memtable and every file that does not hold the prefix at all, which is
        // what makes reads of absent keys cheap.
        options.set_prefix_extractor(SliceTransform::create_fixed_prefix(prefix));
        // Memtables of 16 MiB, not rocksdb's 64: a block's commit inserts its values into the
        // memtable's skiplist, and inserts into a smaller one miss the cache less. The commit of
        // 10,000 keys took 15-25 ms with 64 MiB and 9-15 ms with 16 MiB (8 MiB: no better);
        // gets of absent keys went from 1.1 to 2.2 us on a 400,000-key state, as more of it
        // sits in files than in the memtable (BENCHMARKS.md).
        options.set_write_buffer_size(PREFIX_SEEK_WRITE_BUFFER_BYTES);
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

/// rocksdb, with the names of its column families in the order [`Cf`] counts them.
pub(crate) struct RocksKv {
    db: DB,
    path: PathBuf,
    names: Vec<String>,
    write_options: WriteOptions,
}

impl RocksKv {
    pub(crate) fn open(path: &Path, open: &OpenKv<'_>) -> Result<RocksKv, StoreError> {
        let cache = Cache::new_lru_cache(open.cache_bytes);
        let (mut db_options, _) = base_options(&cache);
        db_options.create_if_missing(open.create_if_missing);
        db_options.create_missing_column_families(open.create_if_missing);
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        db_options.increase_parallelism(i32::try_from(parallelism).unwrap_or(i32::MAX));

        // rocksdb refuses to open a database without naming all of its column families.
        let existing = DB::list_cf(&db_options, path).unwrap_or_default();
        let mut names: BTreeSet<String> = open.families.iter().map(|f| f.name.clone()).collect();
        names.extend(existing);
        let names: Vec<String> = names.into_iter().collect();
        let prefix_of = |name: &str| {
            open.families.iter().find(|family| family.name == name).and_then(|f| f.seek_prefix)
        };
        let descriptors = names
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, family_options(prefix_of(name), &cache)))
            .collect::<Vec<_>>();
        let db = DB::open_cf_descriptors(&db_options, path, descriptors)
            .map_err(backend(&format!("opening {}", path.display())))?;
        let mut write_options = WriteOptions::default();
        write_options.set_sync(open.sync_writes);
        Ok(RocksKv { db, path: path.to_path_buf(), names, write_options })
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn handle(&self, cf: Cf) -> Result<&ColumnFamily, StoreError> {
        self.names
            .get(usize::from(cf.0))
            .and_then(|name| self.db.cf_handle(name))
            .ok_or_else(|| StoreError::Backend(format!("rocksdb: no column family #{}", cf.0)))
    }

    pub(crate) fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.db.get_pinned_cf(self.handle(cf)?, key).map_err(backend("reading"))?;
        Ok(value.map(|value| value.to_vec()))
    }

    pub(crate) fn contains_many(&self, cf: Cf, keys: &[&[u8]]) -> Result<Vec<bool>, StoreError> {
        let found = self.db.batched_multi_get_cf(self.handle(cf)?, keys.iter(), false);
        found
            .into_iter()
            .map(|value| Ok(value.map_err(backend("looking up keys"))?.is_some()))
            .collect()
    }

    pub(crate) fn seek_for_prev<T>(
        &self,
        cf: Cf,
        key: &[u8],
        read: impl FnOnce(Option<(&[u8], &[u8])>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut read_options = ReadOptions::default();
        read_options.set_prefix_same_as_start(true);
        let mut iterator = self.db.raw_iterator_cf_opt(self.handle(cf)?, read_options);
        iterator.seek_for_prev(key);
        if !iterator.valid() {
            iterator.status().map_err(backend("seeking"))?;
        }
        read(iterator.item())
    }

    pub(crate) fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        kind: Scan,
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        let mut read_options = ReadOptions::default();
        read_options.set_total_order_seek(true);
        if kind == Scan::Bulk {
            read_options.set_readahead_size(BULK_READAHEAD_BYTES);
            // A full pass would push the working set out of the block cache.
            read_options.fill_cache(false);
        }
        let mut iterator = self.db.raw_iterator_cf_opt(self.handle(cf)?, read_options);
        iterator.seek(from);
        while let Some((key, value)) = iterator.item() {
            if !visit(key, value)? {
                return Ok(());
            }
            iterator.next();
        }
        iterator.status().map_err(backend("scanning"))
    }

    pub(crate) fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        let handles = self.names.iter().map(|name| self.db.cf_handle(name)).collect::<Vec<_>>();
        let capacity = batch
            .bytes
            .len()
            .saturating_add(batch.ops.len().saturating_mul(BATCH_ENTRY_OVERHEAD.saturating_add(1)));
        let mut rocks = WriteBatch::with_capacity_bytes(capacity);
        for (kind, cf, key, value) in batch.iter() {
            let Some(Some(handle)) = handles.get(usize::from(cf.0)) else {
                return Err(StoreError::Backend(format!("rocksdb: no column family #{}", cf.0)));
            };
            match kind {
                OpKind::Put => rocks.put_cf(*handle, key, value),
                OpKind::Delete => rocks.delete_cf(*handle, key),
                OpKind::DeleteRange => rocks.delete_range_cf(*handle, key, value),
            }
        }
        self.db.write_opt(rocks, &self.write_options).map_err(backend("writing a batch"))
    }

    pub(crate) fn flush(&self, families: &[Cf]) -> Result<(), StoreError> {
        for cf in families {
            self.db.flush_cf(self.handle(*cf)?).map_err(backend("flushing"))?;
        }
        Ok(())
    }
}
