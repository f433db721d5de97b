//! The escrow contract on the real runtime: funded at deployment, released to the seller or
//! refunded to the buyer exactly once, with the buyer's refund gated by the block time.

use altan_primitives::{Action, Address, Balance, ExecutionStatus, Receipt};
use altan_sdk::{ContractError, Event};
use altan_tests::chain::{Chain, GAS_LIMIT, GAS_PRICE, account, revert_of};
use altan_tests::wasm;
use escrow::{Error, Funded, Refunded, Released, State, Terms};
use parity_scale_codec::{Decode, DecodeAll};

const AMOUNT: Balance = 5_000;
const BUYER: u8 = 1;
const SELLER: u8 = 2;
const ARBITER: u8 = 3;
const STRANGER: u8 = 9;

/// The block time the next transaction runs at.
fn now(chain: &Chain) -> u64 {
    chain.context().timestamp_ms
}

/// Executes empty blocks until the next transaction runs at `time_ms`.
fn advance_to(chain: &mut Chain, time_ms: u64) {
    assert!(now(chain) <= time_ms, "block time only moves forward");
    while now(chain) < time_ms {
        assert!(chain.execute(Vec::new()).is_empty());
    }
    assert_eq!(now(chain), time_ms, "block times are whole seconds apart");
}

/// The fee `receipt` cost its sender.
fn fee(receipt: &Receipt) -> Balance {
    Balance::from(receipt.gas_used) * GAS_PRICE
}

fn balance(chain: &Chain, who: u8) -> Balance {
    chain.account(&account(who)).balance
}

/// The only event of `receipt`, checked to come from `contract` with `E`'s topics, decoded whole.
fn only_event<E: Event + Decode>(receipt: &Receipt, contract: Address) -> E {
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    assert_eq!(receipt.events.len(), 1, "{receipt:?}");
    let raw = &receipt.events[0];
    assert_eq!(raw.contract, contract);
    let event = E::decode_all(&mut raw.data.as_slice()).expect("event decodes");
    assert_eq!(raw.topics, event.topics());
    event
}

fn assert_reverted_with(receipt: &Receipt, error: Error) {
    let revert = revert_of(receipt);
    assert_eq!((revert.code, revert.message), (error.code(), error.message()));
    assert!(receipt.events.is_empty());
}

/// Deploys from the buyer with `value`, and returns the receipt.
fn deploy_raw(
    chain: &mut Chain,
    value: Balance,
    seller: Address,
    arbiter: Address,
    deadline_ms: u64,
) -> Receipt {
    chain.deploy(BUYER, wasm::get("escrow"), (seller, arbiter, deadline_ms), value)
}

/// An escrow of `AMOUNT` with its buyer's refund deadline at `deadline_ms`.
fn deploy(chain: &mut Chain, deadline_ms: u64) -> Address {
    let receipt = deploy_raw(chain, AMOUNT, account(SELLER), account(ARBITER), deadline_ms);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    let escrow = receipt.contract_address.expect("deployed");
    let funded: Funded = only_event(&receipt, escrow);
    let expected = Funded {
        buyer: account(BUYER),
        seller: account(SELLER),
        arbiter: account(ARBITER),
        amount: AMOUNT,
        deadline_ms,
    };
    assert_eq!(funded, expected);
    escrow
}

/// Calls `method` from `from` and asserts that it reverted with `error`, moved nothing out of the
/// escrow and cost the sender exactly its fee.
fn assert_call_reverts(chain: &mut Chain, from: u8, escrow: Address, method: &str, error: Error) {
    let (sender, held) = (balance(chain, from), chain.account(&escrow).balance);
    let receipt = chain.call(from, escrow, method, (), 0);
    assert_reverted_with(&receipt, error);
    assert_eq!(balance(chain, from), sender - fee(&receipt), "{method}");
    assert_eq!(chain.account(&escrow).balance, held);
}

fn state(chain: &Chain, escrow: Address) -> State {
    chain.query_ok(escrow, "state", ())
}

#[test]
fn escrow_deployment_holds_the_value_and_records_the_terms() {
    let mut chain = Chain::new();
    let buyer_before = balance(&chain, BUYER);
    let deadline = now(&chain) + 60_000;
    let receipt = deploy_raw(&mut chain, AMOUNT, account(SELLER), account(ARBITER), deadline);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    let escrow = receipt.contract_address.unwrap();
    let funded: Funded = only_event(&receipt, escrow);
    assert_eq!(funded.amount, AMOUNT);
    assert_eq!(balance(&chain, BUYER), buyer_before - AMOUNT - fee(&receipt));
    assert_eq!(chain.account(&escrow).balance, AMOUNT);
    let terms = Terms {
        buyer: account(BUYER),
        seller: account(SELLER),
        arbiter: account(ARBITER),
        amount: AMOUNT,
        deadline_ms: deadline,
    };
    assert_eq!(chain.query_ok::<Terms>(escrow, "terms", ()), terms);
    assert_eq!(state(&chain, escrow), State::Funded);
}

/// A deployment's value, seller and arbiter, its deadline as a function of the block time it runs
/// at, and the error it must revert with.
type DeployCase = (Balance, Address, Address, fn(u64) -> u64, Error);

#[test]
fn escrow_deployment_errors_revert_and_return_the_value() {
    let mut chain = Chain::new();
    let (seller, arbiter) = (account(SELLER), account(ARBITER));
    // Deadlines as functions of the block time the deployment runs at.
    let cases: [DeployCase; 6] = [
        (0, seller, arbiter, |now| now + 60_000, Error::NotFunded),
        (AMOUNT, Address::ZERO, arbiter, |now| now + 60_000, Error::ZeroAddress),
        (AMOUNT, seller, Address::ZERO, |now| now + 60_000, Error::ZeroAddress),
        // The deadline must be strictly after the deployment's block time.
        (AMOUNT, seller, arbiter, |now| now, Error::DeadlineInPast),
        (AMOUNT, seller, arbiter, |now| now - 1, Error::DeadlineInPast),
        (AMOUNT, seller, arbiter, |_| 0, Error::DeadlineInPast),
    ];
    for (value, seller, arbiter, deadline, error) in cases {
        let deadline = deadline(now(&chain));
        let before = balance(&chain, BUYER);
        let receipt = deploy_raw(&mut chain, value, seller, arbiter, deadline);
        assert_eq!(receipt.contract_address, None, "{error:?}");
        assert_eq!(balance(&chain, BUYER), before - fee(&receipt), "{error:?}");
        assert_reverted_with(&receipt, error);
    }
    // One ms after the block time is accepted.
    let deadline = now(&chain) + 1;
    let escrow = deploy(&mut chain, deadline);
    assert_eq!(chain.query_ok::<Terms>(escrow, "terms", ()).deadline_ms, deadline);
}

#[test]
fn escrow_release_pays_the_seller_once() {
    let mut chain = Chain::new();
    let deadline = now(&chain) + 60_000;
    let escrow = deploy(&mut chain, deadline);
    // The seller and strangers cannot release.
    assert_call_reverts(&mut chain, SELLER, escrow, "release", Error::NotAuthorized);
    assert_call_reverts(&mut chain, STRANGER, escrow, "release", Error::NotAuthorized);
    assert_eq!(state(&chain, escrow), State::Funded);

    let (seller_before, buyer_before) = (balance(&chain, SELLER), balance(&chain, BUYER));
    let receipt = chain.call(BUYER, escrow, "release", (), 0);
    let released: Released = only_event(&receipt, escrow);
    assert_eq!(released, Released { by: account(BUYER), seller: account(SELLER), amount: AMOUNT });
    assert_eq!(balance(&chain, SELLER), seller_before + AMOUNT);
    assert_eq!(balance(&chain, BUYER), buyer_before - fee(&receipt));
    assert_eq!(chain.account(&escrow).balance, 0);
    assert_eq!(state(&chain, escrow), State::Released);

    // Settled: every further release or refund reverts, even the buyer's after the deadline.
    let seller_after = balance(&chain, SELLER);
    assert_call_reverts(&mut chain, BUYER, escrow, "release", Error::AlreadySettled);
    assert_call_reverts(&mut chain, ARBITER, escrow, "release", Error::AlreadySettled);
    assert_call_reverts(&mut chain, ARBITER, escrow, "refund", Error::AlreadySettled);
    let seller_receipt = chain.call(SELLER, escrow, "refund", (), 0);
    assert_reverted_with(&seller_receipt, Error::AlreadySettled);
    advance_to(&mut chain, deadline);
    assert_call_reverts(&mut chain, BUYER, escrow, "refund", Error::AlreadySettled);
    assert_eq!(state(&chain, escrow), State::Released);
    assert_eq!(balance(&chain, SELLER), seller_after - fee(&seller_receipt));
}

#[test]
fn escrow_arbiter_releases_even_after_the_deadline() {
    let mut chain = Chain::new();
    let deadline = now(&chain) + 2_000;
    let escrow = deploy(&mut chain, deadline);
    advance_to(&mut chain, deadline + 5_000);
    let (seller_before, arbiter_before) = (balance(&chain, SELLER), balance(&chain, ARBITER));
    let receipt = chain.call(ARBITER, escrow, "release", (), 0);
    let released: Released = only_event(&receipt, escrow);
    assert_eq!(
        released,
        Released { by: account(ARBITER), seller: account(SELLER), amount: AMOUNT }
    );
    assert_eq!(balance(&chain, SELLER), seller_before + AMOUNT);
    assert_eq!(balance(&chain, ARBITER), arbiter_before - fee(&receipt));
    assert_eq!(state(&chain, escrow), State::Released);
}

#[test]
fn escrow_buyer_refund_is_too_early_before_the_deadline_and_allowed_from_it() {
    let mut chain = Chain::new();
    // Block times are whole seconds: this deadline falls 1 ms after a block.
    let deployed_at = now(&chain);
    let deadline = deployed_at + 3_001;
    let escrow = deploy(&mut chain, deadline);
    // The blocks at +1 s, +2 s and +3 s (1 ms before the deadline) are all too early.
    for _ in 0..3 {
        assert!(now(&chain) < deadline);
        assert_call_reverts(&mut chain, BUYER, escrow, "refund", Error::TooEarly);
    }
    assert_eq!(now(&chain), deadline + 999);
    // A stranger has no right to refund, even after the deadline.
    assert_call_reverts(&mut chain, STRANGER, escrow, "refund", Error::NotAuthorized);
    assert_eq!(state(&chain, escrow), State::Funded);
    assert_eq!(chain.account(&escrow).balance, AMOUNT);

    let buyer_before = balance(&chain, BUYER);
    let receipt = chain.call(BUYER, escrow, "refund", (), 0);
    let refunded: Refunded = only_event(&receipt, escrow);
    assert_eq!(refunded, Refunded { by: account(BUYER), buyer: account(BUYER), amount: AMOUNT });
    assert_eq!(balance(&chain, BUYER), buyer_before + AMOUNT - fee(&receipt));
    assert_eq!(chain.account(&escrow).balance, 0);
    assert_eq!(state(&chain, escrow), State::Refunded);
    // Refunded: a release or second refund reverts.
    assert_call_reverts(&mut chain, BUYER, escrow, "refund", Error::AlreadySettled);
    assert_call_reverts(&mut chain, BUYER, escrow, "release", Error::AlreadySettled);
    assert_call_reverts(&mut chain, ARBITER, escrow, "release", Error::AlreadySettled);
}

#[test]
fn escrow_buyer_refunds_at_the_deadline_exactly() {
    let mut chain = Chain::new();
    let deadline = now(&chain) + 10_000;
    let escrow = deploy(&mut chain, deadline);
    advance_to(&mut chain, deadline - 1_000);
    assert_call_reverts(&mut chain, BUYER, escrow, "refund", Error::TooEarly);
    assert_eq!(now(&chain), deadline);
    let buyer_before = balance(&chain, BUYER);
    let receipt = chain.call(BUYER, escrow, "refund", (), 0);
    let refunded: Refunded = only_event(&receipt, escrow);
    assert_eq!(refunded.by, account(BUYER));
    assert_eq!(balance(&chain, BUYER), buyer_before + AMOUNT - fee(&receipt));
    assert_eq!(state(&chain, escrow), State::Refunded);
}

#[test]
fn escrow_seller_and_arbiter_refund_before_the_deadline() {
    let mut chain = Chain::new();
    let deadline = now(&chain) + 3_600_000;
    for refunder in [SELLER, ARBITER] {
        let escrow = deploy(&mut chain, deadline);
        let buyer_before = balance(&chain, BUYER);
        let receipt = chain.call(refunder, escrow, "refund", (), 0);
        let refunded: Refunded = only_event(&receipt, escrow);
        assert_eq!(
            refunded,
            Refunded { by: account(refunder), buyer: account(BUYER), amount: AMOUNT }
        );
        // The buyer did not send the refund: they get exactly the amount back.
        assert_eq!(balance(&chain, BUYER), buyer_before + AMOUNT);
        assert_eq!(chain.account(&escrow).balance, 0);
        assert_eq!(state(&chain, escrow), State::Refunded);
        assert_call_reverts(&mut chain, refunder, escrow, "refund", Error::AlreadySettled);
        assert_call_reverts(&mut chain, BUYER, escrow, "release", Error::AlreadySettled);
    }
}

#[test]
fn escrow_settlement_pays_the_recorded_amount_only() {
    let mut chain = Chain::new();
    let deadline = now(&chain) + 60_000;
    let escrow = deploy(&mut chain, deadline);
    // A plain transfer to the contract runs no code: it is not part of the deal.
    let tx = chain.transaction(STRANGER, Action::Transfer { to: escrow, value: 7 }, GAS_LIMIT);
    let receipt = chain.execute(vec![tx]).remove(0);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    assert!(receipt.events.is_empty());
    assert_eq!(chain.account(&escrow).balance, AMOUNT + 7);

    let seller_before = balance(&chain, SELLER);
    let receipt = chain.call(ARBITER, escrow, "release", (), 0);
    let released: Released = only_event(&receipt, escrow);
    assert_eq!(released.amount, AMOUNT);
    assert_eq!(balance(&chain, SELLER), seller_before + AMOUNT);
    assert_eq!(chain.account(&escrow).balance, 7);
}

#[test]
fn escrow_methods_refuse_value() {
    let mut chain = Chain::new();
    let deadline = now(&chain) + 60_000;
    let escrow = deploy(&mut chain, deadline);
    for method in ["release", "refund"] {
        let before = balance(&chain, BUYER);
        let receipt = chain.call(BUYER, escrow, method, (), 1);
        assert_eq!(revert_of(&receipt).code, altan_sdk::codes::NOT_PAYABLE);
        assert_eq!(balance(&chain, BUYER), before - fee(&receipt));
    }
    assert_eq!(chain.account(&escrow).balance, AMOUNT);
    assert_eq!(state(&chain, escrow), State::Funded);
}
