//! A fungible token with EIP-20 semantics: balances, transfers, allowances.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::string::String;

use altan_sdk::{
    Address, ContractError, Decode, Encode, Event, Lazy, Mapping, contract, emit, env,
};

/// The token's storage.
#[contract]
pub struct Token {
    name: Lazy<String>,
    symbol: Lazy<String>,
    decimals: Lazy<u8>,
    total_supply: Lazy<u128>,
    balances: Mapping<Address, u128>,
    allowances: Mapping<(Address, Address), u128>,
}

/// Tokens moved (minting at deployment comes from the zero address).
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Transfer {
    /// The sender.
    #[topic]
    pub from: Address,
    /// The recipient.
    #[topic]
    pub to: Address,
    /// The amount.
    pub value: u128,
}

/// An allowance was set.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Approval {
    /// The owner of the tokens.
    #[topic]
    pub owner: Address,
    /// Who may spend them.
    #[topic]
    pub spender: Address,
    /// How much.
    pub value: u128,
}

/// Why a call was refused.
#[derive(Debug, PartialEq, Eq, Encode, Decode, ContractError)]
pub enum Error {
    /// The sender holds less than the amount.
    #[error("insufficient balance")]
    InsufficientBalance,
    /// The spender may move less than the amount.
    #[error("insufficient allowance")]
    InsufficientAllowance,
}

#[contract]
impl Token {
    /// Creates `supply` tokens for the deployer.
    #[constructor]
    pub fn new(&mut self, name: String, symbol: String, decimals: u8, supply: u128) {
        let owner = env::caller();
        self.name.set(&name);
        self.symbol.set(&symbol);
        self.decimals.set(&decimals);
        self.total_supply.set(&supply);
        self.balances.insert(&owner, &supply);
        emit(&Transfer { from: Address::ZERO, to: owner, value: supply });
    }

    /// The token's name.
    pub fn name(&self) -> String {
        self.name.get_or_default()
    }

    /// The token's symbol.
    pub fn symbol(&self) -> String {
        self.symbol.get_or_default()
    }

    /// Decimal places for display.
    pub fn decimals(&self) -> u8 {
        self.decimals.get_or_default()
    }

    /// All tokens in existence.
    pub fn total_supply(&self) -> u128 {
        self.total_supply.get_or_default()
    }

    /// The balance of `owner`.
    pub fn balance_of(&self, owner: Address) -> u128 {
        self.balances.get_or_default(&owner)
    }

    /// How much `spender` may still move from `owner`.
    pub fn allowance(&self, owner: Address, spender: Address) -> u128 {
        self.allowances.get_or_default(&(owner, spender))
    }

    /// Moves `value` of the caller's tokens to `to`.
    pub fn transfer(&mut self, to: Address, value: u128) -> Result<(), Error> {
        self.move_tokens(env::caller(), to, value)
    }

    /// Lets `spender` move up to `value` of the caller's tokens (replacing any earlier allowance).
    pub fn approve(&mut self, spender: Address, value: u128) -> Result<(), Error> {
        let owner = env::caller();
        self.allowances.insert(&(owner, spender), &value);
        emit(&Approval { owner, spender, value });
        Ok(())
    }

    /// Moves `value` from `from` to `to` within the caller's allowance.
    pub fn transfer_from(&mut self, from: Address, to: Address, value: u128) -> Result<(), Error> {
        let spender = env::caller();
        let allowed = self.allowances.get_or_default(&(from, spender));
        let rest = allowed.checked_sub(value).ok_or(Error::InsufficientAllowance)?;
        self.allowances.insert(&(from, spender), &rest);
        self.move_tokens(from, to, value)
    }

    fn move_tokens(&mut self, from: Address, to: Address, value: u128) -> Result<(), Error> {
        let from_balance = self.balances.get_or_default(&from);
        let rest = from_balance.checked_sub(value).ok_or(Error::InsufficientBalance)?;
        self.balances.insert(&from, &rest);
        // The supply is fixed, so no balance can exceed it and this cannot overflow.
        let to_balance = self.balances.get_or_default(&to).saturating_add(value);
        self.balances.insert(&to, &to_balance);
        emit(&Transfer { from, to, value });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use altan_sdk::test::TestChain;
    use altan_sdk::{Decode, Encode, Event};

    use super::*;

    fn deploy(chain: &TestChain, supply: u128) -> TokenRef {
        let args = (String::from("Altan Test"), String::from("ALT"), 18u8, supply);
        TokenRef::at(chain.deploy(TestChain::account(0), Token::CODE, 0, args.encode()).unwrap())
    }

    #[test]
    fn metadata_and_initial_supply() {
        let chain = TestChain::new();
        let token = deploy(&chain, 1_000);
        assert_eq!(token.name().unwrap(), "Altan Test");
        assert_eq!(token.symbol().unwrap(), "ALT");
        assert_eq!(token.decimals(), Ok(18));
        assert_eq!(token.total_supply(), Ok(1_000));
        assert_eq!(token.balance_of(TestChain::account(0)), Ok(1_000));
        let minted = Transfer { from: Address::ZERO, to: TestChain::account(0), value: 1_000 };
        assert_eq!(chain.events()[0].topics, minted.topics());
    }

    #[test]
    fn transfer_moves_tokens_and_emits() {
        let chain = TestChain::new();
        let token = deploy(&chain, 1_000);
        let (alice, bob) = (TestChain::account(0), TestChain::account(1));
        token.transfer(bob, 250).unwrap();
        assert_eq!(token.balance_of(alice), Ok(750));
        assert_eq!(token.balance_of(bob), Ok(250));
        let event = chain.events().pop().unwrap();
        assert_eq!(
            Transfer::decode(&mut &event.data[..]).unwrap(),
            Transfer { from: alice, to: bob, value: 250 }
        );
        assert_eq!(event.contract, token.address());
    }

    #[test]
    fn insufficient_balance_reverts_with_a_readable_error_and_changes_nothing() {
        let chain = TestChain::new();
        let token = deploy(&chain, 10);
        let events = chain.events().len();
        let error = token.transfer(TestChain::account(1), 11).unwrap_err();
        let revert = error.revert().unwrap();
        assert_eq!((revert.code, revert.message.as_str()), (0, "insufficient balance"));
        assert_eq!(token.balance_of(TestChain::account(0)), Ok(10));
        assert_eq!(chain.events().len(), events);
    }

    #[test]
    fn allowances_limit_transfer_from() {
        let chain = TestChain::new();
        let token = deploy(&chain, 100);
        let (alice, bob, carol) =
            (TestChain::account(0), TestChain::account(1), TestChain::account(2));
        token.approve(bob, 30).unwrap();
        assert_eq!(token.allowance(alice, bob), Ok(30));
        chain.set_caller(bob);
        token.transfer_from(alice, carol, 20).unwrap();
        assert_eq!(token.allowance(alice, bob), Ok(10));
        assert_eq!(token.balance_of(carol), Ok(20));
        let error = token.transfer_from(alice, carol, 11).unwrap_err();
        assert_eq!(error.revert().unwrap().message, "insufficient allowance");
        assert_eq!(token.balance_of(carol), Ok(20));
    }
}
