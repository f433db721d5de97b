//! Several `altan run` processes on loopback forming one chain (see `altan_tests::net`):
//! finality with four validators, crashes of one and of two validators, late joiners catching
//! up, and a contract used through different nodes.
//!
//! Each test starts its own devnet; devnets of one test binary run one at a time, and nextest
//! runs these tests in the `multi-node` group (.config/nextest.toml) for the same reason.

mod contracts;
mod faults;
mod finality;
mod sync;

use std::time::Duration;

use altan_tests::net::Devnet;

/// The longest one wait for finality may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The validators of every test's devnet.
pub const VALIDATORS: usize = 4;

/// A four-validator devnet in `dir`, every validator started.
pub fn start(dir: &std::path::Path) -> Devnet {
    let mut devnet = Devnet::genesis(dir, VALIDATORS, &[]);
    devnet.start_validators();
    devnet
}
