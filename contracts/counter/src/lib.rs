//! The smallest Altan contract: a counter that anyone can increment, and that its owner can reset.
#![cfg_attr(target_arch = "wasm32", no_std)]

use altan_sdk::{Address, ContractError, Decode, Encode, Event, Lazy, contract, emit, env};

/// The contract's storage.
#[contract]
pub struct Counter {
    value: Lazy<u64>,
    owner: Lazy<Address>,
}

/// Emitted on every change.
#[derive(Encode, Decode, Event)]
pub struct Changed {
    /// Who changed it.
    #[topic]
    pub by: Address,
    /// The new value.
    pub value: u64,
}

/// Why a call was refused.
#[derive(Debug, PartialEq, Eq, Encode, Decode, ContractError)]
pub enum Error {
    /// Only the owner may reset.
    #[error("only the owner may reset the counter")]
    NotOwner,
}

#[contract]
impl Counter {
    /// Starts at `start`, owned by the deployer.
    #[constructor]
    pub fn new(&mut self, start: u64) {
        self.value.set(&start);
        self.owner.set(&env::caller());
    }

    /// Adds `by` and returns the new value (wrapping is refused: it reverts on overflow).
    pub fn increment(&mut self, by: u64) -> u64 {
        let value =
            self.value.get_or_default().checked_add(by).unwrap_or_else(|| panic!("overflow"));
        self.value.set(&value);
        emit(&Changed { by: env::caller(), value });
        value
    }

    /// Sets the counter back to zero.
    pub fn reset(&mut self) -> Result<(), Error> {
        if self.owner.get() != Some(env::caller()) {
            return Err(Error::NotOwner);
        }
        self.value.set(&0);
        emit(&Changed { by: env::caller(), value: 0 });
        Ok(())
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.get_or_default()
    }
}

#[cfg(test)]
mod tests {
    use altan_sdk::Encode;
    use altan_sdk::test::{CallError, TestChain};

    use super::*;

    #[test]
    fn counts_resets_and_refuses_strangers() {
        let chain = TestChain::new();
        let (owner, stranger) = (TestChain::account(0), TestChain::account(1));
        let counter =
            CounterRef::at(chain.deploy(owner, Counter::CODE, 0, (5u64,).encode()).unwrap());
        assert_eq!(counter.get(), Ok(5));
        chain.set_caller(stranger);
        assert_eq!(counter.increment(3), Ok(8));
        assert_eq!(chain.events().len(), 1);
        let refused = counter.reset().unwrap_err();
        assert_eq!(refused.revert().map(|r| r.code), Some(0));
        chain.set_caller(owner);
        assert_eq!(counter.reset(), Ok(()));
        assert_eq!(counter.get(), Ok(0));
        // Value sent to a method that is not payable reverts.
        let input = altan_sdk::call_input(altan_sdk::selector("get"), &());
        assert!(matches!(
            chain.call(owner, counter.address(), 1, input),
            Err(CallError::Reverted(_))
        ));
    }
}
