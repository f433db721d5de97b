//! Bad bytes on disk come back as errors, never as panics or wrong data: bytes that do not
//! decode are `Corrupt` where they are read, and values that decode but were changed make the
//! rebuilt tree miss the stored root, which `State::open` refuses.

use std::path::Path;
use std::sync::Arc;

use altan_runtime::state::{
    KeyHash, State, StateChanges, StateConfig, StateStore, StoreError, Version,
};
use altan_storage::{DiskStore, META_CF, ROOTS_CF, STALE_VALUES_CF, StoreOptions, VALUES_CF};

use crate::common::{block, key, open_rocks, open_rocks_with};

fn is_corrupt<T>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Corrupt(_)))
}

/// Every entry of a column family, in key order.
fn entries(store: &DiskStore, cf: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.raw_entries(cf).unwrap()
}

fn put(store: &DiskStore, cf: &str, key: &[u8], value: &[u8]) {
    store.raw_write(cf, key, Some(value)).unwrap();
}

fn delete(store: &DiskStore, cf: &str, key: &[u8]) {
    store.raw_write(cf, key, None).unwrap();
}

fn committed(dir: &Path, versions: u64) -> State<DiskStore> {
    let state = open_rocks(dir);
    for version in 0..versions {
        state.apply(version, &block(version, 30, 20)).unwrap();
    }
    state
}

/// Opens the store at `dir` alone (no tree), lets `damage` write to it, and closes it.
fn damage(dir: &Path, damage: impl FnOnce(&DiskStore)) {
    let store = DiskStore::open(dir, &StoreOptions::default()).unwrap();
    damage(&store);
}

/// Opens the store and the state over it, as a node does at start.
fn reopen(dir: &Path) -> Result<State<DiskStore>, StoreError> {
    let store = DiskStore::open(dir, &StoreOptions::default())?;
    State::open_with(Arc::new(store), StateConfig { tree_versions: 1 })
}

/// The `state_values` key of `key` written at `version`.
fn value_key(key: &[u8], version: Version) -> Vec<u8> {
    [&KeyHash::of(key).0[..], &version.to_be_bytes()].concat()
}

#[test]
fn undecodable_values_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let state = open_rocks(dir.path());
    let changes: StateChanges = [(b"k".to_vec(), Some(b"v".to_vec()))].into_iter().collect();
    state.apply(0, &changes).unwrap();
    let values = entries(state.store(), VALUES_CF);
    assert_eq!(values, [(value_key(b"k", 0), b"\x01v".to_vec())]);
    for bad in [&b""[..], b"\x07v", b"\x00v"] {
        put(state.store(), VALUES_CF, &values[0].0, bad);
        assert!(is_corrupt(state.get(b"k", 0)), "{bad:?}");
        assert!(is_corrupt(state.store().scan(0, &mut |_, _, _| {})), "{bad:?}");
    }
    // A well-formed deletion reads as one.
    put(state.store(), VALUES_CF, &values[0].0, b"\x00");
    assert_eq!(state.get(b"k", 0).unwrap(), None);

    // At open, the scan that rebuilds the tree meets the bad bytes.
    put(state.store(), VALUES_CF, &values[0].0, b"\x09");
    drop(state);
    assert!(is_corrupt(reopen(dir.path()).map(|_| ())));
}

#[test]
fn malformed_value_keys_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    drop(committed(dir.path(), 2));
    let good = value_key(&key(0), 0);
    for bad_key in [[&good[..], &[0]].concat(), good[..39].to_vec(), vec![0xff; 3]] {
        damage(dir.path(), |store| put(store, VALUES_CF, &bad_key, b"\x01v"));
        assert!(is_corrupt(reopen(dir.path()).map(|_| ())), "{bad_key:?}");
        damage(dir.path(), |store| delete(store, VALUES_CF, &bad_key));
        reopen(dir.path()).unwrap();
    }
}

#[test]
fn damaged_metadata_is_refused_at_open() {
    type Damage = Box<dyn Fn(&DiskStore)>;
    let cases: Vec<(&str, Damage)> = vec![
        ("latest of three bytes", Box::new(|s| put(s, META_CF, b"latest", b"\x01\x02\x03"))),
        ("an unknown format", Box::new(|s| put(s, META_CF, b"format", &99_u64.to_be_bytes()))),
        (
            "format 1, the jmt layout",
            Box::new(|s| put(s, META_CF, b"format", &1_u64.to_be_bytes())),
        ),
        ("no format marker", Box::new(|s| delete(s, META_CF, b"format"))),
        (
            "a latest version never written",
            Box::new(|s| put(s, META_CF, b"latest", &1_000_u64.to_be_bytes())),
        ),
        ("oldest above latest", Box::new(|s| put(s, META_CF, b"oldest", &9_u64.to_be_bytes()))),
        ("no oldest", Box::new(|s| delete(s, META_CF, b"oldest"))),
        ("the latest root missing", Box::new(|s| delete(s, ROOTS_CF, &2_u64.to_be_bytes()))),
        ("the oldest root missing", Box::new(|s| delete(s, ROOTS_CF, &0_u64.to_be_bytes()))),
        (
            "the latest root cut short",
            Box::new(|s| put(s, ROOTS_CF, &2_u64.to_be_bytes(), &[7; 31])),
        ),
    ];
    for (what, damage) in cases {
        let dir = tempfile::tempdir().unwrap();
        {
            let state = committed(dir.path(), 3);
            damage(state.store());
        }
        let reopened = DiskStore::open(dir.path(), &StoreOptions::default());
        assert!(is_corrupt(reopened.map(|_| ())), "{what}");
    }
}

/// Values that decode but are not what was committed: the rebuilt tree's root differs from the
/// stored root, and `State::open` refuses the store. Undoing the damage makes it open again.
#[test]
fn a_value_changed_on_disk_fails_the_root_check_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let k = |i: u8| vec![b'k', i];
    {
        let state = open_rocks(dir.path());
        state.apply(0, &(0..10).map(|i| (k(i), Some(vec![i; 8]))).collect()).unwrap();
        state.apply(1, &[(k(0), Some(b"new".to_vec()))].into_iter().collect()).unwrap();
        state.apply(2, &[(k(1), None)].into_iter().collect()).unwrap();
    }
    let good = reopen(dir.path()).unwrap().root(2).unwrap();

    type Damage = fn(&DiskStore, &dyn Fn(u8) -> Vec<u8>);
    let cases: [(&str, Damage); 7] = [
        ("a live value changed", |s, k| put(s, VALUES_CF, &value_key(&k(5), 0), b"\x01other")),
        ("a live value emptied", |s, k| put(s, VALUES_CF, &value_key(&k(5), 0), b"\x01")),
        ("a live value turned into a deletion", |s, k| {
            put(s, VALUES_CF, &value_key(&k(5), 0), b"\x00")
        }),
        ("a live value removed", |s, k| delete(s, VALUES_CF, &value_key(&k(5), 0))),
        ("a deletion removed", |s, k| delete(s, VALUES_CF, &value_key(&k(1), 2))),
        ("a value added", |s, k| put(s, VALUES_CF, &value_key(&k(77), 1), b"\x01extra")),
        ("the latest root changed", |s, _| put(s, ROOTS_CF, &2_u64.to_be_bytes(), &[7; 32])),
    ];
    for (what, damage_with) in cases {
        let saved = {
            let store = DiskStore::open(dir.path(), &StoreOptions::default()).unwrap();
            let saved = (entries(&store, VALUES_CF), entries(&store, ROOTS_CF));
            damage_with(&store, &k);
            saved
        };
        assert!(is_corrupt(reopen(dir.path()).map(|_| ())), "{what}");
        damage(dir.path(), |store| {
            for (cf, saved) in [(VALUES_CF, &saved.0), (ROOTS_CF, &saved.1)] {
                for (key, _) in entries(store, cf) {
                    delete(store, cf, &key);
                }
                for (key, value) in saved {
                    put(store, cf, key, value);
                }
            }
        });
        assert_eq!(reopen(dir.path()).unwrap().root(2).unwrap(), good, "{what}: restored");
    }

    // A value that only an older version sees is not read at open; the proof of that version,
    // which rebuilds its tree, finds it.
    damage(dir.path(), |store| put(store, VALUES_CF, &value_key(&k(0), 0), b"\x01other"));
    let state = reopen(dir.path()).unwrap();
    assert!(is_corrupt(state.get_with_proof(&k(0), 0)));
    assert!(is_corrupt(state.get_with_proof(&k(3), 0)));
    let (value, proof) = state.get_with_proof(&k(0), 2).unwrap();
    proof.verify(good, &k(0), value.as_deref()).unwrap();
}

/// The tree keeps no values' hashes, so a proof that ends at a leaf reads that leaf's value from
/// the store: the key's own, or for an exclusion proof the key that owns the path. A store that
/// lost that value gives a corrupt error, not a proof of something else.
#[test]
fn a_proof_whose_leaf_lost_its_value_in_the_store_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let state = open_rocks(dir.path());
    // One key: the root is its leaf, so every other key's exclusion proof ends there.
    let changes: StateChanges = [(b"k".to_vec(), Some(b"v".to_vec()))].into_iter().collect();
    let root = state.apply(0, &changes).unwrap();
    let (value, proof) = state.get_with_proof(b"other", 0).unwrap();
    assert_eq!(value, None);
    proof.verify(root, b"other", None).unwrap();

    delete(state.store(), VALUES_CF, &value_key(b"k", 0));
    assert!(is_corrupt(state.get_with_proof(b"other", 0)));
    assert!(is_corrupt(state.get_with_proof(b"k", 0)));
}

#[test]
fn a_malformed_stale_index_entry_fails_the_prune_without_deleting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let state = committed(dir.path(), 4);
    let values = state.store().value_count().unwrap();
    let stale = state.store().stale_value_count().unwrap();
    assert!(stale > 0);
    put(state.store(), STALE_VALUES_CF, &[0, 0, 0, 0, 0, 0, 0, 1, 9, 9], b"");
    assert!(is_corrupt(state.prune(3)));
    assert_eq!(state.store().value_count().unwrap(), values);
    assert_eq!(state.store().stale_value_count().unwrap(), stale + 1);
    assert_eq!(state.store().root_count().unwrap(), 4);
    assert_eq!(state.store().oldest_version().unwrap(), Some(0));
    state.root(0).unwrap();

    delete(state.store(), STALE_VALUES_CF, &[0, 0, 0, 0, 0, 0, 0, 1, 9, 9]);
    assert!(state.prune(3).unwrap().values > 0);
}

#[test]
fn errors_keep_their_kind_through_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let state = open_rocks_with(dir.path(), StateConfig { tree_versions: 1 });
    for version in 0..3 {
        state.apply(version, &block(version, 30, 20)).unwrap();
    }
    put(state.store(), ROOTS_CF, &1_u64.to_be_bytes(), b"\x05garbage");
    assert!(is_corrupt(state.root(1)));
    assert!(is_corrupt(state.get_with_proof(&key(0), 1)));
    // Versions that do not need that root are unaffected.
    state.get_with_proof(&key(0), 0).unwrap();
    state.get_with_proof(&key(0), 2).unwrap();
    state.apply(3, &block(3, 30, 20)).unwrap();
}
