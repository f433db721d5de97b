//! Closing and reopening a database, the caller's column families, and version-order checks.

use altan_runtime::state::{StateStore, StoreError};
use altan_storage::{DiskStore, StoreOptions};

use crate::common::{Model, apply_model, block, key, memory, open_rocks};

const KEY_SPACE: u64 = 40;

#[test]
fn reopened_store_has_the_same_versions_roots_and_values() {
    for flush_before_close in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut roots = Vec::new();
        let mut models = Vec::new();
        let mut model = Model::new();
        {
            let state = open_rocks(dir.path());
            for version in 0..10 {
                let changes = block(version, KEY_SPACE, 25);
                roots.push(state.apply(version, &changes).unwrap());
                apply_model(&mut model, &changes);
                models.push(model.clone());
            }
            if flush_before_close {
                state.store().flush().unwrap();
            }
        }

        // `open_rocks` rebuilds the latest tree and checks it against the stored root; the
        // versions before it are proved from trees rebuilt from their values.
        let state = open_rocks(dir.path());
        assert_eq!(state.latest_version().unwrap(), Some(9));
        assert_eq!(state.store().oldest_version().unwrap(), Some(0));
        assert_eq!(state.store().root_count().unwrap(), 10);
        for (version, (root, model)) in roots.iter().zip(&models).enumerate() {
            let version = version as u64;
            assert_eq!(state.root(version).unwrap(), *root, "root of {version}");
            for i in 0..KEY_SPACE {
                let (value, proof) = state.get_with_proof(&key(i), version).unwrap();
                assert_eq!(value.as_ref(), model.get(&key(i)), "key {i} at {version}");
                proof.verify(*root, &key(i), value.as_deref()).unwrap();
            }
        }

        // The reopened store carries on where it stopped, in step with a replay in memory.
        let memory = memory();
        for version in 0..15 {
            let changes = block(version, KEY_SPACE, 25);
            let root = memory.apply(version, &changes).unwrap();
            if version >= 10 {
                assert_eq!(state.apply(version, &changes).unwrap(), root);
            } else {
                assert_eq!(roots[version as usize], root);
            }
        }
    }
}

#[test]
fn commits_out_of_order_are_refused_like_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open_rocks(dir.path());
    let memory = memory();
    let commit_of_0 = memory.prepare(0, &block(0, KEY_SPACE, 5)).unwrap();
    // A version 1, prepared by a state that already has a version 0.
    let ahead = self::memory();
    ahead.apply(0, &block(0, KEY_SPACE, 5)).unwrap();
    let commit_of_1 = ahead.prepare(1, &block(1, KEY_SPACE, 5)).unwrap();

    let rocks_error = rocks.commit(&commit_of_1).unwrap_err();
    let memory_error = memory.commit(&commit_of_1).unwrap_err();
    assert!(matches!(rocks_error, StoreError::OutOfOrder { expected: None, found: 1 }));
    assert_eq!(format!("{rocks_error:?}"), format!("{memory_error:?}"));

    rocks.commit(&commit_of_0).unwrap();
    memory.commit(&commit_of_0).unwrap();
    for store_error in
        [rocks.commit(&commit_of_0).unwrap_err(), memory.commit(&commit_of_0).unwrap_err()]
    {
        assert!(matches!(store_error, StoreError::OutOfOrder { expected: Some(1), found: 0 }));
    }
    assert_eq!(rocks.latest_version().unwrap(), Some(0));
    assert_eq!(rocks.root(0).unwrap(), commit_of_0.root());
}

#[test]
fn opening_a_missing_database_without_create_fails() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { create_if_missing: false, ..StoreOptions::default() };
    let missing = DiskStore::open(dir.path().join("absent"), &options);
    assert!(matches!(missing, Err(StoreError::Backend(_))));

    drop(DiskStore::open(dir.path().join("present"), &StoreOptions::default()).unwrap());
    let reopened = DiskStore::open(dir.path().join("present"), &options).unwrap();
    assert_eq!(reopened.latest_version().unwrap(), None);
}

#[test]
fn the_states_column_family_names_are_reserved() {
    let dir = tempfile::tempdir().unwrap();
    for name in altan_storage::STATE_COLUMN_FAMILIES {
        let options = StoreOptions {
            extra_column_families: vec!["blocks".into(), name.into()],
            ..StoreOptions::default()
        };
        let refused = DiskStore::open(dir.path(), &options);
        assert!(matches!(refused, Err(StoreError::Backend(_))), "{name}");
    }
}

#[test]
fn a_database_open_elsewhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = DiskStore::open(dir.path(), &StoreOptions::default()).unwrap();
    let second = DiskStore::open(dir.path(), &StoreOptions::default());
    assert!(matches!(second, Err(StoreError::Backend(_))));
}
