//! The node's network identity: an ed25519 key kept in `<data dir>/network_key`, so that a node
//! keeps its peer id (and the addresses other nodes know it by) across restarts.
//!
//! The file holds the 32-byte secret as hex. It is created with mode 0600 and refused when group
//! or others can read it, as ssh does with its keys.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use libp2p::identity::{Keypair, ed25519};

use super::NetworkError;

/// The key file's name inside the data directory.
pub const NETWORK_KEY_FILE: &str = "network_key";

fn key_error(path: &Path, reason: impl std::fmt::Display) -> NetworkError {
    NetworkError::Key { path: path.to_path_buf(), reason: reason.to_string() }
}

/// Loads the network key from `<data_dir>/network_key`, or creates one there (and the directory)
/// if there is none.
pub fn load_or_create_key(data_dir: &Path) -> Result<Keypair, NetworkError> {
    let path: PathBuf = data_dir.join(NETWORK_KEY_FILE);
    if path.exists() {
        return load_key(&path);
    }
    fs::create_dir_all(data_dir).map_err(|e| key_error(data_dir, e))?;
    let keypair = ed25519::Keypair::generate();
    let text = format!("{}\n", hex::encode(keypair.secret().as_ref()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| key_error(&path, e))?;
    file.write_all(text.as_bytes()).map_err(|e| key_error(&path, e))?;
    file.sync_all().map_err(|e| key_error(&path, e))?;
    Ok(keypair.into())
}

/// Loads a network key file written by [`load_or_create_key`].
pub fn load_key(path: &Path) -> Result<Keypair, NetworkError> {
    let mode = fs::metadata(path).map_err(|e| key_error(path, e))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(key_error(
            path,
            format!(
                "the file's mode is {:o}; it must not be readable by others (chmod 600)",
                mode & 0o777
            ),
        ));
    }
    let text = fs::read_to_string(path).map_err(|e| key_error(path, e))?;
    let mut bytes = hex::decode(text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| key_error(path, "expected 32 bytes of hex"))?;
    let secret = ed25519::SecretKey::try_from_bytes(&mut bytes).map_err(|e| key_error(path, e))?;
    Ok(ed25519::Keypair::from(secret).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let first = load_or_create_key(&data_dir).unwrap();
        let path = data_dir.join(NETWORK_KEY_FILE);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let second = load_or_create_key(&data_dir).unwrap();
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
    }

    #[test]
    fn readable_or_malformed_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_key(dir.path()).unwrap();
        let path = dir.path().join(NETWORK_KEY_FILE);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_key(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "0x1234").unwrap();
        assert!(matches!(load_key(&path), Err(NetworkError::Key { .. })));
    }
}
