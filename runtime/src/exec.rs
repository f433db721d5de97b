//! Applying transactions and executing blocks.
//!
//! A transaction is either *invalid* (bad signature, wrong chain, wrong nonce, cannot pay its
//! maximum fee, over a size or gas limit) and changes nothing, so it cannot be in a block; or it
//! is *included*: the sender's nonce advances, the fee `gas used x gas price` is paid to the
//! block's proposer, and its action either succeeds or is rolled back, with a receipt saying
//! which. Execution reads the parent state through [`StateRead`] and collects writes in an
//! [`Overlay`]; [`BlockExecutor::finish`] hands the writes and the roots to the caller, which
//! computes the state root and commits.

use std::sync::Arc;

use altan_primitives::{
    Action, Address, Balance, Block, ChainId, ChainSpec, Event, ExecutionStatus, FailureReason,
    Gas, Hash, Height, Receipt, SignatureError, SignedTransaction, merkle,
};
use parity_scale_codec::Encode;

use crate::accounts;
use crate::gas;
use crate::state::{Account, Overlay, StateChanges, StateKey, StateRead, StoreError};
use crate::vm::host::{self, CallOutcome, CallStatus, HostState};
use crate::vm::{ExecutionError, Vm, VmConfig};

/// What execution knows about the block being built or checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockContext {
    /// The chain.
    pub chain_id: ChainId,
    /// The block's height.
    pub height: Height,
    /// The block's timestamp in ms.
    pub timestamp_ms: u64,
    /// Who receives the fees.
    pub proposer: Address,
    /// The block's gas limit.
    pub gas_limit: Gas,
}

/// Why a transaction cannot be included. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTransaction {
    /// The signature is malformed or high-S.
    #[error("bad signature: {0}")]
    BadSignature(#[from] SignatureError),
    /// The transaction is for another chain.
    #[error("wrong chain id: expected {expected}, found {found}")]
    WrongChainId {
        /// This chain's id.
        expected: ChainId,
        /// The transaction's.
        found: ChainId,
    },
    /// The nonce is not the sender's next.
    #[error("wrong nonce: expected {expected}, found {found}")]
    WrongNonce {
        /// The sender's next nonce.
        expected: u64,
        /// The transaction's.
        found: u64,
    },
    /// The sender cannot pay the maximum fee plus the value.
    #[error("insufficient funds: need {needed}, have {available}")]
    InsufficientFunds {
        /// gas limit x gas price + value.
        needed: Balance,
        /// The sender's balance.
        available: Balance,
    },
    /// The maximum fee plus the value does not fit a balance.
    #[error("fee and value overflow")]
    Overflow,
    /// The gas limit does not cover the intrinsic cost.
    #[error("gas limit {limit} is below the intrinsic cost {intrinsic}")]
    GasLimitTooLow {
        /// The transaction's gas limit.
        limit: Gas,
        /// What it costs before anything runs.
        intrinsic: Gas,
    },
    /// The gas limit exceeds what is left of the block's.
    #[error("gas limit {limit} exceeds the {left} left in the block")]
    BlockGasExceeded {
        /// The transaction's gas limit.
        limit: Gas,
        /// Gas left in the block.
        left: Gas,
    },
    /// The encoded transaction is too large.
    #[error("transaction is {size} bytes; the limit is {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The action is not enabled on this chain yet.
    #[error("{0} is not enabled on this chain")]
    Unsupported(&'static str),
}

/// Why a transaction was not applied.
#[derive(Debug, thiserror::Error)]
pub enum TxError {
    /// The transaction is invalid; nothing changed.
    #[error(transparent)]
    Invalid(#[from] InvalidTransaction),
    /// Execution could not continue; the block cannot be executed on this node.
    #[error(transparent)]
    Fatal(#[from] ExecutionError),
}

impl From<StoreError> for TxError {
    fn from(error: StoreError) -> Self {
        TxError::Fatal(error.into())
    }
}

/// Why a block cannot be executed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// A transaction in it is invalid, so the block is.
    #[error("transaction {index} is invalid: {reason}")]
    InvalidTransaction {
        /// Its position in the block.
        index: usize,
        /// Why.
        reason: InvalidTransaction,
    },
    /// Execution could not continue on this node.
    #[error(transparent)]
    Fatal(#[from] ExecutionError),
}

/// Why a chain spec cannot make a genesis state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// An account is listed twice.
    #[error("account {0} is listed twice")]
    DuplicateAccount(Address),
    /// The balances add up to more than a balance can hold.
    #[error("total supply overflows")]
    SupplyOverflow,
}

/// The result of executing a block.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    /// State writes, to commit as the block's version.
    pub changes: StateChanges,
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// Gas used by all transactions.
    pub gas_used: Gas,
    /// The Merkle root of the transaction ids.
    pub transactions_root: Hash,
    /// The Merkle root of the receipts.
    pub receipts_root: Hash,
}

/// The result of a read-only call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOutcome {
    /// How it ended.
    pub status: ExecutionStatus,
    /// Returned or revert data.
    pub output: Vec<u8>,
    /// Gas it used.
    pub gas_used: Gas,
    /// Events it would have emitted.
    pub events: Vec<Event>,
}

/// The key of the runtime's record of the last executed block: SCALE `(height, timestamp_ms)`.
/// Every block writes it, so every block has its own state root.
pub fn block_record_key() -> Vec<u8> {
    StateKey::system(b"block")
}

/// The state machine: applies transactions and blocks for one chain.
pub struct Runtime {
    vm: Arc<Vm>,
    chain_id: ChainId,
}

impl Runtime {
    /// A runtime for `chain_id`.
    pub fn new(chain_id: ChainId, config: VmConfig) -> Result<Runtime, wasmtime::Error> {
        Ok(Runtime { vm: Arc::new(Vm::new(config)?), chain_id })
    }

    /// The VM.
    pub fn vm(&self) -> &Arc<Vm> {
        &self.vm
    }

    /// The chain this runtime executes.
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// The genesis state of `spec`: prefunded accounts and the genesis block record.
    pub fn genesis(spec: &ChainSpec) -> Result<StateChanges, GenesisError> {
        let mut changes = StateChanges::new();
        let mut supply: Balance = 0;
        for account in &spec.accounts {
            supply = supply.checked_add(account.balance).ok_or(GenesisError::SupplyOverflow)?;
            let value = Account { nonce: 0, balance: account.balance, code_hash: None }.encode();
            if changes.insert(StateKey::account(&account.address), Some(value)).is_some() {
                return Err(GenesisError::DuplicateAccount(account.address));
            }
        }
        changes.insert(block_record_key(), Some((0u64, spec.genesis_time_ms).encode()));
        Ok(changes)
    }

    /// Starts executing a block on top of `parent`.
    pub fn begin_block(
        &self,
        parent: Arc<dyn StateRead>,
        context: BlockContext,
    ) -> BlockExecutor<'_> {
        BlockExecutor {
            runtime: self,
            overlay: Overlay::new(Arc::clone(&parent)),
            parent,
            context,
            receipts: Vec::new(),
            transaction_ids: Vec::new(),
            gas_used: 0,
        }
    }

    /// Executes `block`'s transactions on top of `parent`. Any invalid transaction makes the
    /// whole block invalid. The caller checks the outcome's roots against the header.
    pub fn execute_block(
        &self,
        parent: Arc<dyn StateRead>,
        block: &Block,
    ) -> Result<BlockOutcome, BlockError> {
        let header = &block.header;
        let context = BlockContext {
            chain_id: header.chain_id,
            height: header.height,
            timestamp_ms: header.timestamp_ms,
            proposer: header.proposer,
            gas_limit: header.gas_limit,
        };
        let mut executor = self.begin_block(parent, context);
        for (index, transaction) in block.transactions.iter().enumerate() {
            match executor.apply(transaction) {
                Ok(_) => {}
                Err(TxError::Invalid(reason)) => {
                    return Err(BlockError::InvalidTransaction { index, reason });
                }
                Err(TxError::Fatal(error)) => return Err(BlockError::Fatal(error)),
            }
        }
        Ok(executor.finish())
    }

    /// Calls `contract` read-only: nothing it writes is kept, no fee is charged.
    pub fn query(
        &self,
        state: Arc<dyn StateRead>,
        context: BlockContext,
        caller: Address,
        contract: Address,
        input: Vec<u8>,
        gas_limit: Gas,
    ) -> Result<QueryOutcome, ExecutionError> {
        let host = HostState::new(Overlay::new(state), context, Arc::clone(&self.vm));
        let mut store = host::new_store(&self.vm, host, gas_limit)?;
        let outcome = host::call_contract(&mut store, caller, contract, 0, input, gas_limit)?;
        let gas_used = gas_limit.saturating_sub(store.get_fuel().unwrap_or(0));
        let events = std::mem::take(&mut store.data_mut().events);
        Ok(QueryOutcome {
            status: status_of(outcome.status),
            output: outcome.output,
            gas_used,
            events: if outcome.status == CallStatus::Success { events } else { Vec::new() },
        })
    }
}

fn status_of(status: CallStatus) -> ExecutionStatus {
    match status {
        CallStatus::Success => ExecutionStatus::Success,
        CallStatus::Revert => ExecutionStatus::Revert,
        CallStatus::Failure(reason) => ExecutionStatus::Failure(reason),
    }
}

/// The gas a transaction costs before anything runs.
pub fn intrinsic_gas(transaction: &SignedTransaction, encoded_size: usize) -> Gas {
    let base = gas::cost(gas::TX_BASE, gas::TX_BYTE, encoded_size);
    match &transaction.transaction.action {
        Action::Deploy { code, .. } => {
            base.saturating_add(gas::cost(0, gas::DEPLOY_BYTE, code.len()))
        }
        _ => base,
    }
}

/// Executes one block's transactions in order.
pub struct BlockExecutor<'r> {
    runtime: &'r Runtime,
    parent: Arc<dyn StateRead>,
    overlay: Overlay,
    context: BlockContext,
    receipts: Vec<Receipt>,
    transaction_ids: Vec<Hash>,
    gas_used: Gas,
}

impl BlockExecutor<'_> {
    /// The block's context.
    pub fn context(&self) -> &BlockContext {
        &self.context
    }

    /// Gas used so far.
    pub fn gas_used(&self) -> Gas {
        self.gas_used
    }

    /// Receipts so far.
    pub fn receipts(&self) -> &[Receipt] {
        &self.receipts
    }

    /// Checks the signature and applies `transaction`.
    pub fn apply(&mut self, transaction: &SignedTransaction) -> Result<&Receipt, TxError> {
        let sender = transaction.recover_sender().map_err(InvalidTransaction::BadSignature)?;
        self.apply_recovered(transaction, sender)
    }

    /// Applies `transaction` whose signature was already checked to recover to `sender` (the
    /// mempool does this once at admission).
    pub fn apply_recovered(
        &mut self,
        transaction: &SignedTransaction,
        sender: Address,
    ) -> Result<&Receipt, TxError> {
        let tx = &transaction.transaction;
        let size = transaction.encoded_size();
        if size > gas::MAX_TX_SIZE {
            return Err(InvalidTransaction::TooLarge { size, max: gas::MAX_TX_SIZE }.into());
        }
        if tx.chain_id != self.runtime.chain_id {
            return Err(InvalidTransaction::WrongChainId {
                expected: self.runtime.chain_id,
                found: tx.chain_id,
            }
            .into());
        }
        if matches!(tx.action, Action::Staking(_)) {
            return Err(InvalidTransaction::Unsupported("staking").into());
        }
        let intrinsic = intrinsic_gas(transaction, size);
        if tx.gas_limit < intrinsic {
            return Err(
                InvalidTransaction::GasLimitTooLow { limit: tx.gas_limit, intrinsic }.into()
            );
        }
        let left = self.context.gas_limit.saturating_sub(self.gas_used);
        if tx.gas_limit > left {
            return Err(InvalidTransaction::BlockGasExceeded { limit: tx.gas_limit, left }.into());
        }
        let max_fee = Balance::from(tx.gas_limit)
            .checked_mul(tx.gas_price)
            .ok_or(InvalidTransaction::Overflow)?;
        let needed = max_fee.checked_add(tx.value()).ok_or(InvalidTransaction::Overflow)?;

        let overlay = &mut self.overlay;
        let mut account = accounts::load(overlay, &sender)?;
        if account.nonce != tx.nonce {
            return Err(InvalidTransaction::WrongNonce {
                expected: account.nonce,
                found: tx.nonce,
            }
            .into());
        }
        if account.balance < needed {
            return Err(InvalidTransaction::InsufficientFunds {
                needed,
                available: account.balance,
            }
            .into());
        }

        // From here on the transaction is included: charge the maximum fee and take the nonce.
        account.balance = account.balance.saturating_sub(max_fee);
        account.nonce = account.nonce.saturating_add(1);
        accounts::store(overlay, &sender, &account);
        let checkpoint = overlay.checkpoint();

        let budget = tx.gas_limit.saturating_sub(intrinsic);
        let (outcome, exec_gas, events, contract_address) = match &tx.action {
            Action::Transfer { to, value } => {
                // The balance check above covers the value, so this cannot fail.
                accounts::transfer(overlay, &sender, to, *value)?;
                (
                    CallOutcome { status: CallStatus::Success, output: Vec::new() },
                    0,
                    Vec::new(),
                    None,
                )
            }
            Action::Call { contract, input, value } => {
                let (contract, input, value) = (*contract, input.clone(), *value);
                self.run_contract(budget, |store| {
                    host::call_contract(store, sender, contract, value, input, budget)
                        .map(|o| (o, None))
                })?
            }
            Action::Deploy { code, input, value, salt } => {
                let (input, value, salt) = (input.clone(), *value, *salt);
                self.run_contract(budget, |store| {
                    host::deploy_contract(store, sender, code, input, value, salt, budget)
                        .map(|(o, a)| (o, Some(a)))
                })?
            }
            // Refused above; kept total so that no panic hides in the state transition.
            Action::Staking(_) => {
                (CallOutcome::failure(FailureReason::Unsupported), 0, Vec::new(), None)
            }
        };

        let success = outcome.status == CallStatus::Success;
        let proposer = self.context.proposer;
        let overlay = &mut self.overlay;
        if !success {
            overlay.revert_to(checkpoint);
        }
        let gas_used = intrinsic.saturating_add(exec_gas).min(tx.gas_limit);
        let fee = Balance::from(gas_used).saturating_mul(tx.gas_price);
        let refund = max_fee.saturating_sub(fee);
        accounts::credit(overlay, &sender, refund)?;
        accounts::credit(overlay, &proposer, fee)?;
        overlay.seal();

        self.gas_used = self.gas_used.saturating_add(gas_used);
        let transaction_id = transaction.id();
        self.transaction_ids.push(transaction_id);
        let index = self.receipts.len();
        self.receipts.push(Receipt {
            transaction_id,
            status: status_of(outcome.status),
            gas_used,
            output: outcome.output,
            events: if success { events } else { Vec::new() },
            contract_address: if success { contract_address } else { None },
        });
        Ok(&self.receipts[index])
    }

    /// Runs contract code in a fresh store that owns the overlay for the duration.
    #[allow(clippy::type_complexity)]
    fn run_contract(
        &mut self,
        budget: Gas,
        run: impl FnOnce(
            &mut wasmtime::Store<HostState>,
        ) -> Result<(CallOutcome, Option<Address>), ExecutionError>,
    ) -> Result<(CallOutcome, Gas, Vec<Event>, Option<Address>), ExecutionError> {
        // The store owns the overlay while contracts run; an empty one holds its place.
        let overlay = std::mem::replace(&mut self.overlay, Overlay::new(Arc::clone(&self.parent)));
        let vm = Arc::clone(&self.runtime.vm);
        let state = HostState::new(overlay, self.context.clone(), Arc::clone(&vm));
        let mut store = host::new_store(&vm, state, budget)?;
        let result = run(&mut store);
        let left = store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        self.overlay = state.overlay;
        let (outcome, address) = result?;
        Ok((outcome, budget.saturating_sub(left), state.events, address))
    }

    /// Ends the block: writes the block record and returns the changes, receipts and roots.
    pub fn finish(mut self) -> BlockOutcome {
        let record = (self.context.height, self.context.timestamp_ms).encode();
        self.overlay.set(block_record_key(), Some(record));
        let changes = self.overlay.into_changes();
        BlockOutcome {
            changes,
            transactions_root: merkle::root(&self.transaction_ids),
            receipts_root: Receipt::compute_root(&self.receipts),
            receipts: self.receipts,
            gas_used: self.gas_used,
        }
    }
}
