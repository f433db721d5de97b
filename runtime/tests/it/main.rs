//! Integration tests of the runtime: execution rules, the hostile-contract corpus, deploy-time
//! validation and determinism.
#![allow(clippy::arithmetic_side_effects, clippy::type_complexity, missing_docs)]

mod block_rules;
mod common;
mod determinism;
mod execution;
mod generated;
mod hostile;
mod staking;
mod validation;
