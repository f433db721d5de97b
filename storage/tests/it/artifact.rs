//! The on-disk artifact store: round trips, and damaged files treated as misses.

use std::fs;

use altan_primitives::Hash;
use altan_runtime::vm::ArtifactStore;
use altan_storage::DiskArtifactStore;

fn artifact(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8).wrapping_mul(31)).collect()
}

#[test]
fn saved_artifacts_load_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskArtifactStore::open(dir.path().join("artifacts")).unwrap();
    let (a, b, empty) = (Hash([1; 32]), Hash([2; 32]), Hash([3; 32]));
    assert_eq!(store.load(&a).unwrap(), None);
    store.save(&a, &artifact(1, 10_000)).unwrap();
    store.save(&b, &artifact(2, 77)).unwrap();
    store.save(&empty, &[]).unwrap();
    assert_eq!(store.load(&a).unwrap(), Some(artifact(1, 10_000)));
    assert_eq!(store.load(&b).unwrap(), Some(artifact(2, 77)));
    assert_eq!(store.load(&empty).unwrap(), Some(Vec::new()));

    // Saving again replaces; a reopened store reads the same files.
    store.save(&b, &artifact(9, 5)).unwrap();
    drop(store);
    let store = DiskArtifactStore::open(dir.path().join("artifacts")).unwrap();
    assert_eq!(store.load(&b).unwrap(), Some(artifact(9, 5)));
    assert_eq!(store.load(&a).unwrap(), Some(artifact(1, 10_000)));
    let names: Vec<_> =
        fs::read_dir(store.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "one file per key and no leftovers: {names:?}");
}

#[test]
fn damaged_files_load_as_misses_and_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskArtifactStore::open(dir.path()).unwrap();
    let key = Hash([7; 32]);
    let original = artifact(7, 4_096);
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 6] = [
        ("a bit flipped in the artifact", |bytes| bytes[100] ^= 0x10),
        ("a bit flipped in the checksum", |bytes| bytes[0] ^= 0x01),
        ("the last byte cut", |bytes| {
            bytes.pop();
        }),
        ("cut inside the checksum", |bytes| bytes.truncate(20)),
        ("emptied", |bytes| bytes.clear()),
        ("a byte appended", |bytes| bytes.push(0)),
    ];
    for (what, damage) in damages {
        store.save(&key, &original).unwrap();
        let path = store.path_of(&key);
        let mut bytes = fs::read(&path).unwrap();
        damage(&mut bytes);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(store.load(&key).unwrap(), None, "{what}");
        assert!(!path.exists(), "{what}: the damaged file is removed");
        assert_eq!(store.load(&key).unwrap(), None);
    }
    store.save(&key, &original).unwrap();
    assert_eq!(store.load(&key).unwrap(), Some(original));
}

#[test]
fn a_file_under_another_keys_name_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskArtifactStore::open(dir.path()).unwrap();
    let (a, b) = (Hash([0xaa; 32]), Hash([0xbb; 32]));
    store.save(&a, &artifact(1, 300)).unwrap();
    fs::copy(store.path_of(&a), store.path_of(&b)).unwrap();
    assert_eq!(store.load(&b).unwrap(), None);
    assert!(!store.path_of(&b).exists());
    assert_eq!(store.load(&a).unwrap(), Some(artifact(1, 300)));
}

#[test]
fn leftover_temporary_files_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let leftover = dir.path().join(format!("{}.1234.0.tmp", "ab".repeat(32)));
    fs::write(&leftover, b"half written").unwrap();
    let keep = dir.path().join("unrelated.txt");
    fs::write(&keep, b"not ours to remove").unwrap();
    let store = DiskArtifactStore::open(dir.path()).unwrap();
    assert!(!leftover.exists());
    assert!(keep.exists());
    assert_eq!(store.load(&Hash([0xab; 32])).unwrap(), None);
}

/// The store keeps at most its limit of bytes, removing the least recently used files first,
/// and counts the files it finds at open.
#[test]
fn the_store_is_bounded_and_evicts_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    // Each file is a 32-byte checksum and a 1,000-byte artifact: three fit in 3,200 bytes.
    let store = DiskArtifactStore::open_with_limit(dir.path(), 3_200).unwrap();
    let keys: Vec<Hash> = (1..=4).map(|i| Hash([i; 32])).collect();
    for (i, key) in keys.iter().take(3).enumerate() {
        store.save(key, &artifact(i as u8, 1_000)).unwrap();
    }
    assert_eq!(store.bytes(), 3 * 1_032);
    // Using the first makes the second the least recently used; a fourth evicts it.
    assert!(store.load(&keys[0]).unwrap().is_some());
    store.save(&keys[3], &artifact(3, 1_000)).unwrap();
    assert_eq!(store.load(&keys[1]).unwrap(), None, "the least recently used was evicted");
    for key in [&keys[0], &keys[2], &keys[3]] {
        assert!(store.load(key).unwrap().is_some());
    }
    assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 3);
    assert_eq!(store.bytes(), 3 * 1_032);
    // Saving a key again replaces its file without needing room twice.
    store.save(&keys[3], &artifact(7, 1_000)).unwrap();
    assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 3);
    // An artifact larger than the whole store is refused, and nothing is evicted for it.
    assert!(store.save(&Hash([9; 32]), &artifact(9, 4_000)).is_err());
    assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 3);
    drop(store);
    // Reopened with a smaller limit, the store evicts down to it.
    let store = DiskArtifactStore::open_with_limit(dir.path(), 2_100).unwrap();
    assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 2);
    assert_eq!(store.bytes(), 2 * 1_032);
}
