//! The byte layout of the state's column families, and the checks that keep bad bytes read from
//! disk from reaching the state as anything but [`StoreError::Corrupt`].
//!
//! | family               | key                                                  | value                          |
//! |----------------------|------------------------------------------------------|--------------------------------|
//! | `state_values`       | key hash (32) ‖ version (u64 BE)                     | tag (0 deleted, 1 set) ‖ value |
//! | `state_roots`        | version (u64 BE)                                     | root (32)                      |
//! | `state_stale_values` | superseded at (u64 BE) ‖ key hash ‖ old version (u64 BE) | empty                      |
//! | `state_meta`         | `format`, `latest`, `oldest`                         | u64 BE                         |
//!
//! A stale-value entry names a value that a later version replaced or deleted, or a tombstone
//! (under its own version: it hides only values that are pruned with it).
//!
//! Versions are big-endian so that byte order is numeric order: a backwards seek from
//! `key hash ‖ v` lands on the newest entry at or below `v`, a forward scan of the values meets
//! each key's versions oldest first, and a forward scan of the stale index or of the roots meets
//! the oldest first and can stop at the first entry past the prune point.

use altan_primitives::Hash;
use altan_runtime::state::{KeyHash, StoreError, Version};

/// Bytes in a key hash.
pub(crate) const KEY_HASH_LEN: usize = 32;
/// Bytes in an encoded version.
pub(crate) const VERSION_LEN: usize = 8;
/// Bytes in a `state_values` key.
pub(crate) const VALUE_KEY_LEN: usize = KEY_HASH_LEN + VERSION_LEN;
/// Bytes in a `state_stale_values` key.
pub(crate) const STALE_VALUE_KEY_LEN: usize = VERSION_LEN + KEY_HASH_LEN + VERSION_LEN;
/// Bytes in a root.
const ROOT_LEN: usize = 32;

/// The value tag of a deletion.
const TAG_DELETED: u8 = 0;
/// The value tag of a set value.
const TAG_SET: u8 = 1;

pub(crate) fn encode_version(version: Version) -> [u8; VERSION_LEN] {
    version.to_be_bytes()
}

pub(crate) fn decode_version(bytes: &[u8], what: &str) -> Result<Version, StoreError> {
    let array: [u8; VERSION_LEN] = bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!("{what}: expected {VERSION_LEN} bytes, found {}", bytes.len()))
    })?;
    Ok(Version::from_be_bytes(array))
}

pub(crate) fn decode_root(bytes: &[u8], version: Version) -> Result<Hash, StoreError> {
    let array: [u8; ROOT_LEN] = bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "root of version {version}: expected {ROOT_LEN} bytes, found {}",
            bytes.len()
        ))
    })?;
    Ok(Hash(array))
}

pub(crate) fn value_key(key_hash: &KeyHash, version: Version) -> [u8; VALUE_KEY_LEN] {
    let mut key = [0; VALUE_KEY_LEN];
    key[..KEY_HASH_LEN].copy_from_slice(&key_hash.0);
    key[KEY_HASH_LEN..].copy_from_slice(&encode_version(version));
    key
}

/// Splits a `state_values` key into its key hash and version.
pub(crate) fn decode_value_key(bytes: &[u8]) -> Result<(KeyHash, Version), StoreError> {
    let array: &[u8; VALUE_KEY_LEN] = bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "value key: expected {VALUE_KEY_LEN} bytes, found {}",
            bytes.len()
        ))
    })?;
    let (hash, version) = array.split_at(KEY_HASH_LEN);
    let mut key_hash = [0; KEY_HASH_LEN];
    key_hash.copy_from_slice(hash);
    Ok((KeyHash(key_hash), decode_version(version, "value key version")?))
}

/// The version part of a `state_values` key, checking that the key belongs to `key_hash`.
/// `None` if the key is another key hash's.
pub(crate) fn value_key_version(
    bytes: &[u8],
    key_hash: &KeyHash,
) -> Result<Option<Version>, StoreError> {
    if bytes.get(..KEY_HASH_LEN) != Some(&key_hash.0[..]) {
        return Ok(None);
    }
    decode_value_key(bytes).map(|(_, version)| Some(version))
}

/// Writes the stored form of `value` (or of a deletion) into `out`, replacing its contents, so
/// that a commit can reuse one buffer for all of its values.
pub(crate) fn encode_value_into(value: Option<&[u8]>, out: &mut Vec<u8>) {
    out.clear();
    match value {
        None => out.push(TAG_DELETED),
        Some(value) => {
            out.reserve(value.len().saturating_add(1));
            out.push(TAG_SET);
            out.extend_from_slice(value);
        }
    }
}

/// The value in a stored entry, or `None` for a deletion; borrowed from `bytes`.
pub(crate) fn decode_value(bytes: &[u8]) -> Result<Option<&[u8]>, StoreError> {
    match bytes.split_first() {
        Some((&TAG_SET, value)) => Ok(Some(value)),
        Some((&TAG_DELETED, [])) => Ok(None),
        Some((&TAG_DELETED, rest)) => {
            Err(StoreError::Corrupt(format!("deleted value carries {} bytes", rest.len())))
        }
        Some((tag, _)) => Err(StoreError::Corrupt(format!("unknown value tag {tag}"))),
        None => Err(StoreError::Corrupt("empty value entry".into())),
    }
}

pub(crate) fn stale_value_key(
    since: Version,
    key_hash: &KeyHash,
    old_version: Version,
) -> [u8; STALE_VALUE_KEY_LEN] {
    let mut key = [0; STALE_VALUE_KEY_LEN];
    key[..VERSION_LEN].copy_from_slice(&encode_version(since));
    key[VERSION_LEN..VALUE_KEY_LEN].copy_from_slice(&key_hash.0);
    key[VALUE_KEY_LEN..].copy_from_slice(&encode_version(old_version));
    key
}

/// The version a stale-value entry was superseded at, and the `state_values` key it names.
pub(crate) fn decode_stale_value_key(
    bytes: &[u8],
) -> Result<(Version, [u8; VALUE_KEY_LEN]), StoreError> {
    if bytes.len() != STALE_VALUE_KEY_LEN {
        return Err(StoreError::Corrupt(format!(
            "stale value key: expected {STALE_VALUE_KEY_LEN} bytes, found {}",
            bytes.len()
        )));
    }
    let (since, named) = bytes.split_at(VERSION_LEN);
    let since = decode_version(since, "stale value key")?;
    let mut value_key = [0; VALUE_KEY_LEN];
    value_key.copy_from_slice(named);
    Ok((since, value_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: Option<&[u8]>) -> Vec<u8> {
        let mut out = vec![9; 3];
        encode_value_into(value, &mut out);
        out
    }

    #[test]
    fn values_round_trip_and_distinguish_empty_from_deleted() {
        for value in [None, Some(&b""[..]), Some(&b"\x00"[..]), Some(&b"abc"[..])] {
            assert_eq!(decode_value(&encoded(value)).unwrap(), value);
        }
        assert_eq!(encoded(None), [TAG_DELETED]);
        assert_eq!(encoded(Some(b"v")), [TAG_SET, b'v']);
        assert_ne!(encoded(None), encoded(Some(b"")));
        assert!(matches!(decode_value(&[]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_value(&[0, 1]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_value(&[7, 1]), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn value_keys_sort_by_key_hash_then_version() {
        let a = KeyHash([1; 32]);
        let b = KeyHash([2; 32]);
        assert!(value_key(&a, 300) < value_key(&a, 301));
        assert!(value_key(&a, 255) < value_key(&a, 256));
        assert!(value_key(&a, u64::MAX) < value_key(&b, 0));
        assert_eq!(value_key_version(&value_key(&a, 9), &a).unwrap(), Some(9));
        assert_eq!(value_key_version(&value_key(&b, 9), &a).unwrap(), None);
        assert!(value_key_version(&value_key(&a, 9)[..39], &a).is_err());
        assert_eq!(decode_value_key(&value_key(&b, 77)).unwrap(), (b, 77));
        assert!(decode_value_key(&[0; 41]).is_err());
        assert!(decode_value_key(&[]).is_err());
    }

    #[test]
    fn stale_keys_round_trip() {
        let hash = KeyHash([5; 32]);
        let (since, key) = decode_stale_value_key(&stale_value_key(7, &hash, 3)).unwrap();
        assert_eq!((since, key), (7, value_key(&hash, 3)));
        assert!(stale_value_key(7, &hash, 3) < stale_value_key(8, &KeyHash([0; 32]), 0));
        assert!(decode_stale_value_key(&[0; 47]).is_err());
        assert!(decode_stale_value_key(&[0; 49]).is_err());
    }

    #[test]
    fn roots_and_versions_check_their_length() {
        assert_eq!(decode_root(&[3; 32], 1).unwrap(), Hash([3; 32]));
        assert!(matches!(decode_root(&[3; 31], 1), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_root(&[3; 33], 1), Err(StoreError::Corrupt(_))));
        assert_eq!(decode_version(&encode_version(u64::MAX - 1), "v").unwrap(), u64::MAX - 1);
        assert!(matches!(decode_version(&[1, 2, 3], "v"), Err(StoreError::Corrupt(_))));
    }
}
