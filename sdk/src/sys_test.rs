//! The host, off chain: every function acts on the thread's [`crate::test::TestChain`] with the
//! chain's limits.

use std::boxed::Box;
use std::vec::Vec;

use altan_primitives::limits::{
    MAX_EVENT_DATA, MAX_INPUT, MAX_OUTPUT, MAX_STORAGE_KEY, MAX_STORAGE_VALUE, MAX_TOPICS,
};
use altan_primitives::{Address, Balance, Event, Hash, Signature};

use crate::test::{self, Failure, RevertSignal};

fn check(ok: bool, what: &'static str) {
    if !ok {
        test::fail(Failure::InvalidHostCall(what));
    }
}

pub fn input() -> Vec<u8> {
    test::with(|s| s.input())
}

pub fn output(data: &[u8]) {
    check(data.len() <= MAX_OUTPUT, "output larger than MAX_OUTPUT");
    test::with(|s| s.set_output(data));
}

pub fn revert(data: &[u8]) -> ! {
    check(data.len() <= MAX_OUTPUT, "revert data larger than MAX_OUTPUT");
    test::with(|s| s.set_output(data));
    std::panic::resume_unwind(Box::new(RevertSignal(data.to_vec())))
}

pub fn storage_read(key: &[u8]) -> Option<Vec<u8>> {
    check(key.len() <= MAX_STORAGE_KEY, "storage key larger than MAX_STORAGE_KEY");
    test::with(|s| {
        let contract = s.contract();
        s.storage().get(&(contract, key.to_vec())).cloned()
    })
}

pub fn storage_write(key: &[u8], value: &[u8]) {
    check(key.len() <= MAX_STORAGE_KEY, "storage key larger than MAX_STORAGE_KEY");
    check(value.len() <= MAX_STORAGE_VALUE, "storage value larger than MAX_STORAGE_VALUE");
    test::with(|s| {
        let contract = s.contract();
        s.storage().insert((contract, key.to_vec()), value.to_vec());
    });
}

pub fn storage_remove(key: &[u8]) {
    check(key.len() <= MAX_STORAGE_KEY, "storage key larger than MAX_STORAGE_KEY");
    test::with(|s| {
        let contract = s.contract();
        s.storage().remove(&(contract, key.to_vec()));
    });
}

pub fn caller() -> Address {
    test::with(|s| s.caller())
}

pub fn self_address() -> Address {
    test::with(|s| s.contract())
}

pub fn value() -> Balance {
    test::with(|s| s.value())
}

pub fn balance(of: &Address) -> Balance {
    test::with(|s| s.balance(of))
}

pub fn block_height() -> u64 {
    test::with(|s| s.block().0)
}

pub fn block_time() -> u64 {
    test::with(|s| s.block().1)
}

pub fn chain_id() -> u64 {
    test::with(|s| s.block().2)
}

pub fn emit_event(topics: &[Hash], data: &[u8]) {
    check(topics.len() <= MAX_TOPICS, "more than MAX_TOPICS topics");
    check(data.len() <= MAX_EVENT_DATA, "event data larger than MAX_EVENT_DATA");
    test::with(|s| {
        let event = Event { contract: s.contract(), topics: topics.to_vec(), data: data.to_vec() };
        s.push_event(event);
    });
}

pub fn call(to: &Address, value: Balance, input: &[u8], _gas: u64) -> (u32, Vec<u8>) {
    check(input.len() <= MAX_INPUT, "call input larger than MAX_INPUT");
    test::call(to, value, input)
}

pub fn transfer(to: &Address, value: Balance) -> bool {
    test::with(|s| {
        let from = s.contract();
        s.move_value(&from, to, value)
    })
}

pub fn blake3(data: &[u8]) -> Hash {
    altan_primitives::blake3(data)
}

pub fn keccak256(data: &[u8]) -> [u8; 32] {
    altan_primitives::keccak256(data)
}

pub fn recover(prehash: &Hash, signature: &Signature) -> Option<Address> {
    signature.recover_address(prehash).ok()
}

pub fn gas_left() -> u64 {
    u64::MAX
}
