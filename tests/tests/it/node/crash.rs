//! kill -9 under load: nothing committed is lost, and the state is what replaying the committed
//! blocks gives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use altan_node::chain::{Chain, ChainConfig, DataDir};
use altan_node::client;
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::types::{BlockId, HexBytes};
use altan_primitives::{Action, Address, ChainSpec, Transaction};
use altan_runtime::exec::Runtime;
use altan_runtime::state::{MemoryStore, State};
use altan_runtime::vm::VmConfig;
use altan_tests::node::DevNode;
use parity_scale_codec::Encode;

use super::dev_key;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut node = DevNode::start(&data, &[]);
    let rpc = client::http(&node.rpc).unwrap();
    let chain_id = rpc.chain_info().await.unwrap().chain_id;

    // Load: two senders submitting back to back without waiting for receipts.
    let running = Arc::new(AtomicBool::new(true));
    let mut load = Vec::new();
    for sender in [dev_key(7), dev_key(8)] {
        let (rpc, running) = (rpc.clone(), Arc::clone(&running));
        load.push(tokio::spawn(async move {
            let mut nonce = 0;
            while running.load(Ordering::Relaxed) {
                let tx = Transaction {
                    chain_id,
                    nonce,
                    gas_limit: 100_000,
                    gas_price: 1,
                    action: Action::Transfer {
                        to: Address([nonce as u8; 20]),
                        value: 1 + u128::from(nonce),
                    },
                }
                .sign(&sender);
                match rpc.submit(HexBytes(tx.encode())).await {
                    Ok(_) => nonce += 1,
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    let mut final_before = 0;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        final_before = rpc.final_head().await.unwrap().height;
        if final_before >= 50 {
            break;
        }
    }
    assert!(final_before >= 50, "blocks are being produced under load");
    let hash_before = rpc.header(BlockId::Number(final_before)).await.unwrap().unwrap().hash;
    node.kill();
    running.store(false, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }

    // Restart on the same data: everything final before the kill is there, unchanged.
    let mut node = DevNode::start(&data, &[]);
    let rpc = client::http(&node.rpc).unwrap();
    let head = rpc.head().await.unwrap();
    assert!(
        head.height >= final_before,
        "head {} < final before the kill {final_before}",
        head.height
    );
    assert_eq!(rpc.header(BlockId::Number(final_before)).await.unwrap().unwrap().hash, hash_before);
    // And it still makes blocks.
    let receipt = client::send(
        &rpc,
        &dev_key(9),
        Action::Transfer { to: Address([1; 20]), value: 5 },
        Default::default(),
    )
    .await
    .unwrap();
    // A block proposed before the kill (kept in the consensus log with its proposal) may be
    // decided first.
    assert!(receipt.block_height > head.height, "included after the restart");
    node.stop();

    // Replay every committed block on a fresh in-memory state: the same roots, block by block.
    let spec: ChainSpec =
        serde_json::from_str(&std::fs::read_to_string(data.join("spec.json")).unwrap()).unwrap();
    let config = ChainConfig {
        data_dir: DataDir::Path(data.clone()),
        sync_writes: true,
        mempool: Default::default(),
        cache_bytes: 16 << 20,
        free: Default::default(),
    };
    let chain = Chain::open(spec.clone(), &config, None, Default::default()).unwrap();
    let runtime = Runtime::new(spec.chain_id, VmConfig::default()).unwrap();
    let state = State::open(Arc::new(MemoryStore::default())).unwrap();
    let genesis_root = state.apply(0, &Runtime::genesis(&spec).unwrap()).unwrap();
    assert_eq!(genesis_root, chain.header_at(0).unwrap().state_root);
    let head = chain.head();
    let mut transactions = 0;
    for height in 1..=head.height {
        let block = chain.block_at(height).unwrap().unwrap();
        let parent = Arc::new(state.snapshot(height - 1).unwrap());
        let outcome = runtime.execute_block(parent, &block).unwrap();
        let root = state.apply(height, &outcome.changes).unwrap();
        assert_eq!(root, block.header.state_root, "state root of block {height}");
        assert_eq!(outcome.receipts_root, block.header.receipts_root, "receipts of block {height}");
        transactions += block.transactions.len();
    }
    assert!(transactions > 15, "the replay covered the load ({transactions} transactions)");
}
