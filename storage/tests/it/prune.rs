//! Pruning: old versions go, recent versions stay whole, both backends agree.

use altan_runtime::state::{PruneStats, StateChanges, StateStore, StoreError};

use crate::common::{Model, apply_model, block, key, memory, open_rocks};

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
    let nodes_before = rocks.store().node_count().unwrap();
    let values_before = rocks.store().value_count().unwrap();
    assert_eq!(nodes_before, memory.store().node_count() as u64);

    let stats = rocks.store().prune(15).unwrap();
    assert_eq!(stats, memory.store().prune(15).unwrap());
    assert!(stats.nodes > 0 && stats.values > 0, "{stats:?}");
    let nodes_after = rocks.store().node_count().unwrap();
    assert_eq!(nodes_after, nodes_before - stats.nodes);
    assert_eq!(nodes_after, memory.store().node_count() as u64);
    assert_eq!(rocks.store().value_count().unwrap(), values_before - stats.values);
    assert_eq!(rocks.store().oldest_version().unwrap(), Some(15));

    for version in 0..15 {
        assert!(is_unavailable(rocks.root(version)));
        assert!(is_unavailable(rocks.get(&key(0), version)));
        assert!(is_unavailable(rocks.get_with_proof(&key(0), version)));
        assert!(is_unavailable(rocks.snapshot(version)));
    }
    let check_kept = |state: &altan_runtime::state::State<altan_storage::RocksStore>| {
        for version in 15..=20_u64 {
            let root = roots[version as usize];
            assert_eq!(state.root(version).unwrap(), root);
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

    // Pruning again at the same point finds nothing more.
    assert_eq!(rocks.store().prune(15).unwrap(), PruneStats::default());
    assert_eq!(rocks.store().prune(3).unwrap(), PruneStats::default());
    assert_eq!(rocks.store().oldest_version().unwrap(), Some(15));

    // What was kept is enough to go on committing.
    for version in 21..=25 {
        let changes = block(version, KEY_SPACE, WRITES);
        assert_eq!(
            rocks.apply(version, &changes).unwrap(),
            memory.apply(version, &changes).unwrap()
        );
    }

    // The prune point survives a reopen.
    drop(rocks);
    let rocks = open_rocks(dir.path());
    assert_eq!(rocks.store().oldest_version().unwrap(), Some(15));
    assert_eq!(rocks.latest_version().unwrap(), Some(25));
    assert!(is_unavailable(rocks.root(14)));
    check_kept(&rocks);
}

#[test]
fn pruning_past_the_latest_version_keeps_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open_rocks(dir.path());
    let memory = memory();
    assert_eq!(rocks.store().prune(10).unwrap(), PruneStats::default());
    assert_eq!(rocks.store().oldest_version().unwrap(), None);

    let mut model = Model::new();
    for version in 0..=5 {
        let changes = block(version, KEY_SPACE, WRITES);
        rocks.apply(version, &changes).unwrap();
        memory.apply(version, &changes).unwrap();
        apply_model(&mut model, &changes);
    }
    let stats = rocks.store().prune(1_000).unwrap();
    assert_eq!(stats, memory.store().prune(1_000).unwrap());
    assert_eq!(rocks.store().oldest_version().unwrap(), Some(5));
    assert!(is_unavailable(rocks.root(4)));
    let root = rocks.root(5).unwrap();
    for i in 0..KEY_SPACE {
        let (value, proof) = rocks.get_with_proof(&key(i), 5).unwrap();
        assert_eq!(value.as_ref(), model.get(&key(i)));
        proof.verify(root, &key(i), value.as_deref()).unwrap();
    }
    // Both backends keep exactly the nodes of the latest tree: as many as a fresh tree with
    // the same contents.
    assert_eq!(rocks.store().node_count().unwrap(), memory.store().node_count() as u64);
    assert_eq!(rocks.store().node_count().unwrap(), fresh_node_count(&model));
}

/// The nodes of a tree holding `model`, written in one version.
fn fresh_node_count(model: &Model) -> u64 {
    let fresh = memory();
    let changes = model.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
    fresh.apply(0, &changes).unwrap();
    fresh.store().node_count() as u64
}

/// jmt copies the root for a version that changes nothing without marking the old root stale;
/// `State::prepare` marks it, so that empty blocks leave nothing behind once pruned.
#[test]
fn empty_blocks_leave_nothing_behind_once_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open_rocks(dir.path());
    let memory = memory();
    let mut model = Model::new();
    let mut blocks = vec![block(0, KEY_SPACE, WRITES)];
    blocks.extend((0..5).map(|_| StateChanges::new()));
    // Deleting keys that do not exist changes nothing either.
    blocks.push([(b"never written".to_vec(), None)].into_iter().collect());
    blocks.push(block(7, KEY_SPACE, WRITES));
    blocks.push(StateChanges::new());
    for (version, changes) in blocks.iter().enumerate() {
        let root = rocks.apply(version as u64, changes).unwrap();
        assert_eq!(memory.apply(version as u64, changes).unwrap(), root);
        apply_model(&mut model, changes);
    }
    let latest = blocks.len() as u64 - 1;
    let stats = rocks.store().prune(latest).unwrap();
    assert_eq!(stats, memory.store().prune(latest).unwrap());
    assert_eq!(rocks.store().node_count().unwrap(), fresh_node_count(&model));
    assert_eq!(memory.store().node_count() as u64, fresh_node_count(&model));
    let root = rocks.root(latest).unwrap();
    for i in 0..KEY_SPACE {
        let (value, proof) = rocks.get_with_proof(&key(i), latest).unwrap();
        assert_eq!(value.as_ref(), model.get(&key(i)));
        proof.verify(root, &key(i), value.as_deref()).unwrap();
    }
}
