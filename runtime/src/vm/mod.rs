//! The contract virtual machine: wasmtime configured for determinism, deploy-time validation,
//! the compiled-module cache and the host ABI.

mod artifact;

pub use artifact::{ArtifactStore, MemoryArtifactStore};
