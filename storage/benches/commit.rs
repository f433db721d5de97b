//! Benchmarks of the rocksdb state.
//!
//! - `commit_10k_keys`: a block of 10,000 fresh random 32-byte keys with 100-byte values,
//!   prepared and committed (one synced batch) on a tree that already holds 100,000 keys and
//!   grows with every iteration; against a plain synced rocksdb `WriteBatch` of the same keys
//!   and values into a database that also starts with 100,000 keys. Throughput in keys.
//!   `merklized_rocksdb_write_only` times the commit of an already prepared block: the storage's
//!   share.
//! - `state_root_10k_accounts`: `State::prepare` alone (the root computation, nothing written)
//!   for a block that updates 10,000 of 100,000 accounts, on `MemoryStore` and on `RocksStore`;
//!   and, for comparison, jmt's batch insertion on `MemoryStore`.
//!
//! Run: `cargo bench -p altan-storage --bench commit -- --warm-up-time 1 --measurement-time 5`
#![allow(clippy::arithmetic_side_effects, clippy::print_stdout, missing_docs)]

use std::cell::Cell;
use std::sync::Arc;

use altan_primitives::Address;
use altan_runtime::state::{
    Account, Blake3Hasher, MemoryStore, State, StateChanges, StateKey, StateStore, Version,
    key_hash,
};
use altan_storage::rocksdb::{DB, DBCompressionType, Options, WriteBatch, WriteOptions};
use altan_storage::{RocksStore, StoreOptions};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use parity_scale_codec::Encode;

const BLOCK_KEYS: usize = 10_000;
const VALUE_BYTES: usize = 100;
const PREPOPULATED: usize = 100_000;

/// SplitMix64, so that every run benchmarks the same data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

fn random_block(rng: &mut Rng) -> StateChanges {
    (0..BLOCK_KEYS).map(|_| (rng.bytes(32), Some(rng.bytes(VALUE_BYTES)))).collect()
}

fn open_rocks(path: &std::path::Path) -> State<RocksStore> {
    State::new(Arc::new(RocksStore::open(path, &StoreOptions::default()).unwrap()))
}

fn commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let state = open_rocks(&dir.path().join("state"));
    let mut raw_options = Options::default();
    raw_options.create_if_missing(true);
    raw_options.set_compression_type(DBCompressionType::Lz4);
    let raw = DB::open(&raw_options, dir.path().join("raw")).unwrap();
    let mut synced = WriteOptions::default();
    synced.set_sync(true);
    let raw_write = |changes: &StateChanges| {
        let mut batch = WriteBatch::default();
        for (key, value) in changes {
            batch.put(key, value.as_deref().unwrap_or_default());
        }
        raw.write_opt(batch, &synced).unwrap();
    };

    let mut rng = Rng(1);
    let mut version: Version = 0;
    for _ in 0..PREPOPULATED / BLOCK_KEYS {
        let changes = random_block(&mut rng);
        state.apply(version, &changes).unwrap();
        raw_write(&changes);
        version += 1;
    }
    let next = Cell::new(version);

    let mut group = c.benchmark_group("commit_10k_keys");
    group.throughput(Throughput::Elements(BLOCK_KEYS as u64));
    group.sample_size(10);
    group.bench_function("merklized_rocksdb", |b| {
        b.iter_batched(
            || random_block(&mut rng),
            |changes| {
                let version = next.get();
                let commit = state.prepare(version, &changes).unwrap();
                state.commit(&commit).unwrap();
                next.set(version + 1);
            },
            BatchSize::PerIteration,
        )
    });
    // The same, with `prepare` (jmt's work) done outside the timing: what the storage costs.
    group.bench_function("merklized_rocksdb_write_only", |b| {
        b.iter_batched(
            || state.prepare(next.get(), &random_block(&mut rng)).unwrap(),
            |commit| {
                state.commit(&commit).unwrap();
                next.set(commit.version + 1);
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("raw_rocksdb_batch", |b| {
        b.iter_batched(
            || random_block(&mut rng),
            |changes| raw_write(&changes),
            BatchSize::PerIteration,
        )
    });
    group.finish();
    println!(
        "commit_10k_keys: the merklized tree ended at version {} with about {} keys",
        next.get() - 1,
        next.get() as usize * BLOCK_KEYS
    );
}

fn account_block(rng: &mut Rng, accounts: &mut [Address], nonce: u64) -> StateChanges {
    // A partial Fisher-Yates shuffle picks 10,000 distinct accounts.
    for i in 0..BLOCK_KEYS {
        let j = i + (rng.next_u64() % (accounts.len() - i) as u64) as usize;
        accounts.swap(i, j);
    }
    accounts[..BLOCK_KEYS]
        .iter()
        .map(|address| {
            let account = Account { nonce, balance: u128::from(rng.next_u64()), code_hash: None };
            (StateKey::account(address), Some(account.encode()))
        })
        .collect()
}

fn state_root<S: StateStore>(
    c: &mut Criterion,
    name: &str,
    state: &State<S>,
    accounts: &mut [Address],
) {
    let mut rng = Rng(3);
    let mut group = c.benchmark_group("state_root_10k_accounts");
    group.throughput(Throughput::Elements(BLOCK_KEYS as u64));
    group.sample_size(20);
    group.bench_function(name, |b| {
        b.iter_batched(
            || account_block(&mut rng, accounts, 1),
            |changes| state.prepare(1, &changes).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The root that jmt's batch insertion (`batch_put_value_sets`, which walks the tree once for
/// the whole block and hashes each new node once) computes for a block of updates. It handles
/// no deletions, so `State::prepare` does not use it; it is measured here to show what the
/// per-key insertion that `prepare` uses costs.
fn batch_insert_root(store: &MemoryStore, changes: &StateChanges) -> [u8; 32] {
    let kvs = changes
        .iter()
        .map(|(key, value)| (key_hash(key), value.clone().unwrap_or_default()))
        .collect();
    let tree = jmt::JellyfishMerkleTree::<_, Blake3Hasher>::new(store);
    let (roots, _) = tree.batch_put_value_sets(vec![kvs], None, 1).unwrap();
    roots[0].0
}

fn state_roots(c: &mut Criterion) {
    let mut rng = Rng(2);
    let mut accounts: Vec<Address> =
        (0..PREPOPULATED).map(|_| Address(rng.bytes(20).try_into().unwrap())).collect();
    let genesis: StateChanges = accounts
        .iter()
        .map(|address| {
            let account = Account { nonce: 0, balance: 1_000_000, code_hash: None };
            (StateKey::account(address), Some(account.encode()))
        })
        .collect();

    let memory = State::new(Arc::new(MemoryStore::new()));
    memory.apply(0, &genesis).unwrap();
    state_root(c, "memory", &memory, &mut accounts);
    let mut rng = Rng(4);
    let check = account_block(&mut rng, &mut accounts, 1);
    let expected = memory.prepare(1, &check).unwrap().root;
    assert_eq!(batch_insert_root(memory.store(), &check), expected.0, "batch insertion root");
    let mut group = c.benchmark_group("state_root_10k_accounts");
    group.throughput(Throughput::Elements(BLOCK_KEYS as u64));
    group.sample_size(20);
    group.bench_function("memory_jmt_batch_insert", |b| {
        b.iter_batched(
            || account_block(&mut rng, &mut accounts, 1),
            |changes| batch_insert_root(memory.store(), &changes),
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(memory);

    let dir = tempfile::tempdir().unwrap();
    let rocks = open_rocks(dir.path());
    rocks.apply(0, &genesis).unwrap();
    // As on a node that has run a while: the tree is read from table files and the block
    // cache, not from the memtable.
    rocks.store().flush().unwrap();
    state_root(c, "rocksdb", &rocks, &mut accounts);
}

criterion_group!(benches, commit, state_roots);
criterion_main!(benches);
