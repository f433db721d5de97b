//! The nft contract on the real runtime: minting, queries, approvals, operators, reverts, events.

use altan_primitives::{Address, ExecutionStatus, Receipt};
use altan_sdk::{ContractError, Event, Revert};
use altan_tests::chain::{Chain, GAS_PRICE, account, revert_of};
use altan_tests::wasm;
use nft::{Approval, ApprovalForAll, Error, MAX_URI_LEN, Transfer};
use parity_scale_codec::{Decode, DecodeAll, Encode};

const URI: &str = "ipfs://bafy/7.json";

/// Deploys the collection from account 0, the minter.
fn deploy(chain: &mut Chain) -> Address {
    chain.deploy_ok(0, wasm::get("nft"), (String::from("Altan Cats"), String::from("CAT")))
}

/// A collection where account 1 owns token 7.
fn deploy_with_token(chain: &mut Chain) -> Address {
    let nft = deploy(chain);
    let receipt = chain.call(0, nft, "mint", (account(1), 7u64, String::from(URI)), 0);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    nft
}

/// Asserts that `receipt` succeeded with exactly `expected` as its events, all from `contract`,
/// each carrying its type's topics and decoding whole.
fn assert_events<E: Event + Decode + PartialEq + core::fmt::Debug>(
    receipt: &Receipt,
    contract: Address,
    expected: &[E],
) {
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    assert_eq!(receipt.events.len(), expected.len(), "{receipt:?}");
    for (raw, want) in receipt.events.iter().zip(expected) {
        assert_eq!(raw.contract, contract);
        assert_eq!(raw.topics, want.topics());
        assert_eq!(raw.data, want.encode());
        assert_eq!(&E::decode_all(&mut raw.data.as_slice()).unwrap(), want);
    }
}

/// Sends `method` from account `from` and asserts that it reverted with `error`'s code and
/// message, emitted nothing and cost the sender exactly its fee.
fn assert_call_reverts(
    chain: &mut Chain,
    from: u8,
    nft: Address,
    method: &str,
    args: impl Encode,
    error: Error,
) {
    let before = chain.account(&account(from)).balance;
    let receipt = chain.call(from, nft, method, args, 0);
    let revert = revert_of(&receipt);
    assert_eq!((revert.code, revert.message), (error.code(), error.message()), "{method}");
    assert!(receipt.events.is_empty());
    let fee = u128::from(receipt.gas_used) * GAS_PRICE;
    assert!(fee > 0);
    assert_eq!(chain.account(&account(from)).balance, before - fee);
}

/// Asserts that the read-only `method` reverts with `error`'s code and message.
fn assert_query_reverts(
    chain: &Chain,
    nft: Address,
    method: &str,
    args: impl Encode,
    error: Error,
) {
    let outcome = chain.query(nft, method, args);
    assert_eq!(outcome.status, ExecutionStatus::Revert, "{method}: {outcome:?}");
    let revert = Revert::decode_all(&mut outcome.output.as_slice()).unwrap();
    assert_eq!((revert.code, revert.message), (error.code(), error.message()), "{method}");
}

fn owner_of(chain: &Chain, nft: Address, token_id: u64) -> Address {
    chain.query_ok(nft, "owner_of", (token_id,))
}

fn balance_of(chain: &Chain, nft: Address, owner: Address) -> u64 {
    chain.query_ok(nft, "balance_of", (owner,))
}

fn get_approved(chain: &Chain, nft: Address, token_id: u64) -> Option<Address> {
    chain.query_ok(nft, "get_approved", (token_id,))
}

#[test]
fn nft_deployer_mints_and_queries_answer_on_chain() {
    let mut chain = Chain::new();
    let nft = deploy(&mut chain);
    assert_eq!(chain.query_ok::<String>(nft, "name", ()), "Altan Cats");
    assert_eq!(chain.query_ok::<String>(nft, "symbol", ()), "CAT");
    assert_eq!(chain.query_ok::<Address>(nft, "minter", ()), account(0));
    assert_eq!(balance_of(&chain, nft, account(1)), 0);

    let (alice, bob) = (account(1), account(2));
    let receipt = chain.call(0, nft, "mint", (alice, 7u64, String::from(URI)), 0);
    assert_events(&receipt, nft, &[Transfer { from: Address::ZERO, to: alice, token_id: 7 }]);
    assert!(receipt.output.is_empty(), "mint returns nothing");
    // The topics are the name's hash, then the three indexed fields.
    assert_eq!(receipt.events[0].topics.len(), 4);
    let receipt = chain.call(0, nft, "mint", (alice, 8u64, String::new()), 0);
    assert_events(&receipt, nft, &[Transfer { from: Address::ZERO, to: alice, token_id: 8 }]);
    let receipt = chain.call(0, nft, "mint", (bob, 9u64, "u".repeat(MAX_URI_LEN)), 0);
    assert_events(&receipt, nft, &[Transfer { from: Address::ZERO, to: bob, token_id: 9 }]);

    assert_eq!(owner_of(&chain, nft, 7), alice);
    assert_eq!(owner_of(&chain, nft, 8), alice);
    assert_eq!(owner_of(&chain, nft, 9), bob);
    assert_eq!(balance_of(&chain, nft, alice), 2);
    assert_eq!(balance_of(&chain, nft, bob), 1);
    assert_eq!(chain.query_ok::<String>(nft, "token_uri", (7u64,)), URI);
    assert_eq!(chain.query_ok::<String>(nft, "token_uri", (8u64,)), "");
    assert_eq!(chain.query_ok::<String>(nft, "token_uri", (9u64,)), "u".repeat(MAX_URI_LEN));
    assert_eq!(get_approved(&chain, nft, 7), None);
    assert!(!chain.query_ok::<bool>(nft, "is_approved_for_all", (alice, bob)));

    // Views of a token that does not exist revert with the contract's error.
    for method in ["owner_of", "token_uri", "get_approved"] {
        assert_query_reverts(&chain, nft, method, (10u64,), Error::NoSuchToken);
    }
}

#[test]
fn nft_mint_errors_revert_with_code_and_message_and_change_nothing() {
    let mut chain = Chain::new();
    let nft = deploy_with_token(&mut chain);
    let (alice, bob) = (account(1), account(2));

    // Only the deployer mints, even to themselves.
    assert_call_reverts(&mut chain, 1, nft, "mint", (alice, 1u64, String::new()), Error::NotOwner);
    // A token id is minted once; the first mint stays.
    assert_call_reverts(
        &mut chain,
        0,
        nft,
        "mint",
        (bob, 7u64, String::from("other")),
        Error::AlreadyMinted,
    );
    assert_eq!(owner_of(&chain, nft, 7), alice);
    assert_eq!(chain.query_ok::<String>(nft, "token_uri", (7u64,)), URI);
    // Nobody controls the zero address.
    assert_call_reverts(
        &mut chain,
        0,
        nft,
        "mint",
        (Address::ZERO, 2u64, String::new()),
        Error::ZeroAddress,
    );
    // One byte over the limit.
    assert_call_reverts(
        &mut chain,
        0,
        nft,
        "mint",
        (bob, 3u64, "u".repeat(MAX_URI_LEN + 1)),
        Error::UriTooLong,
    );
    for token_id in [1u64, 2, 3] {
        assert_query_reverts(&chain, nft, "owner_of", (token_id,), Error::NoSuchToken);
        assert_query_reverts(&chain, nft, "token_uri", (token_id,), Error::NoSuchToken);
    }
    assert_eq!(balance_of(&chain, nft, alice), 1);
    assert_eq!(balance_of(&chain, nft, bob), 0);
    assert_eq!(balance_of(&chain, nft, Address::ZERO), 0);

    // Minting refuses value: the SDK's code, and the value stays with the sender.
    let before = chain.account(&account(0)).balance;
    let receipt = chain.call(0, nft, "mint", (bob, 4u64, String::new()), 5);
    assert_eq!(revert_of(&receipt).code, altan_sdk::codes::NOT_PAYABLE);
    assert_eq!(chain.account(&account(0)).balance, before - u128::from(receipt.gas_used));
    assert_eq!(chain.account(&nft).balance, 0);
    assert_query_reverts(&chain, nft, "owner_of", (4u64,), Error::NoSuchToken);
}

#[test]
fn nft_owner_transfers_and_loses_all_rights() {
    let mut chain = Chain::new();
    let nft = deploy_with_token(&mut chain);
    let (alice, bob) = (account(1), account(2));
    let receipt = chain.call(1, nft, "transfer_from", (alice, bob, 7u64), 0);
    assert_events(&receipt, nft, &[Transfer { from: alice, to: bob, token_id: 7 }]);
    assert_eq!(owner_of(&chain, nft, 7), bob);
    assert_eq!(balance_of(&chain, nft, alice), 0);
    assert_eq!(balance_of(&chain, nft, bob), 1);
    assert_eq!(chain.query_ok::<String>(nft, "token_uri", (7u64,)), URI);
    // The previous owner can neither move nor approve it any more.
    assert_call_reverts(
        &mut chain,
        1,
        nft,
        "transfer_from",
        (bob, alice, 7u64),
        Error::NotAuthorized,
    );
    assert_call_reverts(&mut chain, 1, nft, "approve", (alice, 7u64), Error::NotAuthorized);
    assert_eq!(owner_of(&chain, nft, 7), bob);
}

#[test]
fn nft_approved_address_transfers_once_and_the_approval_is_cleared() {
    let mut chain = Chain::new();
    let nft = deploy_with_token(&mut chain);
    let (alice, bob, carol) = (account(1), account(2), account(3));

    let receipt = chain.call(1, nft, "approve", (bob, 7u64), 0);
    assert_events(&receipt, nft, &[Approval { owner: alice, approved: bob, token_id: 7 }]);
    assert_eq!(get_approved(&chain, nft, 7), Some(bob));

    // Being approved for a token does not allow approving someone else for it.
    assert_call_reverts(&mut chain, 2, nft, "approve", (carol, 7u64), Error::NotAuthorized);
    // The approved address must still name the real owner as `from`.
    assert_call_reverts(&mut chain, 2, nft, "transfer_from", (carol, bob, 7u64), Error::WrongFrom);
    // A move to the zero address is refused and keeps the approval.
    assert_call_reverts(
        &mut chain,
        2,
        nft,
        "transfer_from",
        (alice, Address::ZERO, 7u64),
        Error::ZeroAddress,
    );
    assert_eq!(get_approved(&chain, nft, 7), Some(bob));
    assert_eq!(owner_of(&chain, nft, 7), alice);

    // The approved address moves the token to a third party; the caller is not in the event.
    let receipt = chain.call(2, nft, "transfer_from", (alice, carol, 7u64), 0);
    assert_events(&receipt, nft, &[Transfer { from: alice, to: carol, token_id: 7 }]);
    assert_eq!(owner_of(&chain, nft, 7), carol);
    assert_eq!(get_approved(&chain, nft, 7), None);
    assert_eq!(balance_of(&chain, nft, alice), 0);
    assert_eq!(balance_of(&chain, nft, bob), 0);
    assert_eq!(balance_of(&chain, nft, carol), 1);
    // The approval went with the move.
    assert_call_reverts(
        &mut chain,
        2,
        nft,
        "transfer_from",
        (carol, bob, 7u64),
        Error::NotAuthorized,
    );
    assert_eq!(owner_of(&chain, nft, 7), carol);

    // Approving the zero address clears an approval.
    let receipt = chain.call(3, nft, "approve", (bob, 7u64), 0);
    assert_events(&receipt, nft, &[Approval { owner: carol, approved: bob, token_id: 7 }]);
    let receipt = chain.call(3, nft, "approve", (Address::ZERO, 7u64), 0);
    assert_events(
        &receipt,
        nft,
        &[Approval { owner: carol, approved: Address::ZERO, token_id: 7 }],
    );
    assert_eq!(get_approved(&chain, nft, 7), None);
    assert_call_reverts(
        &mut chain,
        2,
        nft,
        "transfer_from",
        (carol, bob, 7u64),
        Error::NotAuthorized,
    );
}

#[test]
fn nft_operator_transfers_and_approves_until_revoked() {
    let mut chain = Chain::new();
    let nft = deploy_with_token(&mut chain);
    let (alice, bob, carol) = (account(1), account(2), account(3));
    let receipt = chain.call(0, nft, "mint", (alice, 8u64, String::from(URI)), 0);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");

    let receipt = chain.call(1, nft, "set_approval_for_all", (bob, true), 0);
    assert_events(&receipt, nft, &[ApprovalForAll { owner: alice, operator: bob, approved: true }]);
    // Two indexed fields: the approval flag is data only.
    assert_eq!(receipt.events[0].topics.len(), 3);
    assert!(chain.query_ok::<bool>(nft, "is_approved_for_all", (alice, bob)));
    assert!(!chain.query_ok::<bool>(nft, "is_approved_for_all", (bob, alice)));

    // The operator moves one of the owner's tokens and approves another on the owner's behalf:
    // the Approval names the owner.
    let receipt = chain.call(2, nft, "transfer_from", (alice, carol, 7u64), 0);
    assert_events(&receipt, nft, &[Transfer { from: alice, to: carol, token_id: 7 }]);
    assert_eq!(owner_of(&chain, nft, 7), carol);
    let receipt = chain.call(2, nft, "approve", (carol, 8u64), 0);
    assert_events(&receipt, nft, &[Approval { owner: alice, approved: carol, token_id: 8 }]);
    assert_eq!(get_approved(&chain, nft, 8), Some(carol));
    // Operating for alice gives no rights over carol's tokens.
    assert_call_reverts(
        &mut chain,
        2,
        nft,
        "transfer_from",
        (carol, bob, 7u64),
        Error::NotAuthorized,
    );

    let receipt = chain.call(1, nft, "set_approval_for_all", (bob, false), 0);
    assert_events(
        &receipt,
        nft,
        &[ApprovalForAll { owner: alice, operator: bob, approved: false }],
    );
    assert!(!chain.query_ok::<bool>(nft, "is_approved_for_all", (alice, bob)));
    assert_call_reverts(
        &mut chain,
        2,
        nft,
        "transfer_from",
        (alice, bob, 8u64),
        Error::NotAuthorized,
    );
    assert_call_reverts(&mut chain, 2, nft, "approve", (bob, 8u64), Error::NotAuthorized);
    assert_eq!(owner_of(&chain, nft, 8), alice);
    // Carol's approval for token 8, given by the operator while allowed, still stands.
    let receipt = chain.call(3, nft, "transfer_from", (alice, carol, 8u64), 0);
    assert_events(&receipt, nft, &[Transfer { from: alice, to: carol, token_id: 8 }]);
    assert_eq!(balance_of(&chain, nft, carol), 2);
    assert_eq!(balance_of(&chain, nft, alice), 0);

    // An owner cannot be their own operator.
    assert_call_reverts(
        &mut chain,
        3,
        nft,
        "set_approval_for_all",
        (carol, true),
        Error::SelfApproval,
    );
    assert!(!chain.query_ok::<bool>(nft, "is_approved_for_all", (carol, carol)));
}

#[test]
fn nft_strangers_and_unminted_tokens_revert() {
    let mut chain = Chain::new();
    let nft = deploy_with_token(&mut chain);
    let (alice, mallory) = (account(1), account(9));
    assert_call_reverts(
        &mut chain,
        9,
        nft,
        "transfer_from",
        (alice, mallory, 7u64),
        Error::NotAuthorized,
    );
    assert_call_reverts(&mut chain, 9, nft, "approve", (mallory, 7u64), Error::NotAuthorized);
    // Authorization is checked before `from`: a stranger learns nothing from a wrong `from`.
    assert_call_reverts(
        &mut chain,
        9,
        nft,
        "transfer_from",
        (mallory, mallory, 7u64),
        Error::NotAuthorized,
    );
    // The owner with a wrong `from`.
    assert_call_reverts(
        &mut chain,
        1,
        nft,
        "transfer_from",
        (mallory, alice, 7u64),
        Error::WrongFrom,
    );
    assert_call_reverts(
        &mut chain,
        1,
        nft,
        "transfer_from",
        (alice, mallory, 3u64),
        Error::NoSuchToken,
    );
    assert_call_reverts(&mut chain, 1, nft, "approve", (mallory, 3u64), Error::NoSuchToken);
    assert_eq!(owner_of(&chain, nft, 7), alice);
    assert_eq!(balance_of(&chain, nft, alice), 1);
    assert_eq!(balance_of(&chain, nft, mallory), 0);
    assert_eq!(get_approved(&chain, nft, 7), None);
}
