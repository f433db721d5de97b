//! The typed RPC client the CLI, the benchmark and the tests use, with the few steps every
//! client repeats: find the chain id and nonce, sign, submit, wait for the receipt.

use std::time::{Duration, Instant};

use altan_primitives::{Action, Hash, SecretKey, SignedTransaction, Transaction};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use parity_scale_codec::Encode;

use crate::rpc::AltanApiClient;
use crate::rpc::types::{DryRunRequest, HexBytes, ReceiptJson};

/// The default RPC address.
pub const DEFAULT_RPC: &str = "http://127.0.0.1:9944";
/// Largest request or response the client sends or accepts.
pub const MAX_MESSAGE_BYTES: u32 = 32 << 20;

/// An HTTP client for `url`.
pub fn http(url: &str) -> anyhow::Result<HttpClient> {
    Ok(HttpClientBuilder::default()
        .max_request_size(MAX_MESSAGE_BYTES)
        .max_response_size(MAX_MESSAGE_BYTES)
        .request_timeout(Duration::from_secs(120))
        .build(url)?)
}

/// A WebSocket client for `url` (http:// is turned into ws://).
pub async fn ws(url: &str) -> anyhow::Result<WsClient> {
    let url = url.replacen("http://", "ws://", 1).replacen("https://", "wss://", 1);
    Ok(WsClientBuilder::default()
        .max_request_size(MAX_MESSAGE_BYTES)
        .max_response_size(MAX_MESSAGE_BYTES)
        .build(&url)
        .await?)
}

/// What a transaction pays for gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasSettings {
    /// The gas limit; `None` estimates it (with a margin).
    pub limit: Option<u64>,
    /// The gas price.
    pub price: u128,
}

impl Default for GasSettings {
    fn default() -> Self {
        GasSettings { limit: None, price: 1 }
    }
}

/// Signs `action` from `key` with the chain's id and the sender's next nonce, estimating the gas
/// limit unless given.
pub async fn sign(
    client: &impl AltanApiClient,
    key: &SecretKey,
    action: Action,
    gas: GasSettings,
) -> anyhow::Result<SignedTransaction> {
    let info = client.chain_info().await?;
    let account = client.account(key.address(), None).await?;
    let nonce = account.pending_nonce.unwrap_or(account.nonce);
    // A price below the chain's minimum would be refused: offer at least the minimum.
    let gas_price = gas.price.max(info.min_gas_price.0);
    let mut transaction =
        Transaction { chain_id: info.chain_id, nonce, gas_limit: 0, gas_price, action };
    transaction.gas_limit = match gas.limit {
        Some(limit) => limit,
        None => {
            let request = DryRunRequest {
                from: Some(key.address()),
                transaction: HexBytes(transaction.encode()),
            };
            let used = client.estimate_gas(request).await?;
            // Leave room: storage first written by another transaction in between costs more.
            used.saturating_add(used / 5).saturating_add(10_000).min(info.block_gas_limit)
        }
    };
    Ok(transaction.sign(key))
}

/// Submits a signed transaction and returns its id.
pub async fn submit(
    client: &impl AltanApiClient,
    transaction: &SignedTransaction,
) -> anyhow::Result<Hash> {
    Ok(client.submit(HexBytes(transaction.encode())).await?)
}

/// Waits until the transaction is included and returns its receipt.
pub async fn wait_for_receipt(
    client: &impl AltanApiClient,
    id: Hash,
    timeout: Duration,
) -> anyhow::Result<ReceiptJson> {
    let deadline = Instant::now().checked_add(timeout).unwrap_or_else(Instant::now);
    loop {
        if let Some(receipt) = client.receipt(id).await? {
            return Ok(receipt);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("transaction {id} was not included within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Signs, submits and waits for the receipt.
pub async fn send(
    client: &impl AltanApiClient,
    key: &SecretKey,
    action: Action,
    gas: GasSettings,
) -> anyhow::Result<ReceiptJson> {
    let transaction = sign(client, key, action, gas).await?;
    let id = submit(client, &transaction).await?;
    wait_for_receipt(client, id, Duration::from_secs(60)).await
}
