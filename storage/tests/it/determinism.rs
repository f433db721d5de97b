//! Determinism across backends and restarts: the same blocks give the same roots, receipts and gas
//! on the in-memory state and on rocksdb, and after a restart that loads compiled contracts from
//! the disk cache instead of compiling them.

use std::sync::Arc;

use altan_primitives::{ExecutionStatus, Hash, Receipt};
use altan_runtime::state::{MemoryStore, StateStore};
use altan_runtime::vm::VmConfig;
use altan_storage::{DiskArtifactStore, DiskStore, StoreOptions};

#[path = "../../../runtime/tests/it/common.rs"]
#[allow(dead_code)]
mod chain;

use chain::*;

fn run<S: StateStore>(chain: &mut Chain<S>) -> (Vec<Hash>, Vec<Receipt>) {
    let mut roots = vec![chain.root()];
    let mut receipts = Vec::new();
    for block in mixed_blocks() {
        receipts.extend(chain.execute(block).expect("block executes"));
        roots.push(chain.root());
    }
    (roots, receipts)
}

fn rocks(dir: &std::path::Path) -> Arc<DiskStore> {
    Arc::new(DiskStore::open(dir, &StoreOptions::default()).expect("rocksdb opens"))
}

#[test]
fn memory_and_rocksdb_give_the_same_roots_receipts_and_gas() {
    let dir = tempfile::tempdir().unwrap();
    let (memory_roots, memory_receipts) =
        run(&mut Chain::with_store(Arc::new(MemoryStore::new()), VmConfig::default()));
    let (rocks_roots, rocks_receipts) =
        run(&mut Chain::with_store(rocks(dir.path()), VmConfig::default()));
    assert_eq!(memory_roots, rocks_roots);
    assert_eq!(memory_receipts, rocks_receipts);
    let statuses: Vec<_> = memory_receipts.iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&ExecutionStatus::Success) && statuses.contains(&ExecutionStatus::Revert)
    );
    assert!(statuses.iter().any(|s| matches!(s, ExecutionStatus::Failure(_))), "{statuses:?}");
}

#[test]
fn a_restart_with_a_warm_disk_module_cache_gives_the_same_results() {
    let artifacts_dir = tempfile::tempdir().unwrap();
    let config = || VmConfig {
        artifacts: Some(Arc::new(
            DiskArtifactStore::open(artifacts_dir.path()).expect("artifact dir"),
        )),
        ..VmConfig::default()
    };
    let first_db = tempfile::tempdir().unwrap();
    let mut first = Chain::with_store(rocks(first_db.path()), config());
    let (roots, receipts) = run(&mut first);
    assert_eq!(first.runtime.vm().cache_stats().compiled, 2);
    let last_height = first.height;
    drop(first);

    // The node restarts: the state reopens (its tree rebuilt and checked against the stored
    // root), and the last block re-executes on its parent with contracts loaded from disk.
    let mut reopened = Chain::with_store(rocks(first_db.path()), config());
    assert_eq!(reopened.height, last_height);
    assert_eq!(reopened.root(), *roots.last().unwrap());
    let middle = mixed_blocks().swap_remove(1);
    let parent = Arc::new(reopened.state.snapshot(1).unwrap());
    reopened.height = 1;
    let block = reopened.block(middle);
    let outcome = reopened.runtime.execute_block(parent, &block).unwrap();
    let first_block_receipts = 2;
    assert_eq!(
        outcome.receipts,
        receipts[first_block_receipts..first_block_receipts + outcome.receipts.len()]
    );
    let stats = reopened.runtime.vm().cache_stats();
    assert_eq!(stats.compiled, 0);
    assert!(stats.artifact_hits >= 1);

    // A fresh node replaying from genesis with the warm cache reaches the same roots.
    let second_db = tempfile::tempdir().unwrap();
    let mut replay = Chain::with_store(rocks(second_db.path()), config());
    let (replay_roots, replay_receipts) = run(&mut replay);
    assert_eq!((replay_roots, replay_receipts), (roots, receipts));
    assert_eq!(replay.runtime.vm().cache_stats().compiled, 0);
}
