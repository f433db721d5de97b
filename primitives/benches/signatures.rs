//! Signature costs on one core: recovering an address from a 65-byte recoverable signature (what
//! admission and certificate checks pay per signature), a plain ECDSA verify against a known key
//! for comparison, and recovering the sender of a typical transfer (encoding + blake3 + recover).
//!
//! Run with `cargo bench -p altan-primitives --bench signatures`.

use std::hint::black_box;

use altan_primitives::{Action, Address, SecretKey, Transaction, blake3};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{Signature as EcdsaSignature, VerifyingKey};

fn signatures(c: &mut Criterion) {
    let key = SecretKey::from_bytes(&[0x11; 32]).expect("a valid secret key");
    let prehash = blake3(b"altan benchmark prehash");
    let signature = key.sign_prehash(&prehash);
    assert_eq!(signature.recover_address(&prehash), Ok(key.address()));

    let verifying_key = key.public_key().verifying_key().expect("a valid public key");
    let ecdsa = EcdsaSignature::from_slice(&signature.0[..64]).expect("valid scalars");
    assert!(verifying_key.verify_prehash(prehash.as_bytes(), &ecdsa).is_ok());

    let transfer = Transaction {
        chain_id: 1,
        nonce: 42,
        gas_limit: 21_000,
        gas_price: 1_000_000_000,
        action: Action::Transfer { to: Address([0xaa; 20]), value: 1_000_000_000_000_000_000 },
    }
    .sign(&key);
    assert_eq!(transfer.recover_sender(), Ok(key.address()));

    let mut group = c.benchmark_group("signatures");
    group.throughput(Throughput::Elements(1));
    group.bench_function("recover_address", |b| {
        b.iter(|| black_box(&signature).recover_address(black_box(&prehash)))
    });
    group.bench_function("verify_prehash", |b| {
        b.iter(|| {
            VerifyingKey::verify_prehash(
                black_box(&verifying_key),
                black_box(prehash.as_bytes()),
                black_box(&ecdsa),
            )
        })
    });
    group.bench_function("recover_sender_transfer", |b| {
        b.iter(|| black_box(&transfer).recover_sender())
    });
    group.bench_function("sign_prehash", |b| {
        b.iter(|| black_box(&key).sign_prehash(black_box(&prehash)))
    });
    group.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);
