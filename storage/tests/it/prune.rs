//! Pruning: old versions go, recent versions stay whole, both backends agree.

use std::collections::BTreeSet;

use altan_runtime::state::{PruneStats, State, StateChanges, StateStore, StoreError};
use altan_storage::DiskStore;

use crate::common::{Model, apply_model, block, key, memory, open_rocks, scan};

const KEY_SPACE: u64 = 48;
const WRITES: u64 = 16;

fn is_unavailable<T>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::VersionUnavailable { .. }))
}

#[test]
fn pruning_removes_old_versions_and_keeps_recent_ones_whole() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open_rocks(dir.path());
    let memory = memory();
    let mut roots = Vec::new();
    let mut models = Vec::new();
    let mut model = Model::new();
    for version in 0..=20 {
        let changes = block(version, KEY_SPACE, WRITES);
        let root = rocks.apply(version, &changes).unwrap();
        assert_eq!(memory.apply(version, &changes).unwrap(), root);
        roots.push(root);
        apply_model(&mut model, &changes);
        models.push(model.clone());
    }
    let values_before = rocks.store().value_count().unwrap();
    assert_eq!(values_before, memory.store().value_count() as u64);
    assert_eq!(rocks.store().root_count().unwrap(), 21);

    let stats = rocks.prune(15).unwrap();
    assert_eq!(stats, memory.prune(15).unwrap());
    assert!(stats.values > 0, "{stats:?}");
    assert_eq!(stats.roots, 15);
    assert_eq!(rocks.store().value_count().unwrap(), values_before - stats.values);
    assert_eq!(rocks.store().value_count().unwrap(), memory.store().value_count() as u64);
    assert_eq!(rocks.store().root_count().unwrap(), 6);
    assert_eq!(rocks.store().oldest_version().unwrap(), Some(15));

    for version in 0..15 {
        assert_eq!(rocks.store().root(version).unwrap(), None);
        assert!(is_unavailable(rocks.root(version)));
        assert!(is_unavailable(rocks.get(&key(0), version)));
        assert!(is_unavailable(rocks.get_with_proof(&key(0), version)));
        assert!(is_unavailable(rocks.snapshot(version)));
    }
    let check_kept = |state: &State<DiskStore>| {
        for version in 15..=20_u64 {
            let root = roots[version as usize];
            assert_eq!(state.root(version).unwrap(), root);
            assert_eq!(scan(&**state.store(), version), scan(&**memory.store(), version));
            for i in 0..KEY_SPACE {
                let expected = models[version as usize].get(&key(i));
                assert_eq!(state.get(&key(i), version).unwrap().as_ref(), expected);
                let (value, proof) = state.get_with_proof(&key(i), version).unwrap();
                assert_eq!(value.as_ref(), expected, "key {i} at {version}");
                proof.verify(root, &key(i), expected.map(Vec::as_slice)).unwrap();
            }
        }
    };
    check_kept(&rocks);

    // Pruning again at the same point, or below it, finds nothing more.
    assert_eq!(rocks.prune(15).unwrap(), PruneStats::default());
    assert_eq!(rocks.prune(3).unwrap(), PruneStats::default());
    assert_eq!(rocks.store().oldest_version().unwrap(), Some(15));

    // What was kept is enough to go on committing.
    for version in 21..=25 {
        let changes = block(version, KEY_SPACE, WRITES);
        assert_eq!(
            rocks.apply(version, &changes).unwrap(),
            memory.apply(version, &changes).unwrap()
        );
    }

    // The prune point survives a reopen, and the pruned store still rebuilds to its root.
    drop(rocks);
    let rocks = open_rocks(dir.path());
    assert_eq!(rocks.store().oldest_version().unwrap(), Some(15));
    assert_eq!(rocks.latest_version().unwrap(), Some(25));
    assert!(is_unavailable(rocks.root(14)));
    check_kept(&rocks);
}

/// Pruning at (or past) the latest version leaves exactly one entry per key ever written: its
/// newest, a deletion included. Deletions of keys that never existed and empty blocks leave
/// nothing behind but that.
#[test]
fn pruning_past_the_latest_version_keeps_only_the_newest_entries() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open_rocks(dir.path());
    let memory = memory();
    assert_eq!(rocks.prune(10).unwrap(), PruneStats::default());
    assert_eq!(rocks.store().oldest_version().unwrap(), None);

    let mut blocks = vec![block(0, KEY_SPACE, WRITES), block(1, KEY_SPACE, WRITES)];
    blocks.extend((0..3).map(|_| StateChanges::new()));
    blocks.push([(b"never written".to_vec(), None)].into_iter().collect());
    blocks.push(block(6, KEY_SPACE, WRITES));
    blocks.push(StateChanges::new());
    let mut model = Model::new();
    let mut written = BTreeSet::new();
    for (version, changes) in blocks.iter().enumerate() {
        let root = rocks.apply(version as u64, changes).unwrap();
        assert_eq!(memory.apply(version as u64, changes).unwrap(), root);
        apply_model(&mut model, changes);
        written.extend(changes.keys().cloned());
    }
    let latest = blocks.len() as u64 - 1;
    let stats = rocks.prune(1_000).unwrap();
    assert_eq!(stats, memory.prune(1_000).unwrap());
    assert_eq!(stats.roots, latest);
    assert_eq!(rocks.store().oldest_version().unwrap(), Some(latest));
    assert!(is_unavailable(rocks.root(latest - 1)));
    // What is left is exactly the live values: every replaced value and every tombstone went.
    assert!(written.len() > model.len());
    assert_eq!(rocks.store().value_count().unwrap(), model.len() as u64);
    assert_eq!(memory.store().value_count(), model.len());
    assert_eq!(rocks.store().stale_value_count().unwrap(), 0);
    assert_eq!(rocks.store().root_count().unwrap(), 1);

    let root = rocks.root(latest).unwrap();
    for i in 0..KEY_SPACE {
        let (value, proof) = rocks.get_with_proof(&key(i), latest).unwrap();
        assert_eq!(value.as_ref(), model.get(&key(i)));
        proof.verify(root, &key(i), value.as_deref()).unwrap();
    }
    drop(rocks);
    let rocks = open_rocks(dir.path());
    assert_eq!(rocks.root(latest).unwrap(), root);
}

/// Commits large enough that the tree is updated on two threads: the stale index names exactly
/// the replaced values and the tombstones, in step with `MemoryStore`, and a deletion of a key
/// without a value writes nothing.
#[test]
fn large_commits_index_exactly_what_they_supersede() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open_rocks(dir.path());
    let memory = memory();
    let set = |keys: std::ops::Range<u64>, tag: u8| {
        keys.map(move |i| (key(i), Some(vec![tag; (i % 7) as usize])))
    };
    let blocks: [StateChanges; 3] = [
        set(0..3_000, 0).collect(),
        // 2,000 overwritten, 1,000 new, 500 deleted: 2,500 replaced values and 500 tombstones.
        set(1_000..4_000, 1).chain((0..500).map(|i| (key(i), None))).collect(),
        // Every key again: 3,500 values replaced (the 500 deleted keys have none), and 1,000
        // deletions of keys that never had a value.
        set(0..4_000, 2).chain((5_000..6_000).map(|i| (key(i), None))).collect(),
    ];
    let mut stale = 0;
    for (version, (changes, superseded)) in blocks.iter().zip([0, 3_000, 3_500]).enumerate() {
        let root = rocks.apply(version as u64, changes).unwrap();
        assert_eq!(memory.apply(version as u64, changes).unwrap(), root);
        stale += superseded;
        assert_eq!(rocks.store().stale_value_count().unwrap(), stale, "version {version}");
    }
    let stats = rocks.prune(2).unwrap();
    assert_eq!(stats, memory.prune(2).unwrap());
    assert_eq!(stats, PruneStats { values: 6_500, roots: 2 });
    assert_eq!(rocks.store().value_count().unwrap(), 4_000);
    assert_eq!(rocks.store().value_count().unwrap(), memory.store().value_count() as u64);
    assert_eq!(scan(&**rocks.store(), 2), scan(&**memory.store(), 2));
    for i in (0..6_000).step_by(37) {
        assert_eq!(rocks.get(&key(i), 2).unwrap(), memory.get(&key(i), 2).unwrap(), "key {i}");
    }
}
