//! The JSON-RPC API: one jsonrpsee server, HTTP and WebSocket on one port.
//!
//! Methods are grouped by namespace (`chain_`, `state_`, `tx_`, `contract_`, `system_`); the
//! reference is docs/rpc.md, and `rpc.discover` returns the same as an OpenRPC document built
//! from [`openrpc::METHODS`], which a test keeps equal to the registered methods.

mod config;
pub mod error;
pub mod listener;
pub mod openrpc;
pub mod params;
mod reads;
mod server;
pub mod types;

use jsonrpsee::core::{RpcResult, SubscriptionResult};
use jsonrpsee::proc_macros::rpc;

use altan_primitives::{Address, Hash};

pub use config::RpcConfig;
pub use server::{RpcServer, start};
use types::{
    AccountJson, BlockId, BlockJson, ChainInfo, DryRunRequest, EventFilter, EventJson, HeaderJson,
    HealthJson, HexBytes, LeaderJson, OutcomeJson, PeerJson, QueryRequest, ReceiptJson,
    StorageJson, SubmitResult, TransactionJson, ValidatorsJson, VersionJson,
};

/// The API. The server implements `AltanApiServer`; `AltanApiClient` is the typed client over
/// HTTP or WebSocket.
#[rpc(server, client)]
pub trait AltanApi {
    /// The chain's parameters.
    #[method(name = "chain_info")]
    async fn chain_info(&self) -> RpcResult<ChainInfo>;

    /// The newest block's header.
    #[method(name = "chain_head")]
    async fn head(&self) -> RpcResult<HeaderJson>;

    /// The newest final block's header.
    #[method(name = "chain_finalHead")]
    async fn final_head(&self) -> RpcResult<HeaderJson>;

    /// A block, by number, hash, "latest" or "final"; null if there is none.
    #[method(name = "chain_getBlock")]
    async fn block(&self, at: BlockId, full: Option<bool>) -> RpcResult<Option<BlockJson>>;

    /// A header, by number, hash, "latest" or "final"; null if there is none.
    #[method(name = "chain_getHeader")]
    async fn header(&self, at: BlockId) -> RpcResult<Option<HeaderJson>>;

    /// The certificate that made a block final, as SCALE hex; null if none is stored.
    #[method(name = "chain_getCertificate")]
    async fn certificate(&self, height: u64) -> RpcResult<Option<HexBytes>>;

    /// Events by contract, topics and block range.
    #[method(name = "chain_getEvents")]
    async fn events(&self, filter: EventFilter) -> RpcResult<Vec<EventJson>>;

    /// Submits a SCALE-encoded signed transaction; returns its id once admitted to the mempool.
    #[method(name = "tx_submit", blocking)]
    fn submit(&self, transaction: HexBytes) -> RpcResult<Hash>;

    /// Submits many signed transactions (signatures checked in parallel); one result each.
    #[method(name = "tx_submitBatch", blocking)]
    fn submit_batch(&self, transactions: Vec<HexBytes>) -> RpcResult<Vec<SubmitResult>>;

    /// A transaction, included or pending; null if unknown.
    #[method(name = "tx_get")]
    async fn transaction(&self, id: Hash) -> RpcResult<Option<TransactionJson>>;

    /// An included transaction's receipt, with its events; null if not included (yet).
    #[method(name = "tx_receipt")]
    async fn receipt(&self, id: Hash) -> RpcResult<Option<ReceiptJson>>;

    /// Executes a transaction on top of the head without keeping anything.
    #[method(name = "tx_dryRun")]
    async fn dry_run(&self, request: DryRunRequest) -> RpcResult<OutcomeJson>;

    /// The gas a transaction would use on top of the head.
    #[method(name = "tx_estimateGas")]
    async fn estimate_gas(&self, request: DryRunRequest) -> RpcResult<u64>;

    /// An account's balance and nonce.
    #[method(name = "state_getAccount")]
    async fn account(&self, address: Address, at: Option<BlockId>) -> RpcResult<AccountJson>;

    /// A contract storage value with its Merkle proof against the block's state root.
    #[method(name = "state_getStorage")]
    async fn storage(
        &self,
        contract: Address,
        key: HexBytes,
        at: Option<BlockId>,
    ) -> RpcResult<StorageJson>;

    /// A contract's Wasm code; null if the address holds none.
    #[method(name = "contract_getCode")]
    async fn code(&self, contract: Address, at: Option<BlockId>) -> RpcResult<Option<HexBytes>>;

    /// A contract's embedded interface: methods, events and errors.
    #[method(name = "contract_getInterface")]
    async fn interface(
        &self,
        contract: Address,
        at: Option<BlockId>,
    ) -> RpcResult<crate::interface::ContractInterface>;

    /// Calls a contract read-only.
    #[method(name = "contract_query")]
    async fn query(&self, request: QueryRequest) -> RpcResult<OutcomeJson>;

    /// The validator set of the epoch containing a block, with voting power.
    #[method(name = "staking_validators")]
    async fn validators(&self, at: Option<BlockId>) -> RpcResult<ValidatorsJson>;

    /// The round-0 leaders of up to 1,000 heights from `from`, within one epoch whose set and
    /// seed the chain knows.
    #[method(name = "staking_leaderSchedule")]
    async fn leader_schedule(&self, from: u64, count: u32) -> RpcResult<Vec<LeaderJson>>;

    /// Whether the node serves, and its heights.
    #[method(name = "system_health")]
    async fn health(&self) -> RpcResult<HealthJson>;

    /// Connected peers.
    #[method(name = "system_peers")]
    async fn peers(&self) -> RpcResult<Vec<PeerJson>>;

    /// The node's version.
    #[method(name = "system_version")]
    async fn version(&self) -> RpcResult<VersionJson>;

    /// Every new block's header.
    #[subscription(name = "chain_subscribeNewHeads", unsubscribe = "chain_unsubscribeNewHeads", item = HeaderJson)]
    async fn subscribe_new_heads(&self) -> SubscriptionResult;

    /// Every newly final block's header.
    #[subscription(name = "chain_subscribeFinalHeads", unsubscribe = "chain_unsubscribeFinalHeads", item = HeaderJson)]
    async fn subscribe_final_heads(&self) -> SubscriptionResult;

    /// Events matching a filter (contract, topics) as their blocks are committed.
    #[subscription(name = "contract_subscribeEvents", unsubscribe = "contract_unsubscribeEvents", item = EventJson)]
    async fn subscribe_events(&self, filter: EventFilter) -> SubscriptionResult;
}
