//! The same block gives the same state root, receipts and gas on every node, every time.

use std::sync::Arc;

use altan_primitives::{Action, ExecutionStatus, Hash, Receipt, Transaction};
use altan_runtime::state::MemoryStore;
use altan_runtime::vm::{MemoryArtifactStore, VmConfig};
use proptest::prelude::*;

use crate::common::*;

fn run(chain: &mut Chain<MemoryStore>) -> (Vec<Hash>, Vec<Receipt>) {
    let mut roots = Vec::new();
    let mut receipts = Vec::new();
    for block in mixed_blocks() {
        receipts.extend(chain.execute(block).unwrap());
        roots.push(chain.root());
    }
    (roots, receipts)
}

#[test]
fn the_same_blocks_give_the_same_roots_receipts_and_gas() {
    let (roots_a, receipts_a) = run(&mut Chain::new());
    let (roots_b, receipts_b) = run(&mut Chain::new());
    assert_eq!(roots_a, roots_b);
    assert_eq!(receipts_a, receipts_b);
    let statuses: Vec<_> = receipts_a.iter().map(|r| r.status).collect();
    assert!(statuses.contains(&ExecutionStatus::Success));
    assert!(statuses.contains(&ExecutionStatus::Revert));
    assert!(statuses.iter().any(|s| matches!(s, ExecutionStatus::Failure(_))), "{statuses:?}");
}

#[test]
fn a_restarted_node_with_a_warm_artifact_cache_gives_the_same_results() {
    let artifacts = Arc::new(MemoryArtifactStore::default());
    let config = VmConfig { artifacts: Some(artifacts.clone()), ..VmConfig::default() };
    let mut first = Chain::with_store(Arc::new(MemoryStore::new()), config.clone());
    let (roots_a, receipts_a) = run(&mut first);
    assert_eq!(first.runtime.vm().cache_stats().compiled, 2);
    assert_eq!(artifacts.len(), 2);

    // A new process: cold memory cache, warm artifact store; nothing is compiled again.
    let mut second = Chain::with_store(Arc::new(MemoryStore::new()), config);
    let (roots_b, receipts_b) = run(&mut second);
    assert_eq!(roots_a, roots_b);
    assert_eq!(receipts_a, receipts_b);
    let stats = second.runtime.vm().cache_stats();
    assert_eq!(stats.compiled, 0);
    assert_eq!(stats.artifact_hits, 2);
}

#[test]
fn a_vm_that_does_not_save_artifacts_loads_them_and_gives_the_same_results() {
    let artifacts = Arc::new(MemoryArtifactStore::default());
    let reading = VmConfig {
        artifacts: Some(artifacts.clone()),
        save_artifacts: false,
        ..VmConfig::default()
    };
    // Compiling without saving leaves the store empty (a node's VM of free work).
    let mut reader = Chain::with_store(Arc::new(MemoryStore::new()), reading.clone());
    let (roots_a, receipts_a) = run(&mut reader);
    assert_eq!(reader.runtime.vm().cache_stats().compiled, 2);
    assert!(artifacts.is_empty(), "nothing was saved");

    // Once the block VM saved them, the reading VM loads them instead of compiling.
    let saving = VmConfig { artifacts: Some(artifacts.clone()), ..VmConfig::default() };
    run(&mut Chain::with_store(Arc::new(MemoryStore::new()), saving));
    assert_eq!(artifacts.len(), 2);
    let mut reader = Chain::with_store(Arc::new(MemoryStore::new()), reading);
    let (roots_b, receipts_b) = run(&mut reader);
    assert_eq!((roots_a, receipts_a), (roots_b, receipts_b));
    let stats = reader.runtime.vm().cache_stats();
    assert_eq!((stats.compiled, stats.artifact_hits), (0, 2));
}

#[test]
fn a_vm_with_a_small_instance_pool_runs_what_fits_it() {
    // One transaction's worth of instances (a node's free VM with one thread) runs the blocks.
    let config = VmConfig { instances: VmConfig::instances_for(1), ..VmConfig::default() };
    let (roots_a, receipts_a) = run(&mut Chain::with_store(Arc::new(MemoryStore::new()), config));
    let (roots_b, receipts_b) = run(&mut Chain::new());
    assert_eq!((roots_a, receipts_a), (roots_b, receipts_b));
}

#[test]
fn a_corrupt_artifact_is_recompiled_not_trusted() {
    use altan_runtime::vm::ArtifactStore;
    struct Corrupting(MemoryArtifactStore);
    impl ArtifactStore for Corrupting {
        fn load(&self, key: &Hash) -> Result<Option<Vec<u8>>, altan_runtime::state::StoreError> {
            Ok(self.0.load(key)?.map(|mut bytes| {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0xff;
                bytes.truncate(middle + 1);
                bytes
            }))
        }
        fn save(
            &self,
            key: &Hash,
            artifact: &[u8],
        ) -> Result<(), altan_runtime::state::StoreError> {
            self.0.save(key, artifact)
        }
    }
    let artifacts = Arc::new(Corrupting(MemoryArtifactStore::default()));
    let config = VmConfig { artifacts: Some(artifacts), ..VmConfig::default() };
    let (roots_a, receipts_a) =
        run(&mut Chain::with_store(Arc::new(MemoryStore::new()), config.clone()));
    let mut second = Chain::with_store(Arc::new(MemoryStore::new()), config);
    let (roots_b, receipts_b) = run(&mut second);
    assert_eq!((roots_a, receipts_a), (roots_b, receipts_b));
    assert_eq!(second.runtime.vm().cache_stats().compiled, 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Random token and native transfers among four accounts: two nodes agree on every root, and
    /// the native supply is conserved (fees move to the proposer, nothing is created or lost).
    #[test]
    fn random_transfers_agree_and_conserve_supply(ops in prop::collection::vec((0u8..4, 0u8..4, 0u64..2_000, any::<bool>()), 1..24)) {
        let mut a = Chain::new();
        let mut b = Chain::new();
        let deployer = key(0);
        let token = a.deploy_with(&deployer, token(), 10_000u64.to_le_bytes().to_vec()).contract_address.unwrap();
        b.deploy_with(&deployer, crate::common::token(), 10_000u64.to_le_bytes().to_vec());
        for chunk in ops.chunks(4) {
            let mut nonces = [0u64; 4];
            for (i, nonce) in nonces.iter_mut().enumerate() {
                *nonce = a.nonce(&key(i as u8));
            }
            let txs: Vec<_> = chunk.iter().map(|&(from, to, amount, native)| {
                let signer = key(from);
                let action = if native {
                    Action::Transfer { to: key(to).address(), value: u128::from(amount) }
                } else {
                    Action::Call { contract: token, input: transfer_input(&key(to).address(), amount), value: 0 }
                };
                let nonce = nonces[from as usize];
                nonces[from as usize] += 1;
                Transaction { chain_id: CHAIN_ID, nonce, gas_limit: 1_000_000, gas_price: GAS_PRICE, action }.sign(&signer)
            }).collect();
            let ra = a.execute(txs.clone()).unwrap();
            let rb = b.execute(txs).unwrap();
            prop_assert_eq!(ra, rb);
            prop_assert_eq!(a.root(), b.root());
        }
        let mut total: u128 = (0..4).map(|i| a.account(&key(i).address()).balance).sum();
        total += a.account(&a.proposer).balance + a.account(&token).balance;
        prop_assert_eq!(total, 4 * FUNDS);
    }
}
