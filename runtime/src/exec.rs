//! Applying transactions and executing blocks.
//!
//! A transaction is either *invalid* (bad signature, wrong chain, wrong nonce, cannot pay its
//! maximum fee, over a size or gas limit) and changes nothing, so it cannot be in a block; or it
//! is *included*: the sender's nonce advances, the fee `gas used x gas price` is collected for
//! the block's reward, and its action either succeeds or is rolled back, with a receipt saying
//! which. Execution reads the parent state through [`StateRead`] and collects writes in an
//! [`Overlay`]; [`BlockExecutor::finish`] does the block's staking work (certificate and
//! evidence checks, slashing, rewards, the next epoch's validator set; see [`crate::staking`])
//! and hands the writes and the roots to the caller, which computes the state root and commits.

use std::sync::Arc;

use altan_primitives::{
    Action, Address, Balance, Block, Certificate, ChainId, ChainSpec, Event, Evidence,
    ExecutionStatus, FailureReason, Gas, Hash, Header, Height, Receipt, SignatureError,
    SignedTransaction, StakingAction, Transaction, merkle,
};
use parity_scale_codec::Encode;

use crate::accounts;
use crate::gas;
use crate::staking::{self, ConsensusError};
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
    /// The validator (its account address) that proposed the block; it earns the proposer's
    /// share of the block's reward and fees.
    pub proposer: Address,
    /// The block's gas limit.
    pub gas_limit: Gas,
    /// The parent block's hash: the parent certificate must be for it.
    pub parent_hash: Hash,
    /// The parent's commit certificate the block carries; its signers earn the voters' share.
    /// `None` only at height 1 and on a chain without validators.
    pub parent_certificate: Option<Certificate>,
    /// Equivocation evidence the block carries, punished at the end of the block.
    pub evidence: Vec<Evidence>,
}

impl BlockContext {
    /// A context without a parent certificate or evidence: for read-only queries, and for blocks
    /// of a chain without validators.
    pub fn new(
        chain_id: ChainId,
        height: Height,
        timestamp_ms: u64,
        proposer: Address,
        gas_limit: Gas,
    ) -> BlockContext {
        BlockContext {
            chain_id,
            height,
            timestamp_ms,
            proposer,
            gas_limit,
            parent_hash: Hash::ZERO,
            parent_certificate: None,
            evidence: Vec::new(),
        }
    }

    /// The context of `block`, as [`Runtime::execute_block`] builds it.
    pub fn of_block(block: &Block) -> BlockContext {
        let header = &block.header;
        BlockContext {
            chain_id: header.chain_id,
            height: header.height,
            timestamp_ms: header.timestamp_ms,
            proposer: header.proposer,
            gas_limit: header.gas_limit,
            parent_hash: header.parent_hash,
            parent_certificate: block.parent_certificate.clone(),
            evidence: block.evidence.clone(),
        }
    }

    /// The part contracts can see, without the certificate and evidence: cheap to clone into
    /// every transaction's VM store.
    fn for_contracts(&self) -> BlockContext {
        BlockContext::new(
            self.chain_id,
            self.height,
            self.timestamp_ms,
            self.proposer,
            self.gas_limit,
        )
    }
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
    /// The gas price is below the chain's minimum.
    #[error("gas price {found} is below the chain's minimum {min}")]
    GasPriceTooLow {
        /// The chain's minimum gas price.
        min: Balance,
        /// The transaction's.
        found: Balance,
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

/// A part of a block's body that its header commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPart {
    /// The transactions ([`Header::transactions_root`]).
    Transactions,
    /// The parent certificate ([`Header::parent_certificate_hash`]).
    ParentCertificate,
    /// The evidence ([`Header::evidence_root`]).
    Evidence,
}

/// Why a block cannot be executed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The header's root or hash of a part of the body does not match the body.
    #[error("the header's {part:?} root is {found}, the body's is {expected}")]
    BodyMismatch {
        /// The part.
        part: BodyPart,
        /// What the body hashes to.
        expected: Hash,
        /// What the header says.
        found: Hash,
    },
    /// A transaction in it is invalid, so the block is.
    #[error("transaction {index} is invalid: {reason}")]
    InvalidTransaction {
        /// Its position in the block.
        index: usize,
        /// Why.
        reason: InvalidTransaction,
    },
    /// The parent certificate, the proposer or the evidence is invalid.
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    /// Execution could not continue on this node.
    #[error(transparent)]
    Fatal(#[from] ExecutionError),
}

impl From<StoreError> for BlockError {
    fn from(error: StoreError) -> Self {
        BlockError::Fatal(error.into())
    }
}

/// Why a chain spec cannot make a genesis state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// An account is listed twice.
    #[error("account {0} is listed twice")]
    DuplicateAccount(Address),
    /// The balances and stakes add up to more than a balance can hold.
    #[error("total supply overflows")]
    SupplyOverflow,
    /// The staking parameters contradict each other or a limit.
    #[error("invalid staking parameters: {reason}")]
    InvalidStakingParams {
        /// The rule broken.
        reason: &'static str,
    },
    /// More genesis validators than an epoch's set may hold.
    #[error("{count} genesis validators; the set holds at most {max}")]
    TooManyValidators {
        /// How many the spec lists.
        count: usize,
        /// `max_validators`.
        max: u16,
    },
    /// A genesis validator is listed twice.
    #[error("validator {0} is listed twice")]
    DuplicateValidator(Address),
    /// A genesis validator's stake is below the minimum.
    #[error("validator {address} stakes {stake}; the minimum is {min}")]
    ValidatorStakeTooLow {
        /// The validator.
        address: Address,
        /// Its stake.
        stake: Balance,
        /// `min_validator_stake` (and at least 1).
        min: Balance,
    },
    /// A genesis validator breaks a registration rule (commission, consensus key).
    #[error("validator {address} is invalid: {reason:?}")]
    InvalidValidator {
        /// The validator.
        address: Address,
        /// The rule broken, as a transaction would fail with it.
        reason: FailureReason,
    },
    /// Building the genesis records failed.
    #[error("genesis records: {0}")]
    Store(String),
}

/// The result of executing a block.
#[derive(Debug, Clone)]
pub struct BlockOutcome {
    /// State writes, to commit as the block's version.
    pub changes: StateChanges,
    /// One receipt per transaction, in order.
    pub receipts: Vec<Receipt>,
    /// The sender of each transaction, in order (recovered once, while executing).
    pub senders: Vec<Address>,
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
    min_gas_price: Balance,
    block_gas_limit: Option<Gas>,
}

impl Runtime {
    /// A runtime for `chain_id` that takes any gas price and any header gas limit.
    pub fn new(chain_id: ChainId, config: VmConfig) -> Result<Runtime, wasmtime::Error> {
        let vm = Arc::new(Vm::new(config)?);
        Ok(Runtime { vm, chain_id, min_gas_price: 0, block_gas_limit: None })
    }

    /// A runtime for the chain of `spec`: its chain id, its minimum gas price and its block gas
    /// limit.
    pub fn for_spec(spec: &ChainSpec, config: VmConfig) -> Result<Runtime, wasmtime::Error> {
        Ok(Runtime {
            min_gas_price: spec.min_gas_price,
            block_gas_limit: Some(spec.block_gas_limit),
            ..Runtime::new(spec.chain_id, config)?
        })
    }

    /// The gas limit every header carries, for a runtime made for a spec.
    pub fn block_gas_limit(&self) -> Option<Gas> {
        self.block_gas_limit
    }

    /// The lowest gas price a transaction may offer.
    pub fn min_gas_price(&self) -> Balance {
        self.min_gas_price
    }

    /// The rules a transaction must meet whatever the state: its encoded size, the chain id,
    /// a gas limit that covers its intrinsic gas, and the minimum gas price. Admission, block
    /// building, block checking and sync all apply exactly these (the signature is checked
    /// where the sender is recovered). Returns the intrinsic gas, which execution charges.
    pub fn check_stateless(
        &self,
        transaction: &SignedTransaction,
    ) -> Result<Gas, InvalidTransaction> {
        let tx = &transaction.transaction;
        let size = transaction.encoded_size();
        if size > gas::MAX_TX_SIZE {
            return Err(InvalidTransaction::TooLarge { size, max: gas::MAX_TX_SIZE });
        }
        if tx.chain_id != self.chain_id {
            return Err(InvalidTransaction::WrongChainId {
                expected: self.chain_id,
                found: tx.chain_id,
            });
        }
        let intrinsic = intrinsic_gas(transaction, size);
        if tx.gas_limit < intrinsic {
            return Err(InvalidTransaction::GasLimitTooLow { limit: tx.gas_limit, intrinsic });
        }
        if tx.gas_price < self.min_gas_price {
            return Err(InvalidTransaction::GasPriceTooLow {
                min: self.min_gas_price,
                found: tx.gas_price,
            });
        }
        Ok(intrinsic)
    }

    /// The VM.
    pub fn vm(&self) -> &Arc<Vm> {
        &self.vm
    }

    /// The chain this runtime executes.
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// The genesis state of `spec`: prefunded accounts, the staking configuration, the genesis
    /// validators with their self-bonds and the epoch-0 validator set, and the genesis block
    /// record.
    pub fn genesis(spec: &ChainSpec) -> Result<StateChanges, GenesisError> {
        let mut supply: Balance = 0;
        for validator in &spec.validators {
            supply = supply.checked_add(validator.stake).ok_or(GenesisError::SupplyOverflow)?;
        }
        let mut changes = staking::genesis(spec)?;
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

    /// Checks a block's consensus inputs against its parent state without executing it: the
    /// parent certificate (for the parent, valid for the parent epoch's set), the proposer (a
    /// member of the block's epoch's set) and each piece of evidence. A proposer calls this to
    /// drop evidence that would make its block invalid; [`BlockExecutor::finish`] checks the
    /// same again.
    pub fn check_block_inputs(
        &self,
        parent: &dyn StateRead,
        context: &BlockContext,
    ) -> Result<(), BlockError> {
        staking::check_inputs_on(parent, self.chain_id, context)
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
            senders: Vec::new(),
            gas_used: 0,
            fees: 0,
        }
    }

    /// Executes `block` on top of `parent`: checks that the header commits to the body
    /// (transactions, parent certificate, evidence), applies the transactions, then ends the
    /// block ([`BlockExecutor::finish`]). Any invalid transaction makes the whole block invalid.
    /// The caller checks the outcome's state and receipts roots and gas against the header.
    pub fn execute_block(
        &self,
        parent: Arc<dyn StateRead>,
        block: &Block,
    ) -> Result<BlockOutcome, BlockError> {
        check_body(block)?;
        let mut executor = self.begin_block(parent, BlockContext::of_block(block));
        for (index, transaction) in block.transactions.iter().enumerate() {
            match executor.apply(transaction) {
                Ok(_) => {}
                Err(TxError::Invalid(reason)) => {
                    return Err(BlockError::InvalidTransaction { index, reason });
                }
                Err(TxError::Fatal(error)) => return Err(BlockError::Fatal(error)),
            }
        }
        executor.finish()
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

/// Checks that the header's roots of the body match the body.
fn check_body(block: &Block) -> Result<(), BlockError> {
    let header: &Header = &block.header;
    let parts = [
        (
            BodyPart::Transactions,
            Block::compute_transactions_root(&block.transactions),
            header.transactions_root,
        ),
        (
            BodyPart::ParentCertificate,
            Block::compute_parent_certificate_hash(block.parent_certificate.as_ref()),
            header.parent_certificate_hash,
        ),
        (BodyPart::Evidence, Block::compute_evidence_root(&block.evidence), header.evidence_root),
    ];
    for (part, expected, found) in parts {
        if expected != found {
            return Err(BlockError::BodyMismatch { part, expected, found });
        }
    }
    Ok(())
}

fn status_of(status: CallStatus) -> ExecutionStatus {
    match status {
        CallStatus::Success => ExecutionStatus::Success,
        CallStatus::Revert => ExecutionStatus::Revert,
        CallStatus::Failure(reason) => ExecutionStatus::Failure(reason),
    }
}

/// What a sender must hold for a transaction to be valid: its maximum fee (gas limit x gas
/// price) plus the native value it moves ([`Transaction::value`]: a transfer's, call's or
/// deploy's value, a bond's amount). `None` if it overflows. The mempool admits by the same
/// rule, so that nothing it admits is refused by a block for want of balance.
pub fn upfront_cost(tx: &Transaction) -> Option<Balance> {
    Balance::from(tx.gas_limit).checked_mul(tx.gas_price)?.checked_add(tx.value())
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
    senders: Vec<Address>,
    gas_used: Gas,
    /// Fees of the transactions so far, paid out at [`BlockExecutor::finish`].
    fees: Balance,
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
        let intrinsic = self.runtime.check_stateless(transaction)?;
        let tx = &transaction.transaction;
        let left = self.context.gas_limit.saturating_sub(self.gas_used);
        if tx.gas_limit > left {
            return Err(InvalidTransaction::BlockGasExceeded { limit: tx.gas_limit, left }.into());
        }
        let max_fee = Balance::from(tx.gas_limit)
            .checked_mul(tx.gas_price)
            .ok_or(InvalidTransaction::Overflow)?;
        let needed = upfront_cost(tx).ok_or(InvalidTransaction::Overflow)?;

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
                let cost = match accounts::creates_account(overlay, &sender, to, *value)? {
                    true => gas::NEW_ACCOUNT,
                    false => 0,
                };
                if budget < cost {
                    (CallOutcome::failure(FailureReason::OutOfGas), budget, Vec::new(), None)
                } else {
                    // The balance check above covers the value, so this cannot fail.
                    accounts::transfer(overlay, &sender, to, *value)?;
                    let success = CallOutcome { status: CallStatus::Success, output: Vec::new() };
                    (success, cost, Vec::new(), None)
                }
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
            Action::Staking(action) => {
                let cost = match action {
                    StakingAction::Withdraw => gas::STAKING_WITHDRAW,
                    _ => gas::STAKING,
                };
                let outcome = if budget < cost {
                    CallOutcome::failure(FailureReason::OutOfGas)
                } else {
                    match staking::execute(overlay, &sender, action, self.context.height)? {
                        Ok(()) => CallOutcome { status: CallStatus::Success, output: Vec::new() },
                        Err(reason) => CallOutcome::failure(reason),
                    }
                };
                (outcome, cost, Vec::new(), None)
            }
        };

        let success = outcome.status == CallStatus::Success;
        let overlay = &mut self.overlay;
        if !success {
            overlay.revert_to(checkpoint);
        }
        let gas_used = intrinsic.saturating_add(exec_gas).min(tx.gas_limit);
        let fee = Balance::from(gas_used).saturating_mul(tx.gas_price);
        let refund = max_fee.saturating_sub(fee);
        accounts::credit(overlay, &sender, refund)?;
        overlay.seal();
        // Fees cannot overflow while the total supply fits a balance.
        self.fees = self.fees.saturating_add(fee);

        self.gas_used = self.gas_used.saturating_add(gas_used);
        let transaction_id = transaction.id();
        self.transaction_ids.push(transaction_id);
        self.senders.push(sender);
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
        let state = HostState::new(overlay, self.context.for_contracts(), Arc::clone(&vm));
        let mut store = host::new_store(&vm, state, budget)?;
        let result = run(&mut store);
        let left = store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        self.overlay = state.overlay;
        let (outcome, address) = result?;
        Ok((outcome, budget.saturating_sub(left), state.events, address))
    }

    /// Ends the block: checks its consensus inputs, slashes what its evidence proves, pays the
    /// block reward and the fees to the proposer and the parent's voters, fixes the next
    /// epoch's validator set at an epoch's end, writes the block record, and returns the
    /// changes, receipts and roots. An error means the block is invalid (or, for
    /// [`BlockError::Fatal`], cannot be executed on this node); nothing is committed either way.
    pub fn finish(mut self) -> Result<BlockOutcome, BlockError> {
        staking::finish_block(&mut self.overlay, self.runtime.chain_id, &self.context, self.fees)?;
        let record = (self.context.height, self.context.timestamp_ms).encode();
        self.overlay.set(block_record_key(), Some(record));
        let changes = self.overlay.into_changes();
        Ok(BlockOutcome {
            changes,
            transactions_root: merkle::root(&self.transaction_ids),
            receipts_root: Receipt::compute_root(&self.receipts),
            receipts: self.receipts,
            senders: self.senders,
            gas_used: self.gas_used,
        })
    }
}
