//! The chain store on its own: blocks, receipts, senders, indexes, certificates, the head and
//! the final head, the consensus write-ahead log, and what survives a reopen. The store checks
//! no consensus rule; it must keep exactly what it was given, in one batch per block.

use std::path::Path;

use altan_primitives::{
    Action, Address, Block, Certificate, ChainSpec, Event, ExecutionStatus, Hash, Header, Height,
    Receipt, SecretKey, SignedTransaction, StakingParams, Transaction, blake3,
};
use altan_runtime::state::{StateChanges, StateConfig};
use altan_storage::{
    BlockCommit, ChainLocation, ChainStore, ChainStoreError, EventLocation, MemoryDisk,
    StoreOptions,
};

fn spec(chain_id: u64) -> ChainSpec {
    ChainSpec {
        name: "chain-store".into(),
        chain_id,
        genesis_time_ms: 1_700_000_000_000,
        block_gas_limit: 10_000_000,
        epoch_length: 16,
        accounts: Vec::new(),
        validators: Vec::new(),
        staking: StakingParams::default(),
        min_gas_price: 0,
    }
}

fn header(height: Height, parent_hash: Hash, state_root: Hash) -> Header {
    Header {
        chain_id: 1,
        height,
        parent_hash,
        timestamp_ms: 1_700_000_000_000 + height,
        proposer: Address::ZERO,
        state_root,
        transactions_root: Hash::ZERO,
        receipts_root: Hash::ZERO,
        parent_certificate_hash: Hash::ZERO,
        evidence_root: Hash::ZERO,
        gas_used: 0,
        gas_limit: 10_000_000,
    }
}

fn open(path: &Path, chain_id: u64) -> Result<ChainStore, ChainStoreError> {
    open_at(ChainLocation::Disk(path), chain_id, StoreOptions::default())
}

fn open_at(
    location: ChainLocation<'_>,
    chain_id: u64,
    options: StoreOptions,
) -> Result<ChainStore, ChainStoreError> {
    ChainStore::open(
        location,
        &spec(chain_id),
        |state| {
            let commit = state.prepare(0, &StateChanges::new())?;
            let genesis = header(0, Hash::ZERO, commit.root());
            let block = Block {
                header: genesis,
                transactions: Vec::new(),
                parent_certificate: None,
                evidence: Vec::new(),
            };
            Ok((block, commit))
        },
        options,
        StateConfig::default(),
    )
}

fn sender(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i.max(1); 32]).unwrap()
}

fn transfer(from: u8, nonce: u64) -> SignedTransaction {
    Transaction {
        chain_id: 1,
        nonce,
        gas_limit: 21_000,
        gas_price: 1,
        action: Action::Transfer { to: Address::ZERO, value: 1 },
    }
    .sign(&sender(from))
}

/// A receipt for `transaction` with `events` events from `contract`.
fn receipt(transaction: &SignedTransaction, contract: Address, events: usize) -> Receipt {
    Receipt {
        transaction_id: transaction.id(),
        status: ExecutionStatus::Success,
        gas_used: 21_000,
        output: Vec::new(),
        events: (0..events)
            .map(|i| Event { contract, topics: vec![blake3(&[i as u8])], data: vec![i as u8] })
            .collect(),
        contract_address: None,
    }
}

/// Commits block `height` with two transfers (the first emitting `events` events of
/// `contract`), a state write, and a certificate when `certified`.
fn commit_next(store: &ChainStore, contract: Address, events: usize, certified: bool) -> Block {
    let head = store.head().unwrap();
    let height = head.height + 1;
    let transactions = vec![transfer(1, height), transfer(2, height)];
    let receipts =
        vec![receipt(&transactions[0], contract, events), receipt(&transactions[1], contract, 0)];
    let senders: Vec<Address> = [1, 2].iter().map(|&i| sender(i).address()).collect();
    let mut changes = StateChanges::new();
    changes.insert(format!("key-{height}").into_bytes(), Some(vec![height as u8]));
    let state = store.state().prepare(height, &changes).unwrap();
    let block = Block {
        header: header(height, head.hash, state.root()),
        transactions,
        parent_certificate: None,
        evidence: Vec::new(),
    };
    let certificate =
        Certificate { height, round: 0, block_hash: block.hash(), signatures: Vec::new() };
    store
        .commit_block(BlockCommit {
            block: &block,
            receipts: &receipts,
            senders: &senders,
            state: &state,
            certificate: certified.then_some(&certificate),
        })
        .unwrap();
    block
}

#[test]
fn a_new_store_holds_genesis_as_head_and_final() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1).unwrap();
    let genesis = store.block_at(0).unwrap().expect("genesis is stored");
    assert_eq!(store.head().unwrap().hash, genesis.hash());
    assert_eq!(store.final_head().unwrap().hash, genesis.hash());
    assert_eq!(store.spec().unwrap(), Some(spec(1)));
    assert_eq!(store.block_at(1).unwrap(), None);
}

#[test]
fn another_chains_spec_is_refused_and_the_store_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = open(dir.path(), 1).unwrap().head().unwrap();
    match open(dir.path(), 2) {
        Err(ChainStoreError::WrongChain { expected, found }) => {
            assert_eq!(expected, spec(2).hash());
            assert_eq!(found, spec(1).hash());
        }
        other => panic!("expected WrongChain, got {:?}", other.map(|_| ())),
    }
    assert_eq!(open(dir.path(), 1).unwrap().head().unwrap(), genesis);
}

#[test]
fn committed_blocks_and_everything_beside_them_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let contract = sender(9).address();
    let blocks: Vec<Block> = {
        let store = open(dir.path(), 1).unwrap();
        (0..3).map(|_| commit_next(&store, contract, 2, true)).collect()
    };
    let store = open(dir.path(), 1).unwrap();
    let last = blocks.last().unwrap();
    assert_eq!(store.head().unwrap().height, 3);
    assert_eq!(store.final_head().unwrap().hash, last.hash());
    for block in &blocks {
        let height = block.header.height;
        let hash = block.hash();
        assert_eq!(store.block_at(height).unwrap().as_ref(), Some(block));
        assert_eq!(store.header(&hash).unwrap(), Some(block.header.clone()), "header alone");
        assert_eq!(store.header_at(height).unwrap(), Some(block.header.clone()));
        assert_eq!(store.receipts(&hash).unwrap().unwrap().len(), 2);
        assert_eq!(
            store.senders(&hash).unwrap(),
            Some(vec![sender(1).address(), sender(2).address()])
        );
        assert_eq!(store.certificate(height).unwrap().unwrap().block_hash, hash);
        for (index, transaction) in block.transactions.iter().enumerate() {
            let location = store.transaction_location(&transaction.id()).unwrap();
            assert_eq!(location, Some((height, index as u32)));
        }
    }
    assert_eq!(store.state().latest_version().unwrap(), Some(3), "the state version of the head");
}

#[test]
fn a_block_without_a_certificate_moves_the_head_but_not_the_final_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1).unwrap();
    let first = commit_next(&store, Address::ZERO, 0, true);
    let second = commit_next(&store, Address::ZERO, 0, false);
    assert_eq!(store.head().unwrap().hash, second.hash());
    assert_eq!(store.final_head().unwrap().hash, first.hash());
    assert_eq!(store.certificate(2).unwrap(), None);
}

#[test]
fn a_block_that_does_not_follow_the_head_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1).unwrap();
    let genesis = store.head().unwrap();
    let state = store.state().prepare(1, &StateChanges::new()).unwrap(); // a version that would follow
    let block = Block {
        header: header(5, genesis.hash, state.root()),
        transactions: vec![transfer(1, 0)],
        parent_certificate: None,
        evidence: Vec::new(),
    };
    let commit = BlockCommit {
        block: &block,
        receipts: &[],
        senders: &[],
        state: &state,
        certificate: None,
    };
    match store.commit_block(commit) {
        Err(ChainStoreError::NotNext { height: 5, head: 0 }) => {}
        other => panic!("expected NotNext, got {other:?}"),
    }
    assert_eq!(store.head().unwrap(), genesis);
    assert_eq!(store.block(&block.hash()).unwrap(), None);
    assert_eq!(store.transaction_location(&block.transactions[0].id()).unwrap(), None);
}

#[test]
fn events_are_found_by_contract_and_height_range_in_chain_order_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), 1).unwrap();
    let (watched, other) = (sender(7).address(), sender(8).address());
    commit_next(&store, watched, 2, true);
    commit_next(&store, other, 3, true);
    commit_next(&store, watched, 1, true);
    let at = |height, event_index| EventLocation { height, transaction_index: 0, event_index };
    assert_eq!(store.events_of(&watched, 0, 10, 100).unwrap(), vec![at(1, 0), at(1, 1), at(3, 0)]);
    assert_eq!(store.events_of(&watched, 2, 10, 100).unwrap(), vec![at(3, 0)]);
    assert_eq!(store.events_of(&watched, 0, 1, 100).unwrap(), vec![at(1, 0), at(1, 1)]);
    assert_eq!(store.events_of(&watched, 0, 10, 2).unwrap(), vec![at(1, 0), at(1, 1)]);
    assert_eq!(store.events_of(&other, 0, 10, 100).unwrap().len(), 3);
    assert!(store.events_of(&Address::ZERO, 0, 10, 100).unwrap().is_empty());
}

#[test]
fn the_consensus_log_keeps_what_was_signed_and_proposed_until_its_height_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), 1).unwrap();
        store.persist_message(1, 0, 0, b"proposal 1", Some(b"block 1")).unwrap();
        store.persist_message(1, 0, 1, b"prevote 1", None).unwrap();
        store.persist_message(1, 1, 0, b"proposal 1 round 1", Some(b"block 1 round 1")).unwrap();
        store.persist_message(2, 0, 1, b"prevote 2", None).unwrap();
    }
    let store = open(dir.path(), 1).unwrap();
    let expected: Vec<Vec<u8>> =
        vec![b"proposal 1".to_vec(), b"prevote 1".to_vec(), b"proposal 1 round 1".to_vec()];
    assert_eq!(store.persisted_messages(1).unwrap(), expected, "in (round, step) order");
    let blocks: Vec<Vec<u8>> = vec![b"block 1".to_vec(), b"block 1 round 1".to_vec()];
    assert_eq!(store.persisted_blocks(1).unwrap(), blocks, "proposed blocks, in round order");
    commit_next(&store, Address::ZERO, 0, true);
    assert!(store.persisted_messages(1).unwrap().is_empty(), "height 1 is decided");
    assert!(store.persisted_blocks(1).unwrap().is_empty(), "and its blocks go with it");
    assert_eq!(store.persisted_messages(2).unwrap(), vec![b"prevote 2".to_vec()]);
    assert!(store.persisted_blocks(2).unwrap().is_empty());
}

/// On a memory disk, the store keeps what rocksdb would: with synced writes every committed block
/// survives a power loss; without, a power loss keeps a prefix of the blocks, each whole (its
/// state version, receipts, indexes and head together), and the store reopens on it.
#[test]
fn a_power_loss_keeps_a_prefix_of_whole_blocks() {
    for (sync_writes, keep, survivors) in
        [(true, 0, 5), (false, 0, 0), (false, 3, 3), (false, 9, 5)]
    {
        let disk = MemoryDisk::new();
        let options = StoreOptions { sync_writes, ..StoreOptions::default() };
        let mut blocks = Vec::new();
        {
            let store = open_at(ChainLocation::Memory(&disk), 1, options.clone()).unwrap();
            for _ in 0..5 {
                blocks.push(commit_next(&store, Address::ZERO, 1, true));
            }
            // Genesis and the format marker were written before the blocks.
            let unsynced = if sync_writes { 0 } else { 7 };
            assert_eq!(disk.unsynced_writes(), unsynced);
        }
        let genesis_and_marker = if sync_writes { 0 } else { 2 };
        disk.power_loss(|n| (keep + genesis_and_marker).min(n));
        let store = open_at(ChainLocation::Memory(&disk), 1, options).unwrap();
        let head = store.head().unwrap();
        assert_eq!(head.height, survivors, "sync {sync_writes}, keep {keep}");
        for block in blocks.iter().take(survivors as usize) {
            let height = block.header.height;
            assert_eq!(store.block_at(height).unwrap().as_ref(), Some(block));
            assert_eq!(store.state().root(height).unwrap(), block.header.state_root);
            assert_eq!(store.receipts(&block.hash()).unwrap().map(|r| r.len()), Some(2));
            assert!(store.certificate(height).unwrap().is_some());
        }
        for block in blocks.iter().skip(survivors as usize) {
            assert_eq!(store.block_hash(block.header.height).unwrap(), None);
            let first = block.transactions[0].id();
            assert_eq!(store.transaction_location(&first).unwrap(), None);
        }
    }
}
