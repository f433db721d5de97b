//! [`DiskArtifactStore`]: compiled contract modules as files, checked before they are trusted.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use altan_primitives::Hash;
use altan_runtime::state::StoreError;
use altan_runtime::vm::ArtifactStore;
use tracing::{debug, warn};

/// The largest artifact saved or loaded. A bigger file is treated as damaged.
pub const MAX_ARTIFACT_BYTES: u64 = 512 << 20;
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
pub struct DiskArtifactStore {
    dir: PathBuf,
    next_temp: AtomicU64,
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
    /// The store in `dir`, created if missing. Temporary files left by an interrupted save are
    /// removed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<DiskArtifactStore, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
        for entry in fs::read_dir(&dir).map_err(io_error("listing", &dir))? {
            let path = entry.map_err(io_error("listing", &dir))?.path();
            if path.to_str().is_some_and(|name| name.ends_with(TEMP_SUFFIX)) {
                debug!(target: TARGET, path = %path.display(), "removing leftover temporary file");
                fs::remove_file(&path).map_err(io_error("removing", &path))?;
            }
        }
        Ok(DiskArtifactStore { dir, next_temp: AtomicU64::new(0) })
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
        Ok(Some(artifact))
    }

    fn save(&self, key: &Hash, artifact: &[u8]) -> Result<(), StoreError> {
        if u64::try_from(artifact.len()).unwrap_or(u64::MAX) > MAX_ARTIFACT_BYTES {
            return Err(StoreError::Backend(format!(
                "artifact store: {} bytes exceeds the limit of {MAX_ARTIFACT_BYTES}",
                artifact.len()
            )));
        }
        let path = self.path_of(key);
        let temp = self.dir.join(format!(
            "{}.{}.{}{TEMP_SUFFIX}",
            hex(key.as_bytes()),
            std::process::id(),
            self.next_temp.fetch_add(1, Ordering::Relaxed)
        ));
        let written = write_synced(&temp, &checksum(key, artifact), artifact)
            .and_then(|()| fs::rename(&temp, &path).map_err(io_error("renaming", &temp)));
        if written.is_err() {
            // Best effort: the file may not exist, and a leftover is removed at the next open.
            let _ = fs::remove_file(&temp);
        }
        written
    }
}
