//! Four validators finalize blocks together.

use std::collections::BTreeSet;

use altan_node::client;
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::types::BlockId;

use super::{TIMEOUT, VALIDATORS, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_finalize_the_same_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start(dir.path());
    let all = devnet.running();
    assert_eq!(all.len(), VALIDATORS);

    // Ten blocks: with four equal stakes, a single proposer for all of them would mean the
    // leader schedule is not followed (or only one validator's proposals get through).
    let target = 10;
    devnet.wait_final(&all, target, TIMEOUT).await;
    devnet.assert_agree(&all, target).await;

    let rpc = client::http(&devnet.node(0).rpc).unwrap();
    let info = rpc.chain_info().await.unwrap();
    assert_eq!(info.chain_id, devnet.chain_id);
    let validators: BTreeSet<_> = devnet.validators.iter().map(|v| v.address).collect();
    let mut proposers = BTreeSet::new();
    for height in 1..=target {
        let header = rpc.header(BlockId::Number(height)).await.unwrap().unwrap();
        assert!(validators.contains(&header.proposer), "block {height}: {header:?}");
        proposers.insert(header.proposer);
        let certificate = rpc.certificate(height).await.unwrap();
        assert!(certificate.is_some(), "final block {height} has no commit certificate");
    }
    assert!(proposers.len() > 1, "one validator proposed blocks 1..={target}: {proposers:?}");
    for &i in &all {
        let peers = client::http(&devnet.node(i).rpc).unwrap().peers().await.unwrap();
        assert!(!peers.is_empty(), "{} has no peers", devnet.node(i).name);
    }
}
