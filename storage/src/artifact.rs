//! [`DiskArtifactStore`]: compiled contract modules as files, checked before they are trusted.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use altan_primitives::Hash;
use altan_runtime::state::StoreError;
use altan_runtime::vm::ArtifactStore;
use tracing::{debug, warn};

/// The largest artifact saved or loaded. A bigger file is treated as damaged.
pub const MAX_ARTIFACT_BYTES: u64 = 512 << 20;
/// The most bytes the store keeps by default ([`DiskArtifactStore::open`]). A contract of the
/// largest size compiles to about 300 KB, so this keeps a few thousand contracts; past it the
/// least recently used artifacts are removed, and recompiled if they are needed again.
pub const DEFAULT_MAX_STORE_BYTES: u64 = 1 << 30;
/// Bytes of the checksum at the start of each file.
const CHECKSUM_LEN: usize = 32;
/// The suffix of files being written; a crash can leave them behind.
const TEMP_SUFFIX: &str = ".tmp";

const TARGET: &str = "altan::storage::artifacts";

/// Compiled modules on disk, one file per key under a directory.
///
/// A file is `checksum ‖ artifact`, where the checksum is blake3 of the artifact in keyed mode
/// with the artifact's key as the blake3 key. So a file is accepted only with the bytes it was
/// written with and only under the key it was written for: a flipped bit, a truncated write or
/// a file copied to another key's name fails the check. Such a file is removed and reported as
/// a miss, and the runtime recompiles. Files are written to a temporary name and renamed into
/// place, so a reader never sees a half-written file under a key's name.
///
/// The files take at most a set number of bytes: saving past it removes the least recently
/// used files first (loads and saves count as uses; at open, older files count as less recent).
pub struct DiskArtifactStore {
    dir: PathBuf,
    next_temp: AtomicU64,
    max_bytes: u64,
    files: Mutex<Files>,
}

/// The files the store holds: their sizes and when each was last used.
#[derive(Debug, Default)]
struct Files {
    by_name: HashMap<String, (u64, u64)>,
    bytes: u64,
    clock: u64,
}

impl Files {
    fn tick(&mut self) -> u64 {
        self.clock = self.clock.saturating_add(1);
        self.clock
    }

    fn touch(&mut self, name: &str) {
        let now = self.tick();
        if let Some((_, used)) = self.by_name.get_mut(name) {
            *used = now;
        }
    }

    fn insert(&mut self, name: String, size: u64) {
        let now = self.tick();
        if let Some((old, _)) = self.by_name.insert(name, (size, now)) {
            self.bytes = self.bytes.saturating_sub(old);
        }
        self.bytes = self.bytes.saturating_add(size);
    }

    fn remove(&mut self, name: &str) {
        if let Some((size, _)) = self.by_name.remove(name) {
            self.bytes = self.bytes.saturating_sub(size);
        }
    }

    /// The least recently used file.
    fn oldest(&self) -> Option<String> {
        self.by_name.iter().min_by_key(|(_, (_, used))| *used).map(|(name, _)| name.clone())
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn checksum(key: &Hash, artifact: &[u8]) -> [u8; CHECKSUM_LEN] {
    *blake3::keyed_hash(key.as_bytes(), artifact).as_bytes()
}

fn io_error(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = format!("{action} {}", path.display());
    move |error| StoreError::Backend(format!("artifact store: {context}: {error}"))
}

/// Writes the checksum and the artifact to a new file at `path` and waits for them to reach the disk.
fn write_synced(path: &Path, checksum: &[u8], artifact: &[u8]) -> Result<(), StoreError> {
    let mut file = File::create_new(path).map_err(io_error("creating", path))?;
    file.write_all(checksum).map_err(io_error("writing", path))?;
    file.write_all(artifact).map_err(io_error("writing", path))?;
    file.sync_all().map_err(io_error("syncing", path))
}

impl DiskArtifactStore {
    /// The store in `dir`, created if missing, keeping at most [`DEFAULT_MAX_STORE_BYTES`].
    pub fn open(dir: impl Into<PathBuf>) -> Result<DiskArtifactStore, StoreError> {
        DiskArtifactStore::open_with_limit(dir, DEFAULT_MAX_STORE_BYTES)
    }

    /// The store in `dir`, created if missing, keeping at most `max_bytes` of files (checksums
    /// included). Temporary files left by an interrupted save are removed; the files already
    /// there count against the limit, the oldest as the least recently used.
    pub fn open_with_limit(
        dir: impl Into<PathBuf>,
        max_bytes: u64,
    ) -> Result<DiskArtifactStore, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        let mut found = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_error("listing", &dir))? {
            let entry = entry.map_err(io_error("listing", &dir))?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(String::from) else {
                continue;
            };
            if name.ends_with(TEMP_SUFFIX) {
                debug!(target: TARGET, path = %path.display(), "removing leftover temporary file");
                fs::remove_file(&path).map_err(io_error("removing", &path))?;
                continue;
            }
            let metadata = entry.metadata().map_err(io_error("reading", &path))?;
            let modified = metadata.modified().ok();
            found.push((modified, name, metadata.len()));
        }
        found.sort();
        let mut files = Files::default();
        for (_, name, size) in found {
            files.insert(name, size);
        }
        let store = DiskArtifactStore {
            dir,
            next_temp: AtomicU64::new(0),
            max_bytes,
            files: Mutex::new(files),
        };
        store.evict_until_free(0)?;
        Ok(store)
    }

    /// Bytes of files the store holds.
    pub fn bytes(&self) -> u64 {
        self.lock_files().bytes
    }

    fn lock_files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Removes the least recently used files until `needed` more bytes fit the limit.
    fn evict_until_free(&self, needed: u64) -> Result<(), StoreError> {
        let mut files = self.lock_files();
        while files.bytes.saturating_add(needed) > self.max_bytes {
            let Some(name) = files.oldest() else { break };
            let path = self.dir.join(&name);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => return Err(io_error("removing", &path)(error)),
            }
            debug!(target: TARGET, path = %path.display(), "evicted the least recently used artifact");
            files.remove(&name);
        }
        Ok(())
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds the artifact of `key`.
    pub fn path_of(&self, key: &Hash) -> PathBuf {
        self.dir.join(hex(key.as_bytes()))
    }

    /// Removes a file that failed its check, and reports a miss.
    fn discard(
        &self,
        key: &Hash,
        path: &Path,
        reason: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        warn!(
            target: TARGET,
            key = %hex(key.as_bytes()),
            path = %path.display(),
            reason,
            "discarding a damaged compiled artifact"
        );
        self.lock_files().remove(&hex(key.as_bytes()));
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => {
                warn!(target: TARGET, path = %path.display(), %error, "cannot remove damaged artifact");
            }
        }
        Ok(None)
    }
}

impl ArtifactStore for DiskArtifactStore {
    fn load(&self, key: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(key);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error("opening", &path)(error)),
        };
        let limit = MAX_ARTIFACT_BYTES.saturating_add(CHECKSUM_LEN as u64);
        let mut bytes = Vec::new();
        // One byte past the limit tells an oversized file from one exactly at it.
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io_error("reading", &path))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
            return self.discard(key, &path, "too large");
        }
        if bytes.len() < CHECKSUM_LEN {
            return self.discard(key, &path, "truncated");
        }
        let artifact = bytes.split_off(CHECKSUM_LEN);
        if bytes != checksum(key, &artifact) {
            return self.discard(key, &path, "checksum mismatch");
        }
        self.lock_files().touch(&hex(key.as_bytes()));
        Ok(Some(artifact))
    }

    fn save(&self, key: &Hash, artifact: &[u8]) -> Result<(), StoreError> {
        if u64::try_from(artifact.len()).unwrap_or(u64::MAX) > MAX_ARTIFACT_BYTES {
            return Err(StoreError::Backend(format!(
                "artifact store: {} bytes exceeds the limit of {MAX_ARTIFACT_BYTES}",
                artifact.len()
            )));
        }
        let size = u64::try_from(artifact.len().saturating_add(CHECKSUM_LEN)).unwrap_or(u64::MAX);
        if size > self.max_bytes {
            return Err(StoreError::Backend(format!(
                "artifact store: {size} bytes exceeds the store's limit of {}",
                self.max_bytes
            )));
        }
        let name = hex(key.as_bytes());
        // A file saved again under its key replaces itself: it does not need room twice.
        self.lock_files().remove(&name);
        self.evict_until_free(size)?;
        let path = self.path_of(key);
        let temp = self.dir.join(format!(
            "{}.{}.{}{TEMP_SUFFIX}",
            hex(key.as_bytes()),
            std::process::id(),
            self.next_temp.fetch_add(1, Ordering::Relaxed)
        ));
        let written = write_synced(&temp, &checksum(key, artifact), artifact)
            .and_then(|()| fs::rename(&temp, &path).map_err(io_error("renaming", &temp)));
        match written {
            Ok(()) => self.lock_files().insert(name, size),
            // Best effort: the file may not exist, and a leftover is removed at the next open.
            Err(_) => {
                let _ = fs::remove_file(&temp);
            }
        }
        written
    }
}
