//! The pool's rules, one test each, and its bookkeeping under any operations.
#![allow(clippy::arithmetic_side_effects)]

use altan_primitives::{Action, SecretKey, StakingAction, Transaction};
use proptest::prelude::*;

use super::*;

fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i.max(1); 32]).unwrap()
}

fn tx(sender: u8, nonce: Nonce, price: u128) -> PooledTransaction {
    let key = key(sender);
    let signed = Transaction {
        chain_id: 1,
        nonce,
        gas_limit: 100,
        gas_price: price,
        action: Action::Transfer { to: Address::ZERO, value: 1 },
    }
    .sign(&key);
    PooledTransaction::new(signed, key.address()).unwrap()
}

const RICH: AccountView = AccountView { nonce: 0, balance: 1_000_000_000 };

fn pool(max: usize) -> Mempool {
    Mempool::new(MempoolConfig {
        max_transactions: max,
        max_bytes: 1 << 30,
        max_per_sender: 16,
        max_gapped_per_sender: 3,
        max_gapped: 5,
    })
}

#[test]
fn gaps_wait_and_ready_keeps_nonce_order() {
    let mut pool = pool(100);
    assert!(!pool.insert(tx(1, 2, 5), RICH).unwrap().ready);
    assert!(pool.ready(10).is_empty(), "nonce 2 waits for 0 and 1");
    assert!(pool.insert(tx(1, 0, 1), RICH).unwrap().ready);
    assert_eq!(pool.ready(10).len(), 1);
    assert!(pool.insert(tx(1, 1, 9), RICH).unwrap().ready);
    let nonces: Vec<Nonce> = pool.ready(10).iter().map(|t| t.nonce()).collect();
    assert_eq!(nonces, vec![0, 1, 2]);
    pool.check_invariants();
}

#[test]
fn ready_orders_senders_by_price() {
    let mut pool = pool(100);
    pool.insert(tx(1, 0, 1), RICH).unwrap();
    pool.insert(tx(2, 0, 7), RICH).unwrap();
    pool.insert(tx(3, 0, 3), RICH).unwrap();
    pool.insert(tx(2, 1, 2), RICH).unwrap();
    let prices: Vec<u128> = pool.ready(10).iter().map(|t| t.gas_price()).collect();
    assert_eq!(prices, vec![7, 3, 2, 1]);
    assert_eq!(pool.ready(2).len(), 2);
}

#[test]
fn replacement_needs_a_higher_price() {
    let mut pool = pool(100);
    let first = tx(1, 0, 5);
    let first_id = first.id;
    pool.insert(first, RICH).unwrap();
    assert_eq!(
        pool.insert(tx(1, 0, 5), RICH).unwrap_err(),
        MempoolError::AlreadyKnown(tx(1, 0, 5).id)
    );
    let mut same_price = tx(1, 0, 5);
    same_price.id = Hash([9; 32]);
    assert!(matches!(
        pool.insert(same_price, RICH),
        Err(MempoolError::ReplacementUnderpriced { .. })
    ));
    let admitted = pool.insert(tx(1, 0, 6), RICH).unwrap();
    assert_eq!(admitted.replaced, Some(first_id));
    assert_eq!(pool.len(), 1);
    pool.check_invariants();
}

#[test]
fn stale_far_and_unaffordable_nonces_are_refused() {
    let mut pool = pool(100);
    let account = AccountView { nonce: 5, balance: 250 };
    assert_eq!(
        pool.insert(tx(1, 4, 1), account).unwrap_err(),
        MempoolError::NonceTooLow { expected: 5, found: 4 }
    );
    assert_eq!(
        pool.insert(tx(1, 21, 1), account).unwrap_err(),
        MempoolError::NonceTooHigh { max: 20, found: 21 }
    );
    // Each costs 100 gas x 1 + 1 value = 101: two fit in 250, three do not.
    pool.insert(tx(1, 5, 1), account).unwrap();
    pool.insert(tx(1, 6, 1), account).unwrap();
    assert_eq!(
        pool.insert(tx(1, 7, 1), account).unwrap_err(),
        MempoolError::InsufficientBalance { needed: 303, available: 250 }
    );
    assert_eq!(pool.len(), 2);
}

#[test]
fn a_full_pool_evicts_the_cheapest_with_its_successors() {
    let mut pool = pool(3);
    pool.insert(tx(1, 0, 1), RICH).unwrap();
    pool.insert(tx(1, 1, 9), RICH).unwrap();
    pool.insert(tx(2, 0, 5), RICH).unwrap();
    assert!(matches!(pool.insert(tx(3, 0, 1), RICH), Err(MempoolError::PoolFull { .. })));
    let admitted = pool.insert(tx(3, 0, 2), RICH).unwrap();
    // Sender 1's nonce 0 was cheapest; its nonce 1 cannot run without it.
    assert_eq!(admitted.evicted.len(), 2);
    assert_eq!(pool.len(), 2);
    pool.check_invariants();
}

#[test]
fn revalidation_drops_used_nonces_and_what_the_balance_no_longer_covers() {
    let mut pool = pool(100);
    for nonce in 0..4 {
        pool.insert(tx(1, nonce, 1), RICH).unwrap();
    }
    let sender = key(1).address();
    let dropped = pool.revalidate(|_| AccountView { nonce: 2, balance: 101 });
    assert_eq!(dropped.len(), 3, "nonces 0 and 1 ran; nonce 3 no longer fits the balance");
    assert_eq!(pool.ready(10).iter().map(|t| t.nonce()).collect::<Vec<_>>(), vec![2]);
    assert_eq!(pool.next_nonce(&sender, AccountView { nonce: 2, balance: 101 }), 3);
    pool.check_invariants();
}

proptest! {
    #[test]
    fn bookkeeping_holds_under_any_operations(
        ops in proptest::collection::vec((0u8..4, 0u64..6, 1u128..5, any::<bool>()), 1..60)
    ) {
        let mut pool = pool(8);
        let mut chain_nonce = [0u64; 4];
        for (sender, nonce, price, settle) in ops {
            let account = AccountView { nonce: chain_nonce[usize::from(sender)], balance: 400 };
            let _ = pool.insert(tx(sender + 1, nonce, price), account);
            pool.check_invariants();
            if settle {
                // A block took each sender's first ready transaction.
                for ready in pool.ready(4) {
                    let s = (0..4u8).find(|s| key(s + 1).address() == ready.sender).unwrap();
                    chain_nonce[usize::from(s)] = chain_nonce[usize::from(s)].max(ready.nonce() + 1);
                }
                pool.revalidate(|a| {
                    let s = (0..4u8).find(|s| key(s + 1).address() == *a).unwrap();
                    AccountView { nonce: chain_nonce[usize::from(s)], balance: 400 }
                });
                pool.check_invariants();
            }
            let all_ready = pool.ready(100);
            prop_assert_eq!(pool.has_ready(), !all_ready.is_empty());
            for ready in all_ready {
                let s = (0..4u8).find(|s| key(s + 1).address() == ready.sender).unwrap();
                prop_assert!(ready.nonce() >= chain_nonce[usize::from(s)]);
            }
        }
    }
}

#[test]
fn a_bond_counts_its_amount_against_the_balance() {
    let key = key(1);
    let bond = Transaction {
        chain_id: 1,
        nonce: 0,
        gas_limit: 100,
        gas_price: 1,
        action: Action::Staking(StakingAction::Bond { validator: Address::ZERO, amount: 5_000 }),
    }
    .sign(&key);
    let pooled = PooledTransaction::new(bond, key.address()).unwrap();
    assert_eq!(pooled.cost, 5_100, "the fee and the amount bonded");
    let poor = AccountView { nonce: 0, balance: 5_099 };
    assert_eq!(
        pool(10).insert(pooled, poor),
        Err(MempoolError::InsufficientBalance { needed: 5_100, available: 5_099 })
    );
}

#[test]
fn gapped_transactions_are_bounded_per_sender_and_in_all() {
    let mut pool = pool(100);
    // Sender 1 lacks nonce 0: nonces 1..=3 wait behind the gap, a fourth is refused.
    for nonce in 1..=3 {
        assert!(!pool.insert(tx(1, nonce, 9), RICH).unwrap().ready);
    }
    assert_eq!(
        pool.insert(tx(1, 4, 9), RICH),
        Err(MempoolError::TooManyGapped { nonce: 4, missing: 0, holder: "the sender", limit: 3 })
    );
    // Ready transactions of the same sender are not limited by it, and filling the gap makes
    // the waiting ones ready.
    assert!(pool.insert(tx(1, 0, 9), RICH).unwrap().ready);
    assert_eq!(pool.gapped(), 0);
    assert_eq!(pool.ready(10).len(), 4);
    // The pool holds at most 5 gapped in all.
    for (sender, nonce) in [(2, 1), (2, 2), (3, 1), (3, 2), (4, 1)] {
        pool.insert(tx(sender, nonce, 9), RICH).unwrap();
    }
    assert_eq!(pool.gapped(), 5);
    assert_eq!(
        pool.insert(tx(5, 1, 9), RICH),
        Err(MempoolError::TooManyGapped { nonce: 1, missing: 0, holder: "the pool", limit: 5 })
    );
    pool.check_invariants();
}

#[test]
fn gapped_transactions_never_evict_and_are_evicted_first() {
    let mut pool = pool(4);
    // Two expensive gapped transactions and two cheap ready ones fill the pool.
    pool.insert(tx(1, 1, 1_000), RICH).unwrap();
    pool.insert(tx(1, 2, 1_000), RICH).unwrap();
    pool.insert(tx(2, 0, 1), RICH).unwrap();
    pool.insert(tx(3, 0, 1), RICH).unwrap();
    // A gapped transaction cannot take a ready one's place, whatever it pays.
    assert!(matches!(pool.insert(tx(4, 1, 5_000), RICH), Err(MempoolError::PoolFull { .. })));
    // A ready one, even paying little, takes the place of what waits behind a gap.
    let admitted = pool.insert(tx(5, 0, 2), RICH).unwrap();
    assert!(admitted.ready);
    assert_eq!(admitted.evicted.len(), 2, "both of sender 1's gapped transactions");
    assert_eq!(pool.gapped(), 0);
    assert_eq!(pool.ready(10).len(), 3);
    pool.check_invariants();
}
