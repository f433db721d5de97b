//! The host, on chain: the `altan_v1` imports, a bump allocator and the panic handler.
#![allow(unsafe_code)]

use alloc::vec;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use altan_primitives::{Address, Balance, Hash, Signature};

mod host {
    #[link(wasm_import_module = "altan_v1")]
    unsafe extern "C" {
        pub fn input_len() -> u32;
        pub fn input_read(ptr: *mut u8);
        pub fn output(ptr: *const u8, len: usize);
        pub fn revert(ptr: *const u8, len: usize) -> !;
        pub fn storage_read(key: *const u8, key_len: usize, out: *mut u8, cap: usize) -> i32;
        pub fn storage_write(key: *const u8, key_len: usize, value: *const u8, value_len: usize);
        pub fn storage_remove(key: *const u8, key_len: usize);
        pub fn caller(out: *mut u8);
        pub fn self_address(out: *mut u8);
        pub fn value(out: *mut u8);
        pub fn balance(address: *const u8, out: *mut u8);
        pub fn block_height() -> u64;
        pub fn block_time() -> u64;
        pub fn chain_id() -> u64;
        pub fn emit_event(topics: *const u8, count: usize, data: *const u8, len: usize);
        pub fn call(to: *const u8, value: *const u8, input: *const u8, len: usize, gas: u64)
        -> u32;
        pub fn return_data_len() -> u32;
        pub fn return_data_read(ptr: *mut u8);
        pub fn transfer(to: *const u8, value: *const u8) -> u32;
        pub fn blake3(ptr: *const u8, len: usize, out: *mut u8);
        pub fn keccak256(ptr: *const u8, len: usize, out: *mut u8);
        pub fn recover(prehash: *const u8, signature: *const u8, out: *mut u8) -> u32;
        pub fn gas_left() -> u64;
    }
}

// SAFETY (for every call below): the host reads and writes exactly the lengths the ABI documents
// (docs/host-abi.md), and every pointer passed here points to a live buffer of at least that size
// in this instance's memory.

pub fn input() -> Vec<u8> {
    let mut buffer = vec![0; unsafe { host::input_len() } as usize];
    unsafe { host::input_read(buffer.as_mut_ptr()) };
    buffer
}

pub fn output(data: &[u8]) {
    unsafe { host::output(data.as_ptr(), data.len()) }
}

pub fn revert(data: &[u8]) -> ! {
    unsafe { host::revert(data.as_ptr(), data.len()) }
}

pub fn storage_read(key: &[u8]) -> Option<Vec<u8>> {
    // Most values are small: one call reads them; a larger one needs a second call.
    let mut buffer = vec![0; 128];
    let len =
        unsafe { host::storage_read(key.as_ptr(), key.len(), buffer.as_mut_ptr(), buffer.len()) };
    let len = usize::try_from(len).ok()?;
    if len > buffer.len() {
        buffer.resize(len, 0);
        unsafe { host::storage_read(key.as_ptr(), key.len(), buffer.as_mut_ptr(), len) };
    }
    buffer.truncate(len);
    Some(buffer)
}

pub fn storage_write(key: &[u8], value: &[u8]) {
    unsafe { host::storage_write(key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
}

pub fn storage_remove(key: &[u8]) {
    unsafe { host::storage_remove(key.as_ptr(), key.len()) }
}

fn address(get: unsafe extern "C" fn(*mut u8)) -> Address {
    let mut out = [0; 20];
    unsafe { get(out.as_mut_ptr()) };
    Address(out)
}

pub fn caller() -> Address {
    address(host::caller)
}

pub fn self_address() -> Address {
    address(host::self_address)
}

pub fn value() -> Balance {
    let mut out = [0; 16];
    unsafe { host::value(out.as_mut_ptr()) };
    Balance::from_le_bytes(out)
}

pub fn balance(of: &Address) -> Balance {
    let mut out = [0; 16];
    unsafe { host::balance(of.0.as_ptr(), out.as_mut_ptr()) };
    Balance::from_le_bytes(out)
}

pub fn block_height() -> u64 {
    unsafe { host::block_height() }
}

pub fn block_time() -> u64 {
    unsafe { host::block_time() }
}

pub fn chain_id() -> u64 {
    unsafe { host::chain_id() }
}

pub fn emit_event(topics: &[Hash], data: &[u8]) {
    unsafe { host::emit_event(topics.as_ptr().cast(), topics.len(), data.as_ptr(), data.len()) }
}

pub fn call(to: &Address, value: Balance, input: &[u8], gas: u64) -> (u32, Vec<u8>) {
    let value = value.to_le_bytes();
    let status =
        unsafe { host::call(to.0.as_ptr(), value.as_ptr(), input.as_ptr(), input.len(), gas) };
    let mut data = vec![0; unsafe { host::return_data_len() } as usize];
    unsafe { host::return_data_read(data.as_mut_ptr()) };
    (status, data)
}

pub fn transfer(to: &Address, value: Balance) -> bool {
    let value = value.to_le_bytes();
    unsafe { host::transfer(to.0.as_ptr(), value.as_ptr()) == 0 }
}

pub fn blake3(data: &[u8]) -> Hash {
    let mut out = [0; 32];
    unsafe { host::blake3(data.as_ptr(), data.len(), out.as_mut_ptr()) };
    Hash(out)
}

pub fn keccak256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    unsafe { host::keccak256(data.as_ptr(), data.len(), out.as_mut_ptr()) };
    out
}

pub fn recover(prehash: &Hash, signature: &Signature) -> Option<Address> {
    let mut out = [0; 20];
    let status =
        unsafe { host::recover(prehash.0.as_ptr(), signature.0.as_ptr(), out.as_mut_ptr()) };
    (status == 0).then_some(Address(out))
}

pub fn gas_left() -> u64 {
    unsafe { host::gas_left() }
}

unsafe extern "C" {
    /// Where the linker ends the stack and static data: the first byte free for the heap.
    static __heap_base: u8;
}

/// A bump allocator: a call lives for microseconds in an instance that is discarded afterwards,
/// so memory is never freed, and allocation is a pointer increment.
struct Bump {
    next: AtomicUsize,
    end: AtomicUsize,
}

const PAGE: usize = 65_536;

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut next = self.next.load(Ordering::Relaxed);
        let mut end = self.end.load(Ordering::Relaxed);
        if end == 0 {
            // First allocation: the heap starts where the linker put its base (after the stack,
            // which comes first so that an overflow traps, and the data), and uses the rest of the
            // initial memory before growing it.
            end = core::arch::wasm32::memory_size(0).saturating_mul(PAGE);
            next = (&raw const __heap_base) as usize;
        }
        let Some(start) = next.checked_next_multiple_of(layout.align()) else {
            return core::ptr::null_mut();
        };
        let Some(stop) = start.checked_add(layout.size()) else { return core::ptr::null_mut() };
        if stop > end {
            let pages = stop.saturating_sub(end).div_ceil(PAGE);
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                return core::ptr::null_mut();
            }
            end = end.saturating_add(pages.saturating_mul(PAGE));
        }
        self.next.store(stop, Ordering::Relaxed);
        self.end.store(end, Ordering::Relaxed);
        start as *mut u8
    }

    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump { next: AtomicUsize::new(0), end: AtomicUsize::new(0) };

/// A panic is a bug in the contract: the call fails with a trap (its changes are undone), which
/// costs no formatting code in every contract.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
