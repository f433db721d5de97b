//! The byte layout of the state's column families, and the checks that keep bad bytes read from
//! disk from reaching the tree as anything but [`StoreError::Corrupt`].
//!
//! | family         | key                                                  | value                     |
//! |----------------|------------------------------------------------------|---------------------------|
//! | `state_nodes`  | borsh `NodeKey`                                      | borsh `Node`              |
//! | `state_values` | key hash (32) ‖ version (u64 BE)                     | tag (0 deleted, 1 set) ‖ value |
//! | `state_stale_nodes`  | stale since (u64 BE) ‖ borsh `NodeKey`         | empty                     |
//! | `state_stale_values` | superseded at (u64 BE) ‖ key hash ‖ old version (u64 BE) | empty       |
//! | `state_meta`   | `format`, `latest`, `oldest`                         | u64 BE                    |
//!
//! Versions are big-endian so that byte order is numeric order: a backwards seek from
//! `key hash ‖ v` lands on the newest entry at or below `v`, and a forward scan of the stale
//! indexes meets the oldest first and can stop at the first entry past the prune point.

use altan_runtime::state::{StoreError, Version};
use jmt::storage::{Node, NodeKey};
use jmt::{KeyHash, OwnedValue};

/// Bytes in a key hash.
pub(crate) const KEY_HASH_LEN: usize = 32;
/// Bytes in an encoded version.
pub(crate) const VERSION_LEN: usize = 8;
/// Bytes in a `state_values` key.
pub(crate) const VALUE_KEY_LEN: usize = KEY_HASH_LEN + VERSION_LEN;
/// Bytes in a `state_stale_values` key.
pub(crate) const STALE_VALUE_KEY_LEN: usize = VERSION_LEN + KEY_HASH_LEN + VERSION_LEN;

/// The value tag of a deletion.
const TAG_DELETED: u8 = 0;
/// The value tag of a set value.
const TAG_SET: u8 = 1;

/// The most nibbles a node's path can have: 256 bits of key hash.
const MAX_NIBBLES: u64 = 64;
/// Bytes of a borsh `NodeKey` before the path bytes: version, nibble count, byte count.
const NODE_KEY_HEADER_LEN: usize = 8 + 8 + 4;

/// The borsh variant index of `Node::Internal`.
const NODE_TAG_INTERNAL: u8 = 1;
/// The borsh variant index of `Node::Leaf`.
const NODE_TAG_LEAF: u8 = 2;

pub(crate) fn encode_version(version: Version) -> [u8; VERSION_LEN] {
    version.to_be_bytes()
}

pub(crate) fn decode_version(bytes: &[u8], what: &str) -> Result<Version, StoreError> {
    let array: [u8; VERSION_LEN] = bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!("{what}: expected {VERSION_LEN} bytes, found {}", bytes.len()))
    })?;
    Ok(Version::from_be_bytes(array))
}

/// The first eight bytes of `bytes` as a big-endian version.
fn version_prefix(bytes: &[u8], what: &str) -> Result<Version, StoreError> {
    match bytes.get(..VERSION_LEN) {
        Some(prefix) => decode_version(prefix, what),
        None => Err(StoreError::Corrupt(format!("{what}: {} bytes is too short", bytes.len()))),
    }
}

pub(crate) fn value_key(key_hash: KeyHash, version: Version) -> [u8; VALUE_KEY_LEN] {
    let mut key = [0; VALUE_KEY_LEN];
    key[..KEY_HASH_LEN].copy_from_slice(&key_hash.0);
    key[KEY_HASH_LEN..].copy_from_slice(&encode_version(version));
    key
}

/// The version part of a `state_values` key, checking that the key belongs to `key_hash`.
/// `None` if the key is another key hash's.
pub(crate) fn value_key_version(
    bytes: &[u8],
    key_hash: KeyHash,
) -> Result<Option<Version>, StoreError> {
    if bytes.get(..KEY_HASH_LEN) != Some(&key_hash.0[..]) {
        return Ok(None);
    }
    if bytes.len() != VALUE_KEY_LEN {
        return Err(StoreError::Corrupt(format!(
            "value key: expected {VALUE_KEY_LEN} bytes, found {}",
            bytes.len()
        )));
    }
    decode_version(&bytes[KEY_HASH_LEN..], "value key version").map(Some)
}

pub(crate) fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![TAG_DELETED],
        Some(value) => {
            let mut bytes = Vec::with_capacity(value.len().saturating_add(1));
            bytes.push(TAG_SET);
            bytes.extend_from_slice(value);
            bytes
        }
    }
}

pub(crate) fn decode_value(bytes: &[u8]) -> Result<Option<OwnedValue>, StoreError> {
    match bytes.split_first() {
        Some((&TAG_SET, value)) => Ok(Some(value.to_vec())),
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
    key_hash: KeyHash,
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
    let since = version_prefix(bytes, "stale value key")?;
    let mut value_key = [0; VALUE_KEY_LEN];
    value_key.copy_from_slice(&bytes[VERSION_LEN..]);
    Ok((since, value_key))
}

pub(crate) fn stale_node_key(since: Version, node_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(VERSION_LEN.saturating_add(node_key.len()));
    key.extend_from_slice(&encode_version(since));
    key.extend_from_slice(node_key);
    key
}

/// The version a stale-node entry became stale at, and the `state_nodes` key it names.
pub(crate) fn decode_stale_node_key(bytes: &[u8]) -> Result<(Version, &[u8]), StoreError> {
    let since = version_prefix(bytes, "stale node key")?;
    let node_key = &bytes[VERSION_LEN..];
    check_node_key(node_key)?;
    Ok((since, node_key))
}

/// The encoded key of the root node of `version`: the empty nibble path.
pub(crate) fn root_node_key(version: Version) -> Vec<u8> {
    let mut key = Vec::with_capacity(NODE_KEY_HEADER_LEN);
    key.extend_from_slice(&version.to_le_bytes());
    key.extend_from_slice(&0_u64.to_le_bytes());
    key.extend_from_slice(&0_u32.to_le_bytes());
    key
}

pub(crate) fn encode_node_key(key: &NodeKey) -> Result<Vec<u8>, StoreError> {
    borsh::to_vec(key).map_err(|e| StoreError::Backend(format!("encoding node key: {e}")))
}

/// Checks that `bytes` is a well-formed borsh `NodeKey`: a version, then a nibble path whose
/// byte count matches its nibble count, at most 64 nibbles, an odd path's padding nibble zero.
/// `jmt` asserts these invariants rather than checking them, so they are checked here.
fn check_node_key(bytes: &[u8]) -> Result<(), StoreError> {
    let corrupt = |why: &str| StoreError::Corrupt(format!("node key: {why}"));
    let header = bytes.get(..NODE_KEY_HEADER_LEN).ok_or_else(|| corrupt("too short"))?;
    let mut num_nibbles = [0; 8];
    num_nibbles.copy_from_slice(&header[8..16]);
    let num_nibbles = u64::from_le_bytes(num_nibbles);
    let mut byte_count = [0; 4];
    byte_count.copy_from_slice(&header[16..20]);
    let byte_count = u64::from(u32::from_le_bytes(byte_count));
    let path = &bytes[NODE_KEY_HEADER_LEN..];
    if num_nibbles > MAX_NIBBLES {
        return Err(corrupt("more than 64 nibbles"));
    }
    if byte_count != num_nibbles.div_ceil(2) || u64::try_from(path.len()).ok() != Some(byte_count) {
        return Err(corrupt("nibble count does not match the path's length"));
    }
    if num_nibbles % 2 == 1 && path.last().is_some_and(|last| last & 0x0f != 0) {
        return Err(corrupt("odd path with a non-zero padding nibble"));
    }
    Ok(())
}

pub(crate) fn decode_node_key(bytes: &[u8]) -> Result<NodeKey, StoreError> {
    check_node_key(bytes)?;
    borsh::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("node key: {e}")))
}

pub(crate) fn encode_node(node: &Node) -> Result<Vec<u8>, StoreError> {
    borsh::to_vec(node).map_err(|e| StoreError::Backend(format!("encoding node: {e}")))
}

/// Whether the encoded node is a leaf, judged by its tag alone.
pub(crate) fn is_leaf_bytes(bytes: &[u8]) -> bool {
    bytes.first() == Some(&NODE_TAG_LEAF)
}

/// Decodes a node and checks the invariants that `jmt` asserts (and would panic on) when it
/// later rebuilds an internal node: at least one child, not a lone leaf child, a child count and
/// a leaf count that agree with the children.
pub(crate) fn decode_node(bytes: &[u8]) -> Result<Node, StoreError> {
    let node: Node =
        borsh::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("node: {e}")))?;
    if let Node::Internal(internal) = &node {
        let corrupt = |why: &str| StoreError::Corrupt(format!("internal node: {why}"));
        let mut children = 0_u64;
        let mut leaves = 0_usize;
        let mut lone_leaf = false;
        for (_, child) in internal.children_sorted() {
            children = children.saturating_add(1);
            lone_leaf = child.is_leaf();
            leaves = leaves.checked_add(child.leaf_count()).ok_or_else(|| corrupt("leaf count"))?;
        }
        if children == 0 || (children == 1 && lone_leaf) {
            return Err(corrupt("it needs two children or one internal child"));
        }
        if leaves != internal.leaf_count() {
            return Err(corrupt("leaf count does not match its children's"));
        }
        // The child count is not readable through jmt's API; in the encoding it is the u64
        // just before the trailing leaf count.
        let stored_children = bytes
            .len()
            .checked_sub(16)
            .and_then(|start| bytes.get(start..start.saturating_add(8)))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes);
        if bytes.first() != Some(&NODE_TAG_INTERNAL) || stored_children != Some(children) {
            return Err(corrupt("child count does not match its children"));
        }
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_distinguish_empty_from_deleted() {
        for value in [None, Some(&b""[..]), Some(&b"\x00"[..]), Some(&b"abc"[..])] {
            let encoded = encode_value(value);
            assert_eq!(decode_value(&encoded).unwrap().as_deref(), value);
        }
        assert_ne!(encode_value(None), encode_value(Some(b"")));
        assert!(matches!(decode_value(&[]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_value(&[0, 1]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_value(&[7, 1]), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn value_keys_sort_by_key_hash_then_version() {
        let a = KeyHash([1; 32]);
        let b = KeyHash([2; 32]);
        assert!(value_key(a, 300) < value_key(a, 301));
        assert!(value_key(a, 255) < value_key(a, 256));
        assert!(value_key(a, u64::MAX) < value_key(b, 0));
        assert_eq!(value_key_version(&value_key(a, 9), a).unwrap(), Some(9));
        assert_eq!(value_key_version(&value_key(b, 9), a).unwrap(), None);
        assert!(value_key_version(&value_key(a, 9)[..39], a).is_err());
    }

    #[test]
    fn stale_keys_round_trip() {
        let hash = KeyHash([5; 32]);
        let (since, key) = decode_stale_value_key(&stale_value_key(7, hash, 3)).unwrap();
        assert_eq!((since, key), (7, value_key(hash, 3)));
        assert!(decode_stale_value_key(&[0; 47]).is_err());
        assert!(decode_stale_node_key(&[0; 7]).is_err());
    }

    #[test]
    fn malformed_node_keys_are_corrupt() {
        // Version 1, two nibbles in one byte.
        let mut good = Vec::new();
        good.extend_from_slice(&1_u64.to_le_bytes());
        good.extend_from_slice(&2_u64.to_le_bytes());
        good.extend_from_slice(&1_u32.to_le_bytes());
        good.push(0xab);
        let key = decode_node_key(&good).unwrap();
        assert_eq!(key.version(), 1);
        assert_eq!(key.nibble_path().num_nibbles(), 2);
        assert_eq!(encode_node_key(&key).unwrap(), good);

        let mut too_many_nibbles = good.clone();
        too_many_nibbles[8] = 3;
        assert!(matches!(decode_node_key(&too_many_nibbles), Err(StoreError::Corrupt(_))));
        let mut odd_padding = good.clone();
        odd_padding[8] = 1;
        assert!(matches!(decode_node_key(&odd_padding), Err(StoreError::Corrupt(_))));
        let mut huge = good.clone();
        huge[8] = 200;
        assert!(matches!(decode_node_key(&huge), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_node_key(&good[..12]), Err(StoreError::Corrupt(_))));
        let root = decode_node_key(&root_node_key(7)).unwrap();
        assert_eq!((root.version(), root.nibble_path().num_nibbles()), (7, 0));
        let mut trailing = good;
        trailing.push(0);
        assert!(matches!(decode_node_key(&trailing), Err(StoreError::Corrupt(_))));
    }

    /// An internal node as jmt makes it, from a real commit.
    fn internal_node_bytes() -> Vec<u8> {
        use altan_runtime::state::{MemoryStore, State, StateChanges};
        let state = State::new(std::sync::Arc::new(MemoryStore::new()));
        let changes: StateChanges = (0_u8..40).map(|i| (vec![i], Some(vec![i; 3]))).collect();
        let commit = state.prepare(0, &changes).unwrap();
        let root = commit
            .update
            .node_batch
            .nodes()
            .iter()
            .find(|(key, _)| key.nibble_path().num_nibbles() == 0)
            .map(|(_, node)| node.clone())
            .unwrap();
        assert!(matches!(root, Node::Internal(_)));
        encode_node(&root).unwrap()
    }

    #[test]
    fn internal_nodes_with_inconsistent_counts_are_corrupt() {
        let good = internal_node_bytes();
        assert!(decode_node(&good).is_ok());
        let len = good.len();

        let mut wrong_children = good.clone();
        wrong_children[len - 16] ^= 1;
        assert!(matches!(decode_node(&wrong_children), Err(StoreError::Corrupt(_))));

        let mut wrong_leaves = good.clone();
        wrong_leaves[len - 8] ^= 1;
        assert!(matches!(decode_node(&wrong_leaves), Err(StoreError::Corrupt(_))));

        let mut huge_leaves = good.clone();
        huge_leaves[len - 1] = 0xff;
        assert!(matches!(decode_node(&huge_leaves), Err(StoreError::Corrupt(_))));

        assert!(matches!(decode_node(&good[..len - 1]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_node(&[9]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_node(&[]), Err(StoreError::Corrupt(_))));
    }
}
