//! The server side of the API.

use std::net::SocketAddr;
use std::sync::Arc;

use altan_primitives::{Address, Block, Hash, Receipt, SignedTransaction, Transaction};
use altan_runtime::gas::MAX_TX_SIZE;
use altan_runtime::vm::HOST_MODULE;
use jsonrpsee::PendingSubscriptionSink;
use jsonrpsee::core::middleware::RpcServiceBuilder;
use jsonrpsee::core::{RpcResult, SubscriptionResult, async_trait, to_json_raw_value};
use jsonrpsee::server::{
    BatchRequestConfig, Methods, PingConfig, Server, ServerConfig, ServerConfigBuilder,
    ServerHandle, stop_channel,
};
use jsonrpsee::types::ErrorObjectOwned;
use parity_scale_codec::DecodeAll;
use tokio::sync::broadcast::error::RecvError;
use tracing::info;

use super::config::RpcConfig;
use super::error::{self, chain_error, free_error};
use super::listener;
use super::params::StrictParams;
use super::types::{
    AccountJson, Amount, BlockId, BlockJson, ChainInfo, ConsensusJson, DryRunRequest, EventFilter,
    EventJson, HeaderJson, HealthJson, HexBytes, LeaderJson, OutcomeJson, PeerJson, QueryRequest,
    ReceiptJson, StorageJson, SubmitResult, TransactionJson, ValidatorJson, ValidatorsJson,
    VersionJson, status_json,
};
use super::{AltanApiServer, openrpc};
use crate::chain::{Chain, ChainError, CommittedBlock, MAX_SUBMIT_BATCH};
use crate::interface::ContractInterface;
use crate::now_ms;
use crate::work::WorkPool;

const TARGET: &str = "altan::rpc";

/// Heights one `staking_leaderSchedule` call covers at most.
pub(super) const MAX_SCHEDULE_HEIGHTS: u32 = 1_000;

/// Index entries one event query may read while matching topics.
pub(super) const MAX_EVENT_SCAN: usize = 20_000;

/// The API's implementation over a [`Chain`]. Cheap to clone, so that heavy reads can take
/// it to a thread of the reads pool.
#[derive(Clone)]
pub struct RpcServer {
    pub(super) chain: Arc<Chain>,
    pub(super) config: Arc<RpcConfig>,
    /// Where reads that cost more than a lookup run: whole blocks, events, proofs.
    reads: Arc<WorkPool>,
}

/// Starts the server; returns the address it listens on and its handle.
pub async fn start(
    chain: Arc<Chain>,
    config: RpcConfig,
) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let listener = tokio::net::TcpListener::bind(config.address).await?;
    let address = listener.local_addr()?;
    let reads = Arc::new(WorkPool::new("rpc-reads", config.reads)?);
    let limits = config.limits;
    let service_config = |kind: ServerConfigBuilder, max: u32| {
        kind.max_request_body_size(config.max_request_bytes)
            .max_response_body_size(config.max_response_bytes)
            .max_connections(max)
            .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
            .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch_len))
            .enable_ws_ping(
                PingConfig::new()
                    .ping_interval(config.ws_ping_interval)
                    .inactive_limit(config.ws_ping_interval.saturating_mul(3)),
            )
            .build()
    };
    // Two services, each with a limit of its own: HTTP requests and WebSocket sessions never
    // take each other's places.
    let http = Server::builder()
        .set_config(service_config(ServerConfig::builder().http_only(), limits.max_http_requests))
        .set_rpc_middleware(RpcServiceBuilder::new().layer_fn(StrictParams::new))
        .to_service_builder();
    let ws = Server::builder()
        .set_config(service_config(ServerConfig::builder().ws_only(), limits.max_ws_sessions))
        .set_rpc_middleware(RpcServiceBuilder::new().layer_fn(StrictParams::new))
        .to_service_builder();
    let mut module = RpcServer { chain, config: Arc::new(config), reads }.into_rpc();
    module.register_method("rpc.discover", |_, _, _| openrpc::document())?;
    // The OpenRPC document and the reference list every method: refuse to start otherwise.
    openrpc::check_complete(module.method_names())?;
    let methods: Methods = module.into();
    let (stop, handle) = stop_channel();
    let make_stop = stop.clone();
    let make = move || {
        (
            http.clone().build(methods.clone(), make_stop.clone()),
            ws.clone().build(methods.clone(), make_stop.clone()),
        )
    };
    tokio::spawn(listener::serve(listener, limits, make, stop));
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
    /// Runs a heavy read on the reads pool, or refuses it as busy (-32009) if the pool is full:
    /// such reads never run on the threads that serve other requests, and each call of a
    /// batch takes a place of its own, so a batch is charged by its work, not as one request.
    async fn on_reads<T, F>(&self, read: F) -> RpcResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&RpcServer) -> RpcResult<T> + Send + 'static,
    {
        let server = self.clone();
        self.reads.run(move || read(&server)).await.map_err(|busy| error::busy_error(&busy))?
    }

    pub(super) fn height_of(&self, at: Option<BlockId>) -> RpcResult<u64> {
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
            BlockId::Hash(hash) => match self.chain.store().header(&hash) {
                Ok(Some(header)) => Ok(header.height),
                Err(e) => Err(chain_error(e.into())),
                Ok(None) => {
                    Err(error::error(error::UNKNOWN_BLOCK, format!("no block has hash {hash}")))
                }
            },
        }
    }

    /// What `at` names, found by hash directly or else at the height it resolves to; `None`
    /// when no such block exists.
    fn find<T>(
        &self,
        at: BlockId,
        by_hash: impl FnOnce(&Hash) -> Result<Option<T>, ChainError>,
        at_height: impl FnOnce(u64) -> Result<Option<T>, ChainError>,
    ) -> RpcResult<Option<T>> {
        let found = match at {
            BlockId::Hash(hash) => by_hash(&hash),
            other => match self.height_of(Some(other)) {
                Ok(height) => at_height(height),
                Err(_) => return Ok(None),
            },
        };
        found.map_err(chain_error)
    }

    pub(super) fn block_of(&self, at: BlockId) -> RpcResult<Option<Block>> {
        self.find(at, |hash| self.chain.block(hash), |height| self.chain.block_at(height))
    }

    pub(super) fn is_final(&self, height: u64) -> bool {
        height <= self.chain.final_head().height
    }

    pub(super) fn receipts_at(&self, height: u64) -> RpcResult<Option<(Block, Vec<Receipt>)>> {
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

    async fn run(&self, sender: Address, transaction: Transaction) -> RpcResult<Receipt> {
        match self.chain.dry_run(sender, transaction, now_ms()).await.map_err(free_error)? {
            Ok(receipt) => Ok(receipt),
            Err(reason) => Err(error::error(error::EXECUTION_INVALID, reason.to_string())),
        }
    }
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
            min_gas_price: Amount(spec.min_gas_price),
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
        self.on_reads(move |server| server.block_now(at, full.unwrap_or(false))).await
    }

    async fn header(&self, at: BlockId) -> RpcResult<Option<HeaderJson>> {
        let store = self.chain.store();
        let header =
            self.find(at, |hash| Ok(store.header(hash)?), |height| Ok(store.header_at(height)?))?;
        Ok(header.map(|header| HeaderJson::from(&header)))
    }

    async fn certificate(&self, height: u64) -> RpcResult<Option<HexBytes>> {
        let certificate =
            self.chain.store().certificate(height).map_err(|e| chain_error(e.into()))?;
        Ok(certificate.map(|c| HexBytes(parity_scale_codec::Encode::encode(&c))))
    }

    async fn events(&self, filter: EventFilter) -> RpcResult<Vec<EventJson>> {
        self.on_reads(move |server| server.events_now(filter)).await
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
        if let Some(pending) = self.chain.pending_transaction(&id) {
            return Ok(Some(TransactionJson::new(
                &pending.transaction,
                Some(pending.sender),
                None,
            )));
        }
        self.on_reads(move |server| server.transaction_now(&id)).await
    }

    async fn receipt(&self, id: Hash) -> RpcResult<Option<ReceiptJson>> {
        self.on_reads(move |server| server.receipt_now(&id)).await
    }

    async fn dry_run(&self, request: DryRunRequest) -> RpcResult<OutcomeJson> {
        let (sender, transaction) = self.dry_run_input(&request)?;
        Ok(self.outcome(&self.run(sender, transaction).await?))
    }

    async fn estimate_gas(&self, request: DryRunRequest) -> RpcResult<u64> {
        let (sender, mut transaction) = self.dry_run_input(&request)?;
        // Run with as much gas as the cap of free execution and the sender's balance allow,
        // then report what was used.
        let cap = self.chain.free_gas_cap();
        let balance =
            self.chain.account_at(&sender, self.chain.head().height).map_err(chain_error)?.balance;
        let affordable = match transaction.gas_price {
            0 => cap,
            price => {
                let spendable = balance.saturating_sub(transaction.value());
                u64::try_from(spendable.checked_div(price).unwrap_or(0))
                    .unwrap_or(u64::MAX)
                    .min(cap)
            }
        };
        transaction.gas_limit = affordable;
        let receipt = self.run(sender, transaction).await?;
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

    async fn storage(
        &self,
        contract: Address,
        key: HexBytes,
        at: Option<BlockId>,
    ) -> RpcResult<StorageJson> {
        self.on_reads(move |server| server.storage_now(contract, key, at)).await
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

    async fn query(&self, request: QueryRequest) -> RpcResult<OutcomeJson> {
        if request.input.0.len() > altan_primitives::limits::MAX_INPUT {
            return Err(error::error(
                jsonrpsee::types::error::INVALID_PARAMS_CODE,
                format!("input is at most {} bytes", altan_primitives::limits::MAX_INPUT),
            ));
        }
        let height = self.height_of(request.at)?;
        let cap = self.chain.free_gas_cap();
        let gas = request.gas.unwrap_or(cap).min(cap);
        let caller = request.from.unwrap_or(Address::ZERO);
        let outcome = self
            .chain
            .query(height, caller, request.contract, request.input.0, gas)
            .await
            .map_err(free_error)?;
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

    async fn leader_schedule(&self, from: u64, count: u32) -> RpcResult<Vec<LeaderJson>> {
        self.on_reads(move |server| server.leader_schedule_now(from, count)).await
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
            super::reads::located_events(&block.block, &block.receipts, &filter).collect()
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
