//! Helpers shared by the tests: stores in temporary directories, deterministic blocks, a model.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use altan_runtime::state::{
    KeyHash, MemoryStore, State, StateChanges, StateConfig, StateStore, Version,
};
use altan_storage::{DiskStore, StoreOptions};

/// The state on a rocksdb at `path`, created if missing, with its latest tree rebuilt and
/// checked by `State::open`.
pub fn open_rocks(path: &Path) -> State<DiskStore> {
    open_rocks_with(path, StateConfig::default())
}

/// [`open_rocks`] keeping `config.tree_versions` trees in memory: with 1, every version but the
/// latest is proved by rebuilding its tree from the store.
pub fn open_rocks_with(path: &Path, config: StateConfig) -> State<DiskStore> {
    let store = DiskStore::open(path, &StoreOptions::default()).expect("open rocksdb state");
    State::open_with(Arc::new(store), config).expect("the stored state rebuilds to its root")
}

/// An empty in-memory state.
pub fn memory() -> State<MemoryStore> {
    State::open(Arc::new(MemoryStore::new())).expect("an empty store opens")
}

/// What `StateStore::scan` visits at `version`, in order: key, version written, value.
pub fn scan<S: StateStore>(store: &S, version: Version) -> Vec<(KeyHash, Version, Vec<u8>)> {
    let mut visited = Vec::new();
    store
        .scan(version, &mut |key, written, value| visited.push((*key, written, value.to_vec())))
        .unwrap();
    visited
}

/// SplitMix64: a tiny deterministic generator, the same in every process.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The state key of key number `i`.
pub fn key(i: u64) -> Vec<u8> {
    format!("key-{i}").into_bytes()
}

/// The deterministic block of `version`: up to `max_writes` sets, overwrites and deletes of keys
/// `0..key_space`, with values of 0 to 199 bytes. The same arguments give the same block in
/// every process, which is what lets a test replay what a killed writer committed.
pub fn block(version: Version, key_space: u64, max_writes: u64) -> StateChanges {
    let mut rng = Rng::new(version ^ 0x005e_ed0f_b10c);
    let writes = 1 + rng.below(max_writes);
    let mut changes = StateChanges::new();
    for _ in 0..writes {
        let k = key(rng.below(key_space));
        if rng.below(100) < 15 {
            changes.insert(k, None);
        } else {
            let len = rng.below(200) as usize;
            let fill = rng.next_u64().to_le_bytes();
            let value = (0..len).map(|i| fill[i % 8] ^ (i as u8)).collect();
            changes.insert(k, Some(value));
        }
    }
    changes
}

/// The contents of the state as a plain map.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Applies `changes` to `model`.
pub fn apply_model(model: &mut Model, changes: &StateChanges) {
    for (key, value) in changes {
        match value {
            Some(value) => model.insert(key.clone(), value.clone()),
            None => model.remove(key),
        };
    }
}
