//! Where compiled modules persist between runs. Compiling a contract with cranelift takes
//! milliseconds; loading a serialized artifact takes microseconds, so a node that restarts does not
//! recompile every contract it meets.

use std::collections::HashMap;
use std::sync::Mutex;

use altan_primitives::Hash;

use crate::state::StoreError;

/// Persistent storage of compiled modules by key. The key already covers the code hash and the
/// engine's configuration and version (see `ModuleCache`), so a store only maps keys to bytes.
///
/// A store is a cache: the runtime treats an error from it as a miss and recompiles, so a broken
/// disk never changes a result, only its speed.
pub trait ArtifactStore: Send + Sync {
    /// The artifact saved under `key`, if any. An implementation must return only bytes that
    /// were saved under this key intact (it checks their integrity), because they are loaded as
    /// machine code.
    fn load(&self, key: &Hash) -> Result<Option<Vec<u8>>, StoreError>;

    /// Saves an artifact under `key`.
    fn save(&self, key: &Hash, artifact: &[u8]) -> Result<(), StoreError>;
}

/// An [`ArtifactStore`] in memory, for tests and benchmarks.
#[derive(Default)]
pub struct MemoryArtifactStore {
    artifacts: Mutex<HashMap<Hash, Vec<u8>>>,
}

impl std::fmt::Debug for MemoryArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryArtifactStore").field("artifacts", &self.len()).finish()
    }
}

impl MemoryArtifactStore {
    /// The number of artifacts held.
    pub fn len(&self) -> usize {
        self.artifacts.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ArtifactStore for MemoryArtifactStore {
    fn load(&self, key: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let artifacts =
            self.artifacts.lock().map_err(|_| StoreError::Backend("poisoned".into()))?;
        Ok(artifacts.get(key).cloned())
    }

    fn save(&self, key: &Hash, artifact: &[u8]) -> Result<(), StoreError> {
        let mut artifacts =
            self.artifacts.lock().map_err(|_| StoreError::Backend("poisoned".into()))?;
        artifacts.insert(*key, artifact.to_vec());
        Ok(())
    }
}
