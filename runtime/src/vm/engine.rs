//! The wasmtime engine, configured so that the same module and input give the same result, the
//! same gas and the same state changes on every node.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};

use altan_primitives::{Hash, blake3_tagged};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::gas;

/// The host ABI's version: contracts import their host functions from this module name. A new
/// ABI gets a new name, and the old one keeps working for contracts already deployed.
pub const HOST_MODULE: &str = "altan_v1";

/// How many contract instances may be alive at once across all executions of one [`super::Vm`]
/// by default. Each transaction holds at most [`gas::MAX_INSTANCES`], so this allows 16
/// transactions to execute concurrently. A node gives block execution a VM of its own, so work
/// that anyone can ask for (queries, dry runs) never takes a block's instances.
pub const POOL_INSTANCES: u32 = 1_024;

/// Builds the engine.
///
/// Determinism: fuel metering counts instructions (epochs would count time); NaNs are
/// canonicalized so float results have the same bits everywhere; threads, SIMD, relaxed SIMD,
/// multi-memory, memory64, GC, exceptions, tail calls and stack switching are off, so a module
/// using them fails validation. The Wasm stack has a fixed size for all nested calls together.
/// Every module passes `validate.rs` (with exactly the features contracts may use) before it
/// reaches the engine, so the engine settings below are a second line. Threads, typed function
/// references, GC types and exceptions are not even compiled into this build of
/// wasmtime (its `threads` and `gc` features are off).
pub fn build_engine(instances: u32) -> Result<Engine, wasmtime::Error> {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .wasm_simd(false)
        .wasm_relaxed_simd(false)
        .wasm_multi_memory(false)
        .wasm_memory64(false)
        .wasm_tail_call(false)
        .wasm_gc(false)
        .wasm_wide_arithmetic(false)
        .wasm_custom_page_sizes(false)
        .wasm_extended_const(true)
        .wasm_bulk_memory(true)
        .wasm_multi_value(true)
        .max_wasm_stack(gas::MAX_WASM_STACK)
        // Traps are turned into receipt codes; nobody reads a backtrace, so do not pay for one.
        .wasm_backtrace_max_frames(None)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(instances)));
    Engine::new(&config)
}

fn pooling_config(instances: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(instances)
        .total_memories(instances)
        .total_tables(instances)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size(gas::MAX_MEMORY_BYTES)
        .table_elements(gas::MAX_TABLE_ELEMENTS as usize)
        // A slot's memory is reset between uses; keeping the first pages resident makes that a
        // memset instead of a page fault per page for small contracts.
        .linear_memory_keep_resident(64 * 1024);
    pool
}

/// Identifies the engine's code generation: wasmtime's version and every setting that changes
/// compiled code. Compiled artifacts are stored under this and the code hash, so an artifact
/// from another engine is never loaded.
pub fn fingerprint(engine: &Engine) -> Hash {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    blake3_tagged(b"altan/engine/v1", &[HOST_MODULE.as_bytes(), &hasher.finish().to_le_bytes()])
}
