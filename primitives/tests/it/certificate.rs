//! `Certificate::verify` and `ValidatorSet::is_supermajority`: what proves a block final.

use altan_primitives::{
    Balance, Certificate, CertificateError, CommitSignature, Hash, SecretKey, Signature, Validator,
    ValidatorSet, Vote, VoteKind, blake3,
};
use proptest::prelude::*;

use crate::key;

const CHAIN: u64 = 7;
/// Unequal powers whose total (120) has an exact two thirds (80 = 20 + 60).
const POWERS: [Balance; 4] = [10, 20, 30, 60];

/// The consensus key of validator `index`; account keys are different keys, as they may be.
fn consensus_key(index: u16) -> SecretKey {
    key(0x40 + u8::try_from(index).unwrap() + 1)
}

fn account_key(index: u16) -> SecretKey {
    key(u8::try_from(index).unwrap() + 1)
}

fn set_with(powers: &[Balance]) -> ValidatorSet {
    ValidatorSet {
        validators: (0u16..)
            .zip(powers)
            .map(|(i, &power)| Validator {
                address: account_key(i).address(),
                consensus_key: consensus_key(i).public_key(),
                power,
            })
            .collect(),
    }
}

fn unsigned() -> Certificate {
    Certificate { height: 9, round: 2, block_hash: blake3(b"block"), signatures: Vec::new() }
}

/// How one entry of a certificate is made.
#[derive(Clone)]
enum Entry {
    /// Validator `index` signs the right precommit with its consensus key.
    Valid(u16),
    /// Claims to be validator `index`, but `key` signs `vote`.
    Forged { index: u16, key: SecretKey, vote: Vote },
    /// Claims to be validator `index`, with these raw signature bytes.
    Raw { index: u16, signature: Signature },
}

fn build(entries: &[Entry]) -> Certificate {
    let mut certificate = unsigned();
    let precommit = certificate.precommit(CHAIN);
    certificate.signatures = entries
        .iter()
        .map(|entry| match entry {
            Entry::Valid(index) => CommitSignature {
                validator_index: *index,
                signature: precommit.clone().sign(&consensus_key(*index)).signature,
            },
            Entry::Forged { index, key, vote } => CommitSignature {
                validator_index: *index,
                signature: vote.clone().sign(key).signature,
            },
            Entry::Raw { index, signature } => {
                CommitSignature { validator_index: *index, signature: *signature }
            }
        })
        .collect();
    certificate
}

fn precommit_with(change: impl FnOnce(&mut Vote)) -> Vote {
    let mut vote = unsigned().precommit(CHAIN);
    change(&mut vote);
    vote
}

#[test]
fn verify_table() {
    use CertificateError::*;
    use Entry::Valid;

    let forged = |index: u16, key: SecretKey, vote: Vote| Entry::Forged { index, key, vote };
    let cases: Vec<(&str, Vec<Entry>, Result<(), CertificateError>)> = vec![
        ("all four", vec![Valid(0), Valid(1), Valid(2), Valid(3)], Ok(())),
        ("10 + 20 + 60 = 90 of 120", vec![Valid(0), Valid(1), Valid(3)], Ok(())),
        ("30 + 60 = 90 of 120", vec![Valid(2), Valid(3)], Ok(())),
        (
            "exactly two thirds: 20 + 60 = 80 of 120",
            vec![Valid(1), Valid(3)],
            Err(InsufficientPower { signed: 80, total: 120 }),
        ),
        (
            "10 + 20 + 30 = 60 of 120",
            vec![Valid(0), Valid(1), Valid(2)],
            Err(InsufficientPower { signed: 60, total: 120 }),
        ),
        ("the largest alone", vec![Valid(3)], Err(InsufficientPower { signed: 60, total: 120 })),
        ("no signatures", vec![], Err(InsufficientPower { signed: 0, total: 120 })),
        (
            "an index past the set",
            vec![Valid(0), Valid(1), Valid(3), Valid(4)],
            Err(UnknownValidator { index: 4, len: 4 }),
        ),
        (
            "the largest index",
            vec![Valid(0), forged(u16::MAX, key(0x99), unsigned().precommit(CHAIN))],
            Err(UnknownValidator { index: u16::MAX, len: 4 }),
        ),
        (
            "a duplicate signature cannot count twice",
            vec![Valid(2), Valid(3), Valid(3)],
            Err(Unordered { index: 3 }),
        ),
        ("unordered indices", vec![Valid(3), Valid(0), Valid(1)], Err(Unordered { index: 0 })),
        (
            "over a different block hash",
            vec![
                Valid(0),
                forged(1, consensus_key(1), precommit_with(|v| v.block_hash = Some(blake3(b"x")))),
                Valid(3),
            ],
            Err(BadSignature { index: 1 }),
        ),
        (
            "a nil precommit",
            vec![
                Valid(0),
                Valid(1),
                forged(3, consensus_key(3), precommit_with(|v| v.block_hash = None)),
            ],
            Err(BadSignature { index: 3 }),
        ),
        (
            "for a different chain id",
            vec![
                Valid(0),
                forged(1, consensus_key(1), precommit_with(|v| v.chain_id = CHAIN + 1)),
                Valid(3),
            ],
            Err(BadSignature { index: 1 }),
        ),
        (
            "a prevote instead of a precommit",
            vec![
                Valid(0),
                Valid(1),
                forged(3, consensus_key(3), precommit_with(|v| v.kind = VoteKind::Prevote)),
            ],
            Err(BadSignature { index: 3 }),
        ),
        (
            "for another height",
            vec![forged(2, consensus_key(2), precommit_with(|v| v.height += 1)), Valid(3)],
            Err(BadSignature { index: 2 }),
        ),
        (
            "for another round",
            vec![forged(2, consensus_key(2), precommit_with(|v| v.round += 1)), Valid(3)],
            Err(BadSignature { index: 2 }),
        ),
        (
            "by a key outside the set",
            vec![Valid(0), Valid(1), forged(3, key(0x99), unsigned().precommit(CHAIN))],
            Err(BadSignature { index: 3 }),
        ),
        (
            "by a member's key under another member's index",
            vec![Valid(0), Valid(1), forged(3, consensus_key(2), unsigned().precommit(CHAIN))],
            Err(BadSignature { index: 3 }),
        ),
        (
            "by the validator's account key rather than its consensus key",
            vec![Valid(0), Valid(1), forged(3, account_key(3), unsigned().precommit(CHAIN))],
            Err(BadSignature { index: 3 }),
        ),
        (
            "a bad signature among enough good ones",
            vec![Valid(0), Valid(1), forged(2, key(0x99), unsigned().precommit(CHAIN)), Valid(3)],
            Err(BadSignature { index: 2 }),
        ),
        (
            "signature bytes that do not parse",
            vec![Valid(0), Valid(1), Entry::Raw { index: 3, signature: Signature([0; 65]) }],
            Err(BadSignature { index: 3 }),
        ),
    ];

    let set = set_with(&POWERS);
    for (name, entries, expected) in cases {
        assert_eq!(build(&entries).verify(CHAIN, &set), expected, "case: {name}");
    }
}

#[test]
fn a_valid_certificate_fails_for_another_chain_or_block() {
    let set = set_with(&POWERS);
    let certificate = build(&[Entry::Valid(0), Entry::Valid(1), Entry::Valid(3)]);
    assert_eq!(certificate.verify(CHAIN, &set), Ok(()));
    assert_eq!(
        certificate.verify(CHAIN + 1, &set),
        Err(CertificateError::BadSignature { index: 0 })
    );

    for change in [
        (|c: &mut Certificate| c.block_hash = Hash::ZERO) as fn(&mut Certificate),
        |c| c.height += 1,
        |c| c.round += 1,
    ] {
        let mut moved = certificate.clone();
        change(&mut moved);
        assert_eq!(moved.verify(CHAIN, &set), Err(CertificateError::BadSignature { index: 0 }));
    }
}

#[test]
fn the_same_signatures_depend_on_the_set_they_are_checked_against() {
    let certificate = build(&[Entry::Valid(1), Entry::Valid(3)]);
    // 80 of 120 is not enough; 80 of 110 is.
    assert!(certificate.verify(CHAIN, &set_with(&POWERS)).is_err());
    assert_eq!(certificate.verify(CHAIN, &set_with(&[10, 20, 20, 60])), Ok(()));
    // A set in which the indices name other keys refuses them.
    let mut shuffled = set_with(&POWERS);
    shuffled.validators.swap(1, 2);
    assert_eq!(
        certificate.verify(CHAIN, &shuffled),
        Err(CertificateError::BadSignature { index: 1 })
    );
    // An empty set refuses everything, including an empty certificate.
    assert_eq!(
        certificate.verify(CHAIN, &ValidatorSet::default()),
        Err(CertificateError::UnknownValidator { index: 1, len: 0 })
    );
    assert_eq!(
        unsigned().verify(CHAIN, &ValidatorSet::default()),
        Err(CertificateError::InsufficientPower { signed: 0, total: 0 })
    );
}

const MAX: Balance = Balance::MAX;
/// `u128::MAX` is divisible by 3: `MAX == 3 * THIRD`.
const THIRD: Balance = MAX / 3;

#[test]
fn supermajority_table() {
    assert_eq!(THIRD * 3, MAX);
    let cases: [(&str, &[Balance], Balance, bool); 24] = [
        ("empty set, no power", &[], 0, false),
        ("one of 1", &[1], 1, true),
        ("none of 1", &[1], 0, false),
        ("2 of 3", &[1, 1, 1], 2, false),
        ("3 of 3", &[1, 1, 1], 3, true),
        ("3 of 4", &[1, 1, 1, 1], 3, true),
        ("2 of 4", &[1, 1, 1, 1], 2, false),
        ("exactly 2/3 of 120", &POWERS, 80, false),
        ("81 of 120", &POWERS, 81, true),
        ("all of 120", &POWERS, 120, true),
        ("67 of 100", &[10, 20, 30, 40], 67, true),
        ("66 of 100", &[10, 20, 30, 40], 66, false),
        // The total is u128::MAX: 2 * total overflows u128.
        ("exactly 2/3 of MAX", &[MAX], 2 * THIRD, false),
        ("one above 2/3 of MAX", &[MAX], 2 * THIRD + 1, true),
        ("two above 2/3 of MAX", &[MAX], 2 * THIRD + 2, true),
        ("all of MAX", &[MAX], MAX, true),
        ("all of MAX in three parts", &[THIRD, THIRD, THIRD], MAX, true),
        ("exactly 2/3 of MAX in three parts", &[THIRD, THIRD, THIRD], 2 * THIRD, false),
        // 3 * power fits but only just: MAX == 3 * THIRD.
        ("THIRD of 3 * THIRD / 2", &[THIRD + THIRD / 2], THIRD, true),
        // The total exceeds u128::MAX: 2^128 here, whose two thirds is 2 * THIRD + 2/3.
        ("2 * THIRD of 2^128", &[MAX, 1], 2 * THIRD, false),
        ("2 * THIRD + 1 of 2^128", &[1 << 127, 1 << 127], 2 * THIRD + 1, true),
        // A sum of stakes that overflows u128 must not be clamped into a smaller total.
        ("half of 2 * MAX", &[MAX, MAX], MAX, false),
        ("a third of 3 * MAX", &[MAX, MAX, MAX], MAX, false),
        ("MAX of MAX + 2 * THIRD", &[MAX, THIRD, THIRD], MAX, false),
    ];
    for (name, powers, power, expected) in cases {
        assert_eq!(set_with(powers).is_supermajority(power), expected, "case: {name}");
    }
}

/// A 256-bit reference, little-endian u64 limbs: slow and obviously right.
fn wide(x: u128) -> [u64; 4] {
    [x as u64, (x >> 64) as u64, 0, 0]
}

fn wide_add(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    let mut out = [0; 4];
    let mut carry = 0u128;
    for i in 0..4 {
        let sum = u128::from(a[i]) + u128::from(b[i]) + carry;
        out[i] = sum as u64;
        carry = sum >> 64;
    }
    assert_eq!(carry, 0, "reference overflow");
    out
}

fn wide_gt(a: [u64; 4], b: [u64; 4]) -> bool {
    a.iter().rev().cmp(b.iter().rev()).is_gt()
}

fn reference_supermajority(powers: &[Balance], power: Balance) -> bool {
    let total = powers.iter().fold(wide(0), |sum, &p| wide_add(sum, wide(p)));
    let three_power = wide_add(wide_add(wide(power), wide(power)), wide(power));
    wide_gt(three_power, wide_add(total, total))
}

fn power() -> impl Strategy<Value = Balance> {
    prop_oneof![0..=1_000u128, any::<u128>(), (MAX - 1_000)..=MAX, (THIRD - 3)..=(THIRD + 3)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn supermajority_agrees_with_exact_arithmetic(
        powers in prop::collection::vec(power(), 0..6),
        signers in any::<u8>(),
        extra in power(),
    ) {
        let set = set_with(&powers);
        // Both the sum of a subset (when it fits) and an arbitrary figure.
        let subset = powers
            .iter()
            .enumerate()
            .filter(|(i, _)| signers & (1 << i) != 0)
            .try_fold(0u128, |sum, (_, &p)| sum.checked_add(p));
        for power in subset.into_iter().chain([extra]) {
            prop_assert_eq!(
                set.is_supermajority(power),
                reference_supermajority(&powers, power),
                "power {} of {:?}", power, powers
            );
        }
    }
}
