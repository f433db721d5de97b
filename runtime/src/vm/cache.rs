//! Compiled contracts by code hash: in memory (LRU), then in the [`ArtifactStore`], then compiled.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use altan_primitives::{Hash, blake3_tagged};
use lru::LruCache;
use wasmtime::{Engine, InstancePre, Linker, Module};

use super::ArtifactStore;
use super::host::HostState;
use super::validate::{CodeError, CodeInfo, validate};

/// A contract ready to instantiate.
pub(crate) struct Contract {
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) info: CodeInfo,
}

/// Counters of how compiled modules were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Found in memory.
    pub memory_hits: u64,
    /// Loaded from the artifact store.
    pub artifact_hits: u64,
    /// Compiled.
    pub compiled: u64,
}

pub(crate) struct ModuleCache {
    entries: Mutex<LruCache<Hash, Arc<Contract>>>,
    artifacts: Option<Arc<dyn ArtifactStore>>,
    /// Whether compiled modules are saved to `artifacts` (or only loaded from it).
    save_artifacts: bool,
    fingerprint: Hash,
    memory_hits: AtomicU64,
    artifact_hits: AtomicU64,
    compiled: AtomicU64,
}

/// Artifact layout: one flags byte, then wasmtime's serialized module.
const FLAG_CONSTRUCTOR: u8 = 1;
const FLAG_REENTRANT: u8 = 2;

impl ModuleCache {
    pub(crate) fn new(
        capacity: NonZeroUsize,
        artifacts: Option<(Arc<dyn ArtifactStore>, bool)>,
        fingerprint: Hash,
    ) -> ModuleCache {
        let save_artifacts = artifacts.as_ref().is_some_and(|(_, save)| *save);
        ModuleCache {
            entries: Mutex::new(LruCache::new(capacity)),
            artifacts: artifacts.map(|(store, _)| store),
            save_artifacts,
            fingerprint,
            memory_hits: AtomicU64::new(0),
            artifact_hits: AtomicU64::new(0),
            compiled: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            artifact_hits: self.artifact_hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
        }
    }

    fn artifact_key(&self, code_hash: &Hash) -> Hash {
        blake3_tagged(b"altan/artifact/v1", &[self.fingerprint.as_bytes(), code_hash.as_bytes()])
    }

    pub(crate) fn get(&self, code_hash: &Hash) -> Option<Arc<Contract>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let found = entries.get(code_hash).cloned();
        if found.is_some() {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    fn insert(&self, code_hash: Hash, contract: Arc<Contract>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.put(code_hash, contract);
    }

    /// The contract from the artifact store, if it holds a good artifact for it.
    pub(crate) fn load_artifact(
        &self,
        engine: &Engine,
        linker: &Linker<HostState>,
        code_hash: &Hash,
    ) -> Option<Arc<Contract>> {
        let store = self.artifacts.as_ref()?;
        let key = self.artifact_key(code_hash);
        let bytes = match store.load(&key) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(target: "altan::vm", %code_hash, %error, "artifact store failed; compiling");
                return None;
            }
        };
        let (&flags, serialized) = bytes.split_first()?;
        let module = deserialize(engine, serialized)
            .inspect_err(|error| {
                tracing::warn!(target: "altan::vm", %code_hash, %error, "stale artifact; compiling");
            })
            .ok()?;
        let pre = linker.instantiate_pre(&module).ok()?;
        let info = CodeInfo {
            has_constructor: flags & FLAG_CONSTRUCTOR != 0,
            reentrant: flags & FLAG_REENTRANT != 0,
        };
        let contract = Arc::new(Contract { pre, info });
        self.artifact_hits.fetch_add(1, Ordering::Relaxed);
        self.insert(*code_hash, Arc::clone(&contract));
        Some(contract)
    }

    /// Validates and compiles `code`, caching the result in memory and in the artifact store.
    pub(crate) fn compile(
        &self,
        engine: &Engine,
        linker: &Linker<HostState>,
        code_hash: &Hash,
        code: &[u8],
    ) -> Result<Arc<Contract>, CodeError> {
        let info = validate(code)?;
        let module = Module::from_binary(engine, code)
            .map_err(|e| CodeError::Invalid(format!("compilation failed: {e}")))?;
        // Import names were checked by `validate`; this checks their types against the linker.
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| CodeError::Invalid(format!("imports do not match the host ABI: {e}")))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(store) = self.artifacts.as_ref().filter(|_| self.save_artifacts) {
            match module.serialize() {
                Ok(serialized) => {
                    let mut flags = 0;
                    if info.has_constructor {
                        flags |= FLAG_CONSTRUCTOR;
                    }
                    if info.reentrant {
                        flags |= FLAG_REENTRANT;
                    }
                    let mut bytes = Vec::with_capacity(serialized.len().saturating_add(1));
                    bytes.push(flags);
                    bytes.extend_from_slice(&serialized);
                    if let Err(error) = store.save(&self.artifact_key(code_hash), &bytes) {
                        tracing::warn!(target: "altan::vm", %code_hash, %error, "could not save artifact");
                    }
                }
                Err(error) => {
                    tracing::warn!(target: "altan::vm", %code_hash, %error, "could not serialize module");
                }
            }
        }
        let contract = Arc::new(Contract { pre, info });
        self.insert(*code_hash, Arc::clone(&contract));
        Ok(contract)
    }
}

/// Loads a serialized module.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Module, wasmtime::Error> {
    // SAFETY: `Module::deserialize` trusts that the bytes are machine code that this engine
    // produced. They come only from an `ArtifactStore`, which returns only bytes saved under this
    // key intact (the disk store checks a blake3 checksum), under a key that includes the code hash
    // and the engine's fingerprint; and wasmtime itself refuses artifacts from another version or
    // configuration.
    unsafe { Module::deserialize(engine, bytes) }
}
