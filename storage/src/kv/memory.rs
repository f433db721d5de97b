//! A database in memory that keeps rocksdb's crash promise and no more, for simulations.
//!
//! rocksdb promises, with its default point-in-time recovery: a write batch is atomic; once a
//! synced write returns, it and every write before it survive a power loss; writes that were
//! not synced survive a crash of the process (they reached the operating system) but a power
//! loss keeps only some prefix of them, in order. A [`MemoryDisk`] is exactly that: the batches
//! since the last synced one are kept apart, and [`MemoryDisk::power_loss`] keeps as many of
//! them as the caller (a simulation's seeded generator) says. Column families, once created,
//! survive.
//!
//! A crash ends the process that had the disk open: the databases opened on it before
//! [`MemoryDisk::crash`] or [`MemoryDisk::power_loss`] fail every later call, as a dead
//! process does nothing more, and the node restarts by opening the disk again.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use altan_runtime::state::StoreError;

use super::{Batch, Cf, OpKind, OpenKv, Visit};

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone, Default)]
struct Tables {
    names: Vec<String>,
    tables: Vec<Table>,
}

impl Tables {
    fn apply(&mut self, batch: &Batch) {
        for (kind, cf, key, value) in batch.iter() {
            let Some(table) = self.tables.get_mut(usize::from(cf.0)) else { continue };
            match kind {
                OpKind::Put => {
                    table.insert(key.to_vec(), value.to_vec());
                }
                OpKind::Delete => {
                    table.remove(key);
                }
                OpKind::DeleteRange if key < value => {
                    let doomed: Vec<Vec<u8>> = table
                        .range::<[u8], _>((Bound::Included(key), Bound::Excluded(value)))
                        .map(|(key, _)| key.clone())
                        .collect();
                    for key in doomed {
                        table.remove(&key);
                    }
                }
                OpKind::DeleteRange => {}
            }
        }
    }
}

#[derive(Debug, Default)]
struct DiskState {
    /// What reads see: every batch written.
    live: Tables,
    /// What a power loss keeps for sure, when it differs from `live`: everything up to the
    /// last synced batch.
    durable: Option<Tables>,
    /// The batches written since the last synced one, in order.
    unsynced: Vec<Batch>,
    /// Counts crashes: a database opened before the last one is dead.
    generation: u64,
}

/// A simulated disk holding one database: cheap to clone (the clones share it), kept by a
/// simulation across the restarts of the node that uses it.
#[derive(Debug, Clone, Default)]
pub struct MemoryDisk {
    state: Arc<Mutex<DiskState>>,
}

impl MemoryDisk {
    /// An empty disk.
    pub fn new() -> MemoryDisk {
        MemoryDisk::default()
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The process using the disk died: every write it made survives (it reached the
    /// operating system), and the databases it had open fail from now on.
    pub fn crash(&self) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
    }

    /// The machine lost power: every synced write survives with all before it; of the writes
    /// since the last synced one, the first `keep(n)` of the `n` survive (capped at `n`) and
    /// the rest are gone. Ends the process as [`MemoryDisk::crash`] does. Returns how many
    /// writes were lost.
    pub fn power_loss(&self, keep: impl FnOnce(usize) -> usize) -> usize {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        let unsynced = std::mem::take(&mut state.unsynced);
        let Some(mut durable) = state.durable.take() else { return 0 };
        let kept = keep(unsynced.len()).min(unsynced.len());
        for batch in unsynced.iter().take(kept) {
            durable.apply(batch);
        }
        state.live = durable;
        unsynced.len().saturating_sub(kept)
    }

    /// How many writes a power loss now could lose.
    pub fn unsynced_writes(&self) -> usize {
        self.lock().unsynced.len()
    }
}

/// A database open on a [`MemoryDisk`].
pub(crate) struct MemoryKv {
    disk: MemoryDisk,
    generation: u64,
    names: Vec<String>,
    sync_writes: bool,
}

impl MemoryKv {
    pub(crate) fn open(disk: &MemoryDisk, open: &OpenKv<'_>) -> Result<MemoryKv, StoreError> {
        let mut guard = disk.lock();
        let state = &mut *guard;
        if state.live.names.is_empty() && !open.create_if_missing {
            return Err(StoreError::Backend("the memory disk holds no database".into()));
        }
        for family in open.families {
            if !state.live.names.contains(&family.name) {
                // Creating a family is durable at once, as rocksdb's manifest is.
                let tables = [Some(&mut state.live), state.durable.as_mut()];
                for tables in tables.into_iter().flatten() {
                    tables.names.push(family.name.clone());
                    tables.tables.push(Table::new());
                }
            }
        }
        if state.live.names.len() > usize::from(u8::MAX) {
            return Err(StoreError::Backend("too many column families".into()));
        }
        Ok(MemoryKv {
            disk: disk.clone(),
            generation: guard.generation,
            names: guard.live.names.clone(),
            sync_writes: open.sync_writes,
        })
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The disk's state, if this database's process is still alive.
    fn alive(&self) -> Result<MutexGuard<'_, DiskState>, StoreError> {
        let state = self.disk.lock();
        if state.generation != self.generation {
            return Err(StoreError::Backend(
                "the memory disk crashed since this database was opened".into(),
            ));
        }
        Ok(state)
    }

    fn table(state: &DiskState, cf: Cf) -> Result<&Table, StoreError> {
        state
            .live
            .tables
            .get(usize::from(cf.0))
            .ok_or_else(|| StoreError::Backend(format!("no column family #{}", cf.0)))
    }

    pub(crate) fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let state = self.alive()?;
        Ok(Self::table(&state, cf)?.get(key).cloned())
    }

    pub(crate) fn contains_many(&self, cf: Cf, keys: &[&[u8]]) -> Result<Vec<bool>, StoreError> {
        let state = self.alive()?;
        let table = Self::table(&state, cf)?;
        Ok(keys.iter().map(|key| table.contains_key(*key)).collect())
    }

    pub(crate) fn seek_for_prev<T>(
        &self,
        cf: Cf,
        key: &[u8],
        read: impl FnOnce(Option<(&[u8], &[u8])>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let state = self.alive()?;
        let table = Self::table(&state, cf)?;
        let found = table.range::<[u8], _>((Bound::Unbounded, Bound::Included(key))).next_back();
        read(found.map(|(key, value)| (key.as_slice(), value.as_slice())))
    }

    pub(crate) fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        let state = self.alive()?;
        let table = Self::table(&state, cf)?;
        for (key, value) in table.range::<[u8], _>((Bound::Included(from), Bound::Unbounded)) {
            if !visit(key, value)? {
                break;
            }
        }
        Ok(())
    }

    pub(crate) fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut state = self.alive()?;
        let state = &mut *state;
        if self.sync_writes {
            // Everything before a synced write is durable with it: all that is live.
            state.durable = None;
            state.unsynced.clear();
        } else {
            if state.durable.is_none() {
                state.durable = Some(state.live.clone());
            }
            state.unsynced.push(batch.clone());
        }
        state.live.apply(batch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Family, Kv};

    fn open(disk: &MemoryDisk, sync_writes: bool) -> Kv {
        let families = [Family { name: "f".into(), seek_prefix: None }];
        let open =
            OpenKv { families: &families, create_if_missing: true, sync_writes, cache_bytes: 0 };
        Kv::open_memory(disk, &open).unwrap()
    }

    fn put(kv: &Kv, key: &[u8], value: &[u8]) {
        let mut batch = Batch::default();
        batch.put(kv.cf("f").unwrap(), key, value);
        kv.write(&batch).unwrap();
    }

    fn keys(kv: &Kv) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        kv.scan(kv.cf("f").unwrap(), &[], crate::kv::Scan::Short, &mut |key, _| {
            keys.push(key.to_vec());
            Ok(true)
        })
        .unwrap();
        keys
    }

    #[test]
    fn a_power_loss_keeps_synced_writes_and_a_chosen_prefix_of_the_rest() {
        // (unsynced writes after the synced ones, how many the power loss keeps, keys left)
        let table: [(usize, usize, &[&[u8]]); 4] = [
            (0, 0, &[b"s0", b"s1"]),
            (3, 0, &[b"s0", b"s1"]),
            (3, 2, &[b"s0", b"s1", b"u0", b"u1"]),
            (3, 9, &[b"s0", b"s1", b"u0", b"u1", b"u2"]),
        ];
        for (unsynced, keep, expected) in table {
            let disk = MemoryDisk::new();
            let synced = open(&disk, true);
            put(&synced, b"s0", b"v");
            put(&synced, b"s1", b"v");
            drop(synced);
            let unsynced_kv = open(&disk, false);
            for i in 0..unsynced {
                put(&unsynced_kv, format!("u{i}").as_bytes(), b"v");
            }
            assert_eq!(disk.unsynced_writes(), unsynced);
            let lost = disk.power_loss(|n| {
                assert_eq!(n, unsynced);
                keep
            });
            assert_eq!(lost, unsynced.saturating_sub(keep));
            // The process that had the disk open is dead.
            assert!(unsynced_kv.get(unsynced_kv.cf("f").unwrap(), b"s0").is_err());
            let reopened = open(&disk, true);
            assert_eq!(keys(&reopened), expected, "{unsynced} unsynced, {keep} kept");
        }
    }

    #[test]
    fn a_synced_write_makes_everything_before_it_durable() {
        let disk = MemoryDisk::new();
        let unsynced = open(&disk, false);
        put(&unsynced, b"a", b"1");
        drop(unsynced);
        let synced = open(&disk, true);
        put(&synced, b"b", b"2");
        assert_eq!(disk.unsynced_writes(), 0);
        assert_eq!(disk.power_loss(|_| 0), 0);
        assert_eq!(keys(&open(&disk, true)), [b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn a_crash_of_the_process_keeps_every_write() {
        let disk = MemoryDisk::new();
        let kv = open(&disk, false);
        put(&kv, b"a", b"1");
        disk.crash();
        assert!(kv.write(&Batch::default()).is_err());
        assert_eq!(keys(&open(&disk, false)), [b"a".to_vec()]);
    }

    #[test]
    fn batches_apply_whole_with_deletes_and_ranges_in_order() {
        let disk = MemoryDisk::new();
        let kv = open(&disk, false);
        let f = kv.cf("f").unwrap();
        let mut batch = Batch::default();
        for key in [b"a", b"b", b"c", b"d"] {
            batch.put(f, key, b"v");
        }
        batch.delete(f, b"a");
        batch.delete_range(f, b"b", b"d");
        batch.put(f, b"c", b"again");
        // A range whose end is not after its start deletes nothing.
        batch.delete_range(f, b"d", b"a");
        kv.write(&batch).unwrap();
        assert_eq!(keys(&kv), [b"c".to_vec(), b"d".to_vec()]);
        assert_eq!(kv.get(f, b"c").unwrap(), Some(b"again".to_vec()));
        disk.power_loss(|_| 0);
        assert!(keys(&open(&disk, false)).is_empty(), "the one unsynced batch is lost whole");
        let kv = open(&disk, false);
        let found = kv.seek_for_prev(f, b"zz", |found| Ok(found.map(|(k, _)| k.to_vec()))).unwrap();
        assert_eq!(found, None);
    }
}
