//! The RPC's error codes. They are stable: clients match on them. docs/rpc.md lists them.
//!
//! JSON-RPC's own codes (-32700 parse error, -32600 invalid request, -32601 method not found,
//! -32602 invalid params) and jsonrpsee's limits (-32007 request too big, -32010 batch too big,
//! -32006 too many subscriptions) keep their meanings. Altan's start at 1000: 1xxx a submitted
//! transaction was refused, 2xxx a read could not be served, 3xxx execution, 9xxx the node itself.

use altan_runtime::exec::InvalidTransaction;
use jsonrpsee::types::ErrorObjectOwned;

use crate::chain::{ChainError, SubmitError};
use crate::mempool::MempoolError;

/// The bytes are not a SCALE-encoded signed transaction.
pub const TX_MALFORMED: i32 = 1000;
/// The signature is invalid or high-S.
pub const TX_BAD_SIGNATURE: i32 = 1001;
/// The transaction is for another chain.
pub const TX_WRONG_CHAIN: i32 = 1002;
/// The nonce was used already.
pub const TX_NONCE_TOO_LOW: i32 = 1003;
/// The nonce is too far ahead of the account's.
pub const TX_NONCE_TOO_HIGH: i32 = 1004;
/// The balance does not cover the maximum fee plus value of the sender's pending transactions.
pub const TX_INSUFFICIENT_BALANCE: i32 = 1005;
/// The transaction is larger than allowed.
pub const TX_TOO_LARGE: i32 = 1006;
/// The gas limit is below the intrinsic cost or above the block's.
pub const TX_BAD_GAS_LIMIT: i32 = 1007;
/// A pending transaction with the same sender and nonce pays as much or more.
pub const TX_UNDERPRICED: i32 = 1008;
/// The mempool, or the sender's share of it, is full (also of transactions behind a nonce gap).
pub const TX_POOL_FULL: i32 = 1009;
/// The transaction is already pending.
pub const TX_ALREADY_KNOWN: i32 = 1010;
/// The action is not enabled on this chain.
pub const TX_UNSUPPORTED: i32 = 1011;
/// Maximum fee plus value overflows.
pub const TX_OVERFLOW: i32 = 1012;
/// Too many transactions in one `tx_submitBatch`.
pub const TX_BATCH_TOO_LARGE: i32 = 1013;
/// The gas price is below the chain's minimum (`chain_info`'s `minGasPrice`).
pub const TX_GAS_PRICE_TOO_LOW: i32 = 1014;

/// The block asked for does not exist.
pub const UNKNOWN_BLOCK: i32 = 2000;
/// The state of that block was pruned.
pub const STATE_UNAVAILABLE: i32 = 2001;
/// The block range of an event query is too long.
pub const RANGE_TOO_LARGE: i32 = 2002;
/// The address holds no contract.
pub const NOT_A_CONTRACT: i32 = 2003;
/// The contract has no (valid) embedded interface.
pub const NO_INTERFACE: i32 = 2004;

/// The chain keeps no validator set (or seed) for that epoch, or the range spans epochs.
pub const NO_VALIDATOR_SET: i32 = 2005;
/// A state proof was asked for a block older than the newest 64.
pub const PROOF_TOO_OLD: i32 = 2006;

/// The transaction would be refused by a block (see the message: nonce, balance, gas...).
pub const EXECUTION_INVALID: i32 = 3000;
/// The execution failed or reverted (estimate only; a dry run reports it as its status).
pub const EXECUTION_FAILED: i32 = 3001;

/// The node failed (storage, execution infrastructure). Not the caller's fault.
pub const INTERNAL: i32 = 9000;

/// The pool that serves this kind of request is full, or the request waited too long for it:
/// try again later. jsonrpsee's own code for a busy server.
pub const BUSY: i32 = jsonrpsee::types::error::SERVER_IS_BUSY_CODE;

/// An error object with `code` and `message`.
pub fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

/// The code of a refused transaction.
pub fn invalid_transaction_code(reason: &InvalidTransaction) -> i32 {
    match reason {
        InvalidTransaction::BadSignature(_) => TX_BAD_SIGNATURE,
        InvalidTransaction::WrongChainId { .. } => TX_WRONG_CHAIN,
        InvalidTransaction::WrongNonce { .. } => TX_NONCE_TOO_LOW,
        InvalidTransaction::InsufficientFunds { .. } => TX_INSUFFICIENT_BALANCE,
        InvalidTransaction::Overflow => TX_OVERFLOW,
        InvalidTransaction::GasLimitTooLow { .. } | InvalidTransaction::BlockGasExceeded { .. } => {
            TX_BAD_GAS_LIMIT
        }
        InvalidTransaction::TooLarge { .. } => TX_TOO_LARGE,
        InvalidTransaction::Unsupported(_) => TX_UNSUPPORTED,
        InvalidTransaction::GasPriceTooLow { .. } => TX_GAS_PRICE_TOO_LOW,
        #[allow(unreachable_patterns)]
        _ => EXECUTION_INVALID,
    }
}

/// The code of a submission error.
pub fn submit_code(error: &SubmitError) -> i32 {
    match error {
        SubmitError::Invalid(reason) => invalid_transaction_code(reason),
        SubmitError::GasLimitAboveBlock { .. } => TX_BAD_GAS_LIMIT,
        SubmitError::Mempool(error) => match error {
            MempoolError::AlreadyKnown(_) => TX_ALREADY_KNOWN,
            MempoolError::NonceTooLow { .. } => TX_NONCE_TOO_LOW,
            MempoolError::NonceTooHigh { .. } => TX_NONCE_TOO_HIGH,
            MempoolError::InsufficientBalance { .. } => TX_INSUFFICIENT_BALANCE,
            MempoolError::ReplacementUnderpriced { .. } => TX_UNDERPRICED,
            MempoolError::SenderFull { .. }
            | MempoolError::PoolFull { .. }
            | MempoolError::TooManyGapped { .. } => TX_POOL_FULL,
            MempoolError::CostOverflow => TX_OVERFLOW,
        },
        SubmitError::Internal(_) => INTERNAL,
    }
}

impl From<SubmitError> for ErrorObjectOwned {
    fn from(error: SubmitError) -> Self {
        crate::rpc::error::error(submit_code(&error), error.to_string())
    }
}

/// The error object of a query or dry run that was not answered.
pub fn free_error(error: crate::chain::FreeError) -> ErrorObjectOwned {
    match error {
        crate::chain::FreeError::Busy(busy) => busy_error(&busy),
        crate::chain::FreeError::Chain(error) => chain_error(error),
    }
}

/// The error object of a refusal by a busy pool.
pub fn busy_error(busy: &crate::work::Busy) -> ErrorObjectOwned {
    self::error(BUSY, busy.to_string())
}

/// The error object of a node failure, with the state-pruned case told apart.
pub fn chain_error(error: ChainError) -> ErrorObjectOwned {
    use altan_runtime::state::StoreError;
    match &error {
        ChainError::State(StoreError::VersionUnavailable { .. }) => {
            self::error(STATE_UNAVAILABLE, error.to_string())
        }
        ChainError::ProofTooOld { .. } => self::error(PROOF_TOO_OLD, error.to_string()),
        _ => {
            tracing::warn!(target: "altan::rpc", %error, "internal error serving a request");
            self::error(INTERNAL, error.to_string())
        }
    }
}
