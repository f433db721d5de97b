//! Properties of signing and recovery: a signature recovers exactly its signer, is low-S, and
//! stops recovering the signer when any byte of it or of the signed transaction changes.

use altan_primitives::{
    Action, Address, Hash, PublicKey, SecretKey, Signature, SignedTransaction, StakingAction,
    Transaction,
};
use parity_scale_codec::{DecodeAll, Encode};
use proptest::prelude::*;

use crate::key;

/// Half the order of secp256k1, big-endian: a low-S signature has `s <= HALF_ORDER`.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

fn secret_key() -> impl Strategy<Value = SecretKey> {
    any::<[u8; 32]>()
        .prop_filter_map("zero or not below the curve order", |b| SecretKey::from_bytes(&b).ok())
}

fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (address(), any::<u128>()).prop_map(|(to, value)| Action::Transfer { to, value }),
        (bytes(), bytes(), any::<u128>(), any::<[u8; 32]>()).prop_map(
            |(code, input, value, salt)| Action::Deploy { code, input, value, salt: Hash(salt) }
        ),
        (address(), bytes(), any::<u128>()).prop_map(|(contract, input, value)| Action::Call {
            contract,
            input,
            value
        }),
        (any::<[u8; 33]>(), any::<u16>()).prop_map(|(key, commission_bps)| {
            Action::Staking(StakingAction::RegisterValidator {
                consensus_key: PublicKey(key),
                commission_bps,
            })
        }),
        (address(), any::<u128>()).prop_map(|(validator, amount)| Action::Staking(
            StakingAction::Bond { validator, amount }
        )),
        (address(), any::<u128>()).prop_map(|(validator, amount)| {
            Action::Staking(StakingAction::Unbond { validator, amount })
        }),
        Just(Action::Staking(StakingAction::Withdraw)),
    ]
}

fn transaction() -> impl Strategy<Value = Transaction> {
    (any::<u64>(), any::<u64>(), any::<u64>(), any::<u128>(), action()).prop_map(
        |(chain_id, nonce, gas_limit, gas_price, action)| Transaction {
            chain_id,
            nonce,
            gas_limit,
            gas_price,
            action,
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_signature_recovers_its_signer_and_is_low_s(
        key in secret_key(),
        prehash in any::<[u8; 32]>(),
    ) {
        let prehash = Hash(prehash);
        let signature = key.sign_prehash(&prehash);
        prop_assert_eq!(signature.recover_address(&prehash), Ok(key.address()));
        prop_assert_eq!(signature.recover_public_key(&prehash), Ok(key.public_key()));
        let s: [u8; 32] = signature.0[32..64].try_into().unwrap();
        prop_assert!(s <= HALF_ORDER, "s is high: {}", signature);
        prop_assert!(signature.0[64] <= 1, "recovery id {} is not 0 or 1", signature.0[64]);
        // Signing is deterministic (RFC 6979), so the same input gives the same bytes.
        prop_assert_eq!(key.sign_prehash(&prehash), signature);
    }

    #[test]
    fn a_changed_signature_byte_never_recovers_the_signer(
        key in secret_key(),
        prehash in any::<[u8; 32]>(),
        index in 0usize..65,
        flip in 1u8..=255,
    ) {
        let prehash = Hash(prehash);
        let mut signature = key.sign_prehash(&prehash);
        signature.0[index] ^= flip;
        prop_assert_ne!(signature.recover_address(&prehash), Ok(key.address()));
    }

    #[test]
    fn a_signature_does_not_recover_the_signer_over_another_prehash(
        key in secret_key(),
        prehash in any::<[u8; 32]>(),
        other in any::<[u8; 32]>(),
    ) {
        prop_assume!(prehash != other);
        let signature = key.sign_prehash(&Hash(prehash));
        prop_assert_ne!(signature.recover_address(&Hash(other)), Ok(key.address()));
    }

    #[test]
    fn a_changed_transaction_byte_changes_the_sender(
        key in secret_key(),
        transaction in transaction(),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let signed = transaction.clone().sign(&key);
        prop_assert_eq!(signed.recover_sender(), Ok(key.address()));

        let mut encoded = transaction.encode();
        let index = index.index(encoded.len());
        encoded[index] ^= flip;
        // Most changes leave bytes that no longer decode (a wrong variant, length or trailing
        // bytes); those cannot be submitted at all. The others must be different transactions
        // with a different signing hash, so that the signature no longer names the sender.
        if let Ok(changed) = Transaction::decode_all(&mut &encoded[..]) {
            prop_assert_ne!(&changed, &transaction, "two encodings of one transaction");
            prop_assert_ne!(changed.signing_hash(), transaction.signing_hash());
            let forged = SignedTransaction { transaction: changed, signature: signed.signature };
            prop_assert_ne!(forged.recover_sender(), Ok(key.address()));
        }
    }

    #[test]
    fn a_signed_transaction_round_trips(key in secret_key(), transaction in transaction()) {
        let signed = transaction.sign(&key);
        let encoded = signed.encode();
        let decoded = SignedTransaction::decode_all(&mut &encoded[..]).unwrap();
        prop_assert_eq!(decoded.id(), signed.id());
        prop_assert_eq!(decoded.recover_sender(), Ok(key.address()));
        prop_assert_eq!(decoded, signed);
    }
}

#[test]
fn a_transaction_signed_for_one_chain_does_not_recover_its_sender_on_another() {
    let signer = key(0x21);
    let actions = [
        Action::Transfer { to: Address([0xaa; 20]), value: 1 },
        Action::Call { contract: Address([0xcc; 20]), input: vec![1, 2], value: 0 },
        Action::Staking(StakingAction::Withdraw),
    ];
    for action in actions {
        let transaction =
            Transaction { chain_id: 1, nonce: 0, gas_limit: 21_000, gas_price: 1, action };
        let signed = transaction.sign(&signer);
        assert_eq!(signed.recover_sender(), Ok(signer.address()));

        let mut replayed = signed.clone();
        replayed.transaction.chain_id = 2;
        assert_ne!(replayed.transaction.signing_hash(), signed.transaction.signing_hash());
        assert_ne!(replayed.recover_sender(), Ok(signer.address()), "replayed on chain 2");
        assert_ne!(replayed.id(), signed.id());
    }
}

#[test]
fn the_transaction_signing_hash_is_domain_separated_from_a_plain_hash() {
    // The prehash must not be blake3 of the bare encoding (which a vote or another payload could
    // share): it carries the transaction domain tag.
    let transaction = Transaction {
        chain_id: 1,
        nonce: 0,
        gas_limit: 1,
        gas_price: 1,
        action: Action::Staking(StakingAction::Withdraw),
    };
    assert_ne!(transaction.signing_hash(), altan_primitives::blake3(&transaction.encode()));
}

#[test]
fn malformed_signatures_fail_with_specific_errors() {
    use altan_primitives::SignatureError;

    let signer = key(0x22);
    let prehash = altan_primitives::blake3(b"message");
    let signature = signer.sign_prehash(&prehash);

    let mut zero_r = signature;
    zero_r.0[..32].fill(0);
    assert_eq!(zero_r.recover_address(&prehash), Err(SignatureError::InvalidScalars));

    let mut s_at_order = signature;
    s_at_order.0[32..64].copy_from_slice(&[
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ]);
    assert_eq!(s_at_order.recover_address(&prehash), Err(SignatureError::InvalidScalars));

    let mut high_s = signature;
    let mut s = HALF_ORDER;
    s[31] += 1;
    high_s.0[32..64].copy_from_slice(&s);
    assert_eq!(high_s.recover_address(&prehash), Err(SignatureError::HighS));

    for v in [2u8, 3, 27, 28, 255] {
        let mut bad_v: Signature = signature;
        bad_v.0[64] = v;
        assert_eq!(bad_v.recover_address(&prehash), Err(SignatureError::InvalidRecoveryId(v)));
    }
}
