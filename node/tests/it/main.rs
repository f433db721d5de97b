//! Integration tests of `altan-node`.
//!
//! One binary for the whole crate, as the house style asks, so that it links once.

// Test code indexes and counts freely: an overflow here is a failed test, not a consensus fault.
#![allow(clippy::arithmetic_side_effects)]

mod abuse;
mod network;
mod staking;
mod support;
