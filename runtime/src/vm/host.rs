//! The host ABI (`altan_v1`) and contract calls.
//!
//! A transaction's contract execution happens in one wasmtime `Store` whose data is
//! [`HostState`]: the state overlay, the stack of call frames and the events so far. A call to
//! another contract instantiates the callee in the same store, so that all nested calls share one
//! fuel counter and one Wasm stack limit, and runs it inside an overlay checkpoint that is rolled
//! back if the callee reverts or fails.
//!
//! Pointers and lengths are `i32` (wasm32 addresses); 64-bit numbers are `i64`; addresses are
//! 20 bytes, balances 16 bytes little-endian, hashes 32 bytes, signatures 65 bytes, all read from
//! or written to the contract's memory. A pointer or length out of bounds, or over a limit, ends
//! the call with `InvalidHostCall`.

use std::sync::Arc;

use altan_primitives::{
    Address, Balance, Event, FailureReason, Gas, Hash, Signature, blake3, blake3_tagged, domain,
    keccak256,
};
use wasmtime::{AsContextMut, Caller, Linker, Memory, ResourceLimiter, Trap};

use super::Vm;
use super::cache::Contract;
use super::engine::HOST_MODULE;
use crate::accounts;
use crate::exec::BlockContext;
use crate::gas;
use crate::state::{Overlay, StateKey, StoreError};

/// The functions of the `altan_v1` host module. `validate` refuses any other import, and a test
/// checks that the linker defines exactly these.
pub const HOST_FUNCTIONS: &[&str] = &[
    "input_len",
    "input_read",
    "output",
    "revert",
    "storage_read",
    "storage_write",
    "storage_remove",
    "caller",
    "self_address",
    "value",
    "balance",
    "block_height",
    "block_time",
    "chain_id",
    "emit_event",
    "call",
    "return_data_len",
    "return_data_read",
    "transfer",
    "blake3",
    "keccak256",
    "recover",
    "gas_left",
];

/// An error that stops execution of the whole block: it does not depend on the transaction, so it
/// must not become a receipt (another node would not see it).
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The state could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The VM could not get resources (the instance pool is exhausted, memory could not be
    /// mapped).
    #[error("execution resources exhausted: {0}")]
    Resources(String),
}

/// How a host function ends a call early. Carried through wasmtime as the error of the host
/// function and recognized by [`classify`].
#[derive(Debug, thiserror::Error)]
enum HostExit {
    #[error("revert")]
    Revert,
    #[error("failure: {0:?}")]
    Fail(FailureReason),
    #[error("fatal")]
    Fatal,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallStatus {
    Success,
    Revert,
    Failure(FailureReason),
}

/// A call's result: status and output (the returned data, or the revert data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallOutcome {
    pub(crate) status: CallStatus,
    pub(crate) output: Vec<u8>,
}

impl CallOutcome {
    pub(crate) fn failure(reason: FailureReason) -> CallOutcome {
        CallOutcome { status: CallStatus::Failure(reason), output: Vec::new() }
    }
}

/// One contract call in progress.
pub(crate) struct Frame {
    contract: Address,
    caller: Address,
    value: Balance,
    input: Vec<u8>,
    output: Vec<u8>,
    /// The output of the last call this frame made.
    return_data: Vec<u8>,
    memory: Option<Memory>,
}

/// Per-transaction resource accounting for wasmtime.
struct Limits {
    memory_total: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current);
        let total = self.memory_total.saturating_add(growth);
        if desired > gas::MAX_MEMORY_BYTES || total > gas::MAX_TX_MEMORY_BYTES {
            // `memory.grow` returns -1, as Wasm specifies for a refused growth.
            return Ok(false);
        }
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= gas::MAX_TABLE_ELEMENTS as usize)
    }

    fn instances(&self) -> usize {
        gas::MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        gas::MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        gas::MAX_INSTANCES
    }
}

/// The data of a transaction's store.
pub(crate) struct HostState {
    pub(crate) overlay: Overlay,
    block: BlockContext,
    vm: Arc<Vm>,
    frames: Vec<Frame>,
    pub(crate) events: Vec<Event>,
    instances: usize,
    limits: Limits,
    fatal: Option<ExecutionError>,
}

impl HostState {
    pub(crate) fn new(overlay: Overlay, block: BlockContext, vm: Arc<Vm>) -> HostState {
        HostState {
            overlay,
            block,
            vm,
            frames: Vec::new(),
            events: Vec::new(),
            instances: 0,
            limits: Limits { memory_total: 0 },
            fatal: None,
        }
    }
}

/// Creates the store for one transaction's contract execution with `gas` to spend.
pub(crate) fn new_store(
    vm: &Arc<Vm>,
    state: HostState,
    gas: Gas,
) -> Result<wasmtime::Store<HostState>, ExecutionError> {
    let mut store = wasmtime::Store::new(&vm.engine, state);
    store.limiter(|state| &mut state.limits);
    store.set_fuel(gas).map_err(|e| ExecutionError::Resources(e.to_string()))?;
    Ok(store)
}

type Cx<'a> = Caller<'a, HostState>;

fn fail(reason: FailureReason) -> wasmtime::Error {
    wasmtime::Error::new(HostExit::Fail(reason))
}

fn invalid() -> wasmtime::Error {
    fail(FailureReason::InvalidHostCall)
}

fn fatal(state: &mut HostState, error: ExecutionError) -> wasmtime::Error {
    state.fatal = Some(error);
    wasmtime::Error::new(HostExit::Fatal)
}

fn charge(cx: &mut impl AsContextMut<Data = HostState>, gas: Gas) -> wasmtime::Result<()> {
    let mut cx = cx.as_context_mut();
    let left = cx.get_fuel()?;
    match left.checked_sub(gas) {
        Some(rest) => cx.set_fuel(rest),
        None => {
            cx.set_fuel(0)?;
            Err(fail(FailureReason::OutOfGas))
        }
    }
}

fn frame<'a>(cx: &'a Cx<'_>) -> wasmtime::Result<&'a Frame> {
    cx.data().frames.last().ok_or_else(invalid)
}

fn frame_mut<'a>(cx: &'a mut Cx<'_>) -> wasmtime::Result<&'a mut Frame> {
    cx.data_mut().frames.last_mut().ok_or_else(invalid)
}

fn memory(cx: &Cx<'_>) -> wasmtime::Result<Memory> {
    frame(cx)?.memory.ok_or_else(invalid)
}

fn range(ptr: i32, len: usize) -> wasmtime::Result<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let end = start.checked_add(len).ok_or_else(invalid)?;
    Ok(start..end)
}

/// Reads `len` bytes at `ptr`, refusing more than `max`, and charges for copying them.
fn read(cx: &mut Cx<'_>, ptr: i32, len: i32, max: usize) -> wasmtime::Result<Vec<u8>> {
    let len = len as u32 as usize;
    if len > max {
        return Err(invalid());
    }
    charge(cx, gas::cost(0, gas::COPY_BYTE, len))?;
    let memory = memory(cx)?;
    memory.data(&*cx).get(range(ptr, len)?).map(<[u8]>::to_vec).ok_or_else(invalid)
}

fn read_array<const N: usize>(cx: &mut Cx<'_>, ptr: i32) -> wasmtime::Result<[u8; N]> {
    let memory = memory(cx)?;
    let bytes = memory.data(&*cx).get(range(ptr, N)?).ok_or_else(invalid)?;
    bytes.try_into().map_err(|_| invalid())
}

/// Writes `bytes` at `ptr` and charges for copying them.
fn write(cx: &mut Cx<'_>, ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    charge(cx, gas::cost(0, gas::COPY_BYTE, bytes.len()))?;
    let memory = memory(cx)?;
    let target = memory.data_mut(&mut *cx).get_mut(range(ptr, bytes.len())?).ok_or_else(invalid)?;
    target.copy_from_slice(bytes);
    Ok(())
}

fn read_balance(cx: &mut Cx<'_>, ptr: i32) -> wasmtime::Result<Balance> {
    Ok(Balance::from_le_bytes(read_array(cx, ptr)?))
}

fn store_result<T>(cx: &mut Cx<'_>, result: Result<T, StoreError>) -> wasmtime::Result<T> {
    result.map_err(|e| fatal(cx.data_mut(), e.into()))
}

fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Hashes `len` bytes at `ptr` with `hash` and writes the 32-byte digest at `out`.
fn hash_into(
    mut cx: Cx<'_>,
    ptr: i32,
    len: i32,
    out: i32,
    hash: fn(&[u8]) -> [u8; 32],
) -> wasmtime::Result<()> {
    let price = gas::cost(gas::HASH, gas::HASH_BYTE, len as u32 as usize);
    charge(&mut cx, gas::HOST_CALL.saturating_add(price))?;
    let data = read(&mut cx, ptr, len, gas::MAX_INPUT)?;
    write(&mut cx, out, &hash(&data))
}

/// Defines the host functions.
pub(crate) fn define(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = HOST_MODULE;
    linker.func_wrap(m, "input_len", |mut cx: Cx<'_>| -> wasmtime::Result<i32> {
        charge(&mut cx, gas::HOST_CALL)?;
        Ok(len_i32(frame(&cx)?.input.len()))
    })?;
    linker.func_wrap(m, "input_read", |mut cx: Cx<'_>, ptr: i32| -> wasmtime::Result<()> {
        charge(&mut cx, gas::HOST_CALL)?;
        let input = std::mem::take(&mut frame_mut(&mut cx)?.input);
        let result = write(&mut cx, ptr, &input);
        frame_mut(&mut cx)?.input = input;
        result
    })?;
    linker.func_wrap(
        m,
        "output",
        |mut cx: Cx<'_>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            charge(&mut cx, gas::HOST_CALL)?;
            let data = read(&mut cx, ptr, len, gas::MAX_OUTPUT)?;
            frame_mut(&mut cx)?.output = data;
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "revert",
        |mut cx: Cx<'_>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            charge(&mut cx, gas::HOST_CALL)?;
            let data = read(&mut cx, ptr, len, gas::MAX_OUTPUT)?;
            frame_mut(&mut cx)?.output = data;
            Err(wasmtime::Error::new(HostExit::Revert))
        },
    )?;
    linker.func_wrap(
        m,
        "storage_read",
        |mut cx: Cx<'_>,
         key_ptr: i32,
         key_len: i32,
         out_ptr: i32,
         out_cap: i32|
         -> wasmtime::Result<i32> {
            charge(&mut cx, gas::HOST_CALL)?;
            let key = read(&mut cx, key_ptr, key_len, gas::MAX_STORAGE_KEY)?;
            let slot = StateKey::storage(&frame(&cx)?.contract, &key);
            let value = cx.data_mut().overlay.get(&slot);
            let Some(value) = store_result(&mut cx, value)? else {
                charge(&mut cx, gas::cost(gas::STORAGE_READ, gas::STORAGE_READ_BYTE, key.len()))?;
                return Ok(-1);
            };
            let bytes = key.len().saturating_add(value.len());
            charge(&mut cx, gas::cost(gas::STORAGE_READ, gas::STORAGE_READ_BYTE, bytes))?;
            let copied = value.len().min(out_cap as u32 as usize);
            write(&mut cx, out_ptr, &value[..copied])?;
            Ok(len_i32(value.len()))
        },
    )?;
    linker.func_wrap(
        m,
        "storage_write",
        |mut cx: Cx<'_>,
         key_ptr: i32,
         key_len: i32,
         value_ptr: i32,
         value_len: i32|
         -> wasmtime::Result<()> {
            charge(&mut cx, gas::HOST_CALL)?;
            let key = read(&mut cx, key_ptr, key_len, gas::MAX_STORAGE_KEY)?;
            let value = read(&mut cx, value_ptr, value_len, gas::MAX_STORAGE_VALUE)?;
            let bytes = key.len().saturating_add(value.len());
            charge(&mut cx, gas::cost(gas::STORAGE_WRITE, gas::STORAGE_WRITE_BYTE, bytes))?;
            let slot = StateKey::storage(&frame(&cx)?.contract, &key);
            cx.data_mut().overlay.set(slot, Some(value));
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "storage_remove",
        |mut cx: Cx<'_>, key_ptr: i32, key_len: i32| -> wasmtime::Result<()> {
            charge(&mut cx, gas::HOST_CALL.saturating_add(gas::STORAGE_REMOVE))?;
            let key = read(&mut cx, key_ptr, key_len, gas::MAX_STORAGE_KEY)?;
            let slot = StateKey::storage(&frame(&cx)?.contract, &key);
            cx.data_mut().overlay.set(slot, None);
            Ok(())
        },
    )?;
    linker.func_wrap(m, "caller", |mut cx: Cx<'_>, ptr: i32| -> wasmtime::Result<()> {
        charge(&mut cx, gas::HOST_CALL)?;
        let caller = frame(&cx)?.caller;
        write(&mut cx, ptr, caller.as_bytes())
    })?;
    linker.func_wrap(m, "self_address", |mut cx: Cx<'_>, ptr: i32| -> wasmtime::Result<()> {
        charge(&mut cx, gas::HOST_CALL)?;
        let contract = frame(&cx)?.contract;
        write(&mut cx, ptr, contract.as_bytes())
    })?;
    linker.func_wrap(m, "value", |mut cx: Cx<'_>, ptr: i32| -> wasmtime::Result<()> {
        charge(&mut cx, gas::HOST_CALL)?;
        let value = frame(&cx)?.value;
        write(&mut cx, ptr, &value.to_le_bytes())
    })?;
    linker.func_wrap(
        m,
        "balance",
        |mut cx: Cx<'_>, addr_ptr: i32, out_ptr: i32| -> wasmtime::Result<()> {
            charge(&mut cx, gas::HOST_CALL.saturating_add(gas::BALANCE))?;
            let address = Address(read_array(&mut cx, addr_ptr)?);
            let account = accounts::load(&mut cx.data_mut().overlay, &address);
            let balance = store_result(&mut cx, account)?.balance;
            write(&mut cx, out_ptr, &balance.to_le_bytes())
        },
    )?;
    linker.func_wrap(m, "block_height", |mut cx: Cx<'_>| -> wasmtime::Result<i64> {
        charge(&mut cx, gas::HOST_CALL)?;
        Ok(cx.data().block.height as i64)
    })?;
    linker.func_wrap(m, "block_time", |mut cx: Cx<'_>| -> wasmtime::Result<i64> {
        charge(&mut cx, gas::HOST_CALL)?;
        Ok(cx.data().block.timestamp_ms as i64)
    })?;
    linker.func_wrap(m, "chain_id", |mut cx: Cx<'_>| -> wasmtime::Result<i64> {
        charge(&mut cx, gas::HOST_CALL)?;
        Ok(cx.data().block.chain_id as i64)
    })?;
    linker.func_wrap(
        m,
        "emit_event",
        |mut cx: Cx<'_>,
         topics_ptr: i32,
         topic_count: i32,
         data_ptr: i32,
         data_len: i32|
         -> wasmtime::Result<()> {
            let count = topic_count as u32 as usize;
            if count > gas::MAX_TOPICS || cx.data().events.len() >= gas::MAX_EVENTS {
                return Err(invalid());
            }
            let data_bytes = data_len as u32 as usize;
            let price = gas::cost(gas::EVENT, gas::EVENT_BYTE, data_bytes)
                .saturating_add(gas::EVENT_TOPIC.saturating_mul(count as Gas));
            charge(&mut cx, gas::HOST_CALL.saturating_add(price))?;
            let raw =
                read(&mut cx, topics_ptr, topic_count.saturating_mul(32), gas::MAX_TOPICS * 32)?;
            let topics =
                raw.chunks_exact(32).map(|c| Hash(c.try_into().unwrap_or([0; 32]))).collect();
            let data = read(&mut cx, data_ptr, data_len, gas::MAX_EVENT_DATA)?;
            let contract = frame(&cx)?.contract;
            cx.data_mut().events.push(Event { contract, topics, data });
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "call",
        |mut cx: Cx<'_>,
         addr_ptr: i32,
         value_ptr: i32,
         input_ptr: i32,
         input_len: i32,
         gas_limit: i64|
         -> wasmtime::Result<i32> {
            charge(&mut cx, gas::HOST_CALL.saturating_add(gas::CALL))?;
            let target = Address(read_array(&mut cx, addr_ptr)?);
            let value = read_balance(&mut cx, value_ptr)?;
            let input = read(&mut cx, input_ptr, input_len, gas::MAX_INPUT)?;
            let caller = frame(&cx)?.contract;
            let outcome = call_contract(&mut cx, caller, target, value, input, gas_limit as u64)
                .map_err(|e| fatal(cx.data_mut(), e))?;
            frame_mut(&mut cx)?.return_data = outcome.output;
            Ok(match outcome.status {
                CallStatus::Success => 0,
                CallStatus::Revert => 1,
                CallStatus::Failure(_) => 2,
            })
        },
    )?;
    linker.func_wrap(m, "return_data_len", |mut cx: Cx<'_>| -> wasmtime::Result<i32> {
        charge(&mut cx, gas::HOST_CALL)?;
        Ok(len_i32(frame(&cx)?.return_data.len()))
    })?;
    linker.func_wrap(
        m,
        "return_data_read",
        |mut cx: Cx<'_>, ptr: i32| -> wasmtime::Result<()> {
            charge(&mut cx, gas::HOST_CALL)?;
            let data = std::mem::take(&mut frame_mut(&mut cx)?.return_data);
            let result = write(&mut cx, ptr, &data);
            frame_mut(&mut cx)?.return_data = data;
            result
        },
    )?;
    linker.func_wrap(
        m,
        "transfer",
        |mut cx: Cx<'_>, addr_ptr: i32, value_ptr: i32| -> wasmtime::Result<i32> {
            charge(&mut cx, gas::HOST_CALL.saturating_add(gas::TRANSFER))?;
            let to = Address(read_array(&mut cx, addr_ptr)?);
            let value = read_balance(&mut cx, value_ptr)?;
            let from = frame(&cx)?.contract;
            let creates = accounts::creates_account(&mut cx.data_mut().overlay, &from, &to, value);
            if store_result(&mut cx, creates)? {
                charge(&mut cx, gas::NEW_ACCOUNT)?;
            }
            let moved = accounts::transfer(&mut cx.data_mut().overlay, &from, &to, value);
            Ok(if store_result(&mut cx, moved)? { 0 } else { 1 })
        },
    )?;
    linker.func_wrap(m, "blake3", |cx: Cx<'_>, ptr: i32, len: i32, out: i32| {
        hash_into(cx, ptr, len, out, |data| *blake3(data).as_bytes())
    })?;
    linker.func_wrap(m, "keccak256", |cx: Cx<'_>, ptr: i32, len: i32, out: i32| {
        hash_into(cx, ptr, len, out, keccak256)
    })?;
    linker.func_wrap(
        m,
        "recover",
        |mut cx: Cx<'_>, hash_ptr: i32, sig_ptr: i32, out: i32| -> wasmtime::Result<i32> {
            charge(&mut cx, gas::HOST_CALL.saturating_add(gas::RECOVER))?;
            let prehash = Hash(read_array(&mut cx, hash_ptr)?);
            let signature = Signature(read_array(&mut cx, sig_ptr)?);
            match signature.recover_address(&prehash) {
                Ok(address) => write(&mut cx, out, address.as_bytes()).map(|()| 0),
                Err(_) => Ok(1),
            }
        },
    )?;
    linker.func_wrap(m, "gas_left", |mut cx: Cx<'_>| -> wasmtime::Result<i64> {
        charge(&mut cx, gas::HOST_CALL)?;
        Ok(cx.get_fuel()? as i64)
    })?;
    Ok(())
}

/// The address of a contract deployed by `deployer` with `code_hash` and `salt`.
pub fn contract_address(deployer: &Address, code_hash: &Hash, salt: &Hash) -> Address {
    let digest = blake3_tagged(
        domain::CONTRACT_ADDRESS,
        &[deployer.as_bytes(), code_hash.as_bytes(), salt.as_bytes()],
    );
    let mut address = [0; 20];
    address.copy_from_slice(&digest.as_bytes()[12..]);
    Address(address)
}

/// Runs `body` with a gas budget of at most `budget`, inside a rollback frame: if it does not
/// succeed, its state changes and events are undone. The gas it uses is taken from the caller's.
fn with_frame(
    cx: &mut impl AsContextMut<Data = HostState>,
    budget: Gas,
    body: impl FnOnce(
        &mut wasmtime::StoreContextMut<'_, HostState>,
    ) -> Result<CallOutcome, ExecutionError>,
) -> Result<CallOutcome, ExecutionError> {
    let mut cx = cx.as_context_mut();
    let resources = |e: wasmtime::Error| ExecutionError::Resources(e.to_string());
    let available = cx.get_fuel().map_err(resources)?;
    let budget = budget.min(available);
    let checkpoint = cx.data().overlay.checkpoint();
    let events = cx.data().events.len();
    cx.set_fuel(budget).map_err(resources)?;
    let outcome = body(&mut cx);
    let left = cx.get_fuel().map_err(resources)?;
    let used = budget.saturating_sub(left);
    cx.set_fuel(available.saturating_sub(used)).map_err(resources)?;
    let outcome = outcome?;
    if outcome.status != CallStatus::Success {
        let state = cx.data_mut();
        state.overlay.revert_to(checkpoint);
        state.events.truncate(events);
    }
    Ok(outcome)
}

/// The contract with `code_hash`, compiling its code from the state if no cache has it.
fn load_contract(
    state: &mut HostState,
    code_hash: &Hash,
) -> Result<Result<Arc<Contract>, FailureReason>, ExecutionError> {
    let vm = Arc::clone(&state.vm);
    if let Some(contract) = vm.cached(code_hash) {
        return Ok(Ok(contract));
    }
    let Some(code) = state.overlay.get(&StateKey::code(code_hash))? else {
        return Ok(Err(FailureReason::NoCode));
    };
    Ok(vm
        .cache
        .compile(&vm.engine, &vm.linker, code_hash, &code)
        .map_err(|_| FailureReason::InvalidCode))
}

/// Calls `target`'s `call` entry point from `caller`, moving `value` to it first.
pub(crate) fn call_contract(
    cx: &mut impl AsContextMut<Data = HostState>,
    caller: Address,
    target: Address,
    value: Balance,
    input: Vec<u8>,
    budget: Gas,
) -> Result<CallOutcome, ExecutionError> {
    with_frame(cx, budget, |cx| {
        let state = cx.data_mut();
        if state.frames.len() >= gas::MAX_CALL_DEPTH {
            return Ok(CallOutcome::failure(FailureReason::CallDepthExceeded));
        }
        let Some(code_hash) = accounts::load(&mut state.overlay, &target)?.code_hash else {
            return Ok(CallOutcome::failure(FailureReason::NoCode));
        };
        let contract = match load_contract(state, &code_hash)? {
            Ok(contract) => contract,
            Err(reason) => return Ok(CallOutcome::failure(reason)),
        };
        let on_stack = state.frames.iter().any(|frame| frame.contract == target);
        if on_stack && !contract.info.reentrant {
            return Ok(CallOutcome::failure(FailureReason::Reentrancy));
        }
        if !accounts::transfer(&mut state.overlay, &caller, &target, value)? {
            return Ok(CallOutcome::failure(FailureReason::InsufficientBalance));
        }
        let frame = Frame {
            contract: target,
            caller,
            value,
            input,
            output: Vec::new(),
            return_data: Vec::new(),
            memory: None,
        };
        invoke(cx, &contract, "call", frame)
    })
}

/// Deploys `code` for `deployer` and runs its constructor, if it has one.
pub(crate) fn deploy_contract(
    cx: &mut impl AsContextMut<Data = HostState>,
    deployer: Address,
    code: &[u8],
    input: Vec<u8>,
    value: Balance,
    salt: Hash,
    budget: Gas,
) -> Result<(CallOutcome, Address), ExecutionError> {
    let code_hash = blake3(code);
    let address = contract_address(&deployer, &code_hash, &salt);
    let outcome = with_frame(cx, budget, |cx| {
        let state = cx.data_mut();
        let mut account = accounts::load(&mut state.overlay, &address)?;
        if account.code_hash.is_some() {
            return Ok(CallOutcome::failure(FailureReason::AddressInUse));
        }
        let vm = Arc::clone(&state.vm);
        let cached = vm.cached(&code_hash);
        let contract = match cached
            .map(Ok)
            .unwrap_or_else(|| vm.cache.compile(&vm.engine, &vm.linker, &code_hash, code))
        {
            Ok(contract) => contract,
            Err(_) => return Ok(CallOutcome::failure(FailureReason::InvalidCode)),
        };
        let code_key = StateKey::code(&code_hash);
        if state.overlay.get(&code_key)?.is_none() {
            state.overlay.set(code_key, Some(code.to_vec()));
        }
        account.code_hash = Some(code_hash);
        accounts::store(&mut state.overlay, &address, &account);
        if !accounts::transfer(&mut state.overlay, &deployer, &address, value)? {
            return Ok(CallOutcome::failure(FailureReason::InsufficientBalance));
        }
        if !contract.info.has_constructor {
            return Ok(CallOutcome { status: CallStatus::Success, output: Vec::new() });
        }
        let frame = Frame {
            contract: address,
            caller: deployer,
            value,
            input,
            output: Vec::new(),
            return_data: Vec::new(),
            memory: None,
        };
        invoke(cx, &contract, "deploy", frame)
    })?;
    Ok((outcome, address))
}

/// Instantiates `contract` and runs `export` with `frame` on the call stack.
fn invoke(
    cx: &mut wasmtime::StoreContextMut<'_, HostState>,
    contract: &Contract,
    export: &str,
    mut frame: Frame,
) -> Result<CallOutcome, ExecutionError> {
    if cx.data().instances >= gas::MAX_INSTANCES {
        return Ok(CallOutcome::failure(FailureReason::CallDepthExceeded));
    }
    cx.data_mut().instances = cx.data().instances.saturating_add(1);
    let instance = match contract.pre.instantiate(&mut *cx) {
        Ok(instance) => instance,
        Err(error) => {
            let status = classify(error, cx.data_mut())?;
            return Ok(CallOutcome { status, output: Vec::new() });
        }
    };
    frame.memory = instance.get_memory(&mut *cx, "memory");
    let entry = instance
        .get_typed_func::<(), ()>(&mut *cx, export)
        .map_err(|e| ExecutionError::Resources(format!("validated export missing: {e}")))?;
    cx.data_mut().frames.push(frame);
    let result = entry.call(&mut *cx, ());
    let frame = cx.data_mut().frames.pop();
    let output = frame.map(|f| f.output).unwrap_or_default();
    match result {
        Ok(()) => Ok(CallOutcome { status: CallStatus::Success, output }),
        Err(error) => match classify(error, cx.data_mut())? {
            CallStatus::Revert => Ok(CallOutcome { status: CallStatus::Revert, output }),
            status => Ok(CallOutcome { status, output: Vec::new() }),
        },
    }
}

/// Turns a wasmtime error into a call status, or into a fatal error when it is not the
/// contract's doing.
fn classify(error: wasmtime::Error, state: &mut HostState) -> Result<CallStatus, ExecutionError> {
    if let Some(exit) = error.downcast_ref::<HostExit>() {
        return match exit {
            HostExit::Revert => Ok(CallStatus::Revert),
            HostExit::Fail(reason) => Ok(CallStatus::Failure(*reason)),
            HostExit::Fatal => Err(state
                .fatal
                .take()
                .unwrap_or_else(|| ExecutionError::Resources("fatal error without cause".into()))),
        };
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return Ok(CallStatus::Failure(match trap {
            Trap::OutOfFuel => FailureReason::OutOfGas,
            Trap::StackOverflow => FailureReason::StackOverflow,
            _ => FailureReason::Trap,
        }));
    }
    // Anything else (the instance pool exhausted, memory that could not be mapped) depends on
    // this machine, not on the transaction: it must not become a receipt.
    Err(ExecutionError::Resources(format!("{error:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateRead;
    use crate::vm::VmConfig;

    struct Empty;
    impl StateRead for Empty {
        fn get(&self, _: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(None)
        }
    }

    #[test]
    fn the_linker_defines_exactly_the_documented_host_functions() {
        let vm = Arc::new(Vm::new(VmConfig::default()).unwrap());
        let context = BlockContext::new(1, 1, 0, Address::ZERO, 1);
        let state = HostState::new(Overlay::new(Arc::new(Empty)), context, Arc::clone(&vm));
        let mut store = new_store(&vm, state, 0).unwrap();
        let mut defined: Vec<String> = vm
            .linker
            .iter(&mut store)
            .map(|(module, name, _)| {
                assert_eq!(module, HOST_MODULE);
                name.to_string()
            })
            .collect();
        defined.sort();
        let mut documented: Vec<String> = HOST_FUNCTIONS.iter().map(|s| s.to_string()).collect();
        documented.sort();
        assert_eq!(defined, documented);
    }

    #[test]
    fn contract_addresses_depend_on_deployer_code_and_salt() {
        let (a, b) = (Address([1; 20]), Address([2; 20]));
        let (code, other) = (blake3(b"code"), blake3(b"other"));
        let base = contract_address(&a, &code, &Hash::ZERO);
        assert_ne!(base, contract_address(&b, &code, &Hash::ZERO));
        assert_ne!(base, contract_address(&a, &other, &Hash::ZERO));
        assert_ne!(base, contract_address(&a, &code, &Hash([1; 32])));
        assert_eq!(base, contract_address(&a, &code, &Hash::ZERO));
    }
}
