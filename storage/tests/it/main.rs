//! Integration tests of `altan-storage`: the rocksdb state against the in-memory reference and a
//! plain map, across reopens, crashes and pruning; and the on-disk artifact store.
#![allow(clippy::arithmetic_side_effects, clippy::print_stdout)]

mod artifact;
mod common;
mod corrupt;
mod crash;
mod model;
mod prune;
mod reopen;
