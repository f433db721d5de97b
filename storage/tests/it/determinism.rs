//! Determinism across backends and restarts: the same blocks give the same roots, receipts and gas
//! on the in-memory state and on rocksdb, and after a restart that loads compiled contracts from
//! the disk cache instead of compiling them.

use std::sync::Arc;

use altan_primitives::{
    Action, Address, ExecutionStatus, Hash, Receipt, SignedTransaction, Transaction, blake3,
};
use altan_runtime::state::{MemoryStore, StateStore};
use altan_runtime::vm::{VmConfig, contract_address};
use altan_storage::{DiskArtifactStore, RocksStore, StoreOptions};

#[path = "../../../runtime/tests/it/common.rs"]
#[allow(dead_code)]
mod chain;

use chain::*;

/// Blocks that deploy contracts, call them, revert, fail and move native value.
fn blocks() -> Vec<Vec<SignedTransaction>> {
    let (alice, bob) = (key(0), key(1));
    let salt = Hash([5; 32]);
    let token_code = token();
    let token = contract_address(&alice.address(), &blake3(&token_code), &salt);
    let forwarder_code = forwarder(false);
    let forwarder = contract_address(&bob.address(), &blake3(&forwarder_code), &salt);
    let tx = |signer: &altan_primitives::SecretKey, nonce: u64, action: Action, gas: u64| {
        Transaction { chain_id: CHAIN_ID, nonce, gas_limit: gas, gas_price: GAS_PRICE, action }
            .sign(signer)
    };
    vec![
        vec![
            tx(
                &alice,
                0,
                Action::Deploy {
                    code: token_code,
                    input: 10_000u64.to_le_bytes().to_vec(),
                    value: 0,
                    salt,
                },
                50_000_000,
            ),
            tx(
                &bob,
                0,
                Action::Deploy { code: forwarder_code, input: vec![], value: 7, salt },
                30_000_000,
            ),
        ],
        vec![
            tx(
                &alice,
                1,
                Action::Call {
                    contract: token,
                    input: transfer_input(&bob.address(), 40),
                    value: 0,
                },
                1_000_000,
            ),
            tx(
                &bob,
                1,
                Action::Call {
                    contract: token,
                    input: transfer_input(&alice.address(), 500),
                    value: 0,
                },
                1_000_000,
            ),
            tx(
                &bob,
                2,
                Action::Call {
                    contract: forwarder,
                    input: forward_input(&token, 200_000, &balance_input(&bob.address())),
                    value: 0,
                },
                1_000_000,
            ),
            tx(&alice, 2, Action::Transfer { to: Address([9; 20]), value: 1_234 }, 100_000),
            tx(
                &alice,
                3,
                Action::Call {
                    contract: token,
                    input: transfer_input(&bob.address(), 1),
                    value: 0,
                },
                8_000,
            ),
        ],
        vec![],
    ]
}

fn run<S: StateStore>(chain: &mut Chain<S>) -> (Vec<Hash>, Vec<Receipt>) {
    let mut roots = vec![chain.root()];
    let mut receipts = Vec::new();
    for block in blocks() {
        receipts.extend(chain.execute(block).expect("block executes"));
        roots.push(chain.root());
    }
    (roots, receipts)
}

fn rocks(dir: &std::path::Path) -> Arc<RocksStore> {
    Arc::new(RocksStore::open(dir, &StoreOptions::default()).expect("rocksdb opens"))
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
    let middle = blocks().swap_remove(1);
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
