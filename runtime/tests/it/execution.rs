use std::sync::Arc;

use altan_primitives::{
    Action, Address, ExecutionStatus, FailureReason, Hash, StakingAction, Transaction, blake3,
};
use altan_runtime::exec::{BlockError, InvalidTransaction, TxError, intrinsic_gas};
use altan_runtime::state::StateKey;
use altan_runtime::vm::contract_address;
use parity_scale_codec::Encode;

use crate::common::*;

#[test]
fn transfer_moves_value_and_charges_exact_fee() {
    let mut chain = Chain::new();
    let (alice, bob) = (key(0), key(1));
    let to = bob.address();
    let receipt = chain.run(&alice, Action::Transfer { to, value: 1_000 }, 100_000);
    assert_eq!(receipt.status, ExecutionStatus::Success);
    let tx = chain.tx(&alice, Action::Transfer { to, value: 1_000 }, 100_000);
    let expected_gas = intrinsic_gas(&tx, tx.encoded_size());
    assert_eq!(receipt.gas_used, expected_gas);
    let fee = u128::from(receipt.gas_used) * GAS_PRICE;
    assert_eq!(chain.account(&alice.address()).balance, FUNDS - 1_000 - fee);
    assert_eq!(chain.account(&alice.address()).nonce, 1);
    assert_eq!(chain.account(&to).balance, FUNDS + 1_000);
    assert_eq!(chain.account(&chain.proposer).balance, fee);
}

#[test]
fn invalid_transactions_are_refused_and_change_nothing() {
    let mut chain = Chain::new();
    let alice = key(0);
    let root = chain.root();
    let transfer = Action::Transfer { to: key(1).address(), value: 1 };
    let base = Transaction {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 100_000,
        gas_price: GAS_PRICE,
        action: transfer.clone(),
    };

    let cases: Vec<(Transaction, fn(&InvalidTransaction) -> bool)> = vec![
        (Transaction { chain_id: CHAIN_ID + 1, ..base.clone() }, |e| {
            matches!(e, InvalidTransaction::WrongChainId { .. })
        }),
        (Transaction { nonce: 1, ..base.clone() }, |e| {
            matches!(e, InvalidTransaction::WrongNonce { expected: 0, found: 1 })
        }),
        (Transaction { gas_limit: 10, ..base.clone() }, |e| {
            matches!(e, InvalidTransaction::GasLimitTooLow { .. })
        }),
        (Transaction { gas_limit: 200_000_000, ..base.clone() }, |e| {
            matches!(e, InvalidTransaction::BlockGasExceeded { .. })
        }),
        (Transaction { gas_price: u128::MAX, ..base.clone() }, |e| {
            matches!(e, InvalidTransaction::Overflow)
        }),
        (
            Transaction {
                action: Action::Transfer { to: key(1).address(), value: FUNDS },
                ..base.clone()
            },
            |e| matches!(e, InvalidTransaction::InsufficientFunds { .. }),
        ),
        (
            Transaction {
                action: Action::Staking(StakingAction::Bond {
                    validator: key(1).address(),
                    amount: FUNDS,
                }),
                ..base.clone()
            },
            |e| matches!(e, InvalidTransaction::InsufficientFunds { .. }),
        ),
        (
            Transaction {
                action: Action::Call {
                    contract: Address::ZERO,
                    input: vec![0; 200 * 1024],
                    value: 0,
                },
                gas_limit: 90_000_000,
                ..base.clone()
            },
            |e| matches!(e, InvalidTransaction::TooLarge { .. }),
        ),
    ];
    for (tx, expected) in cases {
        let signed = tx.clone().sign(&alice);
        // The rule that admission applies before the state is read: it must refuse exactly the
        // transactions that no state could make valid, with the reason execution gives.
        let stateless = chain.runtime.check_stateless(&signed);
        match chain.execute(vec![signed]) {
            Err(BlockError::InvalidTransaction { index: 0, reason }) => {
                assert!(expected(&reason), "{tx:?}: {reason:?}");
                let no_state_helps = matches!(
                    reason,
                    InvalidTransaction::WrongChainId { .. }
                        | InvalidTransaction::GasLimitTooLow { .. }
                        | InvalidTransaction::TooLarge { .. }
                );
                match stateless {
                    Err(early) => assert_eq!(early, reason, "{tx:?}"),
                    Ok(_) => assert!(!no_state_helps, "{tx:?} passed the stateless rule"),
                }
            }
            other => panic!("{tx:?} was not refused: {other:?}"),
        }
        assert_eq!(chain.root(), root, "state changed");
    }

    // A corrupted signature recovers another sender (with no funds) or fails outright.
    let mut signed = base.sign(&alice);
    signed.signature.0[10] ^= 1;
    assert!(chain.execute(vec![signed]).is_err());
    let mut high_v = chain.tx(&alice, transfer, 100_000);
    high_v.signature.0[64] = 27;
    let mut executor = chain.runtime.begin_block(
        Arc::new(chain.state.snapshot(0).unwrap()),
        altan_runtime::exec::BlockContext::new(CHAIN_ID, 1, 0, Address::ZERO, 1_000_000),
    );
    assert!(matches!(
        executor.apply(&high_v),
        Err(TxError::Invalid(InvalidTransaction::BadSignature(_)))
    ));
}

#[test]
fn deploy_then_call_token() {
    let mut chain = Chain::new();
    let (alice, bob) = (key(0), key(1));
    let code = token();
    let salt = Hash([1; 32]);
    let receipt = chain.run(
        &alice,
        Action::Deploy {
            code: code.clone(),
            input: 1_000u64.to_le_bytes().to_vec(),
            value: 0,
            salt,
        },
        50_000_000,
    );
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    let token = receipt.contract_address.unwrap();
    assert_eq!(token, contract_address(&alice.address(), &blake3(&code), &salt));
    assert_eq!(chain.account(&token).code_hash, Some(blake3(&code)));
    assert_eq!(
        chain.state.get(&StateKey::code(&blake3(&code)), chain.height).unwrap(),
        Some(code.clone())
    );

    let receipt = chain.call(&alice, token, transfer_input(&bob.address(), 250));
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    assert_eq!(receipt.events.len(), 1);
    let event = &receipt.events[0];
    assert_eq!(event.contract, token);
    assert_eq!(event.topics, vec![Hash(*b"Transfer-topic-0123456789abcdef!")]);
    assert_eq!(&event.data[..20], alice.address().as_bytes());
    assert_eq!(&event.data[20..40], bob.address().as_bytes());
    assert_eq!(event.data[40..48], 250u64.to_le_bytes());

    let balance = chain.call(&bob, token, balance_input(&bob.address()));
    assert_eq!(balance.output, 250u64.to_le_bytes());
    let balance = chain.call(&bob, token, balance_input(&alice.address()));
    assert_eq!(balance.output, 750u64.to_le_bytes());

    // Deploying the same code with the same salt again collides.
    let again =
        chain.run(&alice, Action::Deploy { code, input: vec![0; 8], value: 0, salt }, 50_000_000);
    assert_eq!(again.status, ExecutionStatus::Failure(FailureReason::AddressInUse));
}

#[test]
fn revert_undoes_state_but_charges_fee() {
    let mut chain = Chain::new();
    let (alice, bob) = (key(0), key(1));
    let token = chain.deploy(&alice, token());
    let before = chain.account(&bob.address());
    // Bob has no tokens: the transfer reverts with the contract's data.
    let receipt = chain.call(&bob, token, transfer_input(&alice.address(), 5));
    assert_eq!(receipt.status, ExecutionStatus::Revert);
    assert_eq!(receipt.output, b"Transfer");
    assert!(receipt.events.is_empty());
    let after = chain.account(&bob.address());
    assert_eq!(after.nonce, before.nonce + 1);
    assert_eq!(after.balance, before.balance - u128::from(receipt.gas_used) * GAS_PRICE);
    // Only the two accounts and the block record changed.
    let keys: Vec<_> = chain.last_changes().keys().cloned().collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
}

#[test]
fn value_sent_with_a_call_reaches_the_contract_and_returns_on_revert() {
    let mut chain = Chain::new();
    let alice = key(0);
    let token = chain.deploy(&alice, token());
    let receipt = chain.run(
        &alice,
        Action::Call { contract: token, input: balance_input(&alice.address()), value: 77 },
        GAS_LIMIT,
    );
    assert_eq!(receipt.status, ExecutionStatus::Success);
    assert_eq!(chain.account(&token).balance, 77);
    let receipt = chain.run(
        &alice,
        Action::Call { contract: token, input: transfer_input(&Address::ZERO, u64::MAX), value: 5 },
        GAS_LIMIT,
    );
    assert_eq!(receipt.status, ExecutionStatus::Revert);
    assert_eq!(chain.account(&token).balance, 77);
}

#[test]
fn calling_an_account_without_code_fails() {
    let mut chain = Chain::new();
    let receipt = chain.call(&key(0), key(1).address(), vec![]);
    assert_eq!(receipt.status, ExecutionStatus::Failure(FailureReason::NoCode));
}

#[test]
fn cross_contract_call_returns_data_and_rolls_back_a_failed_callee() {
    let mut chain = Chain::new();
    let alice = key(0);
    let token = chain.deploy(&alice, token());
    let forwarder = chain.deploy(&alice, forwarder(false));
    // The forwarder asks the token for alice's balance.
    let receipt = chain.call(
        &alice,
        forwarder,
        forward_input(&token, 1_000_000, &balance_input(&alice.address())),
    );
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    assert_eq!(receipt.output[..4], 0i32.to_le_bytes());
    assert_eq!(receipt.output[4..], 0u64.to_le_bytes());
    // The forwarder (holding no tokens) transfers: the callee reverts, the caller sees status 1
    // and the revert data, and the forwarder's own call still succeeds.
    let receipt = chain.call(
        &alice,
        forwarder,
        forward_input(&token, 1_000_000, &transfer_input(&alice.address(), 1)),
    );
    assert_eq!(receipt.status, ExecutionStatus::Success);
    assert_eq!(receipt.output[..4], 1i32.to_le_bytes());
    assert_eq!(&receipt.output[4..], b"Transfer");
    // A callee given too little gas runs out; the caller continues with what is left.
    let receipt =
        chain.call(&alice, forwarder, forward_input(&token, 10, &balance_input(&alice.address())));
    assert_eq!(receipt.status, ExecutionStatus::Success);
    assert_eq!(receipt.output, 2i32.to_le_bytes());
}

#[test]
fn query_reads_without_writing() {
    let mut chain = Chain::new();
    let alice = key(0);
    let token =
        chain.deploy_with(&alice, token(), 500u64.to_le_bytes().to_vec()).contract_address.unwrap();
    let root = chain.root();
    let context = altan_runtime::exec::BlockContext::new(
        CHAIN_ID,
        chain.height + 1,
        0,
        Address::ZERO,
        1_000_000,
    );
    let state = Arc::new(chain.state.snapshot(chain.height).unwrap());
    let out = chain
        .runtime
        .query(
            state.clone(),
            context.clone(),
            alice.address(),
            token,
            balance_input(&alice.address()),
            1_000_000,
        )
        .unwrap();
    assert_eq!(out.status, ExecutionStatus::Success);
    assert_eq!(out.output, 500u64.to_le_bytes());
    assert!(out.gas_used > 0);
    // A transfer in a query emits its event but writes nothing.
    let out = chain
        .runtime
        .query(
            state,
            context,
            alice.address(),
            token,
            transfer_input(&key(1).address(), 1),
            1_000_000,
        )
        .unwrap();
    assert_eq!(out.events.len(), 1);
    assert_eq!(chain.root(), root);
}

#[test]
fn every_block_has_its_own_root_and_record() {
    let mut chain = Chain::new();
    let first = chain.root();
    chain.execute(vec![]).unwrap();
    let second = chain.root();
    chain.execute(vec![]).unwrap();
    assert_ne!(first, second);
    assert_ne!(second, chain.root());
    let record = chain.state.get(&altan_runtime::exec::block_record_key(), 2).unwrap().unwrap();
    assert_eq!(record, (2u64, 1_700_000_000_000u64 + 2_000).encode());
}

#[test]
fn block_roots_commit_to_transactions_and_receipts() {
    let mut chain = Chain::new();
    let alice = key(0);
    let txs: Vec<_> = (0..3u64)
        .map(|n| {
            Transaction {
                chain_id: CHAIN_ID,
                nonce: n,
                gas_limit: 100_000,
                gas_price: GAS_PRICE,
                action: Action::Transfer { to: key(2).address(), value: n as u128 },
            }
            .sign(&alice)
        })
        .collect();
    let receipts = chain.execute(txs.clone()).unwrap();
    let outcome = chain.last.as_ref().unwrap();
    assert_eq!(outcome.transactions_root, altan_primitives::Block::compute_transactions_root(&txs));
    assert_eq!(outcome.receipts_root, altan_primitives::Receipt::compute_root(&receipts));
    assert_eq!(outcome.gas_used, receipts.iter().map(|r| r.gas_used).sum::<u64>());
}

/// A transfer that creates its recipient's account pays [`gas::NEW_ACCOUNT`] for it; with too
/// little gas it fails, creates nothing and still pays its fee.
#[test]
fn a_transfer_that_creates_an_account_pays_for_it() {
    use altan_runtime::gas;
    let mut chain = Chain::new();
    let alice = key(0);
    let fresh = Address([0x77; 20]);
    let existing = key(1).address();
    let to_existing = chain.run(&alice, Action::Transfer { to: existing, value: 5 }, 100_000);
    let to_fresh = chain.run(&alice, Action::Transfer { to: fresh, value: 5 }, 100_000);
    assert_eq!(to_fresh.status, ExecutionStatus::Success);
    assert_eq!(to_fresh.gas_used, to_existing.gas_used + gas::NEW_ACCOUNT);
    assert_eq!(chain.account(&fresh).balance, 5);
    // Now it exists: the next transfer to it pays no more than to any other account.
    let again = chain.run(&alice, Action::Transfer { to: fresh, value: 5 }, 100_000);
    assert_eq!(again.gas_used, to_existing.gas_used);

    let other = Address([0x78; 20]);
    let tx = chain.tx(&alice, Action::Transfer { to: other, value: 5 }, 0);
    let intrinsic = intrinsic_gas(&tx, tx.encoded_size());
    let before = chain.account(&alice.address()).balance;
    let short = chain.run(&alice, Action::Transfer { to: other, value: 5 }, intrinsic + 1);
    assert_eq!(short.status, ExecutionStatus::Failure(FailureReason::OutOfGas));
    assert_eq!(short.gas_used, intrinsic + 1);
    assert_eq!(chain.account(&other).balance, 0, "no account was created");
    let fee = u128::from(short.gas_used) * GAS_PRICE;
    assert_eq!(chain.account(&alice.address()).balance, before - fee);
}

/// A runtime for a spec with a minimum gas price refuses a lower price in a block, and takes
/// the minimum itself.
#[test]
fn a_gas_price_below_the_chains_minimum_is_invalid() {
    use altan_runtime::exec::Runtime;
    use altan_runtime::vm::VmConfig;
    let mut chain = Chain::new();
    let min = GAS_PRICE + 1;
    let spec = altan_primitives::ChainSpec { min_gas_price: min, ..spec(4) };
    chain.runtime = Runtime::for_spec(&spec, VmConfig::default()).unwrap();
    assert_eq!(chain.runtime.min_gas_price(), min);
    let alice = key(0);
    let cheap = chain.tx(&alice, Action::Transfer { to: key(1).address(), value: 1 }, 100_000);
    match chain.execute(vec![cheap]) {
        Err(BlockError::InvalidTransaction { index: 0, reason }) => {
            assert_eq!(reason, InvalidTransaction::GasPriceTooLow { min, found: GAS_PRICE })
        }
        other => panic!("a block with an underpriced transaction executed: {other:?}"),
    }
    let priced = Transaction {
        chain_id: CHAIN_ID,
        nonce: 0,
        gas_limit: 100_000,
        gas_price: min,
        action: Action::Transfer { to: key(1).address(), value: 1 },
    }
    .sign(&alice);
    assert_eq!(chain.execute(vec![priced]).unwrap()[0].status, ExecutionStatus::Success);
}
