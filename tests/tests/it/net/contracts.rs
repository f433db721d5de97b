//! A token deployed through one node and used through another: every node ends with the same
//! contract state.

use altan_node::client;
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::types::StatusJson;
use serde_json::json;

use super::{TIMEOUT, start};
use crate::node::{call, deploy_token, dev_key, query};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_used_through_different_nodes_is_the_same_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = start(dir.path());
    let all = devnet.running();
    devnet.wait_final(&all, 1, TIMEOUT).await;
    let (alice, bob) = (dev_key(3), dev_key(4));

    let through_0 = client::http(&devnet.node(0).rpc).unwrap();
    let token = deploy_token(&through_0, &alice, ("Altan", "ALT", 18), 1000).await;
    let deployed = through_0.account(alice.address(), None).await.unwrap();
    assert_eq!(deployed.nonce, 1);
    // Node 2 must know the deployment before it signs alice's next nonce and reads the
    // contract's interface.
    let height = devnet.max_final_height(&[0]).await;
    devnet.wait_final(&all, height, TIMEOUT).await;

    let through_2 = client::http(&devnet.node(2).rpc).unwrap();
    let bob_address = json!(bob.address().to_string());
    let receipt = call(
        &through_2,
        &alice,
        token,
        "transfer",
        &[("to", bob_address.clone()), ("value", json!("250"))],
        0,
    )
    .await;
    assert_eq!(receipt.status, StatusJson::Success, "{receipt:?}");
    devnet.wait_final(&all, receipt.block_height, TIMEOUT).await;
    devnet.assert_agree(&all, receipt.block_height).await;

    let code = through_0.code(token, None).await.unwrap();
    assert!(code.is_some(), "node 0 has no code at {token}");
    for &i in &all {
        let rpc = client::http(&devnet.node(i).rpc).unwrap();
        let name = &devnet.node(i).name;
        assert_eq!(rpc.code(token, None).await.unwrap(), code, "{name}: the token's code");
        let alice_address = json!(alice.address().to_string());
        let balances = (
            query(&rpc, token, "balance_of", &[("owner", alice_address)]).await,
            query(&rpc, token, "balance_of", &[("owner", bob_address.clone())]).await,
        );
        assert_eq!(balances, (json!("750"), json!("250")), "{name}: balances");
        let stored = rpc.receipt(receipt.transaction_id).await.unwrap();
        assert_eq!(stored.as_ref().map(|r| r.block_hash), Some(receipt.block_hash), "{name}");
    }
}
