//! Blocks, headers, transactions, receipts and events as the RPC shows them.

use altan_primitives::{
    Action, Address, Block, Event, ExecutionStatus, Hash, Header, Receipt, SignedTransaction,
    StakingAction,
};
use serde::{Deserialize, Serialize};

use super::{Amount, HexBytes};

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
