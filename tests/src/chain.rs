//! A chain on the real runtime over the in-memory state, one block per transaction, speaking the
//! SDK's call convention (selector + SCALE arguments).

use std::sync::Arc;

use altan_primitives::{
    Action, Address, Balance, Block, ChainSpec, ExecutionStatus, GenesisAccount, Hash, Header,
    Receipt, SecretKey, SignedTransaction, StakingParams, Transaction,
};
use altan_runtime::exec::{BlockContext, QueryOutcome, Runtime};
use altan_runtime::state::{Account, MemoryStore, State, StateKey};
use altan_runtime::vm::VmConfig;
use altan_sdk::Revert;
use parity_scale_codec::{Decode, DecodeAll, Encode};

/// The chain id of test chains.
pub const CHAIN_ID: u64 = 42;
/// What each test account holds at genesis.
pub const FUNDS: Balance = 1_000_000_000_000_000;
/// The gas price of test transactions.
pub const GAS_PRICE: Balance = 1;
/// The gas limit of test calls.
pub const GAS_LIMIT: u64 = 10_000_000;

/// Test account `i`'s key.
pub fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i.saturating_add(1); 32]).expect("valid key")
}

/// Test account `i`'s address.
pub fn account(i: u8) -> Address {
    key(i).address()
}

/// The input of a call to `method` with `args` (a tuple).
pub fn call_input(method: &str, args: impl Encode) -> Vec<u8> {
    altan_sdk::call_input(altan_sdk::selector(method), &args)
}

/// A test chain.
pub struct Chain {
    /// The state.
    pub state: State<MemoryStore>,
    /// The runtime.
    pub runtime: Runtime,
    /// The latest height.
    pub height: u64,
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

impl Chain {
    /// Genesis with accounts 0 to 9 funded.
    pub fn new() -> Chain {
        let spec = ChainSpec {
            name: "tests".into(),
            chain_id: CHAIN_ID,
            genesis_time_ms: 1_700_000_000_000,
            block_gas_limit: 1_000_000_000,
            epoch_length: 100,
            accounts: (0..10)
                .map(|i| GenesisAccount { address: account(i), balance: FUNDS })
                .collect(),
            validators: Vec::new(),
            staking: StakingParams::default(),
            min_gas_price: 0,
        };
        let state = State::open(Arc::new(MemoryStore::new())).expect("empty state opens");
        state.apply(0, &Runtime::genesis(&spec).expect("genesis")).expect("genesis commits");
        let runtime = Runtime::new(CHAIN_ID, VmConfig::default()).expect("engine builds");
        Chain { state, runtime, height: 0 }
    }

    /// An account as of the latest block.
    pub fn account(&self, address: &Address) -> Account {
        self.state
            .get(&StateKey::account(address), self.height)
            .expect("state reads")
            .map(|bytes| Account::decode(&mut bytes.as_slice()).expect("account decodes"))
            .unwrap_or_default()
    }

    /// The context of the next block.
    pub fn context(&self) -> BlockContext {
        BlockContext::new(
            CHAIN_ID,
            self.height.saturating_add(1),
            1_700_000_000_000u64.saturating_add(self.height.saturating_mul(1_000)),
            Address([0xfe; 20]),
            1_000_000_000,
        )
    }

    /// Executes `transactions` as the next block and commits it.
    pub fn execute(&mut self, transactions: Vec<SignedTransaction>) -> Vec<Receipt> {
        let context = self.context();
        let block = Block {
            header: Header {
                chain_id: CHAIN_ID,
                height: context.height,
                parent_hash: Hash::ZERO,
                timestamp_ms: context.timestamp_ms,
                proposer: context.proposer,
                state_root: Hash::ZERO,
                transactions_root: Block::compute_transactions_root(&transactions),
                receipts_root: Hash::ZERO,
                parent_certificate_hash: Hash::ZERO,
                evidence_root: Block::compute_evidence_root(&[]),
                gas_used: 0,
                gas_limit: context.gas_limit,
            },
            transactions,
            parent_certificate: None,
            evidence: Vec::new(),
        };
        let parent = Arc::new(self.state.snapshot(self.height).expect("parent kept"));
        let outcome = self.runtime.execute_block(parent, &block).expect("block executes");
        self.height = context.height;
        self.state.apply(self.height, &outcome.changes).expect("block commits");
        outcome.receipts
    }

    /// Signs `action` from account `from` with its next nonce.
    pub fn transaction(&self, from: u8, action: Action, gas_limit: u64) -> SignedTransaction {
        let nonce = self.account(&account(from)).nonce;
        Transaction { chain_id: CHAIN_ID, nonce, gas_limit, gas_price: GAS_PRICE, action }
            .sign(&key(from))
    }

    /// Deploys `wasm` from account `from` with constructor `args` and `value`.
    pub fn deploy(&mut self, from: u8, wasm: &[u8], args: impl Encode, value: Balance) -> Receipt {
        let salt = Hash([self.height as u8; 32]);
        let action = Action::Deploy { code: wasm.to_vec(), input: args.encode(), value, salt };
        let tx = self.transaction(from, action, 100_000_000);
        self.execute(vec![tx]).remove(0)
    }

    /// Deploys and returns the address, panicking with the receipt if it failed.
    pub fn deploy_ok(&mut self, from: u8, wasm: &[u8], args: impl Encode) -> Address {
        let receipt = self.deploy(from, wasm, args, 0);
        assert_eq!(receipt.status, ExecutionStatus::Success, "deploy failed: {receipt:?}");
        receipt.contract_address.expect("a deployed contract has an address")
    }

    /// Calls `method` on `contract` from account `from`.
    pub fn call(
        &mut self,
        from: u8,
        contract: Address,
        method: &str,
        args: impl Encode,
        value: Balance,
    ) -> Receipt {
        let action = Action::Call { contract, input: call_input(method, args), value };
        let tx = self.transaction(from, action, GAS_LIMIT);
        self.execute(vec![tx]).remove(0)
    }

    /// Calls and decodes the result, panicking with the receipt if the call did not succeed.
    pub fn call_ok<R: Decode>(
        &mut self,
        from: u8,
        contract: Address,
        method: &str,
        args: impl Encode,
    ) -> R {
        let receipt = self.call(from, contract, method, args, 0);
        assert_eq!(receipt.status, ExecutionStatus::Success, "{method} failed: {receipt:?}");
        R::decode_all(&mut receipt.output.as_slice()).expect("output decodes")
    }

    /// Runs `method` read-only as of the latest block.
    pub fn query(&self, contract: Address, method: &str, args: impl Encode) -> QueryOutcome {
        let state = Arc::new(self.state.snapshot(self.height).expect("latest kept"));
        self.runtime
            .query(
                state,
                self.context(),
                Address::ZERO,
                contract,
                call_input(method, args),
                GAS_LIMIT,
            )
            .expect("query executes")
    }

    /// Queries and decodes the result.
    pub fn query_ok<R: Decode>(&self, contract: Address, method: &str, args: impl Encode) -> R {
        let outcome = self.query(contract, method, args);
        assert_eq!(outcome.status, ExecutionStatus::Success, "{method} failed: {outcome:?}");
        R::decode_all(&mut outcome.output.as_slice()).expect("output decodes")
    }
}

/// The contract error a reverted receipt carries.
pub fn revert_of(receipt: &Receipt) -> Revert {
    assert_eq!(receipt.status, ExecutionStatus::Revert, "expected a revert: {receipt:?}");
    Revert::decode_all(&mut receipt.output.as_slice()).expect("revert data is an encoded Revert")
}
