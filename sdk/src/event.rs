//! Events: typed records a contract emits for clients and indexers.

use alloc::vec::Vec;

use altan_primitives::Hash;
use parity_scale_codec::Encode;

use crate::env;

/// An event type. `#[derive(Event)]` implements it: the first topic is blake3 of the event's
/// name, then one topic per `#[topic]` field; the data is the SCALE encoding of the whole event.
pub trait Event: Encode {
    /// The event's description (name, signature hash, fields and which are topics) as JSON, as
    /// embedded in the contract's `altan.events` custom section.
    const INTERFACE: &'static str;

    /// The event's topics.
    fn topics(&self) -> Vec<Hash>;
}

/// Emits `event`.
pub fn emit<E: Event>(event: &E) {
    env::emit_raw(&event.topics(), &event.encode());
}
