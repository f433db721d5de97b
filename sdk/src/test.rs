//! The off-chain test chain: contracts run as native code against in-memory state with the
//! runtime's rules, so `cargo test` on a contract needs no node and runs in milliseconds.
//!
//! What matches the chain: storage per contract, caller, value and balances, block height and
//! time, events, calls between deployed contracts with their own rollback (a revert or failure
//! undoes the callee's storage, balance and event changes), the reentrancy rule, and the limits of
//! `altan_primitives::limits`. What does not: gas is not metered (`gas_left` is `u64::MAX`), and a
//! panic or out-of-range access in contract code is caught as [`Failure::Trap`] where the chain
//! would trap.
//!
//! ```ignore
//! let chain = TestChain::new();
//! let token = chain.deploy(TestChain::account(0), Token::CODE, 0, args)?;
//! chain.set_caller(TestChain::account(0));
//! TokenRef::at(token).transfer(TestChain::account(1), 10)?;
//! ```

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::string::{String, ToString};
use std::vec::Vec;

use altan_primitives::limits::MAX_CALL_DEPTH;
use altan_primitives::{Address, Balance, Event, blake3_tagged};

/// A contract's code as the test chain runs it: its entry points, which `#[contract]` generates.
#[derive(Clone, Copy, Debug)]
pub struct Code {
    /// The contract's name (it also seeds test addresses).
    pub name: &'static str,
    /// The constructor entry point, if the contract has one.
    pub deploy: Option<fn()>,
    /// The call entry point.
    pub call: fn(),
    /// Whether the contract accepts being re-entered.
    pub reentrant: bool,
}

/// Why a call failed without reverting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The contract panicked (on chain: a trap). Holds the panic message.
    Trap(String),
    /// A host call broke a limit or had bad arguments; says which.
    InvalidHostCall(&'static str),
    /// Calls nested deeper than the chain allows.
    CallDepthExceeded,
    /// The callee is already on the call stack and does not accept reentry.
    Reentrancy,
    /// No contract at the address.
    NoCode,
    /// The caller could not pay the value.
    InsufficientBalance,
}

/// How a call on the test chain did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The contract reverted with this data (usually an encoded [`crate::Revert`]).
    Reverted(Vec<u8>),
    /// The call failed.
    Failed(Failure),
}

impl CallError {
    /// The contract's [`crate::Revert`], if it reverted with one.
    pub fn revert(&self) -> Option<crate::Revert> {
        use parity_scale_codec::DecodeAll;
        match self {
            CallError::Reverted(data) => crate::Revert::decode_all(&mut data.as_slice()).ok(),
            CallError::Failed(_) => None,
        }
    }
}

/// A failed call that may carry a contract's [`crate::Revert`]: the test chain's [`CallError`]
/// and a typed reference's [`crate::env::CallError`].
pub trait Reverted: core::fmt::Debug {
    /// The contract's revert, if the call reverted with one.
    fn revert(&self) -> Option<crate::Revert>;
}

impl Reverted for CallError {
    fn revert(&self) -> Option<crate::Revert> {
        CallError::revert(self)
    }
}

impl Reverted for crate::env::CallError {
    fn revert(&self) -> Option<crate::Revert> {
        crate::env::CallError::revert(self)
    }
}

/// Asserts that `result` is a revert with exactly `expected`'s code and message.
#[track_caller]
pub fn assert_reverts<T: core::fmt::Debug, E: Reverted, C: crate::ContractError>(
    result: Result<T, E>,
    expected: C,
) {
    let error = match result {
        Ok(value) => panic!("expected a revert with code {}, got Ok({value:?})", expected.code()),
        Err(error) => error,
    };
    let Some(revert) = error.revert() else { panic!("expected a revert, got {error:?}") };
    assert_eq!((revert.code, revert.message), (expected.code(), expected.message()));
}

pub(crate) struct RevertSignal(pub(crate) Vec<u8>);
pub(crate) struct FailSignal(pub(crate) Failure);

struct Frame {
    contract: Address,
    caller: Address,
    value: Balance,
    input: Vec<u8>,
    output: Vec<u8>,
}

#[derive(Clone, Default)]
struct World {
    balances: BTreeMap<Address, Balance>,
    code: BTreeMap<Address, Code>,
    storage: BTreeMap<(Address, Vec<u8>), Vec<u8>>,
    events: Vec<Event>,
}

pub(crate) struct ChainState {
    world: World,
    frames: Vec<Frame>,
    height: u64,
    time_ms: u64,
    chain_id: u64,
    caller: Address,
    deployments: u64,
    events_at_start: usize,
}

std::thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<ChainState>>>> = const { RefCell::new(None) };
}

fn current() -> Rc<RefCell<ChainState>> {
    CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| {
        panic!("no TestChain on this thread: create one with altan_sdk::test::TestChain::new()")
    })
}

/// Runs `f` on the thread's test chain.
pub(crate) fn with<R>(f: impl FnOnce(&mut ChainState) -> R) -> R {
    let chain = current();
    let mut state = chain.borrow_mut();
    f(&mut state)
}

/// Ends the current call as the chain would fail it.
pub(crate) fn fail(failure: Failure) -> ! {
    panic::resume_unwind(Box::new(FailSignal(failure)))
}

impl ChainState {
    fn frame(&self) -> &Frame {
        self.frames.last().unwrap_or_else(|| panic!("not inside a contract call"))
    }

    pub(crate) fn input(&self) -> Vec<u8> {
        self.frame().input.clone()
    }

    pub(crate) fn set_output(&mut self, data: &[u8]) {
        if let Some(frame) = self.frames.last_mut() {
            frame.output = data.to_vec();
        }
    }

    pub(crate) fn contract(&self) -> Address {
        self.frame().contract
    }

    pub(crate) fn caller(&self) -> Address {
        self.frame().caller
    }

    pub(crate) fn value(&self) -> Balance {
        self.frame().value
    }

    pub(crate) fn balance(&self, of: &Address) -> Balance {
        self.world.balances.get(of).copied().unwrap_or(0)
    }

    pub(crate) fn block(&self) -> (u64, u64, u64) {
        (self.height, self.time_ms, self.chain_id)
    }

    pub(crate) fn storage(&mut self) -> &mut BTreeMap<(Address, Vec<u8>), Vec<u8>> {
        &mut self.world.storage
    }

    pub(crate) fn push_event(&mut self, event: Event) {
        let emitted = self.world.events.len().saturating_sub(self.events_at_start);
        if emitted >= altan_primitives::limits::MAX_EVENTS {
            fail(Failure::InvalidHostCall("more than MAX_EVENTS events in one transaction"));
        }
        self.world.events.push(event);
    }

    pub(crate) fn move_value(&mut self, from: &Address, to: &Address, value: Balance) -> bool {
        let available = self.balance(from);
        let Some(rest) = available.checked_sub(value) else { return false };
        self.world.balances.insert(*from, rest);
        let credited = self.balance(to).saturating_add(value);
        self.world.balances.insert(*to, credited);
        true
    }

    pub(crate) fn in_call(&self) -> bool {
        !self.frames.is_empty()
    }

    pub(crate) fn default_caller(&self) -> Address {
        self.caller
    }
}

/// Which entry point to run.
#[derive(Clone, Copy)]
enum Entry {
    Deploy,
    Call,
}

/// Runs `contract`'s entry point for `caller` with the chain's rules: depth, code, reentrancy,
/// value, then the call itself in its own rollback frame.
fn execute(
    caller: Address,
    contract: Address,
    value: Balance,
    input: Vec<u8>,
    entry: Entry,
) -> Result<Vec<u8>, CallError> {
    let chain = current();
    let (code, snapshot) = {
        let state = chain.borrow();
        if state.frames.len() >= MAX_CALL_DEPTH {
            return Err(CallError::Failed(Failure::CallDepthExceeded));
        }
        let Some(code) = state.world.code.get(&contract).copied() else {
            return Err(CallError::Failed(Failure::NoCode));
        };
        if state.frames.iter().any(|f| f.contract == contract) && !code.reentrant {
            return Err(CallError::Failed(Failure::Reentrancy));
        }
        (code, state.world.clone())
    };
    let run = match entry {
        Entry::Call => Some(code.call),
        Entry::Deploy => code.deploy,
    };
    {
        let mut state = chain.borrow_mut();
        if !state.move_value(&caller, &contract, value) {
            state.world = snapshot;
            return Err(CallError::Failed(Failure::InsufficientBalance));
        }
        state.frames.push(Frame { contract, caller, value, input, output: Vec::new() });
    }
    let result = match run {
        Some(run) => panic::catch_unwind(AssertUnwindSafe(run)),
        None => Ok(()),
    };
    let mut state = chain.borrow_mut();
    let output = state.frames.pop().map(|frame| frame.output).unwrap_or_default();
    let error = match result {
        Ok(()) => return Ok(output),
        Err(payload) => match payload.downcast::<RevertSignal>() {
            Ok(revert) => CallError::Reverted(revert.0),
            Err(payload) => match payload.downcast::<FailSignal>() {
                Ok(failure) => CallError::Failed(failure.0),
                Err(payload) => CallError::Failed(Failure::Trap(panic_message(&*payload))),
            },
        },
    };
    state.world = snapshot;
    Err(error)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// A chain in memory for contract tests. Creating one makes it the chain that [`crate::env`]
/// acts on in this thread.
pub struct TestChain {
    state: Rc<RefCell<ChainState>>,
}

impl Default for TestChain {
    fn default() -> Self {
        TestChain::new()
    }
}

/// What each well-known test account holds at the start.
pub const INITIAL_BALANCE: Balance = 1_000_000_000_000;

impl TestChain {
    /// A fresh chain at height 1 where [`TestChain::account`] 0 to 9 hold [`INITIAL_BALANCE`] and
    /// account 0 is the default caller.
    pub fn new() -> TestChain {
        let mut world = World::default();
        for i in 0..10 {
            world.balances.insert(TestChain::account(i), INITIAL_BALANCE);
        }
        let state = ChainState {
            world,
            frames: Vec::new(),
            height: 1,
            time_ms: 1_700_000_000_000,
            chain_id: 1,
            caller: TestChain::account(0),
            deployments: 0,
            events_at_start: 0,
        };
        let chain = TestChain { state: Rc::new(RefCell::new(state)) };
        chain.install();
        chain
    }

    fn install(&self) {
        CURRENT.with(|c| *c.borrow_mut() = Some(Rc::clone(&self.state)));
    }

    /// A well-known test account.
    pub fn account(n: u8) -> Address {
        let mut address = [0xa0; 20];
        address[19] = n;
        Address(address)
    }

    /// Sets who makes top-level calls that do not name a sender (the typed contract references).
    pub fn set_caller(&self, caller: Address) {
        self.state.borrow_mut().caller = caller;
    }

    /// Sets an account's native balance.
    pub fn set_balance(&self, who: Address, balance: Balance) {
        self.state.borrow_mut().world.balances.insert(who, balance);
    }

    /// An account's native balance.
    pub fn balance(&self, who: Address) -> Balance {
        self.state.borrow().balance(&who)
    }

    /// Sets the block height and time (ms) that contracts see.
    pub fn set_block(&self, height: u64, time_ms: u64) {
        let mut state = self.state.borrow_mut();
        state.height = height;
        state.time_ms = time_ms;
    }

    /// The block height contracts see.
    pub fn block_height(&self) -> u64 {
        self.state.borrow().height
    }

    /// The block time (ms) contracts see.
    pub fn block_time(&self) -> u64 {
        self.state.borrow().time_ms
    }

    /// Advances the block height by `blocks` and the time by `ms`.
    pub fn advance(&self, blocks: u64, ms: u64) {
        let mut state = self.state.borrow_mut();
        state.height = state.height.saturating_add(blocks);
        state.time_ms = state.time_ms.saturating_add(ms);
    }

    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.state.borrow().world.events.clone()
    }

    /// The `back`-th last event (0 is the last), checked to come from `contract` with `E`'s topics,
    /// and decoded.
    #[track_caller]
    pub fn event<E: crate::Event + parity_scale_codec::Decode>(
        &self,
        contract: Address,
        back: usize,
    ) -> E {
        let events = self.events();
        let index = events.len().checked_sub(back.saturating_add(1));
        let raw =
            index.and_then(|i| events.get(i)).unwrap_or_else(|| panic!("no event {back} back"));
        assert_eq!(raw.contract, contract, "the event comes from another contract");
        let event =
            E::decode(&mut &raw.data[..]).unwrap_or_else(|e| panic!("event does not decode: {e}"));
        assert_eq!(raw.topics, event.topics(), "the event's topics do not match its type");
        event
    }

    /// [`TestChain::event`] for the last event.
    #[track_caller]
    pub fn last_event<E: crate::Event + parity_scale_codec::Decode>(&self, contract: Address) -> E {
        self.event(contract, 0)
    }

    /// Deploys `code` from `from`, sending `value` and running the constructor with `input`.
    pub fn deploy(
        &self,
        from: Address,
        code: Code,
        value: Balance,
        input: Vec<u8>,
    ) -> Result<Address, CallError> {
        self.install();
        let address = {
            let mut state = self.state.borrow_mut();
            state.deployments = state.deployments.saturating_add(1);
            let seed = state.deployments.to_le_bytes();
            let digest =
                blake3_tagged(b"altan/test-contract", &[&from.0, code.name.as_bytes(), &seed]);
            let mut address = [0; 20];
            address.copy_from_slice(&digest.as_bytes()[12..]);
            let address = Address(address);
            state.world.code.insert(address, code);
            state.events_at_start = state.world.events.len();
            address
        };
        match execute(from, address, value, input, Entry::Deploy) {
            Ok(_) => Ok(address),
            Err(error) => {
                self.state.borrow_mut().world.code.remove(&address);
                Err(error)
            }
        }
    }

    /// Calls `to` from `from` as a transaction would, returning the call's output.
    pub fn call(
        &self,
        from: Address,
        to: Address,
        value: Balance,
        input: Vec<u8>,
    ) -> Result<Vec<u8>, CallError> {
        self.install();
        {
            let mut state = self.state.borrow_mut();
            state.events_at_start = state.world.events.len();
        }
        execute(from, to, value, input, Entry::Call)
    }

    /// Calls `to` read-only: whatever it writes is discarded afterwards.
    pub fn query(&self, from: Address, to: Address, input: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let before = self.state.borrow().world.clone();
        let result = self.call(from, to, 0, input);
        self.state.borrow_mut().world = before;
        result
    }

    /// The raw storage value of `contract` under `key`.
    pub fn storage(&self, contract: Address, key: &[u8]) -> Option<Vec<u8>> {
        self.state.borrow().world.storage.get(&(contract, key.to_vec())).cloned()
    }
}

/// Runs a call for [`crate::env::call`]: nested when inside a contract, top-level from the
/// default caller otherwise.
pub(crate) fn call(to: &Address, value: Balance, input: &[u8]) -> (u32, Vec<u8>) {
    let (caller, nested) = with(|state| {
        if state.in_call() { (state.contract(), true) } else { (state.default_caller(), false) }
    });
    if !nested {
        with(|state| state.events_at_start = state.world.events.len());
    }
    match execute(caller, *to, value, input.to_vec(), Entry::Call) {
        Ok(output) => (0, output),
        Err(CallError::Reverted(data)) => (1, data),
        Err(CallError::Failed(_)) => (2, Vec::new()),
    }
}
