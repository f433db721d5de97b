//! Uncommitted writes on top of a committed version, with nested checkpoints so that a reverted
//! call undoes exactly its own writes.

use std::collections::HashMap;
use std::sync::Arc;

use super::{StateChanges, StateRead, StoreError};

/// An undo record: the key's entry in `writes` before a write (`None`: it had none).
struct Undo {
    key: Vec<u8>,
    previous: Option<Option<Vec<u8>>>,
}

/// Writes over a base version. Reads see the writes first. [`Overlay::checkpoint`] and
/// [`Overlay::revert_to`] give call frames and transactions their rollback.
pub struct Overlay {
    base: Arc<dyn StateRead>,
    writes: StateChanges,
    /// Values read from the base, so that a key read many times in a block is fetched once.
    cache: HashMap<Vec<u8>, Option<Vec<u8>>>,
    journal: Vec<Undo>,
}

/// A point to roll back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint(usize);

impl Overlay {
    /// An empty overlay over `base`.
    pub fn new(base: Arc<dyn StateRead>) -> Overlay {
        Overlay { base, writes: StateChanges::new(), cache: HashMap::new(), journal: Vec::new() }
    }

    /// The value of `key` as the writes so far leave it.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.writes.get(key) {
            return Ok(value.clone());
        }
        if let Some(value) = self.cache.get(key) {
            return Ok(value.clone());
        }
        let value = self.base.get(key)?;
        self.cache.insert(key.to_vec(), value.clone());
        Ok(value)
    }

    /// Sets `key` to `value` (`None` deletes it).
    pub fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let previous = self.writes.insert(key.clone(), value);
        self.journal.push(Undo { key, previous });
    }

    /// Marks the current point; [`Overlay::revert_to`] undoes every write after it.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.journal.len())
    }

    /// Undoes every write made after `checkpoint`.
    pub fn revert_to(&mut self, checkpoint: Checkpoint) {
        while self.journal.len() > checkpoint.0 {
            let Some(undo) = self.journal.pop() else { break };
            match undo.previous {
                Some(previous) => self.writes.insert(undo.key, previous),
                None => self.writes.remove(&undo.key),
            };
        }
    }

    /// Forgets undo records: writes so far can no longer be reverted. Called between
    /// transactions so that the journal does not grow with the block.
    pub fn seal(&mut self) {
        self.journal.clear();
    }

    /// The writes, for [`super::State::prepare`].
    pub fn changes(&self) -> &StateChanges {
        &self.writes
    }

    /// Consumes the overlay, returning its writes.
    pub fn into_changes(self) -> StateChanges {
        self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Base;
    impl StateRead for Base {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok((key == b"base").then(|| b"v0".to_vec()))
        }
    }

    #[test]
    fn nested_checkpoints_revert_only_their_writes() {
        let mut overlay = Overlay::new(Arc::new(Base));
        overlay.set(b"a".to_vec(), Some(b"1".to_vec()));
        let outer = overlay.checkpoint();
        overlay.set(b"a".to_vec(), Some(b"2".to_vec()));
        overlay.set(b"base".to_vec(), None);
        let inner = overlay.checkpoint();
        overlay.set(b"b".to_vec(), Some(b"3".to_vec()));
        overlay.revert_to(inner);
        assert_eq!(overlay.get(b"b").unwrap(), None);
        assert_eq!(overlay.get(b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(overlay.get(b"base").unwrap(), None);
        overlay.revert_to(outer);
        assert_eq!(overlay.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(overlay.get(b"base").unwrap(), Some(b"v0".to_vec()));
        assert_eq!(overlay.changes().len(), 1);
    }
}
