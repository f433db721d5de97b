//! Bad bytes on disk come back as errors, never as panics or wrong data.

use std::sync::Arc;

use altan_runtime::state::{State, StateChanges, StateStore, StoreError, key_hash};
use altan_storage::{META_CF, NODES_CF, RocksStore, STALE_NODES_CF, StoreOptions, VALUES_CF};
use jmt::storage::{Node, TreeReader};

use crate::common::{block, key, memory, open_rocks};

fn is_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Corrupt(_)))
}

/// Every entry of a column family, in key order.
fn entries(store: &RocksStore, cf: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cf = store.cf(cf).unwrap();
    store
        .db()
        .iterator_cf(cf, rocksdb::IteratorMode::Start)
        .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

fn put(store: &RocksStore, cf: &str, key: &[u8], value: &[u8]) {
    store.db().put_cf(store.cf(cf).unwrap(), key, value).unwrap();
}

fn committed(dir: &std::path::Path, versions: u64) -> State<RocksStore> {
    let state = open_rocks(dir);
    for version in 0..versions {
        state.apply(version, &block(version, 30, 20)).unwrap();
    }
    state
}

/// The encoded key of the root node of `version`.
fn root_key(version: u64) -> Vec<u8> {
    [&version.to_le_bytes()[..], &[0; 12]].concat()
}

#[test]
fn undecodable_nodes_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let state = committed(dir.path(), 3);
    let root = state.root(2).unwrap();
    let key_bytes = root_key(2);
    let node_key: jmt::storage::NodeKey = borsh::from_slice(&key_bytes).unwrap();
    let good = state.store().db().get_cf(state.store().cf(NODES_CF).unwrap(), &key_bytes);
    let good = good.unwrap().unwrap();
    assert_eq!(good[0], 1, "the root of 30 keys is an internal node");

    let bad_values: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 10],
        good[..good.len() - 1].to_vec(),
        [&good[..], &[0]].concat(),
        {
            // The child count no longer matches the children.
            let mut bytes = good.clone();
            let at = bytes.len() - 16;
            bytes[at] ^= 0x04;
            bytes
        },
        {
            // Nor does the leaf count.
            let mut bytes = good.clone();
            let at = bytes.len() - 8;
            bytes[at] ^= 0x01;
            bytes
        },
    ];
    for bad in &bad_values {
        put(state.store(), NODES_CF, &key_bytes, bad);
        let error = state.store().get_node_option(&node_key).unwrap_err();
        let error = error.downcast::<StoreError>().unwrap();
        assert!(matches!(error, StoreError::Corrupt(_)), "{bad:?}: {error}");
        // Every read of version 2 through the tree starts at this node. (jmt reports any
        // failure to read the root in a proof as a missing root, so that error's kind is lost.)
        assert!(is_corrupt(state.root(2)));
        assert!(state.get_with_proof(&key(0), 2).is_err());
        // Other versions do not need it.
        state.root(1).unwrap();
    }
    put(state.store(), NODES_CF, &key_bytes, &good);

    // A damaged node below the root fails the proofs that pass through it, as corrupt. (Only
    // those: jmt 0.12 unwraps the reader's result when it reads a sibling for a proof, so a
    // proof that needs the damaged node as a sibling panics inside jmt.)
    let Node::Internal(root_node) = state.store().get_node_option(&node_key).unwrap().unwrap()
    else {
        unreachable!("checked above")
    };
    let (nibble, child) = root_node.children_sorted().next().unwrap();
    let child_key = [
        &child.version.to_le_bytes()[..],
        &1_u64.to_le_bytes(),
        &1_u32.to_le_bytes(),
        &[u8::from(nibble) << 4],
    ]
    .concat();
    let child_good = state.store().db().get_cf(state.store().cf(NODES_CF).unwrap(), &child_key);
    let child_good = child_good.unwrap().expect("the child is stored under the key we built");
    put(state.store(), NODES_CF, &child_key, &[0xff; 10]);
    let below: Vec<_> =
        (0..30).filter(|&i| key_hash(&key(i)).0[0] >> 4 == u8::from(nibble)).collect();
    assert!(!below.is_empty());
    for i in below {
        assert!(is_corrupt(state.get_with_proof(&key(i), 2)), "key {i}");
    }
    put(state.store(), NODES_CF, &child_key, &child_good);

    // Restored, the nodes read again and the proofs verify.
    for i in 0..30 {
        let (value, proof) = state.get_with_proof(&key(i), 2).unwrap();
        proof.verify(root, &key(i), value.as_deref()).unwrap();
    }
}

#[test]
fn undecodable_values_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let state = open_rocks(dir.path());
    let changes: StateChanges = [(b"k".to_vec(), Some(b"v".to_vec()))].into_iter().collect();
    state.apply(0, &changes).unwrap();
    let values = entries(state.store(), VALUES_CF);
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].1, b"\x01v");
    for bad in [&b""[..], b"\x07v", b"\x00v"] {
        put(state.store(), VALUES_CF, &values[0].0, bad);
        assert!(is_corrupt(state.get(b"k", 0)), "{bad:?}");
    }
    put(state.store(), VALUES_CF, &values[0].0, b"\x00");
    assert_eq!(state.get(b"k", 0).unwrap(), None);
}

#[test]
fn damaged_metadata_is_refused_at_open() {
    let cases: [(&[u8], &[u8]); 4] = [
        (b"latest", b"\x01\x02\x03"),
        (b"format", &99_u64.to_be_bytes()),
        // A latest version whose root was never written.
        (b"latest", &1_000_u64.to_be_bytes()),
        // An oldest version above the latest.
        (b"oldest", &9_u64.to_be_bytes()),
    ];
    for (key, value) in cases {
        let dir = tempfile::tempdir().unwrap();
        {
            let state = committed(dir.path(), 3);
            put(state.store(), META_CF, key, value);
        }
        let reopened = RocksStore::open(dir.path(), &StoreOptions::default());
        assert!(is_corrupt(reopened.map(|_| ())), "{key:?} = {value:?}");
    }
}

#[test]
fn a_malformed_stale_index_entry_fails_the_prune_without_deleting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let state = committed(dir.path(), 4);
    let nodes = state.store().node_count().unwrap();
    put(state.store(), STALE_NODES_CF, &[0, 0, 0, 0, 0, 0, 0, 1, 9, 9], b"");
    assert!(is_corrupt(state.store().prune(3)));
    assert_eq!(state.store().node_count().unwrap(), nodes);
    assert_eq!(state.store().oldest_version().unwrap(), Some(0));
    state.root(0).unwrap();
}

#[test]
fn the_rightmost_leaf_is_found_by_a_scan_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let rocks = open_rocks(dir.path());
    let memory = memory();
    assert!(rocks.store().get_rightmost_leaf().unwrap().is_none());
    // One version, so that every leaf is current and the answer is unique.
    let changes = block(0, 200, 150);
    rocks.apply(0, &changes).unwrap();
    memory.apply(0, &changes).unwrap();
    let (rocks_key, rocks_leaf) = rocks.store().get_rightmost_leaf().unwrap().unwrap();
    let (memory_key, memory_leaf) = memory.store().get_rightmost_leaf().unwrap().unwrap();
    assert_eq!((&rocks_key, &rocks_leaf), (&memory_key, &memory_leaf));
    let max_hash =
        changes.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| key_hash(k)).max().unwrap();
    assert_eq!(rocks_leaf.key_hash(), max_hash);

    // A leaf stored under a malformed key is reported, not trusted.
    let leaf_bytes = borsh::to_vec(&Node::Leaf(rocks_leaf)).unwrap();
    put(rocks.store(), NODES_CF, &[1, 2, 3], &leaf_bytes);
    let error = rocks.store().get_rightmost_leaf().unwrap_err();
    assert!(matches!(error.downcast::<StoreError>().unwrap(), StoreError::Corrupt(_)));
}

#[test]
fn errors_keep_their_kind_through_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path(), &StoreOptions::default()).unwrap());
    let state = State::new(Arc::clone(&store));
    state.apply(0, &block(0, 30, 20)).unwrap();
    put(&store, NODES_CF, &root_key(0), b"\x05garbage");
    assert!(is_corrupt(state.root(0)));
    assert!(is_corrupt(state.prepare(1, &block(1, 30, 20)).map(|c| c.root)));
}
