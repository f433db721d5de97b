//! Against a real `altan dev` process, with rocksdb on disk, over real JSON-RPC.

mod attack;
mod contracts;
mod crash;
mod errors;
mod rpc;

use altan_node::client::{self, GasSettings};
use altan_node::interface::{ContractInterface, decode_output, encode_arguments};
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::types::{HexBytes, QueryRequest, ReceiptJson, StatusJson};
use altan_primitives::{Action, Address, SecretKey, blake3};
use altan_tests::node::DevNode;
use altan_tests::wasm;
use jsonrpsee::http_client::HttpClient;
use serde_json::Value;

pub fn dev_key(i: usize) -> SecretKey {
    altan_node::dev::dev_account_key(i)
}

pub fn start() -> (DevNode, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (DevNode::start(&dir.path().join("data"), &[]), dir)
}

pub fn args(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.clone())).collect()
}

/// Deploys the example contract `name` with constructor arguments; returns its address.
pub async fn deploy(
    rpc: &HttpClient,
    key: &SecretKey,
    name: &str,
    constructor: &[(&str, Value)],
    value: u128,
) -> Address {
    let code = wasm::get(name).to_vec();
    let interface = ContractInterface::from_wasm(&code).unwrap();
    let input = match &interface.constructor {
        Some(c) => encode_arguments(c, &args(constructor)).unwrap(),
        None => Vec::new(),
    };
    let salt = blake3(format!("{name}-{}", rand_suffix()).as_bytes());
    let receipt =
        client::send(rpc, key, Action::Deploy { code, input, value, salt }, GasSettings::default())
            .await
            .unwrap();
    assert_eq!(receipt.status, StatusJson::Success, "deploying {name}: {receipt:?}");
    receipt.contract_address.unwrap()
}

/// Deploys the example token with `supply` minted to `key`'s account; returns its address.
pub async fn deploy_token(
    rpc: &HttpClient,
    key: &SecretKey,
    (name, symbol, decimals): (&str, &str, u8),
    supply: u128,
) -> Address {
    let constructor = [
        ("name", Value::from(name)),
        ("symbol", Value::from(symbol)),
        ("decimals", Value::from(decimals.to_string())),
        ("supply", Value::from(supply.to_string())),
    ];
    deploy(rpc, key, "token", &constructor, 0).await
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

pub async fn input_for(
    rpc: &HttpClient,
    contract: Address,
    method: &str,
    call: &[(&str, Value)],
) -> Vec<u8> {
    let interface = rpc.interface(contract, None).await.unwrap();
    let method = interface.method(method).unwrap();
    let mut input =
        hex::decode(method.selector.as_ref().unwrap().trim_start_matches("0x")).unwrap();
    input.extend(encode_arguments(method, &args(call)).unwrap());
    input
}

/// Calls `method` in a transaction and returns the receipt.
pub async fn call(
    rpc: &HttpClient,
    key: &SecretKey,
    contract: Address,
    method: &str,
    call_args: &[(&str, Value)],
    value: u128,
) -> ReceiptJson {
    let input = input_for(rpc, contract, method, call_args).await;
    // A fixed limit rather than an estimate, so that calls expected to revert can be sent.
    let gas = GasSettings { limit: Some(5_000_000), price: 1 };
    client::send(rpc, key, Action::Call { contract, input, value }, gas).await.unwrap()
}

/// Queries `method` and decodes its result.
pub async fn query(
    rpc: &HttpClient,
    contract: Address,
    method: &str,
    call_args: &[(&str, Value)],
) -> Value {
    let input = input_for(rpc, contract, method, call_args).await;
    let outcome = rpc
        .query(QueryRequest { contract, input: HexBytes(input), from: None, gas: None, at: None })
        .await
        .unwrap();
    assert_eq!(outcome.status, StatusJson::Success, "{method}: {outcome:?}");
    let interface = rpc.interface(contract, None).await.unwrap();
    decode_output(interface.method(method).unwrap(), &outcome.output.0).unwrap()
}
