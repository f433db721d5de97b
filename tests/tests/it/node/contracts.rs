//! Every example contract deployed and used through a node, over RPC.

use altan_node::client;
use altan_node::interface::decode_revert;
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::types::StatusJson;
use serde_json::json;

use super::{call, deploy, deploy_token, dev_key, query, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_contract_works_through_the_node() {
    let (node, _dir) = start();
    let rpc = client::http(&node.rpc).unwrap();
    let (alice, bob, carol) = (dev_key(3), dev_key(4), dev_key(5));
    let address = |k: &altan_primitives::SecretKey| json!(k.address().to_string());

    // counter
    let counter = deploy(&rpc, &alice, "counter", &[("start", json!("10"))], 0).await;
    let receipt = call(&rpc, &alice, counter, "increment", &[("by", json!("5"))], 0).await;
    assert_eq!(receipt.status, StatusJson::Success);
    assert_eq!(query(&rpc, counter, "get", &[]).await, json!("15"));

    // token
    let token = deploy_token(&rpc, &alice, ("Altan", "ALT", 18), 1000).await;
    assert_eq!(query(&rpc, token, "symbol", &[]).await, json!("ALT"));
    call(&rpc, &alice, token, "approve", &[("spender", address(&bob)), ("value", json!("300"))], 0)
        .await;
    let moved = call(
        &rpc,
        &bob,
        token,
        "transfer_from",
        &[("from", address(&alice)), ("to", address(&carol)), ("value", json!("200"))],
        0,
    )
    .await;
    assert_eq!(moved.status, StatusJson::Success);
    assert_eq!(query(&rpc, token, "balance_of", &[("owner", address(&carol))]).await, json!("200"));
    assert_eq!(
        query(&rpc, token, "allowance", &[("owner", address(&alice)), ("spender", address(&bob))])
            .await,
        json!("100")
    );
    // A revert comes back with the contract's error, and the fee is still charged.
    let before = rpc.account(bob.address(), None).await.unwrap();
    let refused =
        call(&rpc, &bob, token, "transfer", &[("to", address(&carol)), ("value", json!("1"))], 0)
            .await;
    assert_eq!(refused.status, StatusJson::Revert);
    let interface = rpc.interface(token, None).await.unwrap();
    let revert = decode_revert(Some(&interface), &refused.output.0).unwrap();
    assert!(revert["message"].as_str().unwrap().contains("balance"), "{revert}");
    let after = rpc.account(bob.address(), None).await.unwrap();
    assert!(after.balance.0 < before.balance.0);
    assert_eq!(after.nonce, before.nonce + 1);

    // nft
    let nft =
        deploy(&rpc, &alice, "nft", &[("name", json!("Art")), ("symbol", json!("ART"))], 0).await;
    let minted = call(
        &rpc,
        &alice,
        nft,
        "mint",
        &[("to", address(&bob)), ("token_id", json!("7")), ("uri", json!("ipfs://seven"))],
        0,
    )
    .await;
    assert_eq!(minted.status, StatusJson::Success);
    assert_eq!(query(&rpc, nft, "owner_of", &[("token_id", json!("7"))]).await, address(&bob));
    assert_eq!(
        query(&rpc, nft, "token_uri", &[("token_id", json!("7"))]).await,
        json!("ipfs://seven")
    );

    // multisig: two of three owners move funds it holds.
    let owners = json!([
        alice.address().to_string(),
        bob.address().to_string(),
        carol.address().to_string()
    ]);
    let multisig =
        deploy(&rpc, &alice, "multisig", &[("owners", owners), ("threshold", json!("2"))], 0).await;
    assert_eq!(query(&rpc, multisig, "threshold", &[]).await, json!(2));
    call(&rpc, &alice, multisig, "deposit", &[], 1_000).await;
    let payee = altan_primitives::Address([0x42; 20]);
    let proposed = call(
        &rpc,
        &alice,
        multisig,
        "propose",
        &[
            ("to", json!(payee.to_string())),
            ("value", json!("600")),
            ("input", json!("0x")),
            ("gas", json!("0")),
        ],
        0,
    )
    .await;
    assert_eq!(proposed.status, StatusJson::Success);
    let id = json!("0");
    call(&rpc, &alice, multisig, "confirm", &[("id", id.clone())], 0).await;
    call(&rpc, &bob, multisig, "confirm", &[("id", id.clone())], 0).await;
    let executed = call(&rpc, &carol, multisig, "execute", &[("id", id)], 0).await;
    assert_eq!(executed.status, StatusJson::Success, "{executed:?}");
    assert_eq!(rpc.account(payee, None).await.unwrap().balance.0, 600);

    // escrow: the buyer funds it at deployment, the arbiter releases to the seller.
    let deadline = altan_node::now_ms() + 3_600_000;
    let seller = altan_primitives::Address([0x55; 20]);
    let escrow = deploy(
        &rpc,
        &alice,
        "escrow",
        &[
            ("seller", json!(seller.to_string())),
            ("arbiter", address(&carol)),
            ("deadline_ms", json!(deadline.to_string())),
        ],
        5_000,
    )
    .await;
    let released = call(&rpc, &carol, escrow, "release", &[], 0).await;
    assert_eq!(released.status, StatusJson::Success, "{released:?}");
    assert_eq!(rpc.account(seller, None).await.unwrap().balance.0, 5_000);
}
