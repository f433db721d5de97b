//! The block rules of `altan_runtime::validate`: each broken rule gives its own error with what
//! the block has and what was expected, and a block that meets them all passes.

use altan_primitives::{Action, Address, Block, Hash, Header};
use altan_runtime::exec::Runtime;
use altan_runtime::validate::{
    GotExpected, HeaderError, MAX_BLOCK_BYTES, MAX_CLOCK_DRIFT_MS, OutcomeError,
};
use altan_runtime::vm::VmConfig;
use parity_scale_codec::Encode;

use crate::common::*;

const PARENT_MS: u64 = 1_700_000_000_000;

fn parent() -> Header {
    let mut header = Chain::new().block(Vec::new()).header;
    header.timestamp_ms = PARENT_MS;
    header
}

/// A child of `parent` that meets every header rule of `spec(0)`.
fn child(parent: &Header) -> Block {
    let mut block = Chain::new().block(Vec::new());
    block.header.height = parent.height + 1;
    block.header.parent_hash = parent.hash();
    block.header.timestamp_ms = parent.timestamp_ms + 1;
    block
}

fn runtime() -> Runtime {
    Runtime::for_spec(&spec(0), VmConfig::default()).unwrap()
}

#[test]
fn each_header_rule_names_what_it_got_and_expected() {
    let runtime = runtime();
    let parent = parent();
    let now = Some(PARENT_MS + 1_000);
    let cases: Vec<(&str, fn(&mut Block), Option<u64>, HeaderError)> = vec![
        (
            "chain id",
            |b| b.header.chain_id = 99,
            now,
            HeaderError::ChainId(GotExpected { got: 99, expected: CHAIN_ID }),
        ),
        (
            "height",
            |b| b.header.height += 1,
            now,
            HeaderError::Height(GotExpected { got: 3, expected: 2 }),
        ),
        (
            "gas limit",
            |b| b.header.gas_limit = 5,
            now,
            HeaderError::GasLimit(GotExpected { got: 5, expected: 100_000_000 }),
        ),
        (
            "timestamp at the parent's",
            |b| b.header.timestamp_ms = PARENT_MS,
            now,
            HeaderError::TimestampNotAfterParent { timestamp_ms: PARENT_MS, parent_ms: PARENT_MS },
        ),
        (
            "timestamp ahead of the clock",
            |b| b.header.timestamp_ms = PARENT_MS + 1_000 + MAX_CLOCK_DRIFT_MS + 1,
            now,
            HeaderError::TimestampAhead {
                timestamp_ms: PARENT_MS + 1_000 + MAX_CLOCK_DRIFT_MS + 1,
                now_ms: PARENT_MS + 1_000,
            },
        ),
    ];
    for (rule, breaks, now_ms, expected) in cases {
        let mut block = child(&parent);
        breaks(&mut block);
        assert_eq!(runtime.validate_header(&parent, &block, now_ms), Err(expected), "{rule}");
    }
    let mut block = child(&parent);
    block.header.parent_hash = Hash([1; 32]);
    assert_eq!(
        runtime.validate_header(&parent, &block, now),
        Err(HeaderError::ParentHash(GotExpected { got: Hash([1; 32]), expected: parent.hash() })),
    );
}

#[test]
fn a_block_that_meets_every_rule_passes_and_sync_is_not_held_to_the_clock() {
    let runtime = runtime();
    let parent = parent();
    let mut block = child(&parent);
    assert_eq!(runtime.validate_header(&parent, &block, Some(PARENT_MS)), Ok(()));
    block.header.timestamp_ms = PARENT_MS + 10 * MAX_CLOCK_DRIFT_MS;
    assert!(runtime.validate_header(&parent, &block, Some(PARENT_MS)).is_err());
    assert_eq!(runtime.validate_header(&parent, &block, None), Ok(()), "a final block from sync");
    // A runtime made without a spec has no gas limit to hold headers to.
    let any_limit = Runtime::new(CHAIN_ID, VmConfig::default()).unwrap();
    block.header.gas_limit = 1;
    assert_eq!(any_limit.validate_header(&parent, &block, None), Ok(()));
}

#[test]
fn a_block_over_the_size_limit_is_refused() {
    let runtime = runtime();
    let parent = parent();
    let chain = Chain::new();
    let code = vec![0u8; 100 * 1024];
    let deploy = Action::Deploy { code, input: Vec::new(), value: 0, salt: Hash::ZERO };
    let transaction = chain.tx(&key(0), deploy, GAS_LIMIT);
    let mut block = child(&parent);
    while block.encoded_size() <= MAX_BLOCK_BYTES {
        block.transactions.push(transaction.clone());
    }
    let size = block.encoded_size();
    assert_eq!(
        runtime.validate_header(&parent, &block, None),
        Err(HeaderError::TooLarge { size, max: MAX_BLOCK_BYTES })
    );
    block.transactions.pop();
    assert_eq!(runtime.validate_header(&parent, &block, None), Ok(()));
}

#[test]
fn the_outcome_rules_compare_the_header_with_the_execution() {
    let mut chain = Chain::new();
    let transfer = Action::Transfer { to: Address([9; 20]), value: 1 };
    let transaction = chain.tx(&key(0), transfer, GAS_LIMIT);
    chain.execute(vec![transaction]).unwrap();
    let outcome = chain.last.clone().unwrap();
    let root = chain.root();
    let mut header = parent();
    header.state_root = root;
    header.transactions_root = outcome.transactions_root;
    header.receipts_root = outcome.receipts_root;
    header.gas_used = outcome.gas_used;
    assert_eq!(Runtime::validate_outcome(&header, &outcome, root), Ok(()));
    let other = Hash([2; 32]);
    let cases: Vec<(fn(&mut Header), OutcomeError)> = vec![
        (
            |h| h.state_root = Hash([2; 32]),
            OutcomeError::StateRoot(GotExpected { got: other, expected: root }),
        ),
        (
            |h| h.transactions_root = Hash([2; 32]),
            OutcomeError::TransactionsRoot(GotExpected {
                got: other,
                expected: outcome.transactions_root,
            }),
        ),
        (
            |h| h.receipts_root = Hash([2; 32]),
            OutcomeError::ReceiptsRoot(GotExpected { got: other, expected: outcome.receipts_root }),
        ),
        (
            |h| h.gas_used = 7,
            OutcomeError::GasUsed(GotExpected { got: 7, expected: outcome.gas_used }),
        ),
    ];
    for (breaks, expected) in cases {
        let mut broken = header.clone();
        breaks(&mut broken);
        assert_eq!(Runtime::validate_outcome(&broken, &outcome, root), Err(expected));
    }
}
