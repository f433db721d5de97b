//! Bad input from outside gets the documented error, changes nothing, and the node keeps
//! serving.

use std::io::{Read, Write};

use altan_node::client;
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::error::*;
use altan_node::rpc::types::HexBytes;
use altan_primitives::{Action, Address, Signature, Transaction};
use jsonrpsee::core::ClientError;
use parity_scale_codec::Encode;
use serde_json::{Value, json};

use super::{dev_key, start};

/// POSTs a raw body and returns the parsed JSON answer (or the HTTP status line if none).
fn post(rpc: &str, body: &str) -> Value {
    let host = rpc.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|_| json!({ "status": head.lines().next() }))
}

fn code_of(answer: &Value) -> i64 {
    answer["error"]["code"].as_i64().unwrap_or_else(|| panic!("no error in {answer}"))
}

fn call_code(error: ClientError) -> i32 {
    match error {
        ClientError::Call(object) => object.code(),
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_documented_errors() {
    let (node, _dir) = start();
    let rpc = client::http(&node.rpc).unwrap();
    let info = rpc.chain_info().await.unwrap();
    let alice = dev_key(6);
    let transfer = |nonce: u64| Transaction {
        chain_id: info.chain_id,
        nonce,
        gas_limit: 100_000,
        gas_price: 1,
        action: Action::Transfer { to: Address([9; 20]), value: 1 },
    };
    let submit = |bytes: Vec<u8>| {
        let rpc = rpc.clone();
        async move { rpc.submit(HexBytes(bytes)).await.map_err(call_code) }
    };

    // JSON-RPC framing.
    assert_eq!(code_of(&post(&node.rpc, "{\"jsonrpc\": \"2.0\", \"method\": ")), -32700);
    assert_eq!(
        code_of(&post(&node.rpc, r#"{"jsonrpc":"2.0","id":1,"method":"chain_nope","params":[]}"#)),
        -32601
    );
    assert_eq!(
        code_of(&post(
            &node.rpc,
            r#"{"jsonrpc":"2.0","id":1,"method":"state_getAccount","params":[42]}"#
        )),
        -32602
    );
    assert_eq!(
        code_of(&post(
            &node.rpc,
            r#"{"jsonrpc":"2.0","id":1,"method":"chain_getBlock","params":["yesterday"]}"#
        )),
        -32602
    );
    assert_eq!(
        code_of(&post(
            &node.rpc,
            r#"{"jsonrpc":"2.0","id":1,"method":"tx_submit","params":["zz"]}"#
        )),
        -32602
    );
    let batch: Vec<Value> = (0..300)
        .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"chain_head","params":[]}))
        .collect();
    let answer = post(&node.rpc, &serde_json::to_string(&batch).unwrap());
    assert_eq!(code_of(&answer), -32010, "{answer}");

    // Transactions.
    assert_eq!(submit(vec![0xff; 10]).await, Err(TX_MALFORMED));
    let mut high_s = transfer(0).sign(&alice);
    high_s.signature = Signature([0xff; 65]);
    assert_eq!(submit(high_s.encode()).await, Err(TX_BAD_SIGNATURE));
    let wrong_chain = Transaction { chain_id: info.chain_id + 1, ..transfer(0) }.sign(&alice);
    assert_eq!(submit(wrong_chain.encode()).await, Err(TX_WRONG_CHAIN));
    let too_large = Transaction {
        action: Action::Deploy {
            code: vec![0; 200 * 1024],
            input: vec![],
            value: 0,
            salt: Default::default(),
        },
        ..transfer(0)
    }
    .sign(&alice);
    assert_eq!(submit(too_large.encode()).await, Err(TX_TOO_LARGE));
    let poor = altan_node::keys::generate();
    assert_eq!(submit(transfer(0).sign(&poor).encode()).await, Err(TX_INSUFFICIENT_BALANCE));
    let low_gas = Transaction { gas_limit: 10, ..transfer(0) }.sign(&alice);
    assert_eq!(submit(low_gas.encode()).await, Err(TX_BAD_GAS_LIMIT));

    // Nonces: a gap is held back until filled; one too far ahead and a used one are refused.
    let held = transfer(1).sign(&alice);
    let held_id = submit(held.encode()).await.unwrap();
    assert_eq!(submit(held.encode()).await, Err(TX_ALREADY_KNOWN));
    assert_eq!(submit(transfer(1_000_000).sign(&alice).encode()).await, Err(TX_NONCE_TOO_HIGH));
    let cheaper = Transaction { gas_price: 1, gas_limit: 100_001, ..transfer(1) }.sign(&alice);
    assert_eq!(submit(cheaper.encode()).await, Err(TX_UNDERPRICED));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(rpc.receipt(held_id).await.unwrap().is_none(), "a gapped transaction waits");
    let first = submit(transfer(0).sign(&alice).encode()).await.unwrap();
    client::wait_for_receipt(&rpc, held_id, std::time::Duration::from_secs(10)).await.unwrap();
    assert!(rpc.receipt(first).await.unwrap().is_some());
    assert_eq!(submit(transfer(0).sign(&alice).encode()).await, Err(TX_NONCE_TOO_LOW));
    assert_eq!(
        rpc.account(alice.address(), None).await.unwrap().nonce,
        2,
        "only the valid ones ran"
    );

    // Subscriptions are limited per connection.
    let ws = client::ws(&node.rpc).await.unwrap();
    let mut subscriptions = Vec::new();
    let mut refused = None;
    for _ in 0..100 {
        match ws.subscribe_new_heads().await {
            Ok(subscription) => subscriptions.push(subscription),
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    assert_eq!(subscriptions.len(), 64, "the documented limit");
    let refused = refused.expect("the 65th subscription is refused");
    assert_eq!(call_code(refused), -32006);

    // The node still serves.
    assert!(rpc.health().await.unwrap().ok);
}

/// Parameters a method does not take are refused with -32602, alone and inside a batch (the
/// other calls of the batch are answered), instead of being ignored.
#[tokio::test]
async fn parameters_a_method_does_not_take_are_refused() {
    let (node, _dir) = start();
    let answer =
        post(&node.rpc, r#"{"jsonrpc":"2.0","id":1,"method":"chain_head","params":[1,2,3]}"#);
    assert_eq!(
        code_of(&answer),
        i64::from(jsonrpsee::types::error::INVALID_PARAMS_CODE),
        "{answer}"
    );
    let named =
        r#"{"jsonrpc":"2.0","id":1,"method":"chain_getBlock","params":{"at":0,"fulll":true}}"#;
    let answer = post(&node.rpc, named);
    assert_eq!(
        code_of(&answer),
        i64::from(jsonrpsee::types::error::INVALID_PARAMS_CODE),
        "{answer}"
    );
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"chain_head","params":[]},
                    {"jsonrpc":"2.0","id":2,"method":"chain_head","params":[1]}]"#;
    let answers = post(&node.rpc, batch);
    let answers = answers.as_array().unwrap_or_else(|| panic!("a batch answer: {answers}"));
    let by_id = |id: i64| answers.iter().find(|a| a["id"] == id).unwrap().clone();
    assert!(by_id(1)["result"]["height"].is_u64(), "{answers:?}");
    assert_eq!(code_of(&by_id(2)), i64::from(jsonrpsee::types::error::INVALID_PARAMS_CODE));
    // The parameters a method takes still work, by position and by name.
    let answer =
        post(&node.rpc, r#"{"jsonrpc":"2.0","id":1,"method":"chain_getBlock","params":[0,true]}"#);
    assert_eq!(answer["result"]["header"]["height"], 0, "{answer}");
    let answer =
        post(&node.rpc, r#"{"jsonrpc":"2.0","id":1,"method":"chain_getBlock","params":{"at":0}}"#);
    assert_eq!(answer["result"]["header"]["height"], 0, "{answer}");
}

/// A bond of more than the sender holds is refused at admission (1005), by the balance rule
/// blocks apply, instead of being admitted and then silently dropped from every block.
#[tokio::test]
async fn a_bond_above_the_balance_is_refused_at_admission() {
    let (node, _dir) = start();
    let rpc = client::http(&node.rpc).unwrap();
    let key = dev_key(3);
    let account = rpc.account(key.address(), None).await.unwrap();
    let info = rpc.chain_info().await.unwrap();
    let bond = Transaction {
        chain_id: info.chain_id,
        nonce: account.nonce,
        gas_limit: 100_000,
        gas_price: 1,
        action: Action::Staking(altan_primitives::StakingAction::Bond {
            validator: dev_key(0).address(),
            amount: account.balance.0,
        }),
    }
    .sign(&key);
    let error = rpc.submit(HexBytes(bond.encode())).await.unwrap_err();
    assert_eq!(call_code(error), TX_INSUFFICIENT_BALANCE);
    assert_eq!(rpc.health().await.unwrap().mempool, 0, "nothing was admitted");
}

/// A state proof of a block older than the newest 64 would rebuild that block's whole tree for
/// one free request: it is refused with 2006, while recent proofs are served.
#[tokio::test]
async fn state_proofs_of_old_blocks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = altan_tests::node::DevNode::start(&dir.path().join("data"), &["--block-time", "10"]);
    let rpc = client::http(&node.rpc).unwrap();
    let key = HexBytes(vec![0]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while rpc.head().await.unwrap().height < 80 {
        assert!(std::time::Instant::now() < deadline, "the dev chain did not reach block 80");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let recent = rpc.storage(Address::ZERO, key.clone(), None).await.unwrap();
    assert!(!recent.proof.0.is_empty());
    let old = Some(altan_node::rpc::types::BlockId::Number(1));
    let error = rpc.storage(Address::ZERO, key, old).await.unwrap_err();
    assert_eq!(call_code(error), PROOF_TOO_OLD);
}
