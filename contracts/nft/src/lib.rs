//! A non-fungible token with ERC-721 semantics: the deployer mints tokens, each with a URI; an
//! owner moves a token, or lets one address move it ([`Nft::approve`]) or lets an operator move
//! all of their tokens ([`Nft::set_approval_for_all`]).
//!
//! Each token's owner, URI and approval is its own storage entry, so a call touches only the
//! tokens it names however many exist. There is no enumeration of tokens: indexers follow the
//! [`Transfer`] events.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::string::String;

use altan_sdk::{
    Address, ContractError, Decode, Encode, Event, Lazy, Mapping, contract, emit, env,
};

/// The longest token URI accepted, in bytes: a URI is stored once per token and returned whole.
pub const MAX_URI_LEN: usize = 512;

/// The collection's storage.
#[contract]
pub struct Nft {
    name: Lazy<String>,
    symbol: Lazy<String>,
    minter: Lazy<Address>,
    owners: Mapping<u64, Address>,
    balances: Mapping<Address, u64>,
    uris: Mapping<u64, String>,
    approvals: Mapping<u64, Address>,
    operators: Mapping<(Address, Address), bool>,
}

/// A token moved; minting comes from the zero address.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Transfer {
    /// The previous owner.
    #[topic]
    pub from: Address,
    /// The new owner.
    #[topic]
    pub to: Address,
    /// The token.
    #[topic]
    pub token_id: u64,
}

/// The address approved for a token changed; the zero address means none.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct Approval {
    /// The token's owner.
    #[topic]
    pub owner: Address,
    /// Who may now move the token.
    #[topic]
    pub approved: Address,
    /// The token.
    #[topic]
    pub token_id: u64,
}

/// An operator was allowed or forbidden to move all of an owner's tokens.
#[derive(Debug, PartialEq, Eq, Encode, Decode, Event)]
pub struct ApprovalForAll {
    /// The owner.
    #[topic]
    pub owner: Address,
    /// The operator.
    #[topic]
    pub operator: Address,
    /// Whether the operator may now move the owner's tokens.
    pub approved: bool,
}

/// Why a call was refused. The code of each is its index, starting at 0.
#[derive(Debug, PartialEq, Eq, Encode, Decode, ContractError)]
pub enum Error {
    /// Only the deployer may mint.
    #[error("only the contract owner may mint")]
    NotOwner,
    /// The caller may not move or approve this token.
    #[error("caller is not the token's owner, approved for it, or an operator of its owner")]
    NotAuthorized,
    /// The token has not been minted.
    #[error("no such token")]
    NoSuchToken,
    /// A token with this id exists already.
    #[error("token already minted")]
    AlreadyMinted,
    /// The `from` of a transfer is not the token's owner.
    #[error("from is not the token's owner")]
    WrongFrom,
    /// Tokens cannot be minted or sent to the zero address, which nobody controls.
    #[error("tokens cannot go to the zero address")]
    ZeroAddress,
    /// The URI is longer than [`MAX_URI_LEN`].
    #[error("token URI is longer than MAX_URI_LEN bytes")]
    UriTooLong,
    /// An owner cannot be their own operator.
    #[error("an owner cannot be their own operator")]
    SelfApproval,
}

#[contract]
impl Nft {
    /// Names the collection; the deployer becomes the only minter.
    #[constructor]
    // A constructor initialises storage through `&mut self`; it cannot return `Self`.
    pub fn new(&mut self, name: String, symbol: String) {
        self.name.set(&name);
        self.symbol.set(&symbol);
        self.minter.set(&env::caller());
    }

    /// The collection's name.
    pub fn name(&self) -> String {
        self.name.get_or_default()
    }

    /// The collection's symbol.
    pub fn symbol(&self) -> String {
        self.symbol.get_or_default()
    }

    /// The address that may mint (the deployer).
    pub fn minter(&self) -> Address {
        self.minter.get_or_default()
    }

    /// Creates token `token_id` for `to` with metadata at `uri`.
    pub fn mint(&mut self, to: Address, token_id: u64, uri: String) -> Result<(), Error> {
        if self.minter.get() != Some(env::caller()) {
            return Err(Error::NotOwner);
        }
        if self.owners.contains(&token_id) {
            return Err(Error::AlreadyMinted);
        }
        if to == Address::ZERO {
            return Err(Error::ZeroAddress);
        }
        if uri.len() > MAX_URI_LEN {
            return Err(Error::UriTooLong);
        }
        self.owners.insert(&token_id, &to);
        self.uris.insert(&token_id, &uri);
        // A balance counts distinct token ids, so it cannot reach u64::MAX before the ids run out.
        let balance = self.balances.get_or_default(&to).saturating_add(1);
        self.balances.insert(&to, &balance);
        emit(&Transfer { from: Address::ZERO, to, token_id });
        Ok(())
    }

    /// Moves `token_id` from `from` to `to`. The caller must own it, be approved for it, or be an
    /// operator of its owner. The token's approval is cleared.
    pub fn transfer_from(
        &mut self,
        from: Address,
        to: Address,
        token_id: u64,
    ) -> Result<(), Error> {
        let owner = self.owner_of(token_id)?;
        let caller = env::caller();
        let authorized = caller == owner
            || self.approvals.get(&token_id) == Some(caller)
            || self.is_approved_for_all(owner, caller);
        if !authorized {
            return Err(Error::NotAuthorized);
        }
        if from != owner {
            return Err(Error::WrongFrom);
        }
        if to == Address::ZERO {
            return Err(Error::ZeroAddress);
        }
        self.approvals.remove(&token_id);
        self.owners.insert(&token_id, &to);
        // `from` owns this token, so its balance is at least one.
        let from_balance = self.balances.get_or_default(&from).saturating_sub(1);
        self.balances.insert(&from, &from_balance);
        let to_balance = self.balances.get_or_default(&to).saturating_add(1);
        self.balances.insert(&to, &to_balance);
        emit(&Transfer { from, to, token_id });
        Ok(())
    }

    /// Lets `to` move `token_id` until it next moves, replacing any earlier approval; the zero
    /// address clears it. The caller must own the token or be an operator of its owner.
    pub fn approve(&mut self, to: Address, token_id: u64) -> Result<(), Error> {
        let owner = self.owner_of(token_id)?;
        let caller = env::caller();
        if caller != owner && !self.is_approved_for_all(owner, caller) {
            return Err(Error::NotAuthorized);
        }
        if to == Address::ZERO {
            self.approvals.remove(&token_id);
        } else {
            self.approvals.insert(&token_id, &to);
        }
        emit(&Approval { owner, approved: to, token_id });
        Ok(())
    }

    /// Allows or forbids `operator` to move and approve all of the caller's tokens.
    pub fn set_approval_for_all(&mut self, operator: Address, approved: bool) -> Result<(), Error> {
        let owner = env::caller();
        if operator == owner {
            return Err(Error::SelfApproval);
        }
        if approved {
            self.operators.insert(&(owner, operator), &true);
        } else {
            self.operators.remove(&(owner, operator));
        }
        emit(&ApprovalForAll { owner, operator, approved });
        Ok(())
    }

    /// The owner of `token_id`.
    pub fn owner_of(&self, token_id: u64) -> Result<Address, Error> {
        self.owners.get(&token_id).ok_or(Error::NoSuchToken)
    }

    /// How many tokens `owner` holds.
    pub fn balance_of(&self, owner: Address) -> u64 {
        self.balances.get_or_default(&owner)
    }

    /// The metadata URI of `token_id`.
    pub fn token_uri(&self, token_id: u64) -> Result<String, Error> {
        self.uris.get(&token_id).ok_or(Error::NoSuchToken)
    }

    /// The address approved for `token_id`, if any.
    pub fn get_approved(&self, token_id: u64) -> Result<Option<Address>, Error> {
        self.owner_of(token_id)?;
        Ok(self.approvals.get(&token_id))
    }

    /// Whether `operator` may move all of `owner`'s tokens.
    pub fn is_approved_for_all(&self, owner: Address, operator: Address) -> bool {
        self.operators.get_or_default(&(owner, operator))
    }
}

#[cfg(test)]
mod tests {

    use altan_sdk::Encode;
    use altan_sdk::test::TestChain;

    use altan_sdk::test::assert_reverts;

    use super::*;

    const URI: &str = "ipfs://bafy/1.json";

    fn deploy(chain: &TestChain) -> NftRef {
        let args = (String::from("Altan Cats"), String::from("CAT"));
        let address = chain.deploy(TestChain::account(0), Nft::CODE, 0, args.encode()).unwrap();
        chain.set_caller(TestChain::account(0));
        NftRef::at(address)
    }

    /// A collection where account 1 owns token 7.
    fn deploy_with_token(chain: &TestChain) -> NftRef {
        let nft = deploy(chain);
        nft.mint(TestChain::account(1), 7, URI.into()).unwrap();
        nft
    }

    #[test]
    fn error_codes_are_stable() {
        let expected = [
            (Error::NotOwner, 0, "only the contract owner may mint"),
            (
                Error::NotAuthorized,
                1,
                "caller is not the token's owner, approved for it, or an operator of its owner",
            ),
            (Error::NoSuchToken, 2, "no such token"),
            (Error::AlreadyMinted, 3, "token already minted"),
            (Error::WrongFrom, 4, "from is not the token's owner"),
            (Error::ZeroAddress, 5, "tokens cannot go to the zero address"),
            (Error::UriTooLong, 6, "token URI is longer than MAX_URI_LEN bytes"),
            (Error::SelfApproval, 7, "an owner cannot be their own operator"),
        ];
        for (error, code, message) in expected {
            assert_eq!((error.code(), error.message().as_str()), (code, message), "{error:?}");
        }
    }

    #[test]
    fn deployer_is_the_minter_and_metadata_is_stored() {
        let chain = TestChain::new();
        let nft = deploy(&chain);
        assert_eq!(nft.name().unwrap(), "Altan Cats");
        assert_eq!(nft.symbol().unwrap(), "CAT");
        assert_eq!(nft.minter(), Ok(TestChain::account(0)));
        assert_eq!(nft.balance_of(TestChain::account(0)), Ok(0));
        assert!(chain.events().is_empty());
    }

    #[test]
    fn mint_assigns_the_token_and_emits_transfer_from_zero() {
        let chain = TestChain::new();
        let nft = deploy(&chain);
        let alice = TestChain::account(1);
        nft.mint(alice, 7, URI.into()).unwrap();
        nft.mint(alice, 8, String::new()).unwrap();
        assert_eq!(nft.owner_of(7), Ok(alice));
        assert_eq!(nft.owner_of(8), Ok(alice));
        assert_eq!(nft.balance_of(alice), Ok(2));
        assert_eq!(nft.token_uri(7).unwrap(), URI);
        assert_eq!(nft.token_uri(8).unwrap(), "");
        assert_eq!(nft.get_approved(7), Ok(None));
        let event: Transfer = chain.last_event(nft.address());
        assert_eq!(event, Transfer { from: Address::ZERO, to: alice, token_id: 8 });
        assert_eq!(chain.events().len(), 2);
    }

    #[test]
    fn mint_accepts_a_uri_of_exactly_the_limit() {
        let chain = TestChain::new();
        let nft = deploy(&chain);
        let uri = "u".repeat(MAX_URI_LEN);
        nft.mint(TestChain::account(1), 1, uri.clone()).unwrap();
        assert_eq!(nft.token_uri(1), Ok(uri));
    }

    #[test]
    fn mint_by_anyone_but_the_deployer_reverts_and_changes_nothing() {
        let chain = TestChain::new();
        let nft = deploy(&chain);
        let alice = TestChain::account(1);
        chain.set_caller(alice);
        assert_reverts(nft.mint(alice, 7, URI.into()), Error::NotOwner);
        assert_reverts(nft.owner_of(7), Error::NoSuchToken);
        assert_eq!(nft.balance_of(alice), Ok(0));
        assert!(chain.events().is_empty());
    }

    #[test]
    fn minting_a_token_twice_reverts_and_keeps_the_first() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let events = chain.events().len();
        assert_reverts(nft.mint(TestChain::account(2), 7, "other".into()), Error::AlreadyMinted);
        assert_eq!(nft.owner_of(7), Ok(TestChain::account(1)));
        assert_eq!(nft.token_uri(7).unwrap(), URI);
        assert_eq!(nft.balance_of(TestChain::account(2)), Ok(0));
        assert_eq!(chain.events().len(), events);
    }

    #[test]
    fn mint_to_the_zero_address_reverts() {
        let chain = TestChain::new();
        let nft = deploy(&chain);
        assert_reverts(nft.mint(Address::ZERO, 1, URI.into()), Error::ZeroAddress);
        assert_reverts(nft.owner_of(1), Error::NoSuchToken);
        assert_eq!(nft.balance_of(Address::ZERO), Ok(0));
    }

    #[test]
    fn mint_with_a_uri_over_the_limit_reverts() {
        let chain = TestChain::new();
        let nft = deploy(&chain);
        let uri = "u".repeat(MAX_URI_LEN + 1);
        assert_reverts(nft.mint(TestChain::account(1), 1, uri), Error::UriTooLong);
        assert_reverts(nft.owner_of(1), Error::NoSuchToken);
        assert_reverts(nft.token_uri(1), Error::NoSuchToken);
        assert!(chain.events().is_empty());
    }

    #[test]
    fn views_of_an_unminted_token_revert_with_no_such_token() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        assert_reverts(nft.owner_of(8), Error::NoSuchToken);
        assert_reverts(nft.token_uri(8), Error::NoSuchToken);
        assert_reverts(nft.get_approved(8), Error::NoSuchToken);
    }

    #[test]
    fn owner_transfers_and_balances_follow() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let (alice, bob) = (TestChain::account(1), TestChain::account(2));
        chain.set_caller(alice);
        nft.transfer_from(alice, bob, 7).unwrap();
        assert_eq!(nft.owner_of(7), Ok(bob));
        assert_eq!(nft.balance_of(alice), Ok(0));
        assert_eq!(nft.balance_of(bob), Ok(1));
        assert_eq!(nft.token_uri(7).unwrap(), URI);
        let event: Transfer = chain.last_event(nft.address());
        assert_eq!(event, Transfer { from: alice, to: bob, token_id: 7 });
        // The previous owner has no rights left.
        assert_reverts(nft.transfer_from(bob, alice, 7), Error::NotAuthorized);
    }

    #[test]
    fn approved_address_transfers_once_and_the_approval_is_cleared() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let (alice, bob, carol) =
            (TestChain::account(1), TestChain::account(2), TestChain::account(3));
        chain.set_caller(alice);
        nft.approve(bob, 7).unwrap();
        assert_eq!(nft.get_approved(7), Ok(Some(bob)));
        let event: Approval = chain.last_event(nft.address());
        assert_eq!(event, Approval { owner: alice, approved: bob, token_id: 7 });

        chain.set_caller(bob);
        nft.transfer_from(alice, carol, 7).unwrap();
        assert_eq!(nft.owner_of(7), Ok(carol));
        assert_eq!(nft.get_approved(7), Ok(None));
        assert_eq!(nft.balance_of(carol), Ok(1));
        // The approval went with the move: bob cannot take it back.
        assert_reverts(nft.transfer_from(carol, bob, 7), Error::NotAuthorized);
    }

    #[test]
    fn approving_the_zero_address_clears_the_approval() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let (alice, bob) = (TestChain::account(1), TestChain::account(2));
        chain.set_caller(alice);
        nft.approve(bob, 7).unwrap();
        nft.approve(Address::ZERO, 7).unwrap();
        assert_eq!(nft.get_approved(7), Ok(None));
        let event: Approval = chain.last_event(nft.address());
        assert_eq!(event, Approval { owner: alice, approved: Address::ZERO, token_id: 7 });
        chain.set_caller(bob);
        assert_reverts(nft.transfer_from(alice, bob, 7), Error::NotAuthorized);
    }

    #[test]
    fn operator_transfers_and_approves_until_revoked() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let (alice, bob, carol) =
            (TestChain::account(1), TestChain::account(2), TestChain::account(3));
        nft.mint(alice, 8, URI.into()).unwrap();
        chain.set_caller(alice);
        nft.set_approval_for_all(bob, true).unwrap();
        assert_eq!(nft.is_approved_for_all(alice, bob), Ok(true));
        assert_eq!(nft.is_approved_for_all(bob, alice), Ok(false));
        let event: ApprovalForAll = chain.last_event(nft.address());
        assert_eq!(event, ApprovalForAll { owner: alice, operator: bob, approved: true });

        chain.set_caller(bob);
        nft.transfer_from(alice, carol, 7).unwrap();
        assert_eq!(nft.owner_of(7), Ok(carol));
        // An operator may approve on the owner's behalf; the event names the owner.
        nft.approve(carol, 8).unwrap();
        assert_eq!(nft.get_approved(8), Ok(Some(carol)));
        let event: Approval = chain.last_event(nft.address());
        assert_eq!(event, Approval { owner: alice, approved: carol, token_id: 8 });

        chain.set_caller(alice);
        nft.set_approval_for_all(bob, false).unwrap();
        assert_eq!(nft.is_approved_for_all(alice, bob), Ok(false));
        let event: ApprovalForAll = chain.last_event(nft.address());
        assert_eq!(event, ApprovalForAll { owner: alice, operator: bob, approved: false });
        chain.set_caller(bob);
        assert_reverts(nft.transfer_from(alice, bob, 8), Error::NotAuthorized);
        assert_reverts(nft.approve(bob, 8), Error::NotAuthorized);
        assert_eq!(nft.owner_of(8), Ok(alice));
    }

    #[test]
    fn an_operator_of_someone_else_has_no_rights() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let (alice, bob, carol) =
            (TestChain::account(1), TestChain::account(2), TestChain::account(3));
        chain.set_caller(carol);
        nft.set_approval_for_all(bob, true).unwrap();
        chain.set_caller(bob);
        assert_reverts(nft.transfer_from(alice, bob, 7), Error::NotAuthorized);
        assert_eq!(nft.owner_of(7), Ok(alice));
    }

    #[test]
    fn a_stranger_cannot_transfer_and_nothing_changes() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let (alice, mallory) = (TestChain::account(1), TestChain::account(9));
        let events = chain.events().len();
        chain.set_caller(mallory);
        assert_reverts(nft.transfer_from(alice, mallory, 7), Error::NotAuthorized);
        assert_eq!(nft.owner_of(7), Ok(alice));
        assert_eq!(nft.balance_of(alice), Ok(1));
        assert_eq!(nft.balance_of(mallory), Ok(0));
        assert_eq!(chain.events().len(), events);
    }

    #[test]
    fn transfer_with_the_wrong_from_reverts() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let (alice, bob, carol) =
            (TestChain::account(1), TestChain::account(2), TestChain::account(3));
        chain.set_caller(alice);
        assert_reverts(nft.transfer_from(bob, carol, 7), Error::WrongFrom);
        assert_eq!(nft.owner_of(7), Ok(alice));
        assert_eq!(nft.balance_of(bob), Ok(0));
        assert_eq!(nft.balance_of(carol), Ok(0));
    }

    #[test]
    fn transfer_to_the_zero_address_reverts_and_keeps_the_approval() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let (alice, bob) = (TestChain::account(1), TestChain::account(2));
        chain.set_caller(alice);
        nft.approve(bob, 7).unwrap();
        assert_reverts(nft.transfer_from(alice, Address::ZERO, 7), Error::ZeroAddress);
        assert_eq!(nft.owner_of(7), Ok(alice));
        assert_eq!(nft.get_approved(7), Ok(Some(bob)));
        assert_eq!(nft.balance_of(alice), Ok(1));
    }

    #[test]
    fn transfer_and_approve_of_an_unminted_token_revert() {
        let chain = TestChain::new();
        let nft = deploy(&chain);
        let (alice, bob) = (TestChain::account(0), TestChain::account(2));
        assert_reverts(nft.transfer_from(alice, bob, 3), Error::NoSuchToken);
        assert_reverts(nft.approve(bob, 3), Error::NoSuchToken);
        assert!(chain.events().is_empty());
    }

    #[test]
    fn only_the_owner_or_an_operator_may_approve() {
        let chain = TestChain::new();
        let nft = deploy_with_token(&chain);
        let (alice, bob, carol) =
            (TestChain::account(1), TestChain::account(2), TestChain::account(3));
        chain.set_caller(alice);
        nft.approve(bob, 7).unwrap();
        // Being approved for a token does not allow approving someone else for it.
        chain.set_caller(bob);
        assert_reverts(nft.approve(carol, 7), Error::NotAuthorized);
        chain.set_caller(carol);
        assert_reverts(nft.approve(carol, 7), Error::NotAuthorized);
        assert_eq!(nft.get_approved(7), Ok(Some(bob)));
    }

    #[test]
    fn an_owner_cannot_be_their_own_operator() {
        let chain = TestChain::new();
        let nft = deploy(&chain);
        let alice = TestChain::account(1);
        chain.set_caller(alice);
        assert_reverts(nft.set_approval_for_all(alice, true), Error::SelfApproval);
        assert_eq!(nft.is_approved_for_all(alice, alice), Ok(false));
        assert!(chain.events().is_empty());
    }

    #[test]
    fn methods_refuse_value() {
        let chain = TestChain::new();
        let nft = deploy(&chain);
        let paying = NftRef::at(nft.address()).with_value(1);
        let revert =
            paying.mint(TestChain::account(1), 1, URI.into()).unwrap_err().revert().unwrap();
        assert_eq!(revert.code, altan_sdk::codes::NOT_PAYABLE);
        assert_reverts(nft.owner_of(1), Error::NoSuchToken);
        assert_eq!(chain.balance(nft.address()), 0);
    }
}
