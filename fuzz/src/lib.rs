//! Fuzz targets. Each takes bytes as they would arrive from outside and checks that the code
//! reading them never panics and that what it accepts is well formed: a decoded value encodes
//! back to exactly the bytes it came from (one canonical encoding per value, so ids cannot be
//! malleated), and the VM gives the same receipts for the same generated module every time.
//!
//! `fuzz_targets/` holds one libFuzzer entry per target (`./x fuzz` runs each for a bounded
//! time); `tests/smoke.rs` runs every target on seeded random and mutated inputs in the test
//! suite.

use std::sync::Arc;

use altan_node::engine::wire::{self, Envelope};
use altan_node::interface::{ContractInterface, decode_output};
use altan_node::network::codec::SyncCodec;
use altan_primitives::{
    Action, Block, ChainSpec, GenesisAccount, Hash, SecretKey, SignedTransaction, StakingParams,
    Transaction,
};
use altan_runtime::exec::{BlockContext, Runtime};
use altan_runtime::state::{MemoryStore, State};
use altan_runtime::vm::{HOST_IMPORTS_WAT, VmConfig};
use arbitrary::Unstructured;
use futures::executor::block_on;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec;
use parity_scale_codec::{DecodeAll, Encode};

/// A fuzz target: it takes any bytes, and panics only on a finding.
pub type Target = fn(&[u8]);

/// Every target, by the name of its libFuzzer entry.
pub const TARGETS: &[(&str, Target)] = &[
    ("transaction", transaction),
    ("block", block),
    ("consensus_message", consensus_message),
    ("sync_item", sync_item),
    ("gossip", gossip),
    ("sync_codec", sync_codec),
    ("contract_interface", contract_interface),
    ("vm", vm),
];

/// Asserts that an accepted value came from its own encoding.
fn assert_canonical<T: Encode>(what: &str, value: &T, data: &[u8]) {
    assert!(value.encode() == data, "a {what} decoded from bytes that are not its encoding");
}

/// A signed transaction, as `tx_submit` and the transaction topic receive it.
pub fn transaction(data: &[u8]) {
    let Ok(transaction) = SignedTransaction::decode_all(&mut &data[..]) else { return };
    assert_canonical("transaction", &transaction, data);
    let _ = transaction.recover_sender();
    let _ = transaction.id();
}

/// A block, as sync and proposals carry it.
pub fn block(data: &[u8]) {
    let Ok(block) = Block::decode_all(&mut &data[..]) else { return };
    assert_canonical("block", &block, data);
    let _ = block.hash();
    let _ = Block::compute_transactions_root(&block.transactions);
    let _ = Block::compute_evidence_root(&block.evidence);
    for evidence in &block.evidence {
        let _ = evidence.verify();
    }
    for transaction in block.transactions.iter().take(16) {
        let _ = transaction.recover_sender();
    }
}

/// A consensus topic payload: a proposal with its block, or a vote.
pub fn consensus_message(data: &[u8]) {
    let Ok(envelope) = wire::decode_consensus(data) else { return };
    assert_canonical("consensus message", &envelope, data);
    let _ = envelope.body.height();
    match &envelope.body {
        wire::ConsensusGossip::Proposal { proposal, .. } => {
            let _ = proposal.signer();
        }
        wire::ConsensusGossip::Vote(vote) => {
            let _ = vote.signer();
        }
    }
}

/// A block sync item: a block and its certificate.
pub fn sync_item(data: &[u8]) {
    let Ok(item) = wire::decode_sync_item(data) else { return };
    assert_canonical("sync item", &item, data);
    let _ = item.block.hash();
}

/// The other gossip payloads: committed certificates and batches of transactions.
pub fn gossip(data: &[u8]) {
    if let Ok(envelope) = wire::decode_blocks(data) {
        assert_canonical("block announcement", &envelope, data);
    }
    if let Ok(transactions) = wire::decode_transactions_envelope(data) {
        assert!(transactions.len() <= wire::MAX_GOSSIP_TRANSACTIONS as usize);
        let sending = u64::decode_all(&mut data.get(..8).unwrap_or_default()).unwrap_or(0);
        assert_canonical("transactions message", &Envelope { sending, body: transactions }, data);
    }
}

/// A request and a response of the block sync protocol, framed as they come off a stream.
pub fn sync_codec(data: &[u8]) {
    let protocol = StreamProtocol::new("/altan/fuzz/sync/1");
    let mut codec = SyncCodec { max_response_bytes: 1 << 20 };
    let mut stream = futures::io::Cursor::new(data);
    let _ = block_on(codec.read_request(&protocol, &mut stream));
    let mut stream = futures::io::Cursor::new(data);
    let _ = block_on(codec.read_response(&protocol, &mut stream));
}

/// A contract's embedded interface, read from its Wasm, and the outputs it decodes.
pub fn contract_interface(data: &[u8]) {
    let Ok(interface) = ContractInterface::from_wasm(data) else { return };
    for method in &interface.methods {
        let _ = decode_output(method, data);
    }
}

/// The chain id of the VM target's chain.
const CHAIN_ID: u64 = 0xf022;

/// A module generated from `data` by wasm-smith (host imports, one exported memory, the entry
/// points), deployed and called: whatever it does ends in receipts, never a panic, and two runs
/// give the same receipts.
pub fn vm(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(module) = wasm_smith::Module::new(vm_config(), &mut input) else { return };
    let code = module.to_bytes();
    let call_input = input.take_rest().to_vec();
    let first = run_contract(&code, &call_input);
    assert!(first == run_contract(&code, &call_input), "the same module gave other receipts");
}

fn vm_config() -> wasm_smith::Config {
    let wat = |text: &str| wat::parse_str(text).unwrap_or_default();
    wasm_smith::Config {
        available_imports: Some(wat(&format!("(module {HOST_IMPORTS_WAT})"))),
        exports: Some(wat(
            r#"(module (memory (export "memory") 1) (func (export "call")) (func (export "deploy")))"#,
        )),
        min_memories: 0,
        max_memories: 0,
        reference_types_enabled: false,
        max_memory32_bytes: 8 * 65_536,
        max_tables: 1,
        max_table_elements: 1_000,
        allow_start_export: false,
        memory64_enabled: false,
        simd_enabled: false,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        tail_call_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        max_instructions: 1_000,
        ..wasm_smith::Config::default()
    }
}

/// Deploys `code` and calls it with `input` in one block on a fresh chain; the receipts' encoding.
fn run_contract(code: &[u8], input: &[u8]) -> Vec<u8> {
    let key = SecretKey::from_bytes(&[7; 32]).unwrap_or_else(|e| panic!("{e}"));
    let sender = key.address();
    let spec = ChainSpec {
        name: "fuzz".into(),
        chain_id: CHAIN_ID,
        genesis_time_ms: 0,
        block_gas_limit: 100_000_000,
        epoch_length: 100,
        accounts: vec![GenesisAccount { address: sender, balance: u128::from(u64::MAX) }],
        validators: Vec::new(),
        staking: StakingParams::default(),
        min_gas_price: 0,
    };
    let state = State::open(Arc::new(MemoryStore::new())).unwrap_or_else(|e| panic!("{e}"));
    let genesis = Runtime::genesis(&spec).unwrap_or_else(|e| panic!("{e}"));
    state.apply(0, &genesis).unwrap_or_else(|e| panic!("{e}"));
    let runtime = Runtime::for_spec(&spec, VmConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let parent = Arc::new(state.snapshot(0).unwrap_or_else(|e| panic!("{e}")));
    let context = BlockContext::new(CHAIN_ID, 1, 1, sender, spec.block_gas_limit);
    let mut executor = runtime.begin_block(parent, context);
    let salt = Hash::ZERO;
    let deploy = Action::Deploy { code: code.to_vec(), input: input.to_vec(), value: 0, salt };
    let mut receipts = Vec::new();
    let deployed = apply(&mut executor, &key, 0, deploy, &mut receipts);
    if let Some(contract) = deployed {
        let call = Action::Call { contract, input: input.to_vec(), value: 1 };
        apply(&mut executor, &key, 1, call, &mut receipts);
    }
    receipts
}

/// Applies one transaction, appending its receipt's encoding (or its refusal's text); returns
/// the contract it deployed, if any.
fn apply(
    executor: &mut altan_runtime::exec::BlockExecutor<'_>,
    key: &SecretKey,
    nonce: u64,
    action: Action,
    receipts: &mut Vec<u8>,
) -> Option<altan_primitives::Address> {
    let transaction =
        Transaction { chain_id: CHAIN_ID, nonce, gas_limit: 20_000_000, gas_price: 0, action }
            .sign(key);
    match executor.apply_recovered(&transaction, key.address()) {
        Ok(receipt) => {
            receipts.extend(receipt.encode());
            receipt.contract_address
        }
        Err(error) => {
            receipts.extend(error.to_string().into_bytes());
            None
        }
    }
}
