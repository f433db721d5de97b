//! Block validity that needs no execution (a header against its parent, the clock and the spec)
//! and the comparison of a header with its execution. Building, checking and syncing a block all
//! apply exactly these rules; each error says what the block has and what the rule expects.

use std::fmt;

use altan_primitives::{Block, ChainId, Gas, Hash, Header, Height};
use parity_scale_codec::Encode;

use crate::exec::{BlockOutcome, Runtime};

/// The largest block, encoded. A block built by a node carries at most 3 MiB of transactions
/// (so that a proposal with its block fits one gossip message); the rest is for the header, the
/// parent's certificate and evidence.
pub const MAX_BLOCK_BYTES: usize = (3 << 20) + (256 << 10);

/// How far ahead of a checking node's clock a block's timestamp may be.
pub const MAX_CLOCK_DRIFT_MS: u64 = 5_000;

/// What a block has, and what the rule or the execution expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GotExpected<T> {
    /// In the block.
    pub got: T,
    /// Expected.
    pub expected: T,
}

impl<T: fmt::Display> fmt::Display for GotExpected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, expected {}", self.got, self.expected)
    }
}

/// Why a header does not follow its parent, the clock or the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Another chain's block.
    #[error("chain id {0}")]
    ChainId(GotExpected<ChainId>),
    /// Not the height after the parent's: for another head, not invalid as such.
    #[error("height {0}")]
    Height(GotExpected<Height>),
    /// Not built on the parent.
    #[error("parent hash {0}")]
    ParentHash(GotExpected<Hash>),
    /// Not the spec's gas limit.
    #[error("gas limit {0}")]
    GasLimit(GotExpected<Gas>),
    /// A timestamp at or before the parent's.
    #[error("timestamp {timestamp_ms} is not after the parent's {parent_ms}")]
    TimestampNotAfterParent {
        /// The block's.
        timestamp_ms: u64,
        /// The parent's.
        parent_ms: u64,
    },
    /// A timestamp more than [`MAX_CLOCK_DRIFT_MS`] ahead of the checking node's clock.
    #[error(
        "timestamp {timestamp_ms} is more than {MAX_CLOCK_DRIFT_MS} ms ahead of the clock's {now_ms}"
    )]
    TimestampAhead {
        /// The block's.
        timestamp_ms: u64,
        /// The clock's.
        now_ms: u64,
    },
    /// Larger than [`MAX_BLOCK_BYTES`].
    #[error("{size} bytes; a block has at most {max}")]
    TooLarge {
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a header does not match what executing its block gave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutcomeError {
    /// The state root after the block.
    #[error("state root {0}")]
    StateRoot(GotExpected<Hash>),
    /// The root of the transaction ids.
    #[error("transactions root {0}")]
    TransactionsRoot(GotExpected<Hash>),
    /// The root of the receipts.
    #[error("receipts root {0}")]
    ReceiptsRoot(GotExpected<Hash>),
    /// The gas the transactions used.
    #[error("gas used {0}")]
    GasUsed(GotExpected<Gas>),
}

fn check<T: PartialEq>(got: T, expected: T) -> Result<(), GotExpected<T>> {
    if got == expected { Ok(()) } else { Err(GotExpected { got, expected }) }
}

impl Runtime {
    /// The rules a block meets before it executes: this chain's id, the height after `parent`,
    /// built on it, the spec's gas limit (for a runtime made for a spec), a timestamp after the
    /// parent's and (when `now_ms` is given: not for final blocks from sync) at most
    /// [`MAX_CLOCK_DRIFT_MS`] ahead of the clock, and at most [`MAX_BLOCK_BYTES`] encoded.
    pub fn validate_header(
        &self,
        parent: &Header,
        block: &Block,
        now_ms: Option<u64>,
    ) -> Result<(), HeaderError> {
        let header = &block.header;
        check(header.chain_id, self.chain_id()).map_err(HeaderError::ChainId)?;
        check(header.height, parent.height.saturating_add(1)).map_err(HeaderError::Height)?;
        check(header.parent_hash, parent.hash()).map_err(HeaderError::ParentHash)?;
        if let Some(limit) = self.block_gas_limit() {
            check(header.gas_limit, limit).map_err(HeaderError::GasLimit)?;
        }
        if header.timestamp_ms <= parent.timestamp_ms {
            return Err(HeaderError::TimestampNotAfterParent {
                timestamp_ms: header.timestamp_ms,
                parent_ms: parent.timestamp_ms,
            });
        }
        if let Some(now_ms) = now_ms
            && header.timestamp_ms > now_ms.saturating_add(MAX_CLOCK_DRIFT_MS)
        {
            return Err(HeaderError::TimestampAhead { timestamp_ms: header.timestamp_ms, now_ms });
        }
        let size = block.encoded_size();
        if size > MAX_BLOCK_BYTES {
            return Err(HeaderError::TooLarge { size, max: MAX_BLOCK_BYTES });
        }
        Ok(())
    }

    /// The rules a header meets after its block executed: its state root (`state_root`, the
    /// root of the state the outcome's changes give), transactions root, receipts root and gas
    /// used are the execution's.
    pub fn validate_outcome(
        header: &Header,
        outcome: &BlockOutcome,
        state_root: Hash,
    ) -> Result<(), OutcomeError> {
        check(header.state_root, state_root).map_err(OutcomeError::StateRoot)?;
        check(header.transactions_root, outcome.transactions_root)
            .map_err(OutcomeError::TransactionsRoot)?;
        check(header.receipts_root, outcome.receipts_root).map_err(OutcomeError::ReceiptsRoot)?;
        check(header.gas_used, outcome.gas_used).map_err(OutcomeError::GasUsed)?;
        Ok(())
    }
}
