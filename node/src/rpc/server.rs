//! The server side of the API.

use std::net::SocketAddr;
use std::sync::Arc;

use altan_primitives::{Address, Block, Hash, Receipt, SignedTransaction, Transaction};
use altan_runtime::gas::MAX_TX_SIZE;
use altan_runtime::state::StateKey;
use altan_runtime::vm::HOST_MODULE;
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait, to_json_raw_value};
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use parity_scale_codec::DecodeAll;
use tokio::sync::broadcast::error::RecvError;
use tracing::info;

use super::error::{self, chain_error};
use super::types::{
    AccountJson, Amount, BlockId, BlockJson, ChainInfo, ConsensusJson, DryRunRequest, EventFilter,
    EventJson, HeaderJson, HealthJson, HexBytes, LeaderJson, OutcomeJson, PeerJson, QueryRequest,
    ReceiptJson, StorageJson, SubmitResult, TransactionJson, ValidatorJson, ValidatorsJson,
    VersionJson, status_json,
};
use super::{AltanApiServer, openrpc};
use crate::chain::{Chain, CommittedBlock, MAX_SUBMIT_BATCH};
use crate::interface::ContractInterface;
use crate::producer::now_ms;

const TARGET: &str = "altan::rpc";

/// Limits and address of the RPC server.
#[derive(Debug, Clone)]
pub struct RpcConfig {
    /// Where to listen (default 127.0.0.1:9944).
    pub address: SocketAddr,
    /// Largest request body, in bytes.
    pub max_request_bytes: u32,
    /// Largest response body, in bytes.
    pub max_response_bytes: u32,
    /// Connections served at once.
    pub max_connections: u32,
    /// Subscriptions per connection.
    pub max_subscriptions_per_connection: u32,
    /// Calls in one JSON-RPC batch.
    pub max_batch_len: u32,
    /// Blocks one `chain_getEvents` without a contract may scan.
    pub max_event_range: u64,
    /// Events one `chain_getEvents` returns at most.
    pub max_events: u32,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 9944)),
            max_request_bytes: 16 << 20,
            max_response_bytes: 16 << 20,
            max_connections: 256,
            max_subscriptions_per_connection: 64,
            max_batch_len: 256,
            max_event_range: 1_000,
            max_events: 1_000,
        }
    }
}

/// Heights one `staking_leaderSchedule` call covers at most.
const MAX_SCHEDULE_HEIGHTS: u32 = 1_000;

/// Index entries one event query may read while matching topics.
const MAX_EVENT_SCAN: usize = 20_000;

/// The API's implementation over a [`Chain`].
pub struct RpcServer {
    chain: Arc<Chain>,
    config: RpcConfig,
}

/// Starts the server; returns the address it listens on and its handle.
pub async fn start(
    chain: Arc<Chain>,
    config: RpcConfig,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let server_config = ServerConfig::builder()
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_connections(config.max_connections)
        .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
        .build();
    let server = Server::builder().set_config(server_config).build(config.address).await?;
    let address = server.local_addr()?;
    let mut module = RpcServer { chain, config }.into_rpc();
    module.register_method("rpc.discover", |_, _, _| openrpc::document())?;
    // The OpenRPC document and the reference list every method: refuse to start otherwise.
    openrpc::check_complete(module.method_names())?;
    let handle = server.start(module);
    info!(target: TARGET, %address, "serving JSON-RPC over HTTP and WebSocket");
    Ok((address, handle))
}

fn decode_transaction(bytes: &[u8]) -> Result<SignedTransaction, ErrorObjectOwned> {
    if bytes.len() > MAX_TX_SIZE {
        return Err(error::error(
            error::TX_TOO_LARGE,
            format!("transaction is {} bytes; the limit is {MAX_TX_SIZE}", bytes.len()),
        ));
    }
    SignedTransaction::decode_all(&mut &bytes[..]).map_err(|e| {
        error::error(error::TX_MALFORMED, format!("not a SCALE-encoded signed transaction: {e}"))
    })
}

impl RpcServer {
    fn height_of(&self, at: Option<BlockId>) -> RpcResult<u64> {
        match at.unwrap_or(BlockId::Latest) {
            BlockId::Latest => Ok(self.chain.head().height),
            BlockId::Final => Ok(self.chain.final_head().height),
            BlockId::Number(n) => {
                let head = self.chain.head().height;
                if n > head {
                    return Err(error::error(
                        error::UNKNOWN_BLOCK,
                        format!("block {n} does not exist; the head is {head}"),
                    ));
                }
                Ok(n)
            }
            BlockId::Hash(hash) => match self.chain.block(&hash).map_err(chain_error)? {
                Some(block) => Ok(block.header.height),
                None => {
                    Err(error::error(error::UNKNOWN_BLOCK, format!("no block has hash {hash}")))
                }
            },
        }
    }

    fn block_of(&self, at: BlockId) -> RpcResult<Option<Block>> {
        let block = match at {
            BlockId::Hash(hash) => self.chain.block(&hash),
            other => match self.height_of(Some(other)) {
                Ok(height) => self.chain.block_at(height),
                Err(_) => return Ok(None),
            },
        };
        block.map_err(chain_error)
    }

    fn is_final(&self, height: u64) -> bool {
        height <= self.chain.final_head().height
    }

    fn receipts_at(&self, height: u64) -> RpcResult<Option<(Block, Vec<Receipt>)>> {
        let Some(block) = self.chain.block_at(height).map_err(chain_error)? else {
            return Ok(None);
        };
        let receipts =
            self.chain.store().receipts(&block.hash()).map_err(|e| chain_error(e.into()))?;
        Ok(Some((block, receipts.unwrap_or_default())))
    }

    fn outcome(&self, receipt: &Receipt) -> OutcomeJson {
        let (status, failure) = status_json(&receipt.status);
        OutcomeJson {
            status,
            failure,
            gas_used: receipt.gas_used,
            output: HexBytes(receipt.output.clone()),
            events: receipt.events.iter().map(EventJson::bare).collect(),
            contract_address: receipt.contract_address,
        }
    }

    /// The sender and transaction of a dry-run request.
    fn dry_run_input(&self, request: &DryRunRequest) -> RpcResult<(Address, Transaction)> {
        let bytes = &request.transaction.0;
        if bytes.len() > MAX_TX_SIZE {
            return Err(error::error(error::TX_TOO_LARGE, "transaction too large"));
        }
        match request.from {
            Some(from) => {
                Transaction::decode_all(&mut &bytes[..]).map(|tx| (from, tx)).map_err(|e| {
                    error::error(
                        error::TX_MALFORMED,
                        format!("not a SCALE-encoded transaction: {e}"),
                    )
                })
            }
            None => {
                let signed = decode_transaction(bytes)?;
                let sender = signed.recover_sender().map_err(|e| {
                    error::error(error::TX_BAD_SIGNATURE, format!("bad signature: {e}"))
                })?;
                Ok((sender, signed.transaction))
            }
        }
    }

    fn run(&self, sender: Address, transaction: Transaction) -> RpcResult<Receipt> {
        match self.chain.dry_run(sender, transaction, now_ms()).map_err(chain_error)? {
            Ok(receipt) => Ok(receipt),
            Err(reason) => Err(error::error(error::EXECUTION_INVALID, reason.to_string())),
        }
    }
}

fn located_events(
    block: &Block,
    receipts: &[Receipt],
    filter: &EventFilter,
) -> impl Iterator<Item = EventJson> {
    let height = block.header.height;
    let mut out = Vec::new();
    for (tx_index, receipt) in receipts.iter().enumerate() {
        for (event_index, event) in receipt.events.iter().enumerate() {
            if filter.matches(event) {
                out.push(EventJson {
                    block_height: Some(height),
                    transaction_id: Some(receipt.transaction_id),
                    transaction_index: Some(u32::try_from(tx_index).unwrap_or(u32::MAX)),
                    event_index: Some(u32::try_from(event_index).unwrap_or(u32::MAX)),
                    ..EventJson::bare(event)
                });
            }
        }
    }
    out.into_iter()
}

#[async_trait]
impl AltanApiServer for RpcServer {
    async fn chain_info(&self) -> RpcResult<ChainInfo> {
        let spec = self.chain.spec();
        let genesis = self.chain.store().block_hash(0).map_err(|e| chain_error(e.into()))?;
        Ok(ChainInfo {
            name: spec.name.clone(),
            chain_id: spec.chain_id,
            genesis_hash: genesis.unwrap_or(Hash::ZERO),
            spec_hash: spec.hash(),
            block_gas_limit: spec.block_gas_limit,
            epoch_length: spec.epoch_length,
        })
    }

    async fn head(&self) -> RpcResult<HeaderJson> {
        Ok(HeaderJson::from(&*self.chain.head()))
    }

    async fn final_head(&self) -> RpcResult<HeaderJson> {
        let height = self.chain.final_head().height;
        let header = self.chain.header_at(height).map_err(chain_error)?;
        Ok(HeaderJson::from(&header))
    }

    async fn block(&self, at: BlockId, full: Option<bool>) -> RpcResult<Option<BlockJson>> {
        Ok(self.block_of(at)?.map(|block| {
            let is_final = self.is_final(block.header.height);
            BlockJson::new(&block, full.unwrap_or(false), is_final)
        }))
    }

    async fn header(&self, at: BlockId) -> RpcResult<Option<HeaderJson>> {
        Ok(self.block_of(at)?.map(|block| HeaderJson::from(&block.header)))
    }

    async fn certificate(&self, height: u64) -> RpcResult<Option<HexBytes>> {
        let certificate =
            self.chain.store().certificate(height).map_err(|e| chain_error(e.into()))?;
        Ok(certificate.map(|c| HexBytes(parity_scale_codec::Encode::encode(&c))))
    }

    fn events(&self, filter: EventFilter) -> RpcResult<Vec<EventJson>> {
        let head = self.chain.head().height;
        let to = filter.to_block.unwrap_or(head).min(head);
        let limit = usize::try_from(
            filter.limit.unwrap_or(self.config.max_events).min(self.config.max_events),
        )
        .unwrap_or(usize::MAX);
        let mut events = Vec::new();
        match filter.contract {
            Some(contract) => {
                let from = filter.from_block.unwrap_or(0);
                let locations = self
                    .chain
                    .events_of(&contract, from, to, MAX_EVENT_SCAN)
                    .map_err(chain_error)?;
                // Locations come in chain order; read each block's receipts once.
                let mut current: Option<(u64, Block, Vec<Receipt>)> = None;
                for location in locations {
                    if events.len() >= limit {
                        break;
                    }
                    if current.as_ref().is_none_or(|(h, _, _)| *h != location.height) {
                        current = self
                            .receipts_at(location.height)?
                            .map(|(block, receipts)| (location.height, block, receipts));
                    }
                    let Some((height, block, receipts)) = &current else { continue };
                    let tx = usize::try_from(location.transaction_index).unwrap_or(usize::MAX);
                    let index = usize::try_from(location.event_index).unwrap_or(usize::MAX);
                    let Some(receipt) = receipts.get(tx) else { continue };
                    let Some(event) = receipt.events.get(index) else { continue };
                    if filter.matches(event) {
                        debug_assert_eq!(*height, block.header.height);
                        events.push(EventJson {
                            block_height: Some(*height),
                            transaction_id: Some(receipt.transaction_id),
                            transaction_index: Some(location.transaction_index),
                            event_index: Some(location.event_index),
                            ..EventJson::bare(event)
                        });
                    }
                }
            }
            None => {
                let from = filter.from_block.unwrap_or(to);
                // The range asked for is what is bounded, whether or not the chain reaches it.
                let asked_to = filter.to_block.unwrap_or(head);
                let span = asked_to.saturating_sub(from).saturating_add(1);
                if from <= asked_to && span > self.config.max_event_range {
                    return Err(error::error(
                        error::RANGE_TOO_LARGE,
                        format!(
                            "blocks {from}..={asked_to} span {span} blocks; without a contract the most is {}",
                            self.config.max_event_range
                        ),
                    ));
                }
                for height in from..=to {
                    let Some((block, receipts)) = self.receipts_at(height)? else { continue };
                    events.extend(located_events(&block, &receipts, &filter));
                    if events.len() >= limit {
                        events.truncate(limit);
                        break;
                    }
                }
            }
        }
        Ok(events)
    }

    fn submit(&self, transaction: HexBytes) -> RpcResult<Hash> {
        let transaction = decode_transaction(&transaction.0)?;
        Ok(self.chain.submit(transaction)?)
    }

    fn submit_batch(&self, transactions: Vec<HexBytes>) -> RpcResult<Vec<SubmitResult>> {
        if transactions.len() > MAX_SUBMIT_BATCH {
            return Err(error::error(
                error::TX_BATCH_TOO_LARGE,
                format!(
                    "{} transactions; one batch takes at most {MAX_SUBMIT_BATCH}",
                    transactions.len()
                ),
            ));
        }
        let mut results: Vec<Option<SubmitResult>> = Vec::with_capacity(transactions.len());
        let mut decoded = Vec::with_capacity(transactions.len());
        for bytes in &transactions {
            match decode_transaction(&bytes.0) {
                Ok(transaction) => {
                    decoded.push(transaction);
                    results.push(None);
                }
                Err(error) => results.push(Some(SubmitResult {
                    id: None,
                    error: Some(super::types::ErrorJson {
                        code: error.code(),
                        message: error.message().into(),
                    }),
                })),
            }
        }
        let mut admitted = self.chain.submit_batch(decoded).into_iter();
        Ok(results
            .into_iter()
            .map(|slot| match slot {
                Some(result) => result,
                None => match admitted.next() {
                    Some(Ok(id)) => SubmitResult { id: Some(id), error: None },
                    Some(Err(e)) => SubmitResult {
                        id: None,
                        error: Some(super::types::ErrorJson {
                            code: error::submit_code(&e),
                            message: e.to_string(),
                        }),
                    },
                    None => SubmitResult {
                        id: None,
                        error: Some(super::types::ErrorJson {
                            code: error::INTERNAL,
                            message: "missing result".into(),
                        }),
                    },
                },
            })
            .collect())
    }

    async fn transaction(&self, id: Hash) -> RpcResult<Option<TransactionJson>> {
        if let Some((block, index, transaction, _)) =
            self.chain.transaction(&id).map_err(chain_error)?
        {
            let location = (block.header.height, block.hash(), index);
            return Ok(Some(TransactionJson::new(&transaction, Some(location))));
        }
        Ok(self.chain.pending_transaction(&id).map(|p| TransactionJson::new(&p.transaction, None)))
    }

    async fn receipt(&self, id: Hash) -> RpcResult<Option<ReceiptJson>> {
        Ok(self.chain.transaction(&id).map_err(chain_error)?.map(|(block, index, _, receipt)| {
            ReceiptJson::new(&receipt, block.header.height, block.hash(), index)
        }))
    }

    fn dry_run(&self, request: DryRunRequest) -> RpcResult<OutcomeJson> {
        let (sender, transaction) = self.dry_run_input(&request)?;
        Ok(self.outcome(&self.run(sender, transaction)?))
    }

    fn estimate_gas(&self, request: DryRunRequest) -> RpcResult<u64> {
        let (sender, mut transaction) = self.dry_run_input(&request)?;
        // Run with as much gas as the block and the sender's balance allow, then report what was
        // used.
        let block_limit = self.chain.spec().block_gas_limit;
        let balance =
            self.chain.account_at(&sender, self.chain.head().height).map_err(chain_error)?.balance;
        let affordable = match transaction.gas_price {
            0 => block_limit,
            price => {
                let spendable = balance.saturating_sub(transaction.value());
                u64::try_from(spendable.checked_div(price).unwrap_or(0))
                    .unwrap_or(u64::MAX)
                    .min(block_limit)
            }
        };
        transaction.gas_limit = affordable;
        let receipt = self.run(sender, transaction)?;
        let outcome = self.outcome(&receipt);
        if outcome.failure.is_some() || receipt.status != altan_primitives::ExecutionStatus::Success
        {
            let message = match crate::interface::decode_revert(None, &receipt.output) {
                Some(revert) => format!(
                    "execution would revert: {} (revert code {})",
                    revert["message"].as_str().unwrap_or_default(),
                    revert["code"]
                ),
                None => format!("execution would end in {:?}", receipt.status),
            };
            return Err(error::error(error::EXECUTION_FAILED, message));
        }
        Ok(receipt.gas_used)
    }

    async fn account(&self, address: Address, at: Option<BlockId>) -> RpcResult<AccountJson> {
        let latest = matches!(at, None | Some(BlockId::Latest));
        let height = self.height_of(at)?;
        let account = self.chain.account_at(&address, height).map_err(chain_error)?;
        let pending_nonce =
            if latest { Some(self.chain.next_nonce(&address).map_err(chain_error)?) } else { None };
        Ok(AccountJson {
            address,
            balance: super::types::Amount(account.balance),
            nonce: account.nonce,
            pending_nonce,
            code_hash: account.code_hash,
            block_height: height,
        })
    }

    fn storage(
        &self,
        contract: Address,
        key: HexBytes,
        at: Option<BlockId>,
    ) -> RpcResult<StorageJson> {
        if key.0.len() > altan_primitives::limits::MAX_STORAGE_KEY {
            return Err(error::error(
                jsonrpsee::types::error::INVALID_PARAMS_CODE,
                format!(
                    "storage keys are at most {} bytes",
                    altan_primitives::limits::MAX_STORAGE_KEY
                ),
            ));
        }
        let height = self.height_of(at)?;
        let state_key = StateKey::storage(&contract, &key.0);
        let (value, proof, state_root) =
            self.chain.proof_at(&state_key, height).map_err(chain_error)?;
        Ok(StorageJson {
            contract,
            key,
            value: value.map(HexBytes),
            proof: HexBytes(proof.to_bytes()),
            state_root,
            block_height: height,
        })
    }

    async fn code(&self, contract: Address, at: Option<BlockId>) -> RpcResult<Option<HexBytes>> {
        let height = self.height_of(at)?;
        Ok(self.chain.code_at(&contract, height).map_err(chain_error)?.map(HexBytes))
    }

    async fn interface(
        &self,
        contract: Address,
        at: Option<BlockId>,
    ) -> RpcResult<ContractInterface> {
        let height = self.height_of(at)?;
        let code =
            self.chain.code_at(&contract, height).map_err(chain_error)?.ok_or_else(|| {
                error::error(
                    error::NOT_A_CONTRACT,
                    format!("{contract} holds no contract at block {height}"),
                )
            })?;
        ContractInterface::from_wasm(&code)
            .map_err(|e| error::error(error::NO_INTERFACE, e.to_string()))
    }

    fn query(&self, request: QueryRequest) -> RpcResult<OutcomeJson> {
        if request.input.0.len() > altan_primitives::limits::MAX_INPUT {
            return Err(error::error(
                jsonrpsee::types::error::INVALID_PARAMS_CODE,
                format!("input is at most {} bytes", altan_primitives::limits::MAX_INPUT),
            ));
        }
        let height = self.height_of(request.at)?;
        let limit = self.chain.spec().block_gas_limit;
        let gas = request.gas.unwrap_or(limit).min(limit);
        let caller = request.from.unwrap_or(Address::ZERO);
        let outcome = self
            .chain
            .query(height, caller, request.contract, request.input.0, gas)
            .map_err(chain_error)?;
        let (status, failure) = status_json(&outcome.status);
        Ok(OutcomeJson {
            status,
            failure,
            gas_used: outcome.gas_used,
            output: HexBytes(outcome.output),
            events: outcome.events.iter().map(EventJson::bare).collect(),
            contract_address: None,
        })
    }

    async fn validators(&self, at: Option<BlockId>) -> RpcResult<ValidatorsJson> {
        let height = self.height_of(at)?;
        let state = self.chain.state_at(height).map_err(chain_error)?;
        let read = |e: altan_runtime::state::StoreError| chain_error(e.into());
        let epoch = altan_runtime::staking::epoch_of(&*state, height).map_err(read)?;
        let set = altan_runtime::staking::validator_set_at(&*state, height).map_err(read)?;
        let set = set.ok_or_else(|| {
            error::error(error::NO_VALIDATOR_SET, format!("no validator set for epoch {epoch}"))
        })?;
        Ok(ValidatorsJson {
            epoch,
            block_height: height,
            total_power: Amount(set.total_power()),
            validators: set
                .validators
                .iter()
                .map(|v| ValidatorJson {
                    address: v.address,
                    consensus_key: v.consensus_key.to_string(),
                    power: Amount(v.power),
                })
                .collect(),
        })
    }

    fn leader_schedule(&self, from: u64, count: u32) -> RpcResult<Vec<LeaderJson>> {
        if count == 0 || count > MAX_SCHEDULE_HEIGHTS {
            return Err(error::error(
                jsonrpsee::types::error::INVALID_PARAMS_CODE,
                format!("count is 1..={MAX_SCHEDULE_HEIGHTS}"),
            ));
        }
        let head = self.chain.head().height;
        let state = self.chain.state_at(head).map_err(chain_error)?;
        let read = |e: altan_runtime::state::StoreError| chain_error(e.into());
        let config = altan_runtime::staking::config(&*state).map_err(read)?;
        let last = from.saturating_add(u64::from(count)).saturating_sub(1);
        let epoch = config.epoch_of(from);
        let no_set = |why: String| error::error(error::NO_VALIDATOR_SET, why);
        if config.epoch_of(last) != epoch {
            return Err(no_set(format!("heights {from}..={last} span more than epoch {epoch}")));
        }
        let set = altan_runtime::staking::validator_set(&*state, epoch)
            .map_err(read)?
            .ok_or_else(|| no_set(format!("the chain keeps no validator set for epoch {epoch}")))?;
        let seed = self.chain.leader_seed_for(from).map_err(chain_error)?.ok_or_else(|| {
            no_set(format!("the block that seeds epoch {epoch}'s leaders is not final yet"))
        })?;
        let schedule = altan_consensus::LeaderSchedule::new(&set, seed)
            .map_err(|e| no_set(format!("epoch {epoch}'s set has no leader: {e}")))?;
        let leaders = schedule.schedule(from..=last, 0).map_err(|e| {
            error::error(jsonrpsee::types::error::INVALID_PARAMS_CODE, e.to_string())
        })?;
        Ok(leaders
            .into_iter()
            .map(|l| LeaderJson { height: l.height, index: l.index, address: l.address })
            .collect())
    }

    async fn health(&self) -> RpcResult<HealthJson> {
        let status = self.chain.status();
        let sync = status.sync();
        let final_height = self.chain.final_head().height;
        Ok(HealthJson {
            ok: true,
            height: self.chain.head().height,
            final_height,
            peers: u32::try_from(status.peers().len()).unwrap_or(u32::MAX),
            syncing: sync.is_some_and(|s| s.syncing),
            best_seen_height: sync.map_or(final_height, |s| s.best_seen.max(final_height)),
            synced_blocks: sync.map_or(0, |s| s.imported),
            consensus: status.consensus().map(|c| ConsensusJson {
                height: c.height,
                round: c.round,
                validating: c.signing,
            }),
            mempool: self.chain.mempool_len(),
        })
    }

    async fn peers(&self) -> RpcResult<Vec<PeerJson>> {
        Ok(self
            .chain
            .status()
            .peers()
            .into_iter()
            .map(|p| PeerJson { peer_id: p.peer_id, address: p.address })
            .collect())
    }

    async fn version(&self) -> RpcResult<VersionJson> {
        Ok(VersionJson {
            version: env!("CARGO_PKG_VERSION").into(),
            host_abi: HOST_MODULE.into(),
            chain: self.chain.spec().name.clone(),
        })
    }

    async fn subscribe_new_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        forward(&self.chain, pending, |block| vec![HeaderJson::from(&block.block.header)]).await
    }

    async fn subscribe_final_heads(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        forward(&self.chain, pending, |block| {
            if block.is_final { vec![HeaderJson::from(&block.block.header)] } else { Vec::new() }
        })
        .await
    }

    async fn subscribe_events(
        &self,
        pending: PendingSubscriptionSink,
        filter: EventFilter,
    ) -> SubscriptionResult {
        forward(&self.chain, pending, move |block| {
            located_events(&block.block, &block.receipts, &filter).collect()
        })
        .await
    }
}

/// Accepts a subscription and sends what `items` makes of each committed block until the
/// client leaves. A subscriber that falls more than the channel's capacity behind is closed with
/// an error rather than buffered without bound.
async fn forward<T: serde::Serialize>(
    chain: &Chain,
    pending: PendingSubscriptionSink,
    items: impl Fn(&CommittedBlock) -> Vec<T>,
) -> SubscriptionResult {
    let mut blocks = chain.subscribe();
    let sink = pending.accept().await?;
    loop {
        tokio::select! {
            _ = sink.closed() => return Ok(()),
            received = blocks.recv() => match received {
                Ok(block) => {
                    for item in items(&block) {
                        sink.send(to_json_raw_value(&item)?).await?;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    return Err(format!("the subscriber fell {missed} blocks behind and was dropped").into());
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }
}
