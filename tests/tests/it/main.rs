//! The example contracts, compiled to Wasm, on the real runtime.
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod contracts;
mod devnet;
mod escrow;
mod multisig;
mod net;
mod nft;
mod node;
