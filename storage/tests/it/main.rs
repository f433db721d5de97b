//! Integration tests of `altan-storage`: the rocksdb state against the in-memory reference and a
//! plain map, across reopens, crashes and pruning; the chain store beside it; determinism of
//! execution across backends and restarts; and the on-disk artifact store.
#![allow(clippy::arithmetic_side_effects, clippy::print_stdout)]

mod artifact;
mod chain;
mod common;
mod corrupt;
mod crash;
mod determinism;
mod model;
mod prune;
mod reopen;
