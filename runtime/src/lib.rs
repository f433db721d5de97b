//! Altan's deterministic state machine: the authenticated state, the rules of transactions, gas,
//! native staking, and the wasmtime virtual machine that runs contracts.
//!
//! Nothing here does I/O: no sockets, no files, no clocks, no async runtime. Storage comes in
//! through the [`state::StateStore`] trait and the compiled-module cache's
//! [`vm::ArtifactStore`] trait, implemented in memory here and on rocksdb and disk by
//! `altan-storage`. That keeps execution a pure function of (parent state, block), which is what
//! consensus needs: every node that executes the same block gets the same state root, receipts
//! and gas, and the tests here can check that deterministically and fast.
// Pure: no clocks, timers, tasks or thread-local randomness (clippy.toml).
#![warn(clippy::disallowed_methods, clippy::disallowed_types)]
#![deny(unsafe_code)]

pub mod accounts;
pub mod exec;
pub mod gas;
pub mod staking;
pub mod state;
pub mod validate;
pub mod vm;
