//! The JSON shapes of the RPC: bytes and hashes as 0x hex, addresses with their EIP-55
//! checksum, balances (u128) as decimal strings, heights and gas as numbers, field names in
//! camelCase.

use std::fmt;

use altan_primitives::{
    Action, Address, Block, Event, ExecutionStatus, Hash, Header, Receipt, SignedTransaction,
    StakingAction,
};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes as 0x hex.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct HexBytes(pub Vec<u8>);

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| D::Error::custom("expected 0x-prefixed hex bytes"))?;
        hex::decode(digits).map(HexBytes).map_err(|e| D::Error::custom(format!("bad hex: {e}")))
    }
}

/// A balance as a decimal string (u128 does not fit a JSON number safely).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Amount(pub u128);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(s) => s
                .parse()
                .map(Amount)
                .map_err(|e| D::Error::custom(format!("bad amount {s:?}: {e}"))),
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(|n| Amount(u128::from(n)))
                .ok_or_else(|| D::Error::custom("an amount is a non-negative integer")),
            _ => Err(D::Error::custom("an amount is a decimal string")),
        }
    }
}

/// Which block: a height, a hash, `"latest"` or `"final"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    /// By height.
    Number(u64),
    /// By hash.
    Hash(Hash),
    /// The newest block.
    Latest,
    /// The newest final block.
    Final,
}

impl Serialize for BlockId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            BlockId::Number(n) => serializer.serialize_u64(*n),
            BlockId::Hash(h) => serializer.serialize_str(&h.to_string()),
            BlockId::Latest => serializer.serialize_str("latest"),
            BlockId::Final => serializer.serialize_str("final"),
        }
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let expected = "a block number, a 0x block hash, \"latest\" or \"final\"";
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(BlockId::Number)
                .ok_or_else(|| D::Error::custom(format!("expected {expected}"))),
            serde_json::Value::String(s) => match s.as_str() {
                "latest" => Ok(BlockId::Latest),
                "final" => Ok(BlockId::Final),
                text => text
                    .parse()
                    .map(BlockId::Hash)
                    .map_err(|_| D::Error::custom(format!("expected {expected}, found {text:?}"))),
            },
            other => Err(D::Error::custom(format!("expected {expected}, found {other}"))),
        }
    }
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderJson {
    /// The block hash.
    pub hash: Hash,
    /// The chain id.
    pub chain_id: u64,
    /// The height.
    pub height: u64,
    /// The parent's hash.
    pub parent_hash: Hash,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The proposer's account.
    pub proposer: Address,
    /// The state root after the block.
    pub state_root: Hash,
    /// The Merkle root of the transaction ids.
    pub transactions_root: Hash,
    /// The Merkle root of the receipts.
    pub receipts_root: Hash,
    /// Gas used.
    pub gas_used: u64,
    /// The gas limit.
    pub gas_limit: u64,
}

impl From<&Header> for HeaderJson {
    fn from(header: &Header) -> Self {
        HeaderJson {
            hash: header.hash(),
            chain_id: header.chain_id,
            height: header.height,
            parent_hash: header.parent_hash,
            timestamp_ms: header.timestamp_ms,
            proposer: header.proposer,
            state_root: header.state_root,
            transactions_root: header.transactions_root,
            receipts_root: header.receipts_root,
            gas_used: header.gas_used,
            gas_limit: header.gas_limit,
        }
    }
}

/// A block: its header and its transactions (ids, or whole with `full`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockJson {
    /// The header.
    pub header: HeaderJson,
    /// The transaction ids, in order.
    pub transaction_ids: Vec<Hash>,
    /// The transactions, when asked for in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<Vec<TransactionJson>>,
    /// Whether the block is final.
    pub is_final: bool,
    /// The validators (indexes in the parent's epoch set) whose precommits for the parent the
    /// block carries; they share the block's reward.
    #[serde(default)]
    pub parent_certificate_signers: Vec<u16>,
    /// The equivocation evidence the block carries; each offender is slashed and jailed.
    #[serde(default)]
    pub evidence: Vec<EvidenceJson>,
}

/// A piece of evidence in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceJson {
    /// Its hash.
    pub hash: Hash,
    /// The offender's consensus key.
    pub offender: String,
    /// The height of the offence.
    pub height: u64,
    /// The round.
    pub round: u32,
}

impl BlockJson {
    /// The JSON of `block`, with its transactions in full if `full`. Their senders come from
    /// `senders` (kept with the block); a sender missing there is recovered from its signature.
    pub fn new(block: &Block, senders: Option<&[Address]>, full: bool, is_final: bool) -> Self {
        let height = block.header.height;
        let hash = block.hash();
        BlockJson {
            header: HeaderJson::from(&block.header),
            transaction_ids: block.transactions.iter().map(SignedTransaction::id).collect(),
            transactions: full.then(|| {
                block
                    .transactions
                    .iter()
                    .enumerate()
                    .map(|(i, tx)| {
                        let from = senders.and_then(|s| s.get(i).copied());
                        let location = (height, hash, u32::try_from(i).unwrap_or(u32::MAX));
                        TransactionJson::new(tx, from, Some(location))
                    })
                    .collect()
            }),
            is_final,
            parent_certificate_signers: block
                .parent_certificate
                .as_ref()
                .map(|c| c.signatures.iter().map(|s| s.validator_index).collect())
                .unwrap_or_default(),
            evidence: block
                .evidence
                .iter()
                .map(|e| EvidenceJson {
                    hash: e.hash(),
                    // Evidence in a committed block verified when the block was executed.
                    offender: e.offence().map(|o| o.offender.to_string()).unwrap_or_default(),
                    height: e.height(),
                    round: e.round(),
                })
                .collect(),
        }
    }
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ActionJson {
    /// A native transfer.
    Transfer {
        /// The recipient.
        to: Address,
        /// The amount.
        value: Amount,
    },
    /// A contract deployment.
    Deploy {
        /// blake3 of the code.
        code_hash: Hash,
        /// The code's size.
        code_size: usize,
        /// The constructor input.
        input: HexBytes,
        /// Value sent to the contract.
        value: Amount,
        /// The address salt.
        salt: Hash,
    },
    /// A contract call.
    Call {
        /// The contract.
        contract: Address,
        /// The input.
        input: HexBytes,
        /// Value sent.
        value: Amount,
    },
    /// A staking operation.
    Staking {
        /// Which (`registerValidator`, `bond`, `unbond`, `withdraw`).
        operation: String,
        /// The validator concerned, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        validator: Option<Address>,
        /// The amount, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<Amount>,
    },
}

impl From<&Action> for ActionJson {
    fn from(action: &Action) -> Self {
        match action {
            Action::Transfer { to, value } => {
                ActionJson::Transfer { to: *to, value: Amount(*value) }
            }
            Action::Deploy { code, input, value, salt } => ActionJson::Deploy {
                code_hash: altan_primitives::blake3(code),
                code_size: code.len(),
                input: HexBytes(input.clone()),
                value: Amount(*value),
                salt: *salt,
            },
            Action::Call { contract, input, value } => ActionJson::Call {
                contract: *contract,
                input: HexBytes(input.clone()),
                value: Amount(*value),
            },
            Action::Staking(staking) => {
                let (operation, validator, amount) = match staking {
                    StakingAction::RegisterValidator { .. } => ("registerValidator", None, None),
                    StakingAction::Bond { validator, amount } => {
                        ("bond", Some(*validator), Some(Amount(*amount)))
                    }
                    StakingAction::Unbond { validator, amount } => {
                        ("unbond", Some(*validator), Some(Amount(*amount)))
                    }
                    StakingAction::Withdraw => ("withdraw", None, None),
                };
                ActionJson::Staking { operation: operation.into(), validator, amount }
            }
        }
    }
}

/// A transaction, with where it was included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionJson {
    /// Its id.
    pub id: Hash,
    /// Its sender (null if the signature does not recover, which admission prevents).
    pub from: Option<Address>,
    /// The chain id.
    pub chain_id: u64,
    /// The nonce.
    pub nonce: u64,
    /// The gas limit.
    pub gas_limit: u64,
    /// The gas price.
    pub gas_price: Amount,
    /// What it does.
    pub action: ActionJson,
    /// The including block's height (null while pending).
    pub block_height: Option<u64>,
    /// The including block's hash (null while pending).
    pub block_hash: Option<Hash>,
    /// Its index in the block (null while pending).
    pub index: Option<u32>,
}

impl TransactionJson {
    /// The JSON of `transaction` sent by `from` (recovered from the signature if not given),
    /// included at `location` (height, block hash, index) if given.
    pub fn new(
        transaction: &SignedTransaction,
        from: Option<Address>,
        location: Option<(u64, Hash, u32)>,
    ) -> Self {
        let tx = &transaction.transaction;
        TransactionJson {
            id: transaction.id(),
            from: from.or_else(|| transaction.recover_sender().ok()),
            chain_id: tx.chain_id,
            nonce: tx.nonce,
            gas_limit: tx.gas_limit,
            gas_price: Amount(tx.gas_price),
            action: ActionJson::from(&tx.action),
            block_height: location.map(|l| l.0),
            block_hash: location.map(|l| l.1),
            index: location.map(|l| l.2),
        }
    }
}

/// An event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventJson {
    /// The contract that emitted it.
    pub contract: Address,
    /// Its topics.
    pub topics: Vec<Hash>,
    /// Its data.
    pub data: HexBytes,
    /// The block height (null in a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_height: Option<u64>,
    /// The transaction's id (null in a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<Hash>,
    /// The transaction's index in the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_index: Option<u32>,
    /// The event's index in the receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_index: Option<u32>,
}

impl EventJson {
    /// An event without a location.
    pub fn bare(event: &Event) -> Self {
        EventJson {
            contract: event.contract,
            topics: event.topics.clone(),
            data: HexBytes(event.data.clone()),
            block_height: None,
            transaction_id: None,
            transaction_index: None,
            event_index: None,
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StatusJson {
    /// It succeeded.
    Success,
    /// The contract reverted.
    Revert,
    /// Execution failed.
    Failure,
}

/// Status and failure reason of an execution status.
pub fn status_json(status: &ExecutionStatus) -> (StatusJson, Option<String>) {
    match status {
        ExecutionStatus::Success => (StatusJson::Success, None),
        ExecutionStatus::Revert => (StatusJson::Revert, None),
        ExecutionStatus::Failure(reason) => (StatusJson::Failure, Some(format!("{reason:?}"))),
    }
}

/// A receipt, with where its transaction was included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptJson {
    /// The transaction's id.
    pub transaction_id: Hash,
    /// The block height.
    pub block_height: u64,
    /// The block hash.
    pub block_hash: Hash,
    /// The transaction's index in the block.
    pub index: u32,
    /// How it ended.
    pub status: StatusJson,
    /// Why it failed (`OutOfGas`, `Trap`, ...), when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Gas charged.
    pub gas_used: u64,
    /// The return or revert data.
    pub output: HexBytes,
    /// Events.
    pub events: Vec<EventJson>,
    /// The deployed contract's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_address: Option<Address>,
}

impl ReceiptJson {
    /// The JSON of `receipt`, at (height, block hash, index).
    pub fn new(receipt: &Receipt, height: u64, block_hash: Hash, index: u32) -> Self {
        let (status, failure) = status_json(&receipt.status);
        ReceiptJson {
            transaction_id: receipt.transaction_id,
            block_height: height,
            block_hash,
            index,
            status,
            failure,
            gas_used: receipt.gas_used,
            output: HexBytes(receipt.output.clone()),
            events: receipt
                .events
                .iter()
                .enumerate()
                .map(|(i, event)| EventJson {
                    block_height: Some(height),
                    transaction_id: Some(receipt.transaction_id),
                    transaction_index: Some(index),
                    event_index: Some(u32::try_from(i).unwrap_or(u32::MAX)),
                    ..EventJson::bare(event)
                })
                .collect(),
            contract_address: receipt.contract_address,
        }
    }
}

/// An account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountJson {
    /// The address.
    pub address: Address,
    /// The balance.
    pub balance: Amount,
    /// The next nonce as of the block read.
    pub nonce: u64,
    /// The next nonce counting ready pending transactions (for the latest block only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_nonce: Option<u64>,
    /// A contract's code hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<Hash>,
    /// The height read at.
    pub block_height: u64,
}

/// A storage value with its Merkle proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageJson {
    /// The contract.
    pub contract: Address,
    /// The storage key.
    pub key: HexBytes,
    /// The value, or null when absent (the proof then proves absence).
    pub value: Option<HexBytes>,
    /// The SCALE-encoded proof (`StateProof`), checked with the state key
    /// `0x03 ‖ contract ‖ key` against `stateRoot`.
    pub proof: HexBytes,
    /// The state root it proves against.
    pub state_root: Hash,
    /// The height read at.
    pub block_height: u64,
}

/// A read-only call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryRequest {
    /// The contract.
    pub contract: Address,
    /// The input (selector and SCALE arguments).
    pub input: HexBytes,
    /// The caller the contract sees (zero address if absent).
    #[serde(default)]
    pub from: Option<Address>,
    /// Gas available (default and maximum: the block gas limit).
    #[serde(default)]
    pub gas: Option<u64>,
    /// The block whose state to read (default latest).
    #[serde(default)]
    pub at: Option<BlockId>,
}

/// An execution's outcome without a block: query, dry run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeJson {
    /// How it ended.
    pub status: StatusJson,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Gas used.
    pub gas_used: u64,
    /// The return or revert data.
    pub output: HexBytes,
    /// Events it emitted (or would).
    pub events: Vec<EventJson>,
    /// The address a deployment would get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_address: Option<Address>,
}

/// A transaction to dry-run or estimate: the SCALE encoding of an unsigned `Transaction`, or of
/// a `SignedTransaction` (whose sender is then recovered), and the sender for the unsigned case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunRequest {
    /// The sender of an unsigned transaction.
    #[serde(default)]
    pub from: Option<Address>,
    /// SCALE `Transaction` (with `from`) or `SignedTransaction` (without).
    pub transaction: HexBytes,
}

/// An event filter for `chain_getEvents`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventFilter {
    /// Only this contract's events (required unless the range is small; see the reference).
    #[serde(default)]
    pub contract: Option<Address>,
    /// Topics by position; `null` matches anything at that position.
    #[serde(default)]
    pub topics: Vec<Option<Hash>>,
    /// First block (default: 0 with a contract, else `toBlock`).
    #[serde(default)]
    pub from_block: Option<u64>,
    /// Last block (default: latest).
    #[serde(default)]
    pub to_block: Option<u64>,
    /// The most events to return (default and maximum: the server's limit).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl EventFilter {
    /// Whether `event` matches the contract and topics.
    pub fn matches(&self, event: &Event) -> bool {
        self.contract.is_none_or(|c| c == event.contract)
            && self
                .topics
                .iter()
                .enumerate()
                .all(|(i, wanted)| wanted.is_none_or(|wanted| event.topics.get(i) == Some(&wanted)))
    }
}

/// Chain parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainInfo {
    /// The chain's name.
    pub name: String,
    /// Its id (signed into every transaction).
    pub chain_id: u64,
    /// The genesis block's hash.
    pub genesis_hash: Hash,
    /// The chain spec's hash.
    pub spec_hash: Hash,
    /// The block gas limit.
    pub block_gas_limit: u64,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// The lowest gas price a transaction may offer (a decimal string).
    #[serde(default)]
    pub min_gas_price: Amount,
}

/// A validator of an epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorJson {
    /// Its account.
    pub address: Address,
    /// Its consensus key (compressed, hex).
    pub consensus_key: String,
    /// Its voting power: bonded stake.
    pub power: Amount,
}

/// An epoch's validator set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorsJson {
    /// The epoch.
    pub epoch: u64,
    /// The height it was read at.
    pub block_height: u64,
    /// The validators, in the set's canonical order (certificates index into it).
    pub validators: Vec<ValidatorJson>,
    /// The sum of their power.
    pub total_power: Amount,
}

/// The leader of a height's round 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderJson {
    /// The height.
    pub height: u64,
    /// The leader's index in the epoch's set.
    pub index: u16,
    /// The leader's account.
    pub address: Address,
}

/// Node health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthJson {
    /// Whether the node is serving.
    pub ok: bool,
    /// The head's height.
    pub height: u64,
    /// The final head's height.
    pub final_height: u64,
    /// Connected peers.
    pub peers: u32,
    /// Whether the node is catching up.
    pub syncing: bool,
    /// The highest final height a peer has shown (the node's own when it has no peers).
    pub best_seen_height: u64,
    /// Final blocks imported from peers since the node started.
    pub synced_blocks: u64,
    /// Where consensus is, on a node that runs it (`altan run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consensus: Option<ConsensusJson>,
    /// Transactions in the mempool.
    pub mempool: usize,
}

/// Where a node's consensus is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsensusJson {
    /// The height being decided.
    pub height: u64,
    /// Its round.
    pub round: u32,
    /// Whether this node's key is in the height's validator set.
    pub validating: bool,
}

/// The node's software.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionJson {
    /// The node's version.
    pub version: String,
    /// The host ABI contracts import.
    pub host_abi: String,
    /// The chain spec's name.
    pub chain: String,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerJson {
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Its address.
    pub address: String,
}

/// One transaction's admission in a batch: its id, or the error it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitResult {
    /// The id, if admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Hash>,
    /// The error, if refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorJson>,
}

/// An error as data (in batch results).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorJson {
    /// The stable code.
    pub code: i32,
    /// What was wrong.
    pub message: String,
}
