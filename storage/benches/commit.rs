//! Benchmarks of the state on rocksdb.
//!
//! - `commit_10k_keys`: a block of 10,000 fresh random 32-byte keys with 100-byte values through
//!   `State<DiskStore>` (`prepare`, then `commit`: one synced batch) on a state that starts with
//!   100,000 keys and grows with every iteration, against a plain synced rocksdb `WriteBatch` of
//!   the same keys and values into a database that also starts with 100,000 keys. Throughput in
//!   keys. `merklized_prepare_only` and `merklized_commit_only` split the first into the root
//!   computation (in memory, in the runtime) and the store's write.
//! - Before those, the same comparison timed by hand, alternating the two on every round, so that
//!   both see the same machine at the same moment; it prints keys/s of both and their ratio.
//! - `state_root_10k_accounts`: `State::prepare` alone (the root computation, nothing written)
//!   for a block that updates 10,000 of 100,000 accounts, on `MemoryStore` and on `DiskStore`.
//!
//! Allocation runs through jemalloc, as in the `altan` binary.
//!
//! Run: `cargo bench -p altan-storage --bench commit -- --warm-up-time 1 --measurement-time 5`
#![allow(clippy::arithmetic_side_effects, clippy::print_stdout, missing_docs)]

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use altan_primitives::Address;
use altan_runtime::state::{
    Account, MemoryStore, State, StateChanges, StateKey, StateStore, Version,
};
use altan_storage::{DiskStore, StoreOptions};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use parity_scale_codec::Encode;
use rocksdb::{DB, DBCompressionType, Options, WriteBatch, WriteOptions};

/// The `altan` binary's allocator, so that the tree's copies cost here what they cost in the node.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const BLOCK_KEYS: usize = 10_000;
const VALUE_BYTES: usize = 100;
const PREPOPULATED: usize = 100_000;
/// Rounds of the hand-timed comparison.
const ROUNDS: usize = 15;

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

fn open_rocks(path: &std::path::Path) -> State<DiskStore> {
    let store = DiskStore::open(path, &StoreOptions::default()).unwrap();
    State::open(Arc::new(store)).unwrap()
}

/// A plain rocksdb with a synced `WriteBatch` per block: what the merklized commit is held to.
struct Raw {
    db: DB,
    synced: WriteOptions,
}

impl Raw {
    fn open(path: &std::path::Path) -> Raw {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(DBCompressionType::Lz4);
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        Raw { db: DB::open(&options, path).unwrap(), synced }
    }

    fn write(&self, changes: &StateChanges) {
        let mut batch = WriteBatch::default();
        for (key, value) in changes {
            batch.put(key, value.as_deref().unwrap_or_default());
        }
        self.db.write_opt(batch, &self.synced).unwrap();
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn keys_per_second(time: Duration) -> f64 {
    BLOCK_KEYS as f64 / time.as_secs_f64()
}

/// The merklized commit and the raw batch timed by hand, alternating, from the same starting
/// sizes; prints the medians and the ratio.
fn compare_by_hand(state: &State<DiskStore>, raw: &Raw, rng: &mut Rng, next: &Cell<Version>) {
    let (mut prepare, mut commit, mut total, mut plain) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let changes = random_block(rng);
        let version = next.get();
        let start = Instant::now();
        let prepared = state.prepare(version, &changes).unwrap();
        let prepared_at = Instant::now();
        state.commit(&prepared).unwrap();
        let done = Instant::now();
        next.set(version + 1);
        prepare.push(prepared_at - start);
        commit.push(done - prepared_at);
        total.push(done - start);

        let changes = random_block(rng);
        let start = Instant::now();
        raw.write(&changes);
        plain.push(start.elapsed());
    }
    let (prepare, commit) = (median(&mut prepare), median(&mut commit));
    let (total, plain) = (median(&mut total), median(&mut plain));
    println!(
        "by hand, median of {ROUNDS} blocks of {BLOCK_KEYS} keys: merklized {total:.2?} \
         (prepare {prepare:.2?} + commit {commit:.2?}) = {:.0} keys/s; raw batch {plain:.2?} = \
         {:.0} keys/s; ratio {:.2}x",
        keys_per_second(total),
        keys_per_second(plain),
        plain.as_secs_f64() / total.as_secs_f64(),
    );
}

fn commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let state = open_rocks(&dir.path().join("state"));
    let raw = Raw::open(&dir.path().join("raw"));

    let mut rng = Rng(1);
    let mut version: Version = 0;
    for _ in 0..PREPOPULATED / BLOCK_KEYS {
        let changes = random_block(&mut rng);
        state.apply(version, &changes).unwrap();
        raw.write(&changes);
        version += 1;
    }
    let next = Cell::new(version);
    compare_by_hand(&state, &raw, &mut rng, &next);

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
    group.bench_function("raw_rocksdb_batch", |b| {
        b.iter_batched(
            || random_block(&mut rng),
            |changes| raw.write(&changes),
            BatchSize::PerIteration,
        )
    });
    // The root computation alone (nothing is committed, so the state does not grow).
    group.bench_function("merklized_prepare_only", |b| {
        b.iter_batched(
            || random_block(&mut rng),
            |changes| state.prepare(next.get(), &changes).unwrap(),
            BatchSize::PerIteration,
        )
    });
    // The store's write of an already prepared block.
    group.bench_function("merklized_commit_only", |b| {
        b.iter_batched(
            || state.prepare(next.get(), &random_block(&mut rng)).unwrap(),
            |commit| {
                state.commit(&commit).unwrap();
                next.set(commit.version() + 1);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    println!(
        "commit_10k_keys: the merklized state ended at version {} with {} keys",
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

    let memory = State::open(Arc::new(MemoryStore::new())).unwrap();
    memory.apply(0, &genesis).unwrap();
    state_root(c, "memory", &memory, &mut accounts);

    let dir = tempfile::tempdir().unwrap();
    let rocks = open_rocks(dir.path());
    rocks.apply(0, &genesis).unwrap();
    // As on a node that has run a while: the state is in table files, and its tree was rebuilt
    // from them at open.
    rocks.store().flush().unwrap();
    drop(rocks);
    let start = Instant::now();
    let rocks = open_rocks(dir.path());
    println!(
        "state_root_10k_accounts: State::open rebuilt {PREPOPULATED} accounts in {:.2?}",
        start.elapsed()
    );
    let mut check = Rng(4);
    let block = account_block(&mut check, &mut accounts, 1);
    assert_eq!(rocks.prepare(1, &block).unwrap().root(), memory.prepare(1, &block).unwrap().root());
    drop(memory);
    state_root(c, "rocksdb", &rocks, &mut accounts);
}

criterion_group!(benches, commit, state_roots);
criterion_main!(benches);
