//! Property tests: the rocksdb state against `MemoryStore` and a `BTreeMap` model.

use std::collections::BTreeMap;

use altan_primitives::Hash;
use altan_runtime::state::{
    State, StateChanges, StateConfig, StateProof, StateStore, StoreError, Version,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use crate::common::{Model, apply_model, memory, open_rocks, open_rocks_with, scan};

/// Keys are drawn from a small space so that blocks overwrite and delete each other's writes.
const KEYS: u8 = 12;

fn state_key(k: u8) -> Vec<u8> {
    vec![b'k', k]
}

/// A block: writes to small keys, a quarter of them deletions, values possibly empty (an empty
/// value is not a deletion).
fn block_strategy() -> impl Strategy<Value = Vec<(u8, Option<Vec<u8>>)>> {
    vec((0..KEYS, prop::option::weighted(0.75, vec(any::<u8>(), 0..6))), 0..8)
}

fn changes_of(block: &[(u8, Option<Vec<u8>>)]) -> StateChanges {
    block.iter().map(|(k, value)| (state_key(*k), value.clone())).collect()
}

/// How a test damages each proof: a byte of its encoding to flip (index, mask), and a sibling
/// hash to edit (step, sibling, byte).
type Tamper = ((usize, u8), (usize, usize, usize));

/// Checks every key of `state` at `version` against `model`, with proofs that verify against
/// `root`, and that a wrong value, a wrong root or a tampered proof does not verify. Returns the
/// proofs, for comparison with another backend's.
fn check_version<S: StateStore>(
    state: &State<S>,
    version: Version,
    root: Hash,
    model: &Model,
    tamper: Tamper,
) -> Result<Vec<StateProof>, TestCaseError> {
    let mut proofs = Vec::new();
    for k in 0..KEYS {
        let key = state_key(k);
        let expected = model.get(&key);
        let value = state.get(&key, version).unwrap();
        prop_assert_eq!(value.as_ref(), expected);
        let (value, proof) = state.get_with_proof(&key, version).unwrap();
        prop_assert_eq!(value.as_ref(), expected);
        let expected = expected.map(Vec::as_slice);
        prop_assert!(proof.verify(root, &key, expected).is_ok(), "proof of {key:?} at {version}");

        let wrong = match expected {
            Some(value) => [value, b"!"].concat(),
            None => b"absent".to_vec(),
        };
        prop_assert!(proof.verify(root, &key, Some(&wrong)).is_err());
        if expected.is_some() {
            prop_assert!(proof.verify(root, &key, None).is_err());
        }
        let other_root = Hash(*blake3::hash(&root.0).as_bytes());
        prop_assert!(proof.verify(other_root, &key, expected).is_err());

        // A flipped byte either no longer decodes or no longer verifies.
        let ((index, mask), (step, sibling, byte)) = tamper;
        let bytes = proof.to_bytes();
        prop_assert_eq!(&StateProof::from_bytes(&bytes).unwrap(), &proof);
        let mut flipped = bytes.clone();
        let index = index % flipped.len();
        flipped[index] ^= mask.max(1);
        if let Ok(tampered) = StateProof::from_bytes(&flipped) {
            prop_assert!(
                tampered.verify(root, &key, expected).is_err(),
                "a proof with byte {index} flipped still verifies"
            );
        }
        // An edited sibling hash leads to another root.
        let mut edited = proof.clone();
        let steps = edited.0.steps.len();
        if steps > 0 {
            let siblings = &mut edited.0.steps[step % steps].siblings;
            if !siblings.is_empty() {
                let len = siblings.len();
                siblings[sibling % len].0[byte % 32] ^= 0x80;
                prop_assert!(edited.verify(root, &key, expected).is_err());
            }
        }
        proofs.push(proof);
    }
    Ok(proofs)
}

fn tamper_strategy() -> impl Strategy<Value = Tamper> {
    ((any::<usize>(), any::<u8>()), (any::<usize>(), any::<usize>(), any::<usize>()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// After every block the two backends have the same root, scan the same entries and read
    /// the same values at every kept version. The rocksdb state keeps only the latest tree in
    /// memory, so every older version is proved from a tree rebuilt from its values, and those
    /// proofs are the very proofs the in-memory state makes from its kept trees. A prune at a
    /// random point removes the same entries from both and leaves older versions unreadable.
    #[test]
    fn rocks_matches_memory_and_the_model(
        blocks in vec(block_strategy(), 1..9),
        flush_after in 0..9_usize,
        prune in (0..9_usize, any::<u64>()),
        tamper in tamper_strategy(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let rocks = open_rocks_with(dir.path(), StateConfig { tree_versions: 1 });
        let memory = memory();
        let mut models = Vec::new();
        let mut model = Model::new();
        let mut oldest = 0;
        for (version, block) in blocks.iter().enumerate() {
            let version = version as Version;
            let changes = changes_of(block);
            let rocks_root = rocks.apply(version, &changes).unwrap();
            let memory_root = memory.apply(version, &changes).unwrap();
            prop_assert_eq!(rocks_root, memory_root, "roots differ at version {}", version);
            apply_model(&mut model, &changes);
            models.push(model.clone());
            if version as usize == flush_after {
                // From here on, older versions are read from table files, not the memtable.
                rocks.store().flush().unwrap();
            }
            if version as usize == prune.0 {
                let keep_from = prune.1 % (version + 1);
                let stats = rocks.prune(keep_from).unwrap();
                prop_assert_eq!(stats, memory.prune(keep_from).unwrap());
                prop_assert_eq!(rocks.store().value_count().unwrap(),
                    memory.store().value_count() as u64);
                oldest = keep_from;
            }
            prop_assert_eq!(rocks.store().oldest_version().unwrap(), Some(oldest));
            for old in 0..oldest {
                let unavailable = rocks.get_with_proof(&state_key(0), old);
                let unavailable =
                    matches!(unavailable, Err(StoreError::VersionUnavailable { .. }));
                prop_assert!(unavailable, "version {} is pruned", old);
                prop_assert_eq!(rocks.store().root(old).unwrap(), None);
            }
            for old in oldest..=version {
                let root = rocks.root(old).unwrap();
                prop_assert_eq!(root, memory.root(old).unwrap());
                prop_assert_eq!(scan(&**rocks.store(), old), scan(&**memory.store(), old));
                let old_model = &models[old as usize];
                let from_rocks = check_version(&rocks, old, root, old_model, tamper)?;
                let from_memory = check_version(&memory, old, root, old_model, tamper)?;
                prop_assert_eq!(from_rocks, from_memory, "proofs at version {}", old);
            }
        }
        prop_assert_eq!(rocks.latest_version().unwrap(), Some(blocks.len() as u64 - 1));
    }

    /// Two different sequences of blocks that reach the same contents reach the same root: one
    /// block writing everything, against the same writes spread over several blocks in another
    /// order, after decoy writes that are later overwritten or deleted.
    #[test]
    fn root_depends_only_on_the_contents(
        contents in btree_map(0..16_u8, vec(any::<u8>(), 0..4), 0..10),
        decoys in vec((0..16_u8, vec(any::<u8>(), 0..4)), 0..6),
        spread in vec(0..4_usize, 16),
        tamper in tamper_strategy(),
    ) {
        let one_block: StateChanges =
            contents.iter().map(|(k, v)| (state_key(*k), Some(v.clone()))).collect();

        let mut blocks = vec![StateChanges::new(); 6];
        for (k, value) in &decoys {
            blocks[0].insert(state_key(*k), Some(value.clone()));
        }
        // Later blocks are filled in reverse key order, one key per block as `spread` says.
        for (k, value) in contents.iter().rev() {
            blocks[1 + spread[usize::from(*k)]].insert(state_key(*k), Some(value.clone()));
        }
        for (k, _) in &decoys {
            if !contents.contains_key(k) {
                blocks[5].insert(state_key(*k), None);
            }
        }

        let dir_one = tempfile::tempdir().unwrap();
        let dir_many = tempfile::tempdir().unwrap();
        let rocks_one = open_rocks(dir_one.path());
        let rocks_many = open_rocks(dir_many.path());
        let memory_many = memory();
        let root_one = rocks_one.apply(0, &one_block).unwrap();
        let mut root_many = None;
        for (version, block) in blocks.iter().enumerate() {
            let root = rocks_many.apply(version as u64, block).unwrap();
            prop_assert_eq!(root, memory_many.apply(version as u64, block).unwrap());
            root_many = Some(root);
        }
        prop_assert_eq!(Some(root_one), root_many);

        let expected: BTreeMap<_, _> =
            contents.iter().map(|(k, v)| (state_key(*k), v.clone())).collect();
        check_version(&rocks_many, 5, root_one, &expected, tamper)?;
    }
}
