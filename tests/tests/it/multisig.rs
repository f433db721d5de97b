//! The multisig contract on the real runtime: deposits, native transfers and calls into a
//! deployed token, executed once two of three owners confirm.

use altan_primitives::{Action, Address, Balance, ExecutionStatus, Receipt};
use altan_sdk::{ContractError, Event};
use altan_tests::chain::{Chain, GAS_LIMIT, GAS_PRICE, account, call_input, revert_of};
use altan_tests::wasm;
use multisig::{
    Confirmed, Deposited, Error, Executed, Outcome, Proposal, Proposed, Revoked, Status,
};
use parity_scale_codec::{Decode, DecodeAll, Encode};

/// The funder: deploys the wallet and the token and deposits.
const FUNDER: u8 = 0;
/// Owners 1, 2 and 3 (threshold 2); account 7 receives; account 9 is a stranger.
const RECIPIENT: u8 = 7;
const STRANGER: u8 = 9;
/// The gas the call proposals give the callee: a token transfer needs far less.
const CALL_GAS: u64 = 100_000;

fn owners() -> Vec<Address> {
    vec![account(1), account(2), account(3)]
}

fn deploy(chain: &mut Chain) -> Address {
    chain.deploy_ok(FUNDER, wasm::get("multisig"), (owners(), 2u32))
}

/// A wallet holding `funds`, deposited by the funder.
fn deploy_funded(chain: &mut Chain, funds: Balance) -> Address {
    let wallet = deploy(chain);
    let receipt = chain.call(FUNDER, wallet, "deposit", (), funds);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    assert_eq!(chain.account(&wallet).balance, funds);
    wallet
}

/// The fee `receipt` cost its sender.
fn fee(receipt: &Receipt) -> Balance {
    Balance::from(receipt.gas_used) * GAS_PRICE
}

/// Event `index` of `receipt`, checked to come from `contract` with `E`'s topics, decoded whole.
fn event<E: Event + Decode>(receipt: &Receipt, index: usize, contract: Address) -> E {
    let raw = &receipt.events[index];
    assert_eq!(raw.contract, contract, "{receipt:?}");
    let event = E::decode_all(&mut raw.data.as_slice()).expect("event decodes");
    assert_eq!(raw.topics, event.topics());
    event
}

/// Sends `method` and asserts that it reverted with `error`'s code and message, emitted nothing
/// and cost the sender exactly its fee.
fn assert_call_reverts(
    chain: &mut Chain,
    from: u8,
    wallet: Address,
    method: &str,
    args: impl Encode,
    error: Error,
) {
    let before = chain.account(&account(from)).balance;
    let receipt = chain.call(from, wallet, method, args, 0);
    let revert = revert_of(&receipt);
    assert_eq!((revert.code, revert.message), (error.code(), error.message()), "{method}");
    assert!(receipt.events.is_empty());
    assert_eq!(chain.account(&account(from)).balance, before - fee(&receipt));
}

/// Proposes from owner `from` and returns the id, checking the Proposed and Confirmed events
/// and the action stored (a plain transfer keeps no gas).
fn propose(
    chain: &mut Chain,
    from: u8,
    wallet: Address,
    to: Address,
    value: Balance,
    input: Vec<u8>,
    gas: u64,
) -> u64 {
    let is_call = !input.is_empty();
    let receipt = chain.call(from, wallet, "propose", (to, value, input.clone(), gas), 0);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    let id = u64::decode_all(&mut receipt.output.as_slice()).unwrap();
    assert_eq!(receipt.events.len(), 2);
    let proposer = account(from);
    let proposed: Proposed = event(&receipt, 0, wallet);
    assert_eq!(proposed, Proposed { id, proposer, to, value, is_call });
    let confirmed: Confirmed = event(&receipt, 1, wallet);
    assert_eq!(confirmed, Confirmed { id, owner: proposer, confirmations: 1 });
    let gas = if is_call { gas } else { 0 };
    let action = multisig::Action { proposer, to, value, input, gas };
    assert_eq!(chain.query_ok::<Proposal>(wallet, "proposal", (id,)).action, action);
    id
}

/// Confirms from owner `from`, checking the Confirmed event.
fn confirm(chain: &mut Chain, from: u8, wallet: Address, id: u64, confirmations: u32) {
    let receipt = chain.call(from, wallet, "confirm", (id,), 0);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    assert_eq!(receipt.events.len(), 1);
    let confirmed: Confirmed = event(&receipt, 0, wallet);
    assert_eq!(confirmed, Confirmed { id, owner: account(from), confirmations });
}

/// Executes from owner `from` and returns the receipt, checking that the transaction succeeded
/// with `success` as its output and an Executed event last.
fn execute(chain: &mut Chain, from: u8, wallet: Address, id: u64, success: bool) -> Receipt {
    let receipt = chain.call(from, wallet, "execute", (id,), 0);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    assert_eq!(bool::decode_all(&mut receipt.output.as_slice()).unwrap(), success);
    let last = receipt.events.len() - 1;
    let executed: Executed = event(&receipt, last, wallet);
    assert_eq!(executed, Executed { id, by: account(from), success });
    receipt
}

fn status(chain: &Chain, wallet: Address, id: u64) -> Status {
    chain.query_ok::<Proposal>(wallet, "proposal", (id,)).status
}

/// A token of 1_000 deployed by the funder, who moves `held` of it to `holder`.
fn deploy_token(chain: &mut Chain, holder: Address, held: u128) -> Address {
    let args = (String::from("Altan"), String::from("ALT"), 18u8, 1_000u128);
    let token = chain.deploy_ok(FUNDER, wasm::get("token"), args);
    let _: () = chain.call_ok(FUNDER, token, "transfer", (holder, held));
    assert_eq!(token_balance(chain, token, holder), held);
    token
}

fn token_balance(chain: &Chain, token: Address, who: Address) -> u128 {
    chain.query_ok(token, "balance_of", (who,))
}

fn transfer_input(to: Address, amount: u128) -> Vec<u8> {
    call_input("transfer", (to, amount))
}

#[test]
fn multisig_deploys_with_its_owners_and_takes_deposits() {
    let mut chain = Chain::new();
    let wallet = deploy(&mut chain);
    assert_eq!(chain.query_ok::<Vec<Address>>(wallet, "owners", ()), owners());
    assert_eq!(chain.query_ok::<u32>(wallet, "threshold", ()), 2);
    assert!(chain.query_ok::<bool>(wallet, "is_owner", (account(2),)));
    assert!(!chain.query_ok::<bool>(wallet, "is_owner", (account(FUNDER),)));
    assert_eq!(chain.query_ok::<u64>(wallet, "proposal_count", ()), 0);

    // Anyone may deposit; the value moves from the sender to the wallet.
    let before = chain.account(&account(5)).balance;
    let receipt = chain.call(5, wallet, "deposit", (), 700);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    assert_eq!(receipt.events.len(), 1);
    let deposited: Deposited = event(&receipt, 0, wallet);
    assert_eq!(deposited, Deposited { from: account(5), value: 700 });
    assert_eq!(chain.account(&wallet).balance, 700);
    assert_eq!(chain.account(&account(5)).balance, before - 700 - fee(&receipt));

    // Only deposit is payable: value sent to another method is refused and stays with the sender.
    let before = chain.account(&account(1)).balance;
    let receipt =
        chain.call(1, wallet, "propose", (account(RECIPIENT), 0u128, Vec::<u8>::new(), 0u64), 5);
    assert_eq!(revert_of(&receipt).code, altan_sdk::codes::NOT_PAYABLE);
    assert_eq!(chain.account(&account(1)).balance, before - fee(&receipt));
    assert_eq!(chain.account(&wallet).balance, 700);
    assert_eq!(chain.query_ok::<u64>(wallet, "proposal_count", ()), 0);
}

#[test]
fn multisig_deployment_refuses_bad_owner_sets() {
    let mut chain = Chain::new();
    let code = wasm::get("multisig");
    let (a, b) = (account(1), account(2));
    let cases = [
        ((owners(), 0u32), Error::ThresholdOutOfRange),
        ((owners(), 4), Error::ThresholdOutOfRange),
        ((Vec::new(), 1), Error::ThresholdOutOfRange),
        ((vec![a, b, a], 2), Error::DuplicateOwner),
        ((vec![a, Address::ZERO], 1), Error::ZeroOwner),
    ];
    for (args, error) in cases {
        let receipt = chain.deploy(FUNDER, code, args, 0);
        let revert = revert_of(&receipt);
        assert_eq!((revert.code, revert.message), (error.code(), error.message()));
        assert!(receipt.events.is_empty());
    }
    // The constructor is not payable, and the value is not kept.
    let before = chain.account(&account(FUNDER)).balance;
    let receipt = chain.deploy(FUNDER, code, (owners(), 2u32), 1);
    assert_eq!(revert_of(&receipt).code, altan_sdk::codes::NOT_PAYABLE);
    assert_eq!(chain.account(&account(FUNDER)).balance, before - fee(&receipt));
}

#[test]
fn multisig_native_transfer_runs_once_two_owners_confirm() {
    let mut chain = Chain::new();
    let wallet = deploy_funded(&mut chain, 1_000);
    let to = account(RECIPIENT);
    let to_before = chain.account(&to).balance;

    // The gas given with a plain transfer is not kept: it runs no code.
    let id = propose(&mut chain, 1, wallet, to, 400, Vec::new(), CALL_GAS);
    assert_eq!(id, 0);
    let expected = Proposal {
        action: multisig::Action {
            proposer: account(1),
            to,
            value: 400,
            input: Vec::new(),
            gas: 0,
        },
        status: Status { confirmations: 1, outcome: Outcome::Pending },
    };
    assert_eq!(chain.query_ok::<Proposal>(wallet, "proposal", (id,)), expected);
    assert_eq!(chain.query_ok::<u64>(wallet, "proposal_count", ()), 1);

    // One confirmation is not enough; the proposer cannot count twice; strangers have no say.
    assert_call_reverts(&mut chain, 1, wallet, "execute", (id,), Error::NotEnoughConfirmations);
    assert_call_reverts(&mut chain, 1, wallet, "confirm", (id,), Error::AlreadyConfirmed);
    for method in ["confirm", "revoke", "execute"] {
        assert_call_reverts(&mut chain, STRANGER, wallet, method, (id,), Error::NotOwner);
    }
    assert_call_reverts(
        &mut chain,
        STRANGER,
        wallet,
        "propose",
        (account(STRANGER), 1u128, Vec::<u8>::new(), 0u64),
        Error::NotOwner,
    );
    assert_call_reverts(&mut chain, 2, wallet, "confirm", (5u64,), Error::NoSuchProposal);

    // Confirm, revoke (back under the threshold), confirm again.
    confirm(&mut chain, 2, wallet, id, 2);
    let receipt = chain.call(2, wallet, "revoke", (id,), 0);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    let revoked: Revoked = event(&receipt, 0, wallet);
    assert_eq!(revoked, Revoked { id, owner: account(2), confirmations: 1 });
    assert!(!chain.query_ok::<bool>(wallet, "is_confirmed", (id, account(2))));
    assert_call_reverts(&mut chain, 2, wallet, "revoke", (id,), Error::NotConfirmed);
    assert_call_reverts(&mut chain, 3, wallet, "execute", (id,), Error::NotEnoughConfirmations);
    confirm(&mut chain, 2, wallet, id, 2);
    assert_eq!(chain.query_ok::<u32>(wallet, "confirmations", (id,)), 2);
    assert_eq!(chain.account(&to).balance, to_before);
    assert_eq!(chain.account(&wallet).balance, 1_000);

    // Any owner executes, including one who did not confirm.
    let receipt = execute(&mut chain, 3, wallet, id, true);
    assert_eq!(receipt.events.len(), 1);
    assert_eq!(chain.account(&to).balance, to_before + 400);
    assert_eq!(chain.account(&wallet).balance, 600);
    assert_eq!(
        status(&chain, wallet, id),
        Status { confirmations: 2, outcome: Outcome::Succeeded }
    );

    // Executed once: a second execution, confirmation or revocation reverts and moves nothing.
    assert_call_reverts(&mut chain, 3, wallet, "execute", (id,), Error::AlreadyExecuted);
    assert_call_reverts(&mut chain, 1, wallet, "execute", (id,), Error::AlreadyExecuted);
    assert_call_reverts(&mut chain, 3, wallet, "confirm", (id,), Error::AlreadyExecuted);
    assert_call_reverts(&mut chain, 2, wallet, "revoke", (id,), Error::AlreadyExecuted);
    assert_eq!(chain.account(&to).balance, to_before + 400);
    assert_eq!(chain.account(&wallet).balance, 600);
}

#[test]
fn multisig_transfer_beyond_the_funds_reverts_and_can_be_retried() {
    let mut chain = Chain::new();
    let wallet = deploy_funded(&mut chain, 300);
    let to = account(RECIPIENT);
    let to_before = chain.account(&to).balance;
    let id = propose(&mut chain, 1, wallet, to, 400, Vec::new(), 0);
    confirm(&mut chain, 3, wallet, id, 2);
    assert_call_reverts(&mut chain, 1, wallet, "execute", (id,), Error::InsufficientBalance);
    assert_eq!(status(&chain, wallet, id).outcome, Outcome::Pending);
    assert_eq!(chain.account(&wallet).balance, 300);

    let receipt = chain.call(5, wallet, "deposit", (), 100);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    execute(&mut chain, 1, wallet, id, true);
    assert_eq!(chain.account(&to).balance, to_before + 400);
    assert_eq!(chain.account(&wallet).balance, 0);
}

#[test]
fn multisig_executes_a_token_transfer_through_a_cross_contract_call() {
    let mut chain = Chain::new();
    let wallet = deploy(&mut chain);
    let token = deploy_token(&mut chain, wallet, 300);
    let recipient = account(RECIPIENT);

    let id = propose(&mut chain, 1, wallet, token, 0, transfer_input(recipient, 120), CALL_GAS);
    assert_eq!(
        chain.query_ok::<Proposal>(wallet, "proposal", (id,)).action.input,
        transfer_input(recipient, 120)
    );
    confirm(&mut chain, 2, wallet, id, 2);
    // Nothing moved before execution.
    assert_eq!(token_balance(&chain, token, wallet), 300);
    assert_eq!(token_balance(&chain, token, recipient), 0);

    let receipt = execute(&mut chain, 2, wallet, id, true);
    // The token's event first (the wallet is the sender it saw), then the wallet's.
    assert_eq!(receipt.events.len(), 2);
    let moved: token::Transfer = event(&receipt, 0, token);
    assert_eq!(moved, token::Transfer { from: wallet, to: recipient, value: 120 });
    assert_eq!(token_balance(&chain, token, wallet), 180);
    assert_eq!(token_balance(&chain, token, recipient), 120);
    assert_eq!(token_balance(&chain, token, account(FUNDER)), 700);
    assert_eq!(
        status(&chain, wallet, id),
        Status { confirmations: 2, outcome: Outcome::Succeeded }
    );

    // Double execution reverts and the token moves no further.
    assert_call_reverts(&mut chain, 2, wallet, "execute", (id,), Error::AlreadyExecuted);
    assert_call_reverts(&mut chain, 1, wallet, "execute", (id,), Error::AlreadyExecuted);
    assert_eq!(token_balance(&chain, token, wallet), 180);
    assert_eq!(token_balance(&chain, token, recipient), 120);
}

#[test]
fn multisig_records_a_reverting_call_as_failed_and_undoes_it() {
    let mut chain = Chain::new();
    let wallet = deploy(&mut chain);
    let token = deploy_token(&mut chain, wallet, 300);
    let recipient = account(RECIPIENT);

    // More than the wallet holds: the token reverts with its InsufficientBalance.
    let id = propose(&mut chain, 1, wallet, token, 0, transfer_input(recipient, 301), CALL_GAS);
    confirm(&mut chain, 2, wallet, id, 2);
    let receipt = execute(&mut chain, 3, wallet, id, false);
    // The transaction succeeds; only the wallet's event remains, the token's call was undone.
    assert_eq!(receipt.events.len(), 1);
    assert_eq!(token_balance(&chain, token, wallet), 300);
    assert_eq!(token_balance(&chain, token, recipient), 0);
    assert_eq!(status(&chain, wallet, id), Status { confirmations: 2, outcome: Outcome::Failed });
    // A failed proposal is executed all the same: it cannot be run again.
    assert_call_reverts(&mut chain, 3, wallet, "execute", (id,), Error::AlreadyExecuted);
    assert_call_reverts(&mut chain, 1, wallet, "revoke", (id,), Error::AlreadyExecuted);

    // The owners propose again with an amount that fits.
    let retry = propose(&mut chain, 2, wallet, token, 0, transfer_input(recipient, 300), CALL_GAS);
    assert_eq!(retry, id + 1);
    confirm(&mut chain, 3, wallet, retry, 2);
    execute(&mut chain, 1, wallet, retry, true);
    assert_eq!(token_balance(&chain, token, wallet), 0);
    assert_eq!(token_balance(&chain, token, recipient), 300);
}

#[test]
fn multisig_failed_calls_return_the_value_sent() {
    let mut chain = Chain::new();
    let wallet = deploy_funded(&mut chain, 100);
    let token = deploy_token(&mut chain, wallet, 300);
    let nobody = account(8);
    let nobody_before = chain.account(&nobody).balance;

    // The token's transfer is not payable, and an account has no code to call: both fail, and
    // the value sent with them comes back to the wallet.
    let to_token = propose(&mut chain, 1, wallet, token, 25, transfer_input(nobody, 1), CALL_GAS);
    let to_account =
        propose(&mut chain, 1, wallet, nobody, 25, vec![0xde, 0xad, 0xbe, 0xef], CALL_GAS);
    for id in [to_token, to_account] {
        confirm(&mut chain, 3, wallet, id, 2);
        let receipt = execute(&mut chain, 3, wallet, id, false);
        assert_eq!(receipt.events.len(), 1);
        assert_eq!(status(&chain, wallet, id).outcome, Outcome::Failed);
    }
    assert_eq!(chain.account(&wallet).balance, 100);
    assert_eq!(chain.account(&token).balance, 0);
    assert_eq!(chain.account(&nobody).balance, nobody_before);
    assert_eq!(token_balance(&chain, token, nobody), 0);
    assert_eq!(token_balance(&chain, token, wallet), 300);
}

#[test]
fn multisig_call_carries_its_value_to_a_payable_method() {
    let mut chain = Chain::new();
    let wallet = deploy_funded(&mut chain, 100);
    let other = chain.deploy_ok(FUNDER, wasm::get("multisig"), (vec![account(5)], 1u32));
    let deposit = call_input("deposit", ());

    // More value than the wallet holds: refused before the call, and still pending.
    let too_much = propose(&mut chain, 1, wallet, other, 160, deposit.clone(), CALL_GAS);
    confirm(&mut chain, 2, wallet, too_much, 2);
    assert_call_reverts(&mut chain, 2, wallet, "execute", (too_much,), Error::InsufficientBalance);
    assert_eq!(status(&chain, wallet, too_much).outcome, Outcome::Pending);

    let id = propose(&mut chain, 1, wallet, other, 60, deposit, CALL_GAS);
    confirm(&mut chain, 2, wallet, id, 2);
    let receipt = execute(&mut chain, 2, wallet, id, true);
    assert_eq!(receipt.events.len(), 2);
    let deposited: Deposited = event(&receipt, 0, other);
    assert_eq!(deposited, Deposited { from: wallet, value: 60 });
    assert_eq!(chain.account(&wallet).balance, 40);
    assert_eq!(chain.account(&other).balance, 60);
}

/// A wallet holding 300 of a token and proposal 0, confirmed by owners 1 and 2, to move 120 of
/// them to the recipient with `CALL_GAS`.
fn confirmed_token_transfer() -> (Chain, Address, Address) {
    let mut chain = Chain::new();
    let wallet = deploy(&mut chain);
    let token = deploy_token(&mut chain, wallet, 300);
    let input = transfer_input(account(RECIPIENT), 120);
    let id = propose(&mut chain, 1, wallet, token, 0, input, CALL_GAS);
    assert_eq!(id, 0);
    confirm(&mut chain, 2, wallet, id, 2);
    (chain, wallet, token)
}

/// Sends `execute(id)` from owner `from` with a transaction gas limit of `gas_limit`.
fn execute_with_limit(
    chain: &mut Chain,
    from: u8,
    wallet: Address,
    id: u64,
    gas_limit: u64,
) -> Receipt {
    let input = call_input("execute", (id,));
    let tx = chain.transaction(from, Action::Call { contract: wallet, input, value: 0 }, gas_limit);
    chain.execute(vec![tx]).remove(0)
}

#[test]
fn multisig_execution_with_too_little_gas_for_the_call_reverts_and_stays_pending() {
    // The gas a successful execution uses, measured on one chain: the token transfer uses only
    // part of the CALL_GAS it is given, and the rest comes back...
    let (mut measured, wallet, token) = confirmed_token_transfer();
    let used = execute(&mut measured, 3, wallet, 0, true).gas_used;
    assert_eq!(token_balance(&measured, token, account(RECIPIENT)), 120);
    assert!(used < CALL_GAS + multisig::EXECUTION_RESERVE_GAS, "{used}");

    // ...so that limit covers the work but not the gas the proposal asks for. On an identical
    // chain, executing with it reverts with NotEnoughGas instead of running the call short: the
    // proposal stays pending, nothing moves and the executor pays only the fee.
    let (mut chain, wallet2, token2) = confirmed_token_transfer();
    assert_eq!((wallet2, token2), (wallet, token));
    let before = chain.account(&account(3)).balance;
    let receipt = execute_with_limit(&mut chain, 3, wallet, 0, used);
    let revert = revert_of(&receipt);
    assert_eq!(
        (revert.code, revert.message.as_str()),
        (12, "not enough gas left to give the call the gas the proposal asks for")
    );
    let error = Error::NotEnoughGas;
    assert_eq!((revert.code, revert.message), (error.code(), error.message()));
    assert!(receipt.events.is_empty());
    assert_eq!(chain.account(&account(3)).balance, before - fee(&receipt));
    assert_eq!(status(&chain, wallet, 0), Status { confirmations: 2, outcome: Outcome::Pending });
    assert_eq!(token_balance(&chain, token, wallet), 300);
    assert_eq!(token_balance(&chain, token, account(RECIPIENT)), 0);

    // Executed again with enough gas, by another owner, it runs the transfer.
    let receipt = execute(&mut chain, 1, wallet, 0, true);
    assert_eq!(receipt.events.len(), 2);
    let moved: token::Transfer = event(&receipt, 0, token);
    assert_eq!(moved, token::Transfer { from: wallet, to: account(RECIPIENT), value: 120 });
    assert_eq!(token_balance(&chain, token, wallet), 180);
    assert_eq!(token_balance(&chain, token, account(RECIPIENT)), 120);
    assert_eq!(status(&chain, wallet, 0), Status { confirmations: 2, outcome: Outcome::Succeeded });
}

/// Proposes (from owner 1) and confirms (by owner 2) moving 1 of `token` to the recipient with
/// `gas`, and returns the id.
fn confirmed_transfer_of_one(chain: &mut Chain, wallet: Address, token: Address, gas: u64) -> u64 {
    let input = transfer_input(account(RECIPIENT), 1);
    let id = propose(chain, 1, wallet, token, 0, input, gas);
    confirm(chain, 2, wallet, id, 2);
    id
}

#[test]
fn multisig_execution_at_the_tightest_gas_limit_gives_the_call_all_its_gas() {
    let mut chain = Chain::new();
    let wallet = deploy(&mut chain);
    let token = deploy_token(&mut chain, wallet, 300);
    let mut moved = 0;

    // The least gas a transfer of 1 succeeds with: with less, the call runs out and the proposal
    // is spent as failed. Invariant: `short` fails, `enough` succeeds.
    let (mut short, mut enough) = (0, CALL_GAS);
    for (gas, success) in [(short, false), (enough, true)] {
        let id = confirmed_transfer_of_one(&mut chain, wallet, token, gas);
        execute(&mut chain, 3, wallet, id, success);
        moved += u128::from(success);
    }
    while enough - short > 1 {
        let gas = short + (enough - short) / 2;
        let id = confirmed_transfer_of_one(&mut chain, wallet, token, gas);
        let receipt = chain.call(3, wallet, "execute", (id,), 0);
        assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
        if bool::decode_all(&mut receipt.output.as_slice()).unwrap() {
            enough = gas;
            moved += 1;
        } else {
            short = gas;
        }
    }
    let gas = enough;
    assert_eq!(token_balance(&chain, token, account(RECIPIENT)), moved);

    // The least transaction gas limit that executes a proposal with exactly that gas. Below it,
    // execution reverts with NotEnoughGas and the proposal stays pending, to be tried again; at
    // it, the callee still gets all its gas and succeeds, and the reserve pays for recording
    // that. No limit spends the proposal as failed. Invariant: `refused` reverts, `accepted`
    // succeeds.
    let mut id = confirmed_transfer_of_one(&mut chain, wallet, token, gas);
    let mut try_limit = |chain: &mut Chain, id: &mut u64, limit: u64| -> bool {
        let receipt = execute_with_limit(chain, 3, wallet, *id, limit);
        if receipt.status == ExecutionStatus::Revert {
            let revert = revert_of(&receipt);
            let error = Error::NotEnoughGas;
            assert_eq!((revert.code, revert.message), (error.code(), error.message()), "{limit}");
            assert_eq!(status(chain, wallet, *id).outcome, Outcome::Pending);
            return false;
        }
        assert_eq!(receipt.status, ExecutionStatus::Success, "{limit}: {receipt:?}");
        assert!(bool::decode_all(&mut receipt.output.as_slice()).unwrap(), "{limit}");
        assert_eq!(status(chain, wallet, *id).outcome, Outcome::Succeeded);
        moved += 1;
        assert_eq!(token_balance(chain, token, account(RECIPIENT)), moved);
        *id = confirmed_transfer_of_one(chain, wallet, token, gas);
        true
    };
    let (mut refused, mut accepted) = (gas + multisig::EXECUTION_RESERVE_GAS, GAS_LIMIT);
    assert!(!try_limit(&mut chain, &mut id, refused));
    assert!(try_limit(&mut chain, &mut id, accepted));
    while accepted - refused > 1 {
        let limit = refused + (accepted - refused) / 2;
        if try_limit(&mut chain, &mut id, limit) {
            accepted = limit;
        } else {
            refused = limit;
        }
    }
}
