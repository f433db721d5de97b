//! A small chain over the in-memory state, and WAT contracts for the tests.

use std::sync::Arc;

use altan_primitives::{
    Action, Address, Balance, Block, ChainSpec, Gas, GenesisAccount, Hash, Header, Receipt,
    SecretKey, SignedTransaction, StakingParams, Transaction,
};
use altan_runtime::exec::{BlockError, BlockOutcome, Runtime};
use altan_runtime::state::{Account, MemoryStore, State, StateChanges, StateKey, StateStore};
use altan_runtime::vm::{HOST_IMPORTS_WAT, VmConfig};
use parity_scale_codec::Decode;

pub const CHAIN_ID: u64 = 7;
pub const GAS_PRICE: Balance = 2;
pub const GAS_LIMIT: Gas = 5_000_000;
pub const FUNDS: Balance = 1_000_000_000_000_000;

pub fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i.saturating_add(1); 32]).expect("valid key")
}

pub fn spec(accounts: usize) -> ChainSpec {
    ChainSpec {
        name: "test".into(),
        chain_id: CHAIN_ID,
        genesis_time_ms: 1_700_000_000_000,
        block_gas_limit: 100_000_000,
        epoch_length: 100,
        accounts: (0..accounts)
            .map(|i| GenesisAccount { address: key(i as u8).address(), balance: FUNDS })
            .collect(),
        validators: Vec::new(),
        // No validators and no block reward: the proposer earns exactly the fees, which the
        // execution tests check. Staking has its own chains in `staking.rs`.
        staking: StakingParams { block_reward: 0, ..StakingParams::default() },
        min_gas_price: 0,
    }
}

/// A chain on any state store, one block per `execute`.
pub struct Chain<S: StateStore> {
    pub state: State<S>,
    pub runtime: Runtime,
    pub height: u64,
    pub proposer: Address,
    pub last: Option<BlockOutcome>,
}

impl Chain<MemoryStore> {
    pub fn new() -> Self {
        Chain::with_store(Arc::new(MemoryStore::new()), VmConfig::default())
    }
}

impl<S: StateStore> Chain<S> {
    pub fn with_store(store: Arc<S>, vm: VmConfig) -> Self {
        let state = State::open(store).expect("state opens");
        let runtime = Runtime::new(CHAIN_ID, vm).expect("engine");
        if state.latest_version().unwrap().is_none() {
            let genesis = Runtime::genesis(&spec(4)).expect("genesis");
            state.apply(0, &genesis).expect("genesis commit");
        }
        let height = state.latest_version().unwrap().unwrap();
        Chain { state, runtime, height, proposer: Address([0xee; 20]), last: None }
    }

    pub fn account(&self, address: &Address) -> Account {
        self.state
            .get(&StateKey::account(address), self.height)
            .unwrap()
            .map(|bytes| Account::decode(&mut bytes.as_slice()).unwrap())
            .unwrap_or_default()
    }

    pub fn root(&self) -> Hash {
        self.state.root(self.height).unwrap()
    }

    pub fn block(&self, transactions: Vec<SignedTransaction>) -> Block {
        let height = self.height + 1;
        Block {
            header: Header {
                chain_id: CHAIN_ID,
                height,
                parent_hash: Hash::ZERO,
                timestamp_ms: 1_700_000_000_000 + height * 1_000,
                proposer: self.proposer,
                state_root: Hash::ZERO,
                transactions_root: Block::compute_transactions_root(&transactions),
                receipts_root: Hash::ZERO,
                parent_certificate_hash: Hash::ZERO,
                evidence_root: Block::compute_evidence_root(&[]),
                gas_used: 0,
                gas_limit: 100_000_000,
            },
            transactions,
            parent_certificate: None,
            evidence: Vec::new(),
        }
    }

    /// Executes and commits a block; returns its receipts.
    pub fn execute(
        &mut self,
        transactions: Vec<SignedTransaction>,
    ) -> Result<Vec<Receipt>, BlockError> {
        let block = self.block(transactions);
        let parent = Arc::new(self.state.snapshot(self.height).unwrap());
        let outcome = self.runtime.execute_block(parent, &block)?;
        self.height += 1;
        self.state.apply(self.height, &outcome.changes).unwrap();
        let receipts = outcome.receipts.clone();
        self.last = Some(outcome);
        Ok(receipts)
    }

    pub fn last_changes(&self) -> &StateChanges {
        &self.last.as_ref().unwrap().changes
    }

    pub fn nonce(&self, signer: &SecretKey) -> u64 {
        self.account(&signer.address()).nonce
    }

    pub fn tx(&self, signer: &SecretKey, action: Action, gas_limit: Gas) -> SignedTransaction {
        Transaction {
            chain_id: CHAIN_ID,
            nonce: self.nonce(signer),
            gas_limit,
            gas_price: GAS_PRICE,
            action,
        }
        .sign(signer)
    }

    /// Runs one transaction in its own block and returns its receipt.
    pub fn run(&mut self, signer: &SecretKey, action: Action, gas_limit: Gas) -> Receipt {
        let tx = self.tx(signer, action, gas_limit);
        self.execute(vec![tx]).expect("block executes").remove(0)
    }

    pub fn deploy_with(&mut self, signer: &SecretKey, code: Vec<u8>, input: Vec<u8>) -> Receipt {
        let salt = Hash([self.height as u8; 32]);
        self.run(signer, Action::Deploy { code, input, value: 0, salt }, GAS_LIMIT * 10)
    }

    pub fn deploy(&mut self, signer: &SecretKey, code: Vec<u8>) -> Address {
        let receipt = self.deploy_with(signer, code, Vec::new());
        assert_eq!(receipt.status, altan_primitives::ExecutionStatus::Success, "{receipt:?}");
        receipt.contract_address.expect("deployed")
    }

    pub fn call(&mut self, signer: &SecretKey, contract: Address, input: Vec<u8>) -> Receipt {
        self.run(signer, Action::Call { contract, input, value: 0 }, GAS_LIMIT)
    }
}

/// A module with the host imports (so bodies can call any host function), one page of exported
/// memory and `body`.
pub fn module(body: &str) -> Vec<u8> {
    wat(&format!("(module {HOST_IMPORTS_WAT} (memory (export \"memory\") 1) {body})"))
}

pub fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("test WAT parses")
}

/// A token-like contract: balances of u64 under `b || address`, a Transfer event per transfer.
/// Constructor input: u64 LE supply for the deployer. Call input: `0x01 || to (20) || amount
/// (u64 LE)` transfers; `0x02 || address (20)` returns the balance as u64 LE.
pub fn token() -> Vec<u8> {
    module(
        r#"
  (data (i32.const 512) "Transfer-topic-0123456789abcdef!")
  ;; key of an address at `src` written to `dst`: b'b' || address
  (func $key (param $dst i32) (param $src i32)
    (i32.store8 (local.get $dst) (i32.const 98))
    (memory.copy (i32.add (local.get $dst) (i32.const 1)) (local.get $src) (i32.const 20)))
  (func $get (param $key i32) (result i64)
    (if (result i64) (i32.eq (call $storage_read (local.get $key) (i32.const 21) (i32.const 400) (i32.const 8)) (i32.const -1))
      (then (i64.const 0))
      (else (i64.load (i32.const 400)))))
  (func $set (param $key i32) (param $amount i64)
    (i64.store (i32.const 408) (local.get $amount))
    (call $storage_write (local.get $key) (i32.const 21) (i32.const 408) (i32.const 8)))
  (func (export "deploy")
    (call $input_read (i32.const 0))
    (call $caller (i32.const 64))
    (call $key (i32.const 100) (i32.const 64))
    (call $set (i32.const 100) (i64.load (i32.const 0))))
  (func (export "call")
    (local $amount i64) (local $from i64)
    (call $input_read (i32.const 0))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 2))
      (then
        (call $key (i32.const 100) (i32.const 1))
        (i64.store (i32.const 300) (call $get (i32.const 100)))
        (call $output (i32.const 300) (i32.const 8))
        (return)))
    (local.set $amount (i64.load (i32.const 21)))
    (call $caller (i32.const 64))
    (call $key (i32.const 100) (i32.const 64))
    (call $key (i32.const 130) (i32.const 1))
    (local.set $from (call $get (i32.const 100)))
    (if (i64.lt_u (local.get $from) (local.get $amount))
      (then (call $revert (i32.const 512) (i32.const 8))))
    (call $set (i32.const 100) (i64.sub (local.get $from) (local.get $amount)))
    (call $set (i32.const 130) (i64.add (call $get (i32.const 130)) (local.get $amount)))
    ;; event data: from || to || amount
    (memory.copy (i32.const 600) (i32.const 64) (i32.const 20))
    (memory.copy (i32.const 620) (i32.const 1) (i32.const 20))
    (i64.store (i32.const 640) (local.get $amount))
    (call $emit_event (i32.const 512) (i32.const 1) (i32.const 600) (i32.const 48)))
"#,
    )
}

pub fn transfer_input(to: &Address, amount: u64) -> Vec<u8> {
    let mut input = vec![1];
    input.extend_from_slice(to.as_bytes());
    input.extend_from_slice(&amount.to_le_bytes());
    input
}

pub fn balance_input(of: &Address) -> Vec<u8> {
    let mut input = vec![2];
    input.extend_from_slice(of.as_bytes());
    input
}

/// A contract that calls another: input `target (20) || gas (u64 LE) || input...`; outputs the
/// call's status code (i32 LE) followed by the callee's return data. With `reentrant`, it
/// accepts being re-entered.
pub fn forwarder(reentrant: bool) -> Vec<u8> {
    let section = if reentrant { r#"(@custom "altan.reentrant" "")"# } else { "" };
    module(&format!(
        r#"
  {section}
  (func (export "call")
    (local $len i32) (local $status i32) (local $ret i32)
    (local.set $len (call $input_len))
    (call $input_read (i32.const 1024))
    (local.set $status
      (call $call (i32.const 1024) (i32.const 0) (i32.const 1052)
        (i32.sub (local.get $len) (i32.const 28)) (i64.load (i32.const 1044))))
    (local.set $ret (call $return_data_len))
    (i32.store (i32.const 4096) (local.get $status))
    (call $return_data_read (i32.const 4100))
    (call $output (i32.const 4096) (i32.add (i32.const 4) (local.get $ret))))
"#
    ))
}

pub fn forward_input(target: &Address, gas: u64, inner: &[u8]) -> Vec<u8> {
    let mut input = target.as_bytes().to_vec();
    input.extend_from_slice(&gas.to_le_bytes());
    input.extend_from_slice(inner);
    input
}

/// Blocks that deploy contracts, call them, revert, fail and move native value.
pub fn mixed_blocks() -> Vec<Vec<SignedTransaction>> {
    let (alice, bob) = (key(0), key(1));
    let salt = Hash([5; 32]);
    let token_code = token();
    let token = altan_runtime::vm::contract_address(
        &alice.address(),
        &altan_primitives::blake3(&token_code),
        &salt,
    );
    let forwarder_code = forwarder(false);
    let forwarder = altan_runtime::vm::contract_address(
        &bob.address(),
        &altan_primitives::blake3(&forwarder_code),
        &salt,
    );
    let tx = |signer: &SecretKey, nonce: u64, action: Action, gas: u64| {
        Transaction { chain_id: CHAIN_ID, nonce, gas_limit: gas, gas_price: GAS_PRICE, action }
            .sign(signer)
    };
    vec![
        vec![
            tx(
                &alice,
                0,
                Action::Deploy {
                    code: token_code,
                    input: 10_000u64.to_le_bytes().to_vec(),
                    value: 0,
                    salt,
                },
                50_000_000,
            ),
            tx(
                &bob,
                0,
                Action::Deploy { code: forwarder_code, input: vec![], value: 7, salt },
                30_000_000,
            ),
        ],
        vec![
            tx(
                &alice,
                1,
                Action::Call {
                    contract: token,
                    input: transfer_input(&bob.address(), 40),
                    value: 0,
                },
                1_000_000,
            ),
            tx(
                &bob,
                1,
                Action::Call {
                    contract: token,
                    input: transfer_input(&alice.address(), 500),
                    value: 0,
                },
                1_000_000,
            ),
            tx(
                &bob,
                2,
                Action::Call {
                    contract: forwarder,
                    input: forward_input(&token, 200_000, &balance_input(&bob.address())),
                    value: 0,
                },
                1_000_000,
            ),
            tx(&alice, 2, Action::Transfer { to: Address([9; 20]), value: 1_234 }, 100_000),
            tx(
                &alice,
                3,
                Action::Call {
                    contract: token,
                    input: transfer_input(&bob.address(), 1),
                    value: 0,
                },
                8_000,
            ),
        ],
        vec![],
    ]
}
