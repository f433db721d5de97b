//! Key files: one JSON file per named key in a directory only its owner can read.
//!
//! A key file holds the secret key in hex, unencrypted, like an ssh key without a passphrase: the
//! protection is the file mode (0600 in a 0700 directory), which is checked when a key is loaded
//! as ssh does. The dev chain's well-known keys are available as `dev0`..`dev9` without files.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use altan_primitives::{Address, SecretKey};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::dev::{DEV_ACCOUNTS, dev_account_key};

/// What a key file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyFile {
    /// The key's name.
    pub name: String,
    /// The account address (checked against the key on load).
    pub address: Address,
    /// The secret key as 0x hex.
    pub secret_key: String,
}

/// The key directory: `$ALTAN_HOME/keys`, or `~/.altan/keys`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("ALTAN_HOME") {
        Some(home) => PathBuf::from(home).join("keys"),
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| ".".into());
            home.join(".altan").join("keys")
        }
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("key names are 1-64 letters, digits, '-' or '_'; {name:?} is not");
    }
    if dev_key(name).is_some() {
        bail!("{name:?} is reserved for a dev key");
    }
    Ok(())
}

/// Parses a 0x-hex secret key.
pub fn parse_secret(text: &str) -> anyhow::Result<SecretKey> {
    let digits = text.trim().strip_prefix("0x").unwrap_or(text.trim());
    let bytes: [u8; 32] = hex::decode(digits)
        .ok()
        .and_then(|b| b.try_into().ok())
        .context("a secret key is 32 bytes of hex")?;
    SecretKey::from_bytes(&bytes).map_err(|e| anyhow::anyhow!("not a valid secp256k1 key: {e}"))
}

/// A new random key (from the operating system's randomness, through rand's thread generator).
pub fn generate() -> SecretKey {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(key) = SecretKey::from_bytes(&bytes) {
            return key;
        }
    }
}

fn dev_key(name: &str) -> Option<SecretKey> {
    let index: usize = name.strip_prefix("dev")?.parse().ok()?;
    (index < DEV_ACCOUNTS).then(|| dev_account_key(index))
}

/// The key store in `dir`.
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    /// The store in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> KeyStore {
        KeyStore { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn ensure_dir(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        Ok(())
    }

    /// Stores `key` as `name`; an existing name is never overwritten.
    pub fn save(&self, name: &str, key: &SecretKey) -> anyhow::Result<KeyFile> {
        check_name(name)?;
        self.ensure_dir()?;
        let file = KeyFile {
            name: name.into(),
            address: key.address(),
            secret_key: format!("0x{}", hex::encode(key.to_bytes())),
        };
        let path = self.path(name);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| {
            format!("creating {} (does the key exist already?)", path.display())
        })?;
        out.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
        out.sync_all()?;
        Ok(file)
    }

    /// Loads `name`: a stored key, or `dev0`..`dev9`.
    pub fn load(&self, name: &str) -> anyhow::Result<SecretKey> {
        if let Some(key) = dev_key(name) {
            return Ok(key);
        }
        check_name(name)?;
        let path = self.path(name);
        let mode = fs::metadata(&path)
            .with_context(|| format!("no key {name:?} in {}", self.dir.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            );
        }
        let file: KeyFile = serde_json::from_str(&fs::read_to_string(&path)?)
            .with_context(|| format!("reading {}", path.display()))?;
        let key = parse_secret(&file.secret_key)?;
        if key.address() != file.address {
            bail!("{} is inconsistent: its key is for {}", path.display(), key.address());
        }
        Ok(key)
    }

    /// The stored keys' names and addresses.
    pub fn list(&self) -> anyhow::Result<Vec<(String, Address)>> {
        let mut keys = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            if path.extension().is_some_and(|e| e == "json") {
                let file: KeyFile = serde_json::from_str(&fs::read_to_string(&path)?)
                    .with_context(|| format!("reading {}", path.display()))?;
                keys.push((name.to_string(), file.address));
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_keys_load_back_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path().join("keys"));
        let key = dev_account_key(7);
        store.save("alice", &key).unwrap();
        assert_eq!(store.load("alice").unwrap().address(), key.address());
        let mode = fs::metadata(store.path("alice")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(store.save("alice", &key).is_err(), "never overwrites");
        assert_eq!(store.list().unwrap(), vec![("alice".to_string(), key.address())]);
    }

    #[test]
    fn readable_key_files_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        store.save("bob", &dev_account_key(1)).unwrap();
        fs::set_permissions(store.path("bob"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(store.load("bob").unwrap_err().to_string().contains("readable by others"));
        assert!(store.save("../evil", &dev_account_key(1)).is_err());
        assert!(store.save("dev3", &dev_account_key(1)).is_err());
        assert_eq!(store.load("dev3").unwrap().address(), dev_account_key(3).address());
    }
}
