//! Integration tests of `altan-consensus`: the leader schedule, table-driven transitions of the
//! state machine, refusal of untrusted input, restart from persisted messages, and the seeded
//! simulation.
//!
//! One binary for the whole crate, as the house style asks, so that it links once.

// Test code indexes and counts freely: an overflow here is a failed test, not a consensus fault.
#![allow(clippy::arithmetic_side_effects)]

mod common;
mod inputs;
mod leader;
mod restart;
mod simulation;
mod transitions;
