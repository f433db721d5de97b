//! Every RPC method, subscriptions over WebSocket included.

use std::time::Duration;

use altan_node::client::{self, GasSettings};
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::openrpc::METHODS;
use altan_node::rpc::types::{BlockId, DryRunRequest, EventFilter, HexBytes, StatusJson};
use altan_primitives::{Action, Address, Transaction};
use altan_runtime::state::{StateKey, StateProof};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use parity_scale_codec::Encode;
use serde_json::{Value, json};

use super::{call, deploy_token, dev_key, query, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers_as_documented() {
    let (node, _dir) = start();
    let rpc = client::http(&node.rpc).unwrap();
    let ws = client::ws(&node.rpc).await.unwrap();
    let (alice, bob) = (dev_key(1), dev_key(2));

    // Subscriptions first, so that they see the blocks that follow.
    let mut heads = ws.subscribe_new_heads().await.unwrap();
    let mut finals = ws.subscribe_final_heads().await.unwrap();

    let info = rpc.chain_info().await.unwrap();
    assert_eq!(info.chain_id, altan_node::dev::DEV_CHAIN_ID);
    let genesis = rpc.header(BlockId::Number(0)).await.unwrap().unwrap();
    assert_eq!(genesis.hash, info.genesis_hash);

    // A token, then a transfer whose event the event subscription must see.
    let token = deploy_token(&rpc, &alice, ("T", "T", 0), 1000).await;
    let mut events = ws
        .subscribe_events(EventFilter {
            contract: Some(token),
            topics: vec![],
            from_block: None,
            to_block: None,
            limit: None,
        })
        .await
        .unwrap();
    let receipt = call(
        &rpc,
        &alice,
        token,
        "transfer",
        &[("to", json!(bob.address().to_string())), ("value", json!("40"))],
        0,
    )
    .await;
    assert_eq!(receipt.status, StatusJson::Success);
    assert_eq!(receipt.events.len(), 1);

    let within = Duration::from_secs(10);
    let head = tokio::time::timeout(within, heads.next()).await.unwrap().unwrap().unwrap();
    assert!(head.height >= 1);
    let final_head = tokio::time::timeout(within, finals.next()).await.unwrap().unwrap().unwrap();
    assert!(final_head.height >= 1);
    let event = tokio::time::timeout(within, events.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(event.contract, token);
    assert_eq!(event.block_height, Some(receipt.block_height));
    assert_eq!(event.transaction_id, Some(receipt.transaction_id));

    // Heads, blocks, headers, certificates.
    let latest = rpc.head().await.unwrap();
    assert_eq!(latest.height, receipt.block_height);
    assert_eq!(rpc.final_head().await.unwrap(), latest, "a dev block is final at once");
    let by_number =
        rpc.block(BlockId::Number(receipt.block_height), Some(true)).await.unwrap().unwrap();
    let by_hash = rpc.block(BlockId::Hash(receipt.block_hash), Some(true)).await.unwrap().unwrap();
    assert_eq!(by_number, by_hash);
    assert!(by_number.is_final);
    assert_eq!(by_number.transaction_ids, vec![receipt.transaction_id]);
    assert_eq!(by_number.transactions.as_ref().unwrap()[0].from, Some(alice.address()));
    assert_eq!(rpc.block(BlockId::Latest, None).await.unwrap().unwrap().header, latest);
    assert_eq!(rpc.header(BlockId::Final).await.unwrap().unwrap(), latest);
    assert!(rpc.block(BlockId::Number(latest.height + 100), None).await.unwrap().is_none());
    let certificate = rpc.certificate(latest.height).await.unwrap().expect("a certificate");
    let certificate: altan_primitives::Certificate =
        parity_scale_codec::Decode::decode(&mut &certificate.0[..]).unwrap();
    assert_eq!(certificate.block_hash, latest.hash);

    // Transactions and receipts.
    let tx = rpc.transaction(receipt.transaction_id).await.unwrap().unwrap();
    assert_eq!(tx.block_height, Some(receipt.block_height));
    assert_eq!(rpc.receipt(receipt.transaction_id).await.unwrap().unwrap(), receipt);
    assert!(rpc.receipt(altan_primitives::Hash([7; 32])).await.unwrap().is_none());

    // Accounts, code, interface, storage with proof.
    let account = rpc.account(alice.address(), None).await.unwrap();
    assert_eq!(account.nonce, 2);
    assert_eq!(account.pending_nonce, Some(2));
    let at_genesis = rpc.account(alice.address(), Some(BlockId::Number(0))).await.unwrap();
    assert_eq!(at_genesis.balance.0, altan_node::dev::DEV_BALANCE);
    assert!(account.balance.0 < at_genesis.balance.0, "fees were charged");
    let code = rpc.code(token, None).await.unwrap().unwrap();
    assert_eq!(code.0, altan_tests::wasm::get("token"));
    assert!(rpc.code(bob.address(), None).await.unwrap().is_none());
    let interface = rpc.interface(token, None).await.unwrap();
    assert!(interface.methods.iter().any(|m| m.name == "transfer"));
    assert!(interface.events.iter().any(|e| e.name == "Transfer"));
    // The token keeps its total supply in a field whose key is one prefix byte; prove it and an
    // absent key against the state root.
    for key in [vec![0u8], vec![0xEE, 0xEE]] {
        let storage = rpc.storage(token, HexBytes(key.clone()), None).await.unwrap();
        let proof = StateProof::from_bytes(&storage.proof.0).unwrap();
        let state_key = StateKey::storage(&token, &key);
        let value = storage.value.as_ref().map(|v| v.0.as_slice());
        proof.verify(latest.state_root, &state_key, value).unwrap();
        assert_eq!(storage.state_root, latest.state_root);
        if let Some(value) = value {
            let mut tampered = value.to_vec();
            tampered[0] ^= 1;
            assert!(proof.verify(latest.state_root, &state_key, Some(&tampered)).is_err());
        }
    }

    // Queries, dry runs and estimates.
    assert_eq!(
        query(&rpc, token, "balance_of", &[("owner", json!(bob.address().to_string()))]).await,
        json!("40")
    );
    let input = super::input_for(
        &rpc,
        token,
        "transfer",
        &[("to", json!(bob.address().to_string())), ("value", json!("1"))],
    )
    .await;
    let unsigned = Transaction {
        chain_id: info.chain_id,
        nonce: 2,
        gas_limit: 1_000_000,
        gas_price: 1,
        action: Action::Call { contract: token, input: input.clone(), value: 0 },
    };
    let dry = rpc
        .dry_run(DryRunRequest {
            from: Some(alice.address()),
            transaction: HexBytes(unsigned.encode()),
        })
        .await
        .unwrap();
    assert_eq!(dry.status, StatusJson::Success);
    assert_eq!(dry.events.len(), 1);
    let signed = unsigned.clone().sign(&alice);
    let signed_dry = rpc
        .dry_run(DryRunRequest { from: None, transaction: HexBytes(signed.encode()) })
        .await
        .unwrap();
    assert_eq!(signed_dry.gas_used, dry.gas_used);
    let estimate = rpc
        .estimate_gas(DryRunRequest {
            from: Some(alice.address()),
            transaction: HexBytes(unsigned.encode()),
        })
        .await
        .unwrap();
    assert_eq!(estimate, dry.gas_used);
    assert_eq!(
        query(&rpc, token, "balance_of", &[("owner", json!(bob.address().to_string()))]).await,
        json!("40"),
        "a dry run keeps nothing"
    );
    // A dry run of a transfer bob cannot afford reverts, and estimating it says why.
    let too_much = super::input_for(
        &rpc,
        token,
        "transfer",
        &[("to", json!(alice.address().to_string())), ("value", json!("41"))],
    )
    .await;
    let failing = Transaction {
        nonce: 0,
        action: Action::Call { contract: token, input: too_much, value: 0 },
        ..unsigned.clone()
    };
    let request =
        DryRunRequest { from: Some(bob.address()), transaction: HexBytes(failing.encode()) };
    assert_eq!(rpc.dry_run(request.clone()).await.unwrap().status, StatusJson::Revert);
    let error = rpc.estimate_gas(request).await.unwrap_err().to_string();
    assert!(error.contains("3001") && error.contains("insufficient"), "{error}");

    // Events by contract, by topic and by range.
    let all = rpc
        .events(EventFilter {
            contract: Some(token),
            topics: vec![],
            from_block: None,
            to_block: None,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "the mint at deployment and the transfer");
    let transfer_topic = all[0].topics[0];
    let mut to_bob = [0u8; 32];
    to_bob[..20].copy_from_slice(bob.address().as_bytes());
    let filtered = rpc
        .events(EventFilter {
            contract: Some(token),
            topics: vec![Some(transfer_topic), None, Some(altan_primitives::Hash(to_bob))],
            from_block: None,
            to_block: None,
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0], event);
    let in_range = rpc
        .events(EventFilter {
            contract: None,
            topics: vec![],
            from_block: Some(receipt.block_height),
            to_block: Some(receipt.block_height),
            limit: None,
        })
        .await
        .unwrap();
    assert_eq!(in_range, filtered);
    let limited = rpc
        .events(EventFilter {
            contract: Some(token),
            topics: vec![],
            from_block: None,
            to_block: None,
            limit: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    let too_long = rpc
        .events(EventFilter {
            contract: None,
            topics: vec![],
            from_block: Some(0),
            to_block: Some(5_000),
            limit: None,
        })
        .await
        .unwrap_err();
    assert!(too_long.to_string().contains("2002"), "{too_long}");

    // A batch submission, and a pending transaction.
    let gapped = Transaction {
        nonce: 5,
        ..Transaction {
            chain_id: info.chain_id,
            nonce: 0,
            gas_limit: 100_000,
            gas_price: 1,
            action: Action::Transfer { to: Address::ZERO, value: 1 },
        }
    }
    .sign(&bob);
    let results =
        rpc.submit_batch(vec![HexBytes(gapped.encode()), HexBytes(vec![1, 2, 3])]).await.unwrap();
    assert_eq!(results[0].id, Some(gapped.id()));
    assert_eq!(results[1].error.as_ref().unwrap().code, altan_node::rpc::error::TX_MALFORMED);
    let pending = rpc.transaction(gapped.id()).await.unwrap().unwrap();
    assert_eq!(pending.block_height, None);

    // Staking: the dev chain's one validator, leading every height.
    let validators = rpc.validators(None).await.unwrap();
    assert_eq!(validators.epoch, 0);
    assert_eq!(validators.validators.len(), 1);
    assert_eq!(validators.validators[0].address, dev_key(0).address());
    assert_eq!(validators.total_power, validators.validators[0].power);
    let leaders = rpc.leader_schedule(1, 10).await.unwrap();
    assert_eq!(leaders.len(), 10);
    assert!(leaders.iter().all(|l| l.index == 0 && l.address == dev_key(0).address()));
    let code = |error: jsonrpsee::core::ClientError| match error {
        jsonrpsee::core::ClientError::Call(object) => object.code(),
        other => panic!("expected a JSON-RPC error, got {other}"),
    };
    assert_eq!(code(rpc.leader_schedule(1, 5_000).await.unwrap_err()), -32602);
    assert_eq!(
        code(rpc.leader_schedule(1_000_000, 1).await.unwrap_err()),
        altan_node::rpc::error::NO_VALIDATOR_SET
    );

    // System.
    let health = rpc.health().await.unwrap();
    assert!(health.ok);
    assert_eq!(health.height, latest.height);
    assert_eq!(health.mempool, 1);
    assert!(rpc.peers().await.unwrap().is_empty());
    assert_eq!(rpc.version().await.unwrap().host_abi, "altan_v1");

    // rpc.discover lists every method, and every method it lists exists.
    let document: Value = rpc.request("rpc.discover", rpc_params![]).await.unwrap();
    let names: Vec<&str> = document["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, METHODS.iter().map(|m| m.name).collect::<Vec<_>>());
    for name in names {
        let answer: Result<Value, _> = rpc.request(name, rpc_params![]).await;
        if let Err(jsonrpsee::core::ClientError::Call(error)) = answer {
            assert_ne!(error.code(), -32601, "{name} is documented but not served");
        }
    }

    // Metrics.
    let metrics = http_get(&node.metrics);
    for name in [
        "altan_chain_height",
        "altan_chain_final_height",
        "altan_mempool_size",
        "altan_chain_transactions_total",
        "altan_chain_block_execution_seconds",
        "altan_network_peers",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    let _ = GasSettings::default();
}

/// A plain HTTP GET of `url` (http://host:port/path) over a TCP socket.
pub fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) =
        rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}
