//! Typed contract storage, read and written one key at a time.
//!
//! Each field of a contract's storage struct gets a distinct key prefix (`#[contract]` assigns
//! one byte per field, in declaration order). A [`Lazy`] stores its value under its prefix; a
//! [`Mapping`] stores each entry under the prefix followed by the SCALE encoding of the entry's
//! key (or its blake3 hash, when that would exceed the chain's key limit). Nothing is read until
//! asked for, and a call that touches one entry of a large map reads and writes that entry only.
//!
//! Writing takes `&mut self`, so a contract method that takes `&self` cannot write storage: the
//! compiler checks that read-only methods are read-only.

use alloc::vec::Vec;
use core::marker::PhantomData;

use altan_primitives::limits::MAX_STORAGE_KEY;
use parity_scale_codec::{Decode, DecodeAll, Encode};

use crate::env;

fn decode<T: Decode>(bytes: &[u8]) -> T {
    // Only this contract writes its storage, always with the same types; bytes that do not
    // decode mean the contract is broken, and the call fails as a trap.
    T::decode_all(&mut &bytes[..]).unwrap_or_else(|_| panic!("storage value does not decode"))
}

/// A single value in storage.
pub struct Lazy<T> {
    key: &'static [u8],
    _value: PhantomData<T>,
}

impl<T: Encode + Decode> Lazy<T> {
    /// The value stored under `key`.
    pub const fn new(key: &'static [u8]) -> Self {
        Lazy { key, _value: PhantomData }
    }

    /// The value, if set.
    pub fn get(&self) -> Option<T> {
        env::storage_get(self.key).map(|bytes| decode(&bytes))
    }

    /// The value, or `T::default()` if unset.
    pub fn get_or_default(&self) -> T
    where
        T: Default,
    {
        self.get().unwrap_or_default()
    }

    /// Sets the value.
    pub fn set(&mut self, value: &T) {
        env::storage_set(self.key, &value.encode());
    }

    /// Removes the value.
    pub fn clear(&mut self) {
        env::storage_remove(self.key);
    }
}

/// A map in storage whose entries are read and written one at a time.
pub struct Mapping<K, V> {
    prefix: &'static [u8],
    _entries: PhantomData<(K, V)>,
}

impl<K: Encode, V: Encode + Decode> Mapping<K, V> {
    /// The map whose entries' keys start with `prefix`.
    pub const fn new(prefix: &'static [u8]) -> Self {
        Mapping { prefix, _entries: PhantomData }
    }

    fn key(&self, key: &K) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.prefix.len().saturating_add(key.size_hint()));
        full.extend_from_slice(self.prefix);
        key.encode_to(&mut full);
        if full.len() > MAX_STORAGE_KEY {
            full.truncate(self.prefix.len());
            full.extend_from_slice(env::blake3(&key.encode()).as_bytes());
        }
        full
    }

    /// The entry for `key`, if any.
    pub fn get(&self, key: &K) -> Option<V> {
        env::storage_get(&self.key(key)).map(|bytes| decode(&bytes))
    }

    /// The entry for `key`, or `V::default()`.
    pub fn get_or_default(&self, key: &K) -> V
    where
        V: Default,
    {
        self.get(key).unwrap_or_default()
    }

    /// Whether `key` has an entry.
    pub fn contains(&self, key: &K) -> bool {
        env::storage_get(&self.key(key)).is_some()
    }

    /// Sets the entry for `key`.
    pub fn insert(&mut self, key: &K, value: &V) {
        env::storage_set(&self.key(key), &value.encode());
    }

    /// Removes the entry for `key`.
    pub fn remove(&mut self, key: &K) {
        env::storage_remove(&self.key(key));
    }
}
