//! The caller's records in the state's batch (`commit_with`), on both kinds of database.

use std::cell::Cell;
use std::sync::Arc;

use altan_runtime::state::{State, StateChanges, StoreError};

use super::{DiskStore, StoreOptions};
use crate::kv::MemoryDisk;

fn changes(version: u64) -> StateChanges {
    let mut changes = StateChanges::new();
    changes.insert(format!("key-{}", version % 3).into_bytes(), Some(vec![1; 8]));
    changes.insert(format!("other-{version}").into_bytes(), Some(version.to_be_bytes().to_vec()));
    changes
}

/// Commits versions 0..3, each with its root under `blocks`, then tries a stale version.
fn commit_three(store: &Arc<DiskStore>) {
    let blocks = store.kv().cf("blocks").unwrap();
    let state = State::open(Arc::clone(store)).unwrap();
    for version in 0..3 {
        let commit = state.prepare(version, &changes(version)).unwrap();
        state
            .commit_using(&commit, |store, commit| {
                store.commit_with(commit, |batch| {
                    batch.put(blocks, version.to_be_bytes(), commit.root().0);
                })
            })
            .unwrap();
    }
    // A commit out of order writes nothing, and never asks the caller for its data.
    let stale = state.prepare(3, &changes(3)).unwrap();
    state.apply(3, &changes(3)).unwrap();
    let called = Cell::new(false);
    let refused = state.commit_using(&stale, |store, commit| {
        store.commit_with(commit, |batch| {
            called.set(true);
            batch.put(blocks, b"never", b"written");
        })
    });
    assert!(matches!(refused, Err(StoreError::OutOfOrder { expected: Some(4), found: 3 })));
    assert!(!called.get());
}

fn check_reopened(store: DiskStore) {
    let state = State::open(Arc::new(store)).unwrap();
    for version in 0..3_u64 {
        let stored = state.store().raw_get("blocks", &version.to_be_bytes()).unwrap();
        assert_eq!(stored, Some(state.root(version).unwrap().0.to_vec()));
    }
    assert_eq!(state.store().raw_get("blocks", b"never").unwrap(), None);
    assert_eq!(state.latest_version().unwrap(), Some(3));
}

fn with_blocks() -> StoreOptions {
    StoreOptions { extra_column_families: vec!["blocks".into()], ..StoreOptions::default() }
}

#[test]
fn commit_with_writes_the_callers_data_in_the_same_batch_on_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    commit_three(&Arc::new(DiskStore::open(dir.path(), &with_blocks()).unwrap()));
    // Reopening without naming the family still opens it.
    check_reopened(DiskStore::open(dir.path(), &StoreOptions::default()).unwrap());
}

#[test]
fn commit_with_writes_the_callers_data_in_the_same_batch_on_a_memory_disk() {
    let disk = MemoryDisk::new();
    commit_three(&Arc::new(DiskStore::open_memory(&disk, &with_blocks()).unwrap()));
    disk.power_loss(|_| 0);
    check_reopened(DiskStore::open_memory(&disk, &StoreOptions::default()).unwrap());
}
