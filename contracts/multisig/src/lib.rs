//! An m-of-n wallet: a fixed set of owners holds native value, and any action the wallet takes (a
//! native transfer, or a call to another contract with value attached) is proposed by one owner
//! and executed once `threshold` owners have confirmed it.
//!
//! A proposal's action (destination, value, call input) is written once; its status (the count
//! of confirmations and whether it has run) is a separate small entry, so confirming a proposal
//! with a large call input does not rewrite that input. The owners and the threshold are fixed at
//! deployment: the wallet cannot call itself (the chain refuses reentry into a contract that is
//! on the call stack), so it has no self-governance.
//!
//! Executing a call records its outcome instead of reverting: a callee that reverts or fails
//! leaves the proposal executed and failed, and the owners propose again if they wish. So that
//! no single owner can make a confirmed call fail by executing it with too little gas, the gas
//! the callee gets is part of the proposal, which the owners confirm (as Gnosis Safe's
//! `safeTxGas`): execution reverts with [`Error::NotEnoughGas`], leaving the proposal pending,
//! unless at least that gas plus [`EXECUTION_RESERVE_GAS`] (kept to record the outcome) is left,
//! and otherwise gives the callee exactly that gas. A call that fails with it fails genuinely,
//! and is recorded as failed.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::vec::Vec;

use altan_sdk::{
    Address, Balance, ContractError, Decode, Encode, Event, Lazy, Mapping, contract, emit, env,
};

/// The most owners a wallet may have: every owner is checked at deployment and listed whole by
/// [`Multisig::owners`].
pub const MAX_OWNERS: usize = 32;

/// The largest call input a proposal may carry, in bytes (well under the chain's storage value
/// and call input limits).
pub const MAX_PROPOSAL_INPUT: usize = 16 * 1024;

/// The gas [`Multisig::execute`] needs left on top of the gas it gives a call: it pays for the
/// call itself (including copying the input, up to [`MAX_PROPOSAL_INPUT`] bytes) and for
/// recording the outcome and emitting [`Executed`] afterwards (one storage write and one event).
pub const EXECUTION_RESERVE_GAS: u64 = 30_000;

/// The wallet's storage.
#[contract]
pub struct Multisig {
    owners: Lazy<Vec<Address>>,
    is_owner: Mapping<Address, bool>,
    threshold: Lazy<u32>,
    next_id: Lazy<u64>,
    actions: Mapping<u64, Action>,
    statuses: Mapping<u64, Status>,
    confirmed: Mapping<(u64, Address), bool>,
}

/// What a proposal does when executed. It never changes once proposed.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Action {
    /// The owner who proposed it.
    pub proposer: Address,
    /// The recipient of the transfer, or the contract to call.
    pub to: Address,
    /// The native value sent.
    pub value: Balance,
    /// The raw call input (selector and encoded arguments); empty for a plain transfer.
    pub input: Vec<u8>,
    /// The gas the call is given: execution reverts unless it can give exactly this much. 0 for
    /// a plain transfer, which runs no code.
    pub gas: u64,
}

/// Whether a proposal has run, and how it went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Outcome {
    /// Not executed yet.
    Pending,
    /// Executed: the transfer was made or the call succeeded.
    Succeeded,
    /// Executed: the call reverted or failed, and its effects were undone.
    Failed,
}

/// The mutable part of a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Status {
    /// How many owners confirm it now.
    pub confirmations: u32,
    /// Whether it has run.
    pub outcome: Outcome,
}

/// A proposal as [`Multisig::proposal`] returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Proposal {
    /// What it does.
    pub action: Action,
    /// Where it stands.
    pub status: Status,
}

/// Native value was deposited through [`Multisig::deposit`].
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Deposited {
    /// Who sent it.
    #[topic]
    pub from: Address,
    /// How much.
    pub value: Balance,
}

/// An owner proposed an action (a [`Confirmed`] for the proposer follows).
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Proposed {
    /// The proposal's id.
    #[topic]
    pub id: u64,
    /// The proposer.
    #[topic]
    pub proposer: Address,
    /// The recipient or contract called.
    #[topic]
    pub to: Address,
    /// The native value it sends.
    pub value: Balance,
    /// Whether it calls a contract (non-empty input) rather than only transferring.
    pub is_call: bool,
}

/// An owner confirmed a proposal.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Confirmed {
    /// The proposal's id.
    #[topic]
    pub id: u64,
    /// The owner.
    #[topic]
    pub owner: Address,
    /// The confirmations it now has.
    pub confirmations: u32,
}

/// An owner withdrew a confirmation.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Revoked {
    /// The proposal's id.
    #[topic]
    pub id: u64,
    /// The owner.
    #[topic]
    pub owner: Address,
    /// The confirmations it now has.
    pub confirmations: u32,
}

/// A proposal was executed.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Executed {
    /// The proposal's id.
    #[topic]
    pub id: u64,
    /// The owner who executed it.
    #[topic]
    pub by: Address,
    /// Whether the transfer or call succeeded.
    pub success: bool,
}

/// Why a call was refused. The code of each is its index, starting at 0.
#[derive(Debug, PartialEq, Eq, Encode, Decode, ContractError)]
pub enum Error {
    /// The threshold is 0 or more than the number of owners.
    #[error("the threshold must be between 1 and the number of owners")]
    ThresholdOutOfRange,
    /// More than [`MAX_OWNERS`] owners.
    #[error("more than MAX_OWNERS owners")]
    TooManyOwners,
    /// An address is listed twice among the owners.
    #[error("an owner is listed twice")]
    DuplicateOwner,
    /// The zero address, which nobody controls, is listed as an owner.
    #[error("the zero address cannot be an owner")]
    ZeroOwner,
    /// The caller is not an owner.
    #[error("caller is not an owner")]
    NotOwner,
    /// No proposal has this id.
    #[error("no such proposal")]
    NoSuchProposal,
    /// The caller already confirms this proposal.
    #[error("caller already confirmed this proposal")]
    AlreadyConfirmed,
    /// The caller does not confirm this proposal.
    #[error("caller has not confirmed this proposal")]
    NotConfirmed,
    /// The proposal has run already.
    #[error("proposal already executed")]
    AlreadyExecuted,
    /// Fewer owners than the threshold confirm the proposal.
    #[error("not enough confirmations to execute")]
    NotEnoughConfirmations,
    /// The wallet holds less than the value the proposal sends.
    #[error("the wallet holds less than the proposal's value")]
    InsufficientBalance,
    /// The call input is longer than [`MAX_PROPOSAL_INPUT`].
    #[error("call input is longer than MAX_PROPOSAL_INPUT bytes")]
    InputTooLarge,
    /// Less gas is left than the call's gas plus [`EXECUTION_RESERVE_GAS`]: execute again with a
    /// higher gas limit.
    #[error("not enough gas left to give the call the gas the proposal asks for")]
    NotEnoughGas,
}

#[contract]
impl Multisig {
    /// A wallet of `owners` that executes an action once `threshold` of them confirm it.
    #[constructor]
    // A constructor initialises storage through `&mut self`; it cannot return `Self`.
    pub fn new(&mut self, owners: Vec<Address>, threshold: u32) -> Result<(), Error> {
        if owners.len() > MAX_OWNERS {
            return Err(Error::TooManyOwners);
        }
        for owner in &owners {
            if *owner == Address::ZERO {
                return Err(Error::ZeroOwner);
            }
            if self.is_owner.contains(owner) {
                return Err(Error::DuplicateOwner);
            }
            self.is_owner.insert(owner, &true);
        }
        let count = u32::try_from(owners.len()).map_err(|_| Error::TooManyOwners)?;
        if threshold == 0 || threshold > count {
            return Err(Error::ThresholdOutOfRange);
        }
        self.owners.set(&owners);
        self.threshold.set(&threshold);
        Ok(())
    }

    /// Adds the value sent to the wallet's funds.
    #[payable]
    pub fn deposit(&mut self) {
        emit(&Deposited { from: env::caller(), value: env::value() });
    }

    /// Proposes sending `value` to `to`, calling it with `input` and exactly `gas` unless `input`
    /// is empty, and counts the proposer's confirmation. Returns the proposal's id. Only owners
    /// may propose.
    ///
    /// `gas` is what the call needs to succeed; [`Multisig::execute`] reverts rather than give it
    /// less. A plain transfer (empty `input`) runs no code: its `gas` is ignored and stored as 0.
    pub fn propose(
        &mut self,
        to: Address,
        value: Balance,
        input: Vec<u8>,
        gas: u64,
    ) -> Result<u64, Error> {
        let proposer = self.caller_as_owner()?;
        if input.len() > MAX_PROPOSAL_INPUT {
            return Err(Error::InputTooLarge);
        }
        let id = self.next_id.get_or_default();
        // Each proposal costs a transaction; 2^64 of them cannot happen.
        let next = id.checked_add(1).unwrap_or_else(|| panic!("proposal ids exhausted"));
        self.next_id.set(&next);
        let is_call = !input.is_empty();
        let gas = if is_call { gas } else { 0 };
        self.actions.insert(&id, &Action { proposer, to, value, input, gas });
        self.statuses.insert(&id, &Status { confirmations: 1, outcome: Outcome::Pending });
        self.confirmed.insert(&(id, proposer), &true);
        emit(&Proposed { id, proposer, to, value, is_call });
        emit(&Confirmed { id, owner: proposer, confirmations: 1 });
        Ok(id)
    }

    /// Adds the caller's confirmation to proposal `id`.
    pub fn confirm(&mut self, id: u64) -> Result<(), Error> {
        let owner = self.caller_as_owner()?;
        let mut status = self.pending_status(id)?;
        if self.confirmed.contains(&(id, owner)) {
            return Err(Error::AlreadyConfirmed);
        }
        // At most one confirmation per owner, and there are at most MAX_OWNERS owners.
        status.confirmations = status.confirmations.saturating_add(1);
        self.statuses.insert(&id, &status);
        self.confirmed.insert(&(id, owner), &true);
        emit(&Confirmed { id, owner, confirmations: status.confirmations });
        Ok(())
    }

    /// Withdraws the caller's confirmation of proposal `id`.
    pub fn revoke(&mut self, id: u64) -> Result<(), Error> {
        let owner = self.caller_as_owner()?;
        let mut status = self.pending_status(id)?;
        if !self.confirmed.contains(&(id, owner)) {
            return Err(Error::NotConfirmed);
        }
        // The caller's confirmation is among those counted, so the count is at least one.
        status.confirmations = status.confirmations.saturating_sub(1);
        self.statuses.insert(&id, &status);
        self.confirmed.remove(&(id, owner));
        emit(&Revoked { id, owner, confirmations: status.confirmations });
        Ok(())
    }

    /// Runs proposal `id`, which enough owners confirm, and returns whether the transfer or call
    /// succeeded. A failed call still marks the proposal executed. Only owners may execute.
    ///
    /// A call is given exactly the proposal's gas: if less than that plus
    /// [`EXECUTION_RESERVE_GAS`] is left, execution reverts with [`Error::NotEnoughGas`] and the
    /// proposal stays pending.
    pub fn execute(&mut self, id: u64) -> Result<bool, Error> {
        let by = self.caller_as_owner()?;
        let mut status = self.pending_status(id)?;
        if status.confirmations < self.threshold.get_or_default() {
            return Err(Error::NotEnoughConfirmations);
        }
        let action = self.actions.get(&id).ok_or(Error::NoSuchProposal)?;
        if env::balance() < action.value {
            return Err(Error::InsufficientBalance);
        }
        let success = if action.input.is_empty() {
            env::transfer(&action.to, action.value).map_err(|_| Error::InsufficientBalance)?;
            true
        } else {
            // Marked executed before the call, so that no callee could ever run it a second
            // time, even if this contract were made reentrant. The revert below undoes this.
            status.outcome = Outcome::Failed;
            self.statuses.insert(&id, &status);
            // Checked last before the call, so that the reserve only has to pay for the call
            // itself and what follows it: the chain caps the callee's gas at what is left, and
            // a callee given less than the owners agreed to could fail for that alone.
            if env::gas_left() < action.gas.saturating_add(EXECUTION_RESERVE_GAS) {
                return Err(Error::NotEnoughGas);
            }
            env::call_raw(&action.to, action.value, &action.input, action.gas).is_ok()
        };
        status.outcome = if success { Outcome::Succeeded } else { Outcome::Failed };
        self.statuses.insert(&id, &status);
        emit(&Executed { id, by, success });
        Ok(success)
    }

    /// The owners, in the order given at deployment.
    pub fn owners(&self) -> Vec<Address> {
        self.owners.get_or_default()
    }

    /// Whether `who` is an owner.
    pub fn is_owner(&self, who: Address) -> bool {
        self.is_owner.contains(&who)
    }

    /// How many confirmations a proposal needs.
    pub fn threshold(&self) -> u32 {
        self.threshold.get_or_default()
    }

    /// How many proposals have been made; their ids are `0..proposal_count()`.
    pub fn proposal_count(&self) -> u64 {
        self.next_id.get_or_default()
    }

    /// Proposal `id`.
    pub fn proposal(&self, id: u64) -> Result<Proposal, Error> {
        let action = self.actions.get(&id).ok_or(Error::NoSuchProposal)?;
        let status = self.status(id)?;
        Ok(Proposal { action, status })
    }

    /// How many owners confirm proposal `id`.
    pub fn confirmations(&self, id: u64) -> Result<u32, Error> {
        Ok(self.status(id)?.confirmations)
    }

    /// Whether `owner` confirms proposal `id`.
    pub fn is_confirmed(&self, id: u64, owner: Address) -> bool {
        self.confirmed.contains(&(id, owner))
    }

    fn caller_as_owner(&self) -> Result<Address, Error> {
        let caller = env::caller();
        if self.is_owner.contains(&caller) { Ok(caller) } else { Err(Error::NotOwner) }
    }

    fn status(&self, id: u64) -> Result<Status, Error> {
        self.statuses.get(&id).ok_or(Error::NoSuchProposal)
    }

    /// The status of proposal `id`, which must not have run yet.
    fn pending_status(&self, id: u64) -> Result<Status, Error> {
        let status = self.status(id)?;
        match status.outcome {
            Outcome::Pending => Ok(status),
            Outcome::Succeeded | Outcome::Failed => Err(Error::AlreadyExecuted),
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {

    use altan_sdk::test::{self, INITIAL_BALANCE, TestChain};
    use altan_sdk::{Decode, Encode, Revert};
    use token::{Token, TokenRef};

    use altan_sdk::test::assert_reverts;

    use super::*;

    /// The gas the tests' call proposals give the callee (the off-chain chain does not meter it).
    const CALL_GAS: u64 = 100_000;

    /// Owners 1, 2 and 3; account 9 is a stranger.
    fn owners() -> Vec<Address> {
        vec![TestChain::account(1), TestChain::account(2), TestChain::account(3)]
    }

    fn deploy_raw(
        chain: &TestChain,
        owners: Vec<Address>,
        threshold: u32,
    ) -> Result<Address, test::CallError> {
        chain.deploy(TestChain::account(0), Multisig::CODE, 0, (owners, threshold).encode())
    }

    /// A 2-of-3 wallet holding `funds`, with owner 1 as the caller.
    fn deploy(chain: &TestChain, funds: Balance) -> MultisigRef {
        let wallet = MultisigRef::at(deploy_raw(chain, owners(), 2).unwrap());
        if funds > 0 {
            chain.set_caller(TestChain::account(0));
            wallet.with_value(funds).deposit().unwrap();
        }
        chain.set_caller(TestChain::account(1));
        wallet
    }

    /// A token with 1,000 units, 300 of them held by `holder`.
    fn deploy_token(chain: &TestChain, holder: Address) -> TokenRef {
        let args = (String::from("Altan Test"), String::from("ALT"), 18u8, 1_000u128);
        let token = TokenRef::at(
            chain.deploy(TestChain::account(0), Token::CODE, 0, args.encode()).unwrap(),
        );
        chain.set_caller(TestChain::account(0));
        token.transfer(holder, 300).unwrap();
        token
    }

    fn token_transfer_input(to: Address, amount: u128) -> Vec<u8> {
        altan_sdk::call_input(altan_sdk::selector("transfer"), &(to, amount))
    }

    #[test]
    fn error_codes_are_stable() {
        let expected = [
            (
                Error::ThresholdOutOfRange,
                0,
                "the threshold must be between 1 and the number of owners",
            ),
            (Error::TooManyOwners, 1, "more than MAX_OWNERS owners"),
            (Error::DuplicateOwner, 2, "an owner is listed twice"),
            (Error::ZeroOwner, 3, "the zero address cannot be an owner"),
            (Error::NotOwner, 4, "caller is not an owner"),
            (Error::NoSuchProposal, 5, "no such proposal"),
            (Error::AlreadyConfirmed, 6, "caller already confirmed this proposal"),
            (Error::NotConfirmed, 7, "caller has not confirmed this proposal"),
            (Error::AlreadyExecuted, 8, "proposal already executed"),
            (Error::NotEnoughConfirmations, 9, "not enough confirmations to execute"),
            (Error::InsufficientBalance, 10, "the wallet holds less than the proposal's value"),
            (Error::InputTooLarge, 11, "call input is longer than MAX_PROPOSAL_INPUT bytes"),
            (
                Error::NotEnoughGas,
                12,
                "not enough gas left to give the call the gas the proposal asks for",
            ),
        ];
        for (error, code, message) in expected {
            assert_eq!((error.code(), error.message().as_str()), (code, message), "{error:?}");
        }
    }

    #[test]
    fn deployment_records_owners_and_threshold() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        assert_eq!(wallet.owners(), Ok(owners()));
        assert_eq!(wallet.threshold(), Ok(2));
        assert_eq!(wallet.is_owner(TestChain::account(2)), Ok(true));
        assert_eq!(wallet.is_owner(TestChain::account(9)), Ok(false));
        assert_eq!(wallet.proposal_count(), Ok(0));
    }

    #[test]
    fn deployment_accepts_thresholds_from_one_to_all_owners() {
        let chain = TestChain::new();
        for threshold in 1..=3 {
            let wallet = MultisigRef::at(deploy_raw(&chain, owners(), threshold).unwrap());
            assert_eq!(wallet.threshold(), Ok(threshold));
        }
        let max: Vec<Address> = (1..=MAX_OWNERS as u8).map(|i| Address([i; 20])).collect();
        let wallet = MultisigRef::at(deploy_raw(&chain, max.clone(), 32).unwrap());
        assert_eq!(wallet.owners(), Ok(max));
    }

    #[test]
    fn deployment_refuses_a_threshold_out_of_range() {
        let chain = TestChain::new();
        assert_reverts(deploy_raw(&chain, owners(), 0), Error::ThresholdOutOfRange);
        assert_reverts(deploy_raw(&chain, owners(), 4), Error::ThresholdOutOfRange);
        assert_reverts(deploy_raw(&chain, Vec::new(), 1), Error::ThresholdOutOfRange);
        assert_reverts(deploy_raw(&chain, Vec::new(), 0), Error::ThresholdOutOfRange);
    }

    #[test]
    fn deployment_refuses_duplicate_zero_and_too_many_owners() {
        let chain = TestChain::new();
        let (a, b) = (TestChain::account(1), TestChain::account(2));
        assert_reverts(deploy_raw(&chain, vec![a, b, a], 2), Error::DuplicateOwner);
        assert_reverts(deploy_raw(&chain, vec![a, Address::ZERO], 1), Error::ZeroOwner);
        let too_many: Vec<Address> = (1..=MAX_OWNERS as u8 + 1).map(|i| Address([i; 20])).collect();
        assert_reverts(deploy_raw(&chain, too_many, 2), Error::TooManyOwners);
    }

    #[test]
    fn deposit_adds_funds_and_emits() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        chain.set_caller(TestChain::account(5));
        wallet.with_value(700).deposit().unwrap();
        assert_eq!(chain.balance(wallet.address()), 700);
        assert_eq!(chain.balance(TestChain::account(5)), INITIAL_BALANCE - 700);
        let deposited: Deposited = chain.event(wallet.address(), 0);
        assert_eq!(deposited, Deposited { from: TestChain::account(5), value: 700 });
    }

    #[test]
    fn propose_records_the_action_and_the_proposers_confirmation() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        let (alice, to) = (TestChain::account(1), TestChain::account(7));
        // A plain transfer runs no code: the gas given with it is not kept.
        assert_eq!(wallet.propose(to, 50, Vec::new(), 5_000), Ok(0));
        assert_eq!(wallet.propose(to, 0, vec![1, 2, 3], 70_000), Ok(1));
        assert_eq!(wallet.proposal_count(), Ok(2));
        let transfer = Action { proposer: alice, to, value: 50, input: Vec::new(), gas: 0 };
        assert_eq!(wallet.proposal(0).unwrap().action, transfer);
        let expected = Proposal {
            action: Action { proposer: alice, to, value: 0, input: vec![1, 2, 3], gas: 70_000 },
            status: Status { confirmations: 1, outcome: Outcome::Pending },
        };
        assert_eq!(wallet.proposal(1), Ok(expected));
        assert_eq!(wallet.confirmations(0), Ok(1));
        assert_eq!(wallet.is_confirmed(0, alice), Ok(true));
        assert_eq!(wallet.is_confirmed(0, TestChain::account(2)), Ok(false));
        let proposed: Proposed = chain.event(wallet.address(), 1);
        assert_eq!(proposed, Proposed { id: 1, proposer: alice, to, value: 0, is_call: true });
        let confirmed: Confirmed = chain.event(wallet.address(), 0);
        assert_eq!(confirmed, Confirmed { id: 1, owner: alice, confirmations: 1 });
    }

    #[test]
    fn strangers_cannot_propose_confirm_revoke_or_execute() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 100);
        let id = wallet.propose(TestChain::account(7), 10, Vec::new(), 0).unwrap();
        chain.set_caller(TestChain::account(2));
        wallet.confirm(id).unwrap();
        let events = chain.events().len();
        chain.set_caller(TestChain::account(9));
        assert_reverts(wallet.propose(TestChain::account(9), 10, Vec::new(), 0), Error::NotOwner);
        assert_reverts(wallet.confirm(id), Error::NotOwner);
        assert_reverts(wallet.revoke(id), Error::NotOwner);
        assert_reverts(wallet.execute(id), Error::NotOwner);
        assert_eq!(wallet.proposal_count(), Ok(1));
        assert_eq!(wallet.confirmations(id), Ok(2));
        assert_eq!(chain.balance(wallet.address()), 100);
        assert_eq!(chain.events().len(), events);
    }

    #[test]
    fn unknown_proposals_revert() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        assert_reverts(wallet.confirm(0), Error::NoSuchProposal);
        assert_reverts(wallet.revoke(0), Error::NoSuchProposal);
        assert_reverts(wallet.execute(0), Error::NoSuchProposal);
        assert_reverts(wallet.proposal(0), Error::NoSuchProposal);
        assert_reverts(wallet.confirmations(0), Error::NoSuchProposal);
        assert_eq!(wallet.is_confirmed(0, TestChain::account(1)), Ok(false));
    }

    #[test]
    fn an_input_over_the_limit_is_refused() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        let to = TestChain::account(7);
        assert_reverts(
            wallet.propose(to, 0, vec![0; MAX_PROPOSAL_INPUT + 1], CALL_GAS),
            Error::InputTooLarge,
        );
        assert_eq!(wallet.proposal_count(), Ok(0));
        assert_eq!(wallet.propose(to, 0, vec![0; MAX_PROPOSAL_INPUT], CALL_GAS), Ok(0));
    }

    #[test]
    fn confirm_and_revoke_count_each_owner_once() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        let (alice, bob) = (TestChain::account(1), TestChain::account(2));
        let id = wallet.propose(TestChain::account(7), 0, Vec::new(), 0).unwrap();
        assert_reverts(wallet.confirm(id), Error::AlreadyConfirmed);
        assert_eq!(wallet.confirmations(id), Ok(1));

        chain.set_caller(bob);
        assert_reverts(wallet.revoke(id), Error::NotConfirmed);
        wallet.confirm(id).unwrap();
        assert_eq!(wallet.confirmations(id), Ok(2));
        assert_eq!(wallet.is_confirmed(id, bob), Ok(true));
        let confirmed: Confirmed = chain.event(wallet.address(), 0);
        assert_eq!(confirmed, Confirmed { id, owner: bob, confirmations: 2 });

        chain.set_caller(alice);
        wallet.revoke(id).unwrap();
        assert_eq!(wallet.confirmations(id), Ok(1));
        assert_eq!(wallet.is_confirmed(id, alice), Ok(false));
        let revoked: Revoked = chain.event(wallet.address(), 0);
        assert_eq!(revoked, Revoked { id, owner: alice, confirmations: 1 });
        assert_reverts(wallet.revoke(id), Error::NotConfirmed);
        // A revoked confirmation can be given again.
        wallet.confirm(id).unwrap();
        assert_eq!(wallet.confirmations(id), Ok(2));
    }

    #[test]
    fn execute_needs_the_threshold() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 100);
        let to = TestChain::account(7);
        let id = wallet.propose(to, 40, Vec::new(), 0).unwrap();
        assert_reverts(wallet.execute(id), Error::NotEnoughConfirmations);
        chain.set_caller(TestChain::account(2));
        wallet.confirm(id).unwrap();
        // Dropping back under the threshold blocks execution again.
        wallet.revoke(id).unwrap();
        assert_reverts(wallet.execute(id), Error::NotEnoughConfirmations);
        assert_eq!(wallet.proposal(id).unwrap().status.outcome, Outcome::Pending);
        assert_eq!(chain.balance(to), INITIAL_BALANCE);
        assert_eq!(chain.balance(wallet.address()), 100);
    }

    #[test]
    fn execute_makes_a_native_transfer_once() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 100);
        let (bob, carol, to) =
            (TestChain::account(2), TestChain::account(3), TestChain::account(7));
        let id = wallet.propose(to, 40, Vec::new(), 0).unwrap();
        chain.set_caller(bob);
        wallet.confirm(id).unwrap();
        // Any owner may execute, including one who did not confirm.
        chain.set_caller(carol);
        assert_eq!(wallet.execute(id), Ok(true));
        assert_eq!(chain.balance(to), INITIAL_BALANCE + 40);
        assert_eq!(chain.balance(wallet.address()), 60);
        assert_eq!(
            wallet.proposal(id).unwrap().status,
            Status { confirmations: 2, outcome: Outcome::Succeeded }
        );
        let executed: Executed = chain.event(wallet.address(), 0);
        assert_eq!(executed, Executed { id, by: carol, success: true });

        let events = chain.events().len();
        assert_reverts(wallet.execute(id), Error::AlreadyExecuted);
        assert_reverts(wallet.confirm(id), Error::AlreadyExecuted);
        chain.set_caller(bob);
        assert_reverts(wallet.revoke(id), Error::AlreadyExecuted);
        assert_eq!(chain.balance(to), INITIAL_BALANCE + 40);
        assert_eq!(chain.events().len(), events);
    }

    #[test]
    fn execute_without_the_funds_reverts_and_can_be_retried() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 30);
        let to = TestChain::account(7);
        let id = wallet.propose(to, 40, Vec::new(), 0).unwrap();
        chain.set_caller(TestChain::account(2));
        wallet.confirm(id).unwrap();
        assert_reverts(wallet.execute(id), Error::InsufficientBalance);
        assert_eq!(wallet.proposal(id).unwrap().status.outcome, Outcome::Pending);
        assert_eq!(chain.balance(wallet.address()), 30);
        wallet.with_value(10).deposit().unwrap();
        assert_eq!(wallet.execute(id), Ok(true));
        assert_eq!(chain.balance(to), INITIAL_BALANCE + 40);
        assert_eq!(chain.balance(wallet.address()), 0);
    }

    #[test]
    fn execute_calls_a_token_transfer() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        let token = deploy_token(&chain, wallet.address());
        let recipient = TestChain::account(7);
        chain.set_caller(TestChain::account(1));
        let id = wallet
            .propose(token.address(), 0, token_transfer_input(recipient, 120), CALL_GAS)
            .unwrap();
        chain.set_caller(TestChain::account(2));
        wallet.confirm(id).unwrap();
        assert_eq!(wallet.execute(id), Ok(true));
        assert_eq!(token.balance_of(wallet.address()), Ok(180));
        assert_eq!(token.balance_of(recipient), Ok(120));
        assert_eq!(wallet.proposal(id).unwrap().status.outcome, Outcome::Succeeded);
        // The token saw the wallet as the sender.
        let moved: token::Transfer = chain.event(token.address(), 1);
        assert_eq!(moved, token::Transfer { from: wallet.address(), to: recipient, value: 120 });
        let executed: Executed = chain.event(wallet.address(), 0);
        assert_eq!(executed, Executed { id, by: TestChain::account(2), success: true });
        assert_reverts(wallet.execute(id), Error::AlreadyExecuted);
        assert_eq!(token.balance_of(recipient), Ok(120));
    }

    #[test]
    fn the_off_chain_chain_executes_a_call_with_any_gas() {
        // Off chain, gas is not metered and `gas_left` is u64::MAX, so no stored gas is too much
        // (the sum with the reserve saturates) and none is too little for the call. On chain,
        // the tests in tests/tests/it/multisig.rs check the gas rule itself.
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        let token = deploy_token(&chain, wallet.address());
        let recipient = TestChain::account(7);
        let gases = [0, 1, CALL_GAS, u64::MAX - EXECUTION_RESERVE_GAS, u64::MAX];
        for (sent, gas) in (1..).zip(gases) {
            chain.set_caller(TestChain::account(1));
            let id = wallet
                .propose(token.address(), 0, token_transfer_input(recipient, 10), gas)
                .unwrap();
            assert_eq!(wallet.proposal(id).unwrap().action.gas, gas);
            chain.set_caller(TestChain::account(3));
            wallet.confirm(id).unwrap();
            assert_eq!(wallet.execute(id), Ok(true), "gas {gas}");
            assert_eq!(wallet.proposal(id).unwrap().status.outcome, Outcome::Succeeded);
            assert_eq!(token.balance_of(recipient), Ok(10 * sent));
        }
        assert_eq!(token.balance_of(wallet.address()), Ok(300 - 10 * gases.len() as u128));
    }

    #[test]
    fn a_reverting_call_is_recorded_as_failed_and_undone() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        let token = deploy_token(&chain, wallet.address());
        let recipient = TestChain::account(7);
        chain.set_caller(TestChain::account(1));
        // More than the wallet holds: the token reverts with InsufficientBalance.
        let id = wallet
            .propose(token.address(), 0, token_transfer_input(recipient, 301), CALL_GAS)
            .unwrap();
        chain.set_caller(TestChain::account(2));
        wallet.confirm(id).unwrap();
        let events = chain.events().len();
        assert_eq!(wallet.execute(id), Ok(false));
        assert_eq!(token.balance_of(wallet.address()), Ok(300));
        assert_eq!(token.balance_of(recipient), Ok(0));
        assert_eq!(wallet.proposal(id).unwrap().status.outcome, Outcome::Failed);
        // Only the wallet's own event: the token's were undone with its call.
        assert_eq!(chain.events().len(), events + 1);
        let executed: Executed = chain.event(wallet.address(), 0);
        assert_eq!(executed, Executed { id, by: TestChain::account(2), success: false });
        assert_reverts(wallet.execute(id), Error::AlreadyExecuted);
    }

    #[test]
    fn a_call_that_fails_returns_the_value_sent() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 100);
        let token = deploy_token(&chain, wallet.address());
        let nobody = TestChain::account(8);
        chain.set_caller(TestChain::account(1));
        // The token's transfer is not payable, and an account has no code to call.
        let to_token =
            wallet.propose(token.address(), 25, token_transfer_input(nobody, 1), CALL_GAS).unwrap();
        let to_account =
            wallet.propose(nobody, 25, vec![0xde, 0xad, 0xbe, 0xef], CALL_GAS).unwrap();
        chain.set_caller(TestChain::account(3));
        for id in [to_token, to_account] {
            wallet.confirm(id).unwrap();
            assert_eq!(wallet.execute(id), Ok(false));
            assert_eq!(wallet.proposal(id).unwrap().status.outcome, Outcome::Failed);
        }
        assert_eq!(chain.balance(wallet.address()), 100);
        assert_eq!(chain.balance(token.address()), 0);
        assert_eq!(chain.balance(nobody), INITIAL_BALANCE);
        assert_eq!(token.balance_of(nobody), Ok(0));
    }

    #[test]
    fn a_call_carries_its_value_to_a_payable_method() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 100);
        let other = MultisigRef::at(deploy_raw(&chain, vec![TestChain::account(5)], 1).unwrap());
        chain.set_caller(TestChain::account(1));
        let input = altan_sdk::call_input(altan_sdk::selector("deposit"), &());
        let id = wallet.propose(other.address(), 60, input, CALL_GAS).unwrap();
        chain.set_caller(TestChain::account(2));
        wallet.confirm(id).unwrap();
        assert_eq!(wallet.execute(id), Ok(true));
        assert_eq!(chain.balance(wallet.address()), 40);
        assert_eq!(chain.balance(other.address()), 60);
        let deposited: Deposited = chain.event(other.address(), 1);
        assert_eq!(deposited, Deposited { from: wallet.address(), value: 60 });
    }

    #[test]
    fn a_call_needs_the_value_it_sends() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 10);
        let other = MultisigRef::at(deploy_raw(&chain, vec![TestChain::account(5)], 1).unwrap());
        chain.set_caller(TestChain::account(1));
        let input = altan_sdk::call_input(altan_sdk::selector("deposit"), &());
        let id = wallet.propose(other.address(), 60, input, CALL_GAS).unwrap();
        chain.set_caller(TestChain::account(2));
        wallet.confirm(id).unwrap();
        assert_reverts(wallet.execute(id), Error::InsufficientBalance);
        assert_eq!(wallet.proposal(id).unwrap().status.outcome, Outcome::Pending);
        assert_eq!(chain.balance(other.address()), 0);
    }

    #[test]
    fn only_deposit_accepts_value() {
        let chain = TestChain::new();
        let wallet = deploy(&chain, 0);
        let paying = wallet.with_value(5);
        let results = [
            paying.propose(TestChain::account(7), 0, Vec::new(), 0).map(|_| ()),
            paying.confirm(0),
            paying.execute(0).map(|_| ()),
        ];
        for result in results {
            let revert = result.unwrap_err().revert().unwrap();
            assert_eq!(revert.code, altan_sdk::codes::NOT_PAYABLE);
        }
        assert_eq!(wallet.proposal_count(), Ok(0));
        assert_eq!(chain.balance(wallet.address()), 0);
        // A constructor is not payable unless marked so.
        let result =
            chain.deploy(TestChain::account(0), Multisig::CODE, 1, (owners(), 2u32).encode());
        let Err(test::CallError::Reverted(data)) = result else { panic!("expected a revert") };
        assert_eq!(Revert::decode(&mut &data[..]).unwrap().code, altan_sdk::codes::NOT_PAYABLE);
    }
}
