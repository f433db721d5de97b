//! A two-party escrow of native value with an arbiter and a deadline.
//!
//! The buyer deploys the contract with the amount as the deployment's value, naming the seller,
//! an arbiter and a deadline (block time, in ms). The funds then leave exactly once:
//!
//! - [`Escrow::release`] pays the seller; the buyer or the arbiter may call it;
//! - [`Escrow::refund`] returns them to the buyer; the seller or the arbiter may call it at any
//!   time, the buyer once the block time has reached the deadline (so a seller who never
//!   delivers cannot hold the funds forever).
//!
//! The state goes `Funded -> Released` or `Funded -> Refunded` and never back. Settlement pays
//! the amount recorded at deployment; value pushed to the contract by other contracts' transfers
//! (which run no code) is not part of the deal and stays where it is.
#![cfg_attr(target_arch = "wasm32", no_std)]

use altan_sdk::{
    Address, Balance, ContractError, Decode, Encode, Event, Lazy, contract, emit, env,
};

/// The escrow's storage.
#[contract]
pub struct Escrow {
    terms: Lazy<Terms>,
    state: Lazy<State>,
}

/// What the parties agreed at deployment. It never changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Terms {
    /// Who paid, and is refunded.
    pub buyer: Address,
    /// Who is paid on release.
    pub seller: Address,
    /// Who may release or refund at any time.
    pub arbiter: Address,
    /// The amount held.
    pub amount: Balance,
    /// The block time (ms since the Unix epoch) from which the buyer may take a refund.
    pub deadline_ms: u64,
}

/// Where the funds are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub enum State {
    /// Held by the escrow. The constructor always sets the state, so the default is never read
    /// from a deployed escrow.
    #[default]
    Funded,
    /// Paid to the seller.
    Released,
    /// Returned to the buyer.
    Refunded,
}

/// The escrow was funded.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Funded {
    /// The buyer.
    #[topic]
    pub buyer: Address,
    /// The seller.
    #[topic]
    pub seller: Address,
    /// The arbiter.
    #[topic]
    pub arbiter: Address,
    /// The amount held.
    pub amount: Balance,
    /// The buyer's refund deadline (block time, ms).
    pub deadline_ms: u64,
}

/// The funds were paid to the seller.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Released {
    /// Who released them (the buyer or the arbiter).
    #[topic]
    pub by: Address,
    /// The seller, who received them.
    #[topic]
    pub seller: Address,
    /// The amount.
    pub amount: Balance,
}

/// The funds were returned to the buyer.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Refunded {
    /// Who refunded them (the seller, the arbiter, or the buyer after the deadline).
    #[topic]
    pub by: Address,
    /// The buyer, who received them.
    #[topic]
    pub buyer: Address,
    /// The amount.
    pub amount: Balance,
}

/// Why a call was refused. The code of each is its index, starting at 0.
#[derive(Debug, PartialEq, Eq, Encode, Decode, ContractError)]
pub enum Error {
    /// The deployment carried no value.
    #[error("an escrow must be funded with value at deployment")]
    NotFunded,
    /// The seller or the arbiter is the zero address, which nobody controls.
    #[error("the seller and the arbiter cannot be the zero address")]
    ZeroAddress,
    /// The deadline is not after the deployment's block time.
    #[error("the deadline must be after the current block time")]
    DeadlineInPast,
    /// The caller has no say in this action.
    #[error("caller may not do this")]
    NotAuthorized,
    /// The buyer asked for a refund before the deadline.
    #[error("the buyer may not take a refund before the deadline")]
    TooEarly,
    /// The funds were already released or refunded.
    #[error("the escrow is already settled")]
    AlreadySettled,
    /// The escrow holds less than the amount. Only a broken chain could get here: the escrow
    /// is the only one that moves its funds out.
    #[error("the escrow holds less than the amount")]
    InsufficientFunds,
}

#[contract]
impl Escrow {
    /// Holds the value sent with the deployment for `seller`, with the deployer as the buyer.
    #[constructor]
    // A constructor initialises storage through `&mut self`; it cannot return `Self`.
    #[payable]
    pub fn new(
        &mut self,
        seller: Address,
        arbiter: Address,
        deadline_ms: u64,
    ) -> Result<(), Error> {
        let amount = env::value();
        if amount == 0 {
            return Err(Error::NotFunded);
        }
        if seller == Address::ZERO || arbiter == Address::ZERO {
            return Err(Error::ZeroAddress);
        }
        if deadline_ms <= env::block_time() {
            return Err(Error::DeadlineInPast);
        }
        let buyer = env::caller();
        self.terms.set(&Terms { buyer, seller, arbiter, amount, deadline_ms });
        self.state.set(&State::Funded);
        emit(&Funded { buyer, seller, arbiter, amount, deadline_ms });
        Ok(())
    }

    /// Pays the amount to the seller. Only the buyer or the arbiter may.
    pub fn release(&mut self) -> Result<(), Error> {
        let terms = self.terms.get_or_default();
        let by = env::caller();
        if by != terms.buyer && by != terms.arbiter {
            return Err(Error::NotAuthorized);
        }
        self.ensure_funded()?;
        self.settle(State::Released, &terms.seller, terms.amount)?;
        emit(&Released { by, seller: terms.seller, amount: terms.amount });
        Ok(())
    }

    /// Returns the amount to the buyer. The seller or the arbiter may at any time; the buyer once
    /// the block time has reached the deadline.
    pub fn refund(&mut self) -> Result<(), Error> {
        let terms = self.terms.get_or_default();
        let by = env::caller();
        if by != terms.seller && by != terms.arbiter && by != terms.buyer {
            return Err(Error::NotAuthorized);
        }
        self.ensure_funded()?;
        // The arbiter's and seller's rights come first: a buyer who is also the arbiter or the
        // seller needs no deadline.
        if by != terms.seller && by != terms.arbiter && env::block_time() < terms.deadline_ms {
            return Err(Error::TooEarly);
        }
        self.settle(State::Refunded, &terms.buyer, terms.amount)?;
        emit(&Refunded { by, buyer: terms.buyer, amount: terms.amount });
        Ok(())
    }

    /// What the parties agreed.
    pub fn terms(&self) -> Terms {
        self.terms.get_or_default()
    }

    /// Where the funds are.
    pub fn state(&self) -> State {
        self.state.get_or_default()
    }

    fn ensure_funded(&self) -> Result<(), Error> {
        match self.state.get_or_default() {
            State::Funded => Ok(()),
            State::Released | State::Refunded => Err(Error::AlreadySettled),
        }
    }

    /// Records `state`, then pays `amount` to `to`. The caller has checked that the escrow is
    /// still funded.
    fn settle(&mut self, state: State, to: &Address, amount: Balance) -> Result<(), Error> {
        self.state.set(&state);
        env::transfer(to, amount).map_err(|_| Error::InsufficientFunds)
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {

    use altan_sdk::Encode;
    use altan_sdk::test::{self, INITIAL_BALANCE, TestChain};

    use altan_sdk::test::assert_reverts;

    use super::*;

    const AMOUNT: Balance = 5_000;
    /// The block time every test starts at.
    const START_MS: u64 = 1_750_000_000_000;
    /// The deployments' deadline is a day after the start.
    const DAY_MS: u64 = 86_400_000;

    struct Parties {
        buyer: Address,
        seller: Address,
        arbiter: Address,
        stranger: Address,
    }

    fn parties() -> Parties {
        Parties {
            buyer: TestChain::account(1),
            seller: TestChain::account(2),
            arbiter: TestChain::account(3),
            stranger: TestChain::account(9),
        }
    }

    fn new_chain() -> TestChain {
        let chain = TestChain::new();
        chain.set_block(10, START_MS);
        chain
    }

    fn deploy_raw(
        chain: &TestChain,
        value: Balance,
        seller: Address,
        arbiter: Address,
        deadline_ms: u64,
    ) -> Result<Address, test::CallError> {
        let args = (seller, arbiter, deadline_ms);
        chain.deploy(parties().buyer, Escrow::CODE, value, args.encode())
    }

    fn deploy(chain: &TestChain) -> EscrowRef {
        let p = parties();
        let deadline = START_MS + DAY_MS;
        EscrowRef::at(deploy_raw(chain, AMOUNT, p.seller, p.arbiter, deadline).unwrap())
    }

    /// Asserts that the escrow still holds the funds and nobody was paid.
    fn assert_still_funded(chain: &TestChain, escrow: &EscrowRef) {
        let p = parties();
        assert_eq!(escrow.state(), Ok(State::Funded));
        assert_eq!(chain.balance(escrow.address()), AMOUNT);
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE - AMOUNT);
        assert_eq!(chain.balance(p.seller), INITIAL_BALANCE);
    }

    #[test]
    fn error_codes_are_stable() {
        let expected = [
            (Error::NotFunded, 0, "an escrow must be funded with value at deployment"),
            (Error::ZeroAddress, 1, "the seller and the arbiter cannot be the zero address"),
            (Error::DeadlineInPast, 2, "the deadline must be after the current block time"),
            (Error::NotAuthorized, 3, "caller may not do this"),
            (Error::TooEarly, 4, "the buyer may not take a refund before the deadline"),
            (Error::AlreadySettled, 5, "the escrow is already settled"),
            (Error::InsufficientFunds, 6, "the escrow holds less than the amount"),
        ];
        for (error, code, message) in expected {
            assert_eq!((error.code(), error.message().as_str()), (code, message), "{error:?}");
        }
    }

    #[test]
    fn deployment_holds_the_value_and_records_the_terms() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        let terms = Terms {
            buyer: p.buyer,
            seller: p.seller,
            arbiter: p.arbiter,
            amount: AMOUNT,
            deadline_ms: START_MS + DAY_MS,
        };
        assert_eq!(escrow.terms(), Ok(terms));
        assert_still_funded(&chain, &escrow);
        let event: Funded = chain.last_event(escrow.address());
        let expected = Funded {
            buyer: p.buyer,
            seller: p.seller,
            arbiter: p.arbiter,
            amount: AMOUNT,
            deadline_ms: terms.deadline_ms,
        };
        assert_eq!(event, expected);
    }

    #[test]
    fn deployment_without_value_reverts() {
        let chain = new_chain();
        let p = parties();
        let deadline = START_MS + DAY_MS;
        assert_reverts(deploy_raw(&chain, 0, p.seller, p.arbiter, deadline), Error::NotFunded);
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE);
        assert!(chain.events().is_empty());
    }

    #[test]
    fn deployment_with_a_zero_party_reverts_and_returns_the_value() {
        let chain = new_chain();
        let p = parties();
        let deadline = START_MS + DAY_MS;
        let zero_seller = deploy_raw(&chain, AMOUNT, Address::ZERO, p.arbiter, deadline);
        assert_reverts(zero_seller, Error::ZeroAddress);
        let zero_arbiter = deploy_raw(&chain, AMOUNT, p.seller, Address::ZERO, deadline);
        assert_reverts(zero_arbiter, Error::ZeroAddress);
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE);
        assert!(chain.events().is_empty());
    }

    #[test]
    fn deployment_with_a_deadline_not_in_the_future_reverts() {
        let chain = new_chain();
        let p = parties();
        for deadline in [START_MS - 1, START_MS] {
            let result = deploy_raw(&chain, AMOUNT, p.seller, p.arbiter, deadline);
            assert_reverts(result, Error::DeadlineInPast);
        }
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE);
        // One ms later is accepted.
        deploy_raw(&chain, AMOUNT, p.seller, p.arbiter, START_MS + 1).unwrap();
    }

    #[test]
    fn buyer_releases_to_the_seller() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.set_caller(p.buyer);
        escrow.release().unwrap();
        assert_eq!(escrow.state(), Ok(State::Released));
        assert_eq!(chain.balance(escrow.address()), 0);
        assert_eq!(chain.balance(p.seller), INITIAL_BALANCE + AMOUNT);
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE - AMOUNT);
        let event: Released = chain.last_event(escrow.address());
        assert_eq!(event, Released { by: p.buyer, seller: p.seller, amount: AMOUNT });
    }

    #[test]
    fn arbiter_releases_to_the_seller_even_after_the_deadline() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.advance(10, 2 * DAY_MS);
        chain.set_caller(p.arbiter);
        escrow.release().unwrap();
        assert_eq!(escrow.state(), Ok(State::Released));
        assert_eq!(chain.balance(p.seller), INITIAL_BALANCE + AMOUNT);
        assert_eq!(chain.balance(p.arbiter), INITIAL_BALANCE);
        let event: Released = chain.last_event(escrow.address());
        assert_eq!(event, Released { by: p.arbiter, seller: p.seller, amount: AMOUNT });
    }

    #[test]
    fn seller_and_strangers_cannot_release() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        let events = chain.events().len();
        for caller in [p.seller, p.stranger] {
            chain.set_caller(caller);
            assert_reverts(escrow.release(), Error::NotAuthorized);
        }
        assert_still_funded(&chain, &escrow);
        assert_eq!(chain.events().len(), events);
    }

    #[test]
    fn seller_refunds_at_any_time() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.set_caller(p.seller);
        escrow.refund().unwrap();
        assert_eq!(escrow.state(), Ok(State::Refunded));
        assert_eq!(chain.balance(escrow.address()), 0);
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE);
        assert_eq!(chain.balance(p.seller), INITIAL_BALANCE);
        let event: Refunded = chain.last_event(escrow.address());
        assert_eq!(event, Refunded { by: p.seller, buyer: p.buyer, amount: AMOUNT });
    }

    #[test]
    fn arbiter_refunds_before_the_deadline() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.set_caller(p.arbiter);
        escrow.refund().unwrap();
        assert_eq!(escrow.state(), Ok(State::Refunded));
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE);
        let event: Refunded = chain.last_event(escrow.address());
        assert_eq!(event, Refunded { by: p.arbiter, buyer: p.buyer, amount: AMOUNT });
    }

    #[test]
    fn buyer_refund_is_too_early_before_the_deadline_and_allowed_from_it() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        let deadline = START_MS + DAY_MS;
        chain.set_caller(p.buyer);
        assert_reverts(escrow.refund(), Error::TooEarly);
        // One ms before the deadline is still too early.
        chain.set_block(100, deadline - 1);
        assert_reverts(escrow.refund(), Error::TooEarly);
        assert_still_funded(&chain, &escrow);
        // At the deadline exactly, the buyer may take the funds back.
        chain.advance(1, 1);
        escrow.refund().unwrap();
        assert_eq!(escrow.state(), Ok(State::Refunded));
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE);
        assert_eq!(chain.balance(escrow.address()), 0);
        let event: Refunded = chain.last_event(escrow.address());
        assert_eq!(event, Refunded { by: p.buyer, buyer: p.buyer, amount: AMOUNT });
    }

    #[test]
    fn buyer_refunds_long_after_the_deadline() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.advance(1_000, 30 * DAY_MS);
        chain.set_caller(p.buyer);
        escrow.refund().unwrap();
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE);
    }

    #[test]
    fn strangers_cannot_refund_even_after_the_deadline() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.advance(1_000, 30 * DAY_MS);
        chain.set_caller(p.stranger);
        assert_reverts(escrow.refund(), Error::NotAuthorized);
        assert_still_funded(&chain, &escrow);
        assert_eq!(chain.balance(p.stranger), INITIAL_BALANCE);
    }

    #[test]
    fn settling_twice_reverts_and_moves_nothing_more() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.set_caller(p.buyer);
        escrow.release().unwrap();
        let events = chain.events().len();
        assert_reverts(escrow.release(), Error::AlreadySettled);
        for caller in [p.seller, p.arbiter] {
            chain.set_caller(caller);
            assert_reverts(escrow.refund(), Error::AlreadySettled);
        }
        chain.advance(1_000, 30 * DAY_MS);
        chain.set_caller(p.buyer);
        assert_reverts(escrow.refund(), Error::AlreadySettled);
        assert_eq!(escrow.state(), Ok(State::Released));
        assert_eq!(chain.balance(p.seller), INITIAL_BALANCE + AMOUNT);
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE - AMOUNT);
        assert_eq!(chain.events().len(), events);
    }

    #[test]
    fn release_after_refund_reverts() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.set_caller(p.arbiter);
        escrow.refund().unwrap();
        assert_reverts(escrow.release(), Error::AlreadySettled);
        chain.set_caller(p.buyer);
        assert_reverts(escrow.release(), Error::AlreadySettled);
        assert_eq!(escrow.state(), Ok(State::Refunded));
        assert_eq!(chain.balance(p.seller), INITIAL_BALANCE);
        assert_eq!(chain.balance(p.buyer), INITIAL_BALANCE);
    }

    #[test]
    fn missing_funds_revert_the_settlement_and_keep_the_state() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.set_balance(escrow.address(), AMOUNT - 1);
        chain.set_caller(p.buyer);
        assert_reverts(escrow.release(), Error::InsufficientFunds);
        assert_eq!(escrow.state(), Ok(State::Funded));
        assert_eq!(chain.balance(escrow.address()), AMOUNT - 1);
        assert_eq!(chain.balance(p.seller), INITIAL_BALANCE);
    }

    #[test]
    fn settlement_pays_the_recorded_amount_only() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.set_balance(escrow.address(), AMOUNT + 7);
        chain.set_caller(p.buyer);
        escrow.release().unwrap();
        assert_eq!(chain.balance(p.seller), INITIAL_BALANCE + AMOUNT);
        assert_eq!(chain.balance(escrow.address()), 7);
    }

    #[test]
    fn methods_refuse_value() {
        let chain = new_chain();
        let p = parties();
        let escrow = deploy(&chain);
        chain.set_caller(p.buyer);
        let paying = escrow.with_value(1);
        for result in [paying.release(), paying.refund()] {
            let revert = result.unwrap_err().revert().unwrap();
            assert_eq!(revert.code, altan_sdk::codes::NOT_PAYABLE);
        }
        assert_still_funded(&chain, &escrow);
    }
}
