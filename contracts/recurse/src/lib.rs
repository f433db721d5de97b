//! A contract that calls itself: one after another (`fan_out(63)` holds the most contract
//! instances a transaction may, 64, since each call's instance lives until the transaction
//! ends), or one inside the other (`descend`, as deep as the call-depth limit allows). The
//! node's tests use it as an attacker would, to check that free queries of it never take what
//! block execution needs.
#![cfg_attr(target_arch = "wasm32", no_std)]

use altan_sdk::{Lazy, contract, env};

/// The contract's storage: how many times `descend` was called in a transaction.
#[contract]
pub struct Recurse {
    descents: Lazy<u64>,
}

#[contract(reentrant)]
impl Recurse {
    /// Calls itself `depth` times, one frame inside the other, and returns how many of those
    /// calls succeeded.
    pub fn descend(&self, depth: u32) -> u32 {
        if depth == 0 {
            return 0;
        }
        let below = RecurseRef::at(env::self_address()).descend(depth.saturating_sub(1));
        below.map_or(0, |reached| reached.saturating_add(1))
    }

    /// Calls itself `count` times, one call after another, and returns how many succeeded.
    pub fn fan_out(&self, count: u32) -> u32 {
        let this = RecurseRef::at(env::self_address());
        (0..count).filter(|_| this.descend(0).is_ok()).count().try_into().unwrap_or(u32::MAX)
    }

    /// As `descend`, and counts the call in storage (for transactions).
    pub fn descend_and_count(&mut self, depth: u32) -> u32 {
        self.descents.set(&self.descents.get_or_default().saturating_add(1));
        self.descend(depth)
    }
}

#[cfg(test)]
mod tests {
    use altan_sdk::test::TestChain;

    use super::*;

    #[test]
    fn descends_as_deep_as_asked() {
        let chain = TestChain::new();
        let contract = RecurseRef::at(
            chain.deploy(TestChain::account(0), Recurse::CODE, 0, Vec::new()).unwrap(),
        );
        assert_eq!(contract.descend(0), Ok(0));
        assert_eq!(contract.descend(10), Ok(10));
        assert_eq!(contract.descend_and_count(3), Ok(3));
        assert_eq!(contract.fan_out(5), Ok(5));
    }
}
