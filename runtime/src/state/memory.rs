//! The in-memory [`StateStore`]: for tests, simulations and benchmarks of the pure crates.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use altan_primitives::Hash;

use super::{
    KeyHash, PruneStats, StateCommit, StateStore, StoreError, Version, check_next_version,
};

#[derive(Default)]
struct Inner {
    /// Every value by key hash and the version that wrote it; `None` records a deletion.
    values: BTreeMap<(KeyHash, Version), Option<Vec<u8>>>,
    roots: BTreeMap<Version, Hash>,
    /// `(superseded at, key hash, version of the superseded value)`; a tombstone is filed as
    /// superseded at its own version.
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
        // Commit and prune validate before they mutate, so a panic under the lock cannot leave
        // `Inner` half-written, and a poisoned lock's data is still consistent.
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The number of stored value entries (all versions, deletions included).
    pub fn value_count(&self) -> usize {
        self.read().values.len()
    }
}

/// The newest entry of `key` at or below `version` (a deletion is `Some(None)`).
fn newest_at(
    values: &BTreeMap<(KeyHash, Version), Option<Vec<u8>>>,
    key: KeyHash,
    version: Version,
) -> Option<&Option<Vec<u8>>> {
    values.range((key, 0)..=(key, version)).next_back().map(|(_, value)| value)
}

impl StateStore for MemoryStore {
    fn latest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.read().latest)
    }

    fn oldest_version(&self) -> Result<Option<Version>, StoreError> {
        Ok(self.read().oldest)
    }

    fn root(&self, version: Version) -> Result<Option<Hash>, StoreError> {
        Ok(self.read().roots.get(&version).copied())
    }

    fn get(&self, key: &KeyHash, version: Version) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(newest_at(&self.read().values, *key, version).and_then(Option::clone))
    }

    fn scan(
        &self,
        version: Version,
        visit: &mut dyn FnMut(&KeyHash, Version, &[u8]),
    ) -> Result<(), StoreError> {
        let inner = self.read();
        let mut current: Option<(KeyHash, Version, Option<&[u8]>)> = None;
        for (&(key, written), value) in &inner.values {
            if written > version {
                continue;
            }
            if let Some((previous, at, Some(value))) = current.filter(|(k, _, _)| *k != key) {
                visit(&previous, at, value);
            }
            current = Some((key, written, value.as_deref()));
        }
        if let Some((key, at, Some(value))) = current {
            visit(&key, at, value);
        }
        Ok(())
    }

    fn commit(&self, commit: &StateCommit) -> Result<(), StoreError> {
        let mut inner = self.write();
        check_next_version(inner.latest, commit.version())?;
        let version = commit.version();
        for write in commit.stored_writes() {
            for stale in write.stale() {
                inner.stale_values.insert((version, *write.key, stale));
            }
            inner.values.insert((*write.key, version), write.value.map(<[u8]>::to_vec));
        }
        inner.roots.insert(commit.version(), commit.root());
        inner.latest = Some(commit.version());
        inner.oldest.get_or_insert(commit.version());
        Ok(())
    }

    fn prune(&self, keep_from: Version) -> Result<PruneStats, StoreError> {
        let mut inner = self.write();
        let Some(latest) = inner.latest else { return Ok(PruneStats::default()) };
        let keep_from = keep_from.min(latest);
        let mut stats = PruneStats::default();
        while let Some(&(since, key, version)) = inner.stale_values.first() {
            if since > keep_from {
                break;
            }
            inner.stale_values.remove(&(since, key, version));
            if inner.values.remove(&(key, version)).is_some() {
                stats.values = stats.values.saturating_add(1);
            }
        }
        let kept_roots = inner.roots.split_off(&keep_from);
        stats.roots = inner.roots.len() as u64;
        inner.roots = kept_roots;
        inner.oldest = Some(inner.oldest.map_or(keep_from, |oldest| oldest.max(keep_from)));
        Ok(stats)
    }
}
