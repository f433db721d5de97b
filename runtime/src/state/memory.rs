//! The in-memory [`StateStore`]: for tests, simulations and benchmarks of the pure crates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use jmt::storage::{LeafNode, Node, NodeKey, StaleNodeIndex, TreeReader};
use jmt::{KeyHash, OwnedValue};

use super::{PruneStats, StateCommit, StateStore, StoreError, Version, check_next_version};

#[derive(Default)]
struct Inner {
    nodes: HashMap<NodeKey, Node>,
    /// Every value by key hash and the version that wrote it; `None` records a deletion.
    values: BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
    stale_nodes: BTreeSet<StaleNodeIndex>,
    /// `(superseded at, key hash, version of the superseded value)`.
    stale_values: BTreeSet<(Version, KeyHash, Version)>,
    latest: Option<Version>,
    oldest: Option<Version>,
}

/// A [`StateStore`] in memory. Commits are atomic because they happen under one write lock.
#[derive(Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-written: commit validates
        // before it mutates. So a poisoned lock's data is still consistent.
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The number of tree nodes held, to observe pruning.
    pub fn node_count(&self) -> usize {
        self.read().nodes.len()
    }
}

fn latest_value_at(
    values: &BTreeMap<(KeyHash, Version), Option<OwnedValue>>,
    key_hash: KeyHash,
    max_version: Version,
) -> Option<(&(KeyHash, Version), &Option<OwnedValue>)> {
    values.range((key_hash, 0)..=(key_hash, max_version)).next_back()
}

impl TreeReader for MemoryStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.read().nodes.get(node_key).cloned())
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(latest_value_at(&self.read().values, key_hash, max_version)
            .and_then(|(_, value)| value.clone()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        let inner = self.read();
        let rightmost = inner
            .nodes
            .iter()
            .filter_map(|(key, node)| match node {
                Node::Leaf(leaf) => Some((key, leaf)),
                _ => None,
            })
            .max_by_key(|(_, leaf)| leaf.key_hash());
        Ok(rightmost.map(|(key, leaf)| (key.clone(), leaf.clone())))
    }
}

impl StateStore for MemoryStore {
    fn latest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.read().latest)
    }

    fn oldest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.read().oldest)
    }

    fn commit(&self, commit: &StateCommit) -> Result<(), StoreError> {
        let mut inner = self.write();
        check_next_version(inner.latest, commit.version)?;
        let batch = &commit.update.node_batch;
        for (&(version, key_hash), value) in batch.values() {
            let previous = latest_value_at(&inner.values, key_hash, version)
                .map(|(&(_, previous), _)| previous)
                .filter(|&previous| previous < version);
            if let Some(previous) = previous {
                inner.stale_values.insert((version, key_hash, previous));
            }
            inner.values.insert((key_hash, version), value.clone());
        }
        for (key, node) in batch.nodes() {
            inner.nodes.insert(key.clone(), node.clone());
        }
        inner.stale_nodes.extend(commit.update.stale_node_index_batch.iter().cloned());
        inner.latest = Some(commit.version);
        inner.oldest.get_or_insert(commit.version);
        Ok(())
    }

    fn prune(&self, keep_from: Version) -> Result<PruneStats, StoreError> {
        let mut inner = self.write();
        let Some(latest) = inner.latest else { return Ok(PruneStats::default()) };
        let keep_from = keep_from.min(latest);
        let mut stats = PruneStats::default();
        while let Some(index) = inner.stale_nodes.first().cloned() {
            if index.stale_since_version > keep_from {
                break;
            }
            inner.stale_nodes.remove(&index);
            if inner.nodes.remove(&index.node_key).is_some() {
                stats.nodes = stats.nodes.saturating_add(1);
            }
        }
        while let Some(&(since, key_hash, version)) = inner.stale_values.first() {
            if since > keep_from {
                break;
            }
            inner.stale_values.remove(&(since, key_hash, version));
            if inner.values.remove(&(key_hash, version)).is_some() {
                stats.values = stats.values.saturating_add(1);
            }
        }
        inner.oldest = Some(inner.oldest.map_or(keep_from, |oldest| oldest.max(keep_from)));
        Ok(stats)
    }
}
