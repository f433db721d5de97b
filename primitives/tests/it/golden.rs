//! Golden vectors for the canonical SCALE encoding and the blake3 identifiers.
//!
//! These bytes are the wire and storage format of Altan: they are hashed into block ids,
//! transaction ids and Merkle roots, signed by accounts and validators, stored on disk and sent
//! between nodes. If a test here fails, the format has changed. That must be a deliberate decision
//! (a new domain tag or version, a migration, a note in the changelog), never the side effect of
//! reordering a field or a variant. Update a literal only together with that decision.

use std::fmt::Debug;

use altan_primitives::{
    Action, Address, Block, Certificate, ChainSpec, CommitSignature, Event, Evidence,
    ExecutionStatus, FailureReason, GenesisAccount, GenesisValidator, Hash, Header, Proposal,
    Receipt, SignedTransaction, SignedVote, StakingAction, StakingFailure, StakingParams,
    Transaction, Validator, ValidatorSet, Vote, VoteKind, blake3, merkle,
};
use parity_scale_codec::{Decode, DecodeAll, Encode};

use crate::key;

/// Asserts the hex of the value's encoding, and that decoding it gives the value back with no
/// bytes left over.
fn encoding<T: Encode + Decode + PartialEq + Debug>(name: &str, value: &T, expected_hex: &str) {
    let encoded = value.encode();
    golden(name, &hex::encode(&encoded), expected_hex);
    let decoded = T::decode_all(&mut &encoded[..])
        .unwrap_or_else(|e| panic!("{name}: its own encoding does not decode: {e}"));
    assert_eq!(&decoded, value, "{name}: decode(encode(x)) != x");
}

/// Asserts a hash against its golden `0x` hex form.
fn id(name: &str, hash: Hash, expected: &str) {
    golden(name, &hash.to_string(), expected);
}

fn golden(name: &str, actual: &str, expected: &str) {
    assert_eq!(actual, expected, "{name}: the wire/storage format changed; see the module doc");
}

const ACCOUNT_KEY: u8 = 0x11;

fn transaction(nonce: u64, action: Action) -> Transaction {
    Transaction { chain_id: 1, nonce, gas_limit: 100_000, gas_price: 1_000_000_000, action }
}

fn transfer() -> Transaction {
    transaction(7, Action::Transfer { to: Address([0xaa; 20]), value: 1_000_000_000_000_000_000 })
}

fn call() -> Transaction {
    transaction(
        8,
        Action::Call {
            contract: Address([0xcc; 20]),
            input: vec![0xde, 0xad, 0xbe, 0xef],
            value: 0,
        },
    )
}

fn header() -> Header {
    Header {
        chain_id: 1,
        height: 42,
        parent_hash: blake3(b"parent"),
        timestamp_ms: 1_700_000_000_000,
        proposer: key(1).address(),
        state_root: blake3(b"state"),
        transactions_root: blake3(b"transactions"),
        receipts_root: blake3(b"receipts"),
        parent_certificate_hash: blake3(b"parent certificate"),
        evidence_root: blake3(b"evidence"),
        gas_used: 63_000,
        gas_limit: 30_000_000,
    }
}

#[test]
fn transactions_of_every_action() {
    let cases = [
        (
            "transfer",
            transfer(),
            concat!(
                "01000000000000000700000000000000a08601000000000000ca9a3b000000000000000000000000",
                "00aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000064a7b3b6e00d0000000000000000"
            ),
            "0xfd6609e05c160cafcd341f3974d1e9b791a21aed922323e0949e50d535f81aa5",
        ),
        (
            "deploy",
            transaction(
                0,
                Action::Deploy {
                    code: b"\0asm\x01\0\0\0".to_vec(),
                    input: vec![1, 2, 3],
                    value: 5,
                    salt: Hash([0x5a; 32]),
                },
            ),
            concat!(
                "01000000000000000000000000000000a08601000000000000ca9a3b000000000000000000000000",
                "01200061736d010000000c010203050000000000000000000000000000005a5a5a5a5a5a5a5a5a5a",
                "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
            ),
            "0xdd6de58456a892778e5743f9db36c6465470fa9b1720b3a9cf15659077e2296a",
        ),
        (
            "call",
            call(),
            concat!(
                "01000000000000000800000000000000a08601000000000000ca9a3b000000000000000000000000",
                "02cccccccccccccccccccccccccccccccccccccccc10deadbeef0000000000000000000000000000",
                "0000"
            ),
            "0x042c16b5467925a24414315dfa2c4629d5c2ee4c1211aa0022b71aa3a792c063",
        ),
        (
            "register_validator",
            transaction(
                1,
                Action::Staking(StakingAction::RegisterValidator {
                    consensus_key: key(2).public_key(),
                    commission_bps: 500,
                }),
            ),
            concat!(
                "01000000000000000100000000000000a08601000000000000ca9a3b000000000000000000000000",
                "0300024d4b6cd1361032ca9bd2aeb9d900aa4d45d9ead80ac9423374c451a7254d0766f401"
            ),
            "0x3119ad0d2028435f0a27b90fb4d497d3569457a700db50f92be4433c489a6902",
        ),
        (
            "bond",
            transaction(
                2,
                Action::Staking(StakingAction::Bond {
                    validator: Address([0xbb; 20]),
                    amount: 1_000_000_000_000_000_000_000,
                }),
            ),
            concat!(
                "01000000000000000200000000000000a08601000000000000ca9a3b000000000000000000000000",
                "0301bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb0000a0dec5adc9353600000000000000"
            ),
            "0xa59cebe20e86f7d2fb01168ec49a6925847cdb060f304c2f8329aff15cc182c3",
        ),
        (
            "unbond",
            transaction(
                3,
                Action::Staking(StakingAction::Unbond {
                    validator: Address([0xbb; 20]),
                    amount: u128::MAX,
                }),
            ),
            concat!(
                "01000000000000000300000000000000a08601000000000000ca9a3b000000000000000000000000",
                "0302bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbffffffffffffffffffffffffffffffff"
            ),
            "0x1065fa5968155665f29c925c134c5d5517c9e28a02995b0434162a74e9eb74a7",
        ),
        (
            "withdraw",
            transaction(u64::MAX, Action::Staking(StakingAction::Withdraw)),
            concat!(
                "0100000000000000ffffffffffffffffa08601000000000000ca9a3b000000000000000000000000",
                "0303"
            ),
            "0x7bc03a7d586a3ac58c8d3b450b1b67161b5130f03ba9a1a79ba9b02e787ac160",
        ),
    ];
    for (name, tx, expected_hex, expected_signing_hash) in cases {
        encoding(name, &tx, expected_hex);
        id(&format!("{name} signing_hash"), tx.signing_hash(), expected_signing_hash);
    }
}

#[test]
fn signed_transaction() {
    let signed = transfer().sign(&key(ACCOUNT_KEY));
    encoding(
        "signed transfer",
        &signed,
        concat!(
            "01000000000000000700000000000000a08601000000000000ca9a3b000000000000000000000000",
            "00aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000064a7b3b6e00d000000000000000023baec",
            "a6a5dbd402c2fbe505317ebffafb4c1fe4fb141644e93b605a587ec05c4c7d14fa0334a586709041",
            "71fad7628c6e5bb011c85f479b5102ef115244aabc01"
        ),
    );
    id(
        "signed transfer id",
        signed.id(),
        "0xfebbd5fa97ae92f4f9ac614a5db236623e6a3c4709e938b9e6b9fe47cc670706",
    );
    assert_eq!(signed.recover_sender(), Ok(key(ACCOUNT_KEY).address()));
}

#[test]
fn header_and_block() {
    let header = header();
    encoding(
        "header",
        &header,
        concat!(
            "01000000000000002a00000000000000ebdea6058df2230dc25b7a7c7b487b470c508c2e0a5119c9",
            "6893c443de3a9e790068e5cf8b0100001a642f0e3c3af545e7acbd38b07251b3990914f1456cf7f1",
            "bcf2d3dc53ec88b93f05b0053490b07906a459b9a7447744bf3bae82de09d792be216b34f5e3efcf",
            "fb2e358ec2e33597695898d745e4e7fc1c6d7031128724a9ed14c079db448fdf57694fad59449b47",
            "10c9f08e9870075fae94ff28beab587239bd8d99df81fe42fe9384dbb62429efa9171201055264f0",
            "e3bf1276b26fcc302645d25e8327ec86f8ec1f0e4f989bfdeca51e17a314a5b29ba8f14618f60000",
            "0000000080c3c90100000000"
        ),
    );
    id(
        "header hash",
        header.hash(),
        "0xbe10fd2437814269530351fb271677f32409f046645420f83c6af5be1033501d",
    );

    let transactions: Vec<SignedTransaction> =
        vec![transfer().sign(&key(ACCOUNT_KEY)), call().sign(&key(ACCOUNT_KEY))];
    id(
        "transactions root",
        Block::compute_transactions_root(&transactions),
        "0xce6561da72175453d16a17c7cbc2f3220a2d7f0ffa06e812b6e78e76c3c0af0c",
    );
    let precommit = Vote {
        chain_id: 1,
        height: 41,
        round: 0,
        kind: VoteKind::Precommit,
        block_hash: Some(header.parent_hash),
    };
    let parent_certificate = Certificate {
        height: 41,
        round: 0,
        block_hash: header.parent_hash,
        signatures: vec![CommitSignature {
            validator_index: 0,
            signature: precommit.clone().sign(&key(0x41)).signature,
        }],
    };
    id(
        "parent certificate hash",
        Block::compute_parent_certificate_hash(Some(&parent_certificate)),
        "0x3d7f03030e70fd9fd33633c29380e209321bbd79f7fb72c39df60a611de4e09b",
    );
    id(
        "no parent certificate",
        Block::compute_parent_certificate_hash(None),
        "0x0000000000000000000000000000000000000000000000000000000000000000",
    );
    let evidence = vec![Evidence::duplicate_vote(
        precommit.clone().sign(&key(0x42)),
        Vote { block_hash: None, ..precommit }.sign(&key(0x42)),
    )];
    id(
        "evidence root",
        Block::compute_evidence_root(&evidence),
        "0x8681bb6f196f2fa0e848faea0db0bdc50c31b8b51d1226797f3f6b76ef3052f0",
    );
    id(
        "no evidence",
        Block::compute_evidence_root(&[]),
        "0xaf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    );
    let block = Block {
        header: Header {
            parent_certificate_hash: Block::compute_parent_certificate_hash(Some(
                &parent_certificate,
            )),
            evidence_root: Block::compute_evidence_root(&evidence),
            ..header.clone()
        },
        transactions,
        parent_certificate: Some(parent_certificate),
        evidence,
    };
    encoding(
        "block",
        &block,
        concat!(
            "01000000000000002a00000000000000ebdea6058df2230dc25b7a7c7b487b470c508c2e0a5119c9",
            "6893c443de3a9e790068e5cf8b0100001a642f0e3c3af545e7acbd38b07251b3990914f1456cf7f1",
            "bcf2d3dc53ec88b93f05b0053490b07906a459b9a7447744bf3bae82de09d792be216b34f5e3efcf",
            "fb2e358ec2e33597695898d745e4e7fc1c6d7031128724a9ed14c079db448fdf57694fad59449b47",
            "10c9f08e9870075fae94ff283d7f03030e70fd9fd33633c29380e209321bbd79f7fb72c39df60a61",
            "1de4e09b8681bb6f196f2fa0e848faea0db0bdc50c31b8b51d1226797f3f6b76ef3052f018f60000",
            "0000000080c3c901000000000801000000000000000700000000000000a08601000000000000ca9a",
            "3b00000000000000000000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000064a7b3b6",
            "e00d000000000000000023baeca6a5dbd402c2fbe505317ebffafb4c1fe4fb141644e93b605a587e",
            "c05c4c7d14fa0334a58670904171fad7628c6e5bb011c85f479b5102ef115244aabc010100000000",
            "0000000800000000000000a08601000000000000ca9a3b00000000000000000000000002cccccccc",
            "cccccccccccccccccccccccccccccccc10deadbeef0000000000000000000000000000000057f5c2",
            "ed71b0ccf2c7d411517b482db1cefd7df9d870d08e2df3070e36fd98577e24bbc5b75961c9658f57",
            "3d6966e5acac1546fb03ab2706e9160e6a4f79e99f0001290000000000000000000000ebdea6058d",
            "f2230dc25b7a7c7b487b470c508c2e0a5119c96893c443de3a9e790400000ba8ec0123b0ba7277c6",
            "b98b3e9510040b1bd11fbaf3c8599c13c55cb35a7b621ea6f77c52797d95b0920d99b1b2c01d359f",
            "5201cf8ae6b2f0e778b04a6abfff000400010000000000000029000000000000000000000001009d",
            "579c5d898a57176451b79b59d51686d4cd3985b7e054db4d9458e2434691bb40b5d557924468801a",
            "26e86460c5038ed324ad203877cb8477273eee323b31bd0101000000000000002900000000000000",
            "000000000101ebdea6058df2230dc25b7a7c7b487b470c508c2e0a5119c96893c443de3a9e790f83",
            "c74a6ef8f28fa77cbcea07b651be06a557e4249654ffd7ba3beb1b0177bf3d1f8ac84e7462d3cd1b",
            "e7de8a087420139d991e6e3ac606495b4de0a7f6c71501"
        ),
    );
    assert_eq!(block.hash(), block.header.hash(), "a block's id is its header's hash");

    let empty =
        Block { header, transactions: Vec::new(), parent_certificate: None, evidence: Vec::new() };
    encoding(
        "empty block",
        &empty,
        concat!(
            "01000000000000002a00000000000000ebdea6058df2230dc25b7a7c7b487b470c508c2e0a5119c9",
            "6893c443de3a9e790068e5cf8b0100001a642f0e3c3af545e7acbd38b07251b3990914f1456cf7f1",
            "bcf2d3dc53ec88b93f05b0053490b07906a459b9a7447744bf3bae82de09d792be216b34f5e3efcf",
            "fb2e358ec2e33597695898d745e4e7fc1c6d7031128724a9ed14c079db448fdf57694fad59449b47",
            "10c9f08e9870075fae94ff28beab587239bd8d99df81fe42fe9384dbb62429efa9171201055264f0",
            "e3bf1276b26fcc302645d25e8327ec86f8ec1f0e4f989bfdeca51e17a314a5b29ba8f14618f60000",
            "0000000080c3c90100000000000000"
        ),
    );
}

#[test]
fn receipts_of_every_status() {
    let event = Event {
        contract: Address([0xcc; 20]),
        topics: vec![blake3(b"Transfer(address,address,uint128)"), Hash([0x01; 32])],
        data: vec![0, 1, 2, 3],
    };
    let success = Receipt {
        transaction_id: blake3(b"deploy"),
        status: ExecutionStatus::Success,
        gas_used: 54_321,
        output: vec![0x2a],
        events: vec![event.clone(), Event { topics: Vec::new(), data: Vec::new(), ..event }],
        contract_address: Some(Address([0xdd; 20])),
    };
    let revert = Receipt {
        transaction_id: blake3(b"call"),
        status: ExecutionStatus::Revert,
        gas_used: 21_000,
        output: b"insufficient allowance".to_vec(),
        events: Vec::new(),
        contract_address: None,
    };
    let failure = Receipt {
        transaction_id: blake3(b"loop"),
        status: ExecutionStatus::Failure(FailureReason::OutOfGas),
        gas_used: 100_000,
        output: Vec::new(),
        events: Vec::new(),
        contract_address: None,
    };
    encoding(
        "receipt success",
        &success,
        concat!(
            "e0a99415cc70a6e7c3ecc81f36600396b50a93b64c9eb9766eada7243ad5395a0031d40000000000",
            "00042a08cccccccccccccccccccccccccccccccccccccccc0871fba72c0005dd55aea68839232192",
            "3169fb06ab0ec0c3e330731ca5979f4db90101010101010101010101010101010101010101010101",
            "0101010101010101011000010203cccccccccccccccccccccccccccccccccccccccc000001dddddd",
            "dddddddddddddddddddddddddddddddddd"
        ),
    );
    id(
        "receipt success hash",
        success.hash(),
        "0xff89f1792c47c2fbc79380dd2acbeb54f7d2713499df603d0a53fd8c3d3f7cda",
    );
    encoding(
        "receipt revert",
        &revert,
        concat!(
            "69a7627261153ee88336d9da1ae0723ce4de0a54a4130a2624cfb8b865044ed90108520000000000",
            "0058696e73756666696369656e7420616c6c6f77616e63650000"
        ),
    );
    id(
        "receipt revert hash",
        revert.hash(),
        "0xc2a29457d4eaf7d8f3db933a1a818dd3065236a155b01f04fe53aea2787b946d",
    );
    encoding(
        "receipt failure",
        &failure,
        concat!(
            "dc9b7ae3c2cad0bbc75244833f0294615de0730a743e6c703aafed1e92f0c1a80200a08601000000",
            "0000000000"
        ),
    );
    id(
        "receipt failure hash",
        failure.hash(),
        "0x2cbe0b6a82375fd8d7186c41d02a031ed442b1feb2ec748a9ac27498ba4454de",
    );
    id(
        "receipts root",
        Receipt::compute_root(&[success, revert, failure]),
        "0x1b988320cfcc4b3633a2b15c643b2857a704e23ec6c04298212af8b5cc085127",
    );
}

/// The order of the failure codes is part of the format: each is one byte in a receipt.
#[test]
fn failure_reasons_keep_their_codes() {
    let reasons = [
        FailureReason::OutOfGas,
        FailureReason::Trap,
        FailureReason::StackOverflow,
        FailureReason::CallDepthExceeded,
        FailureReason::Reentrancy,
        FailureReason::InsufficientBalance,
        FailureReason::NoCode,
        FailureReason::InvalidCode,
        FailureReason::AddressInUse,
        FailureReason::InvalidHostCall,
        FailureReason::Unsupported,
    ];
    encoding("status success", &ExecutionStatus::Success, "00");
    encoding("status revert", &ExecutionStatus::Revert, "01");
    for (code, reason) in (0u8..).zip(reasons) {
        let status = ExecutionStatus::Failure(reason);
        encoding(&format!("{reason:?}"), &status, &hex::encode([2, code]));
    }
    let staking = [
        StakingFailure::AlreadyValidator,
        StakingFailure::ConsensusKeyInUse,
        StakingFailure::InvalidCommission,
        StakingFailure::NotAValidator,
        StakingFailure::ValidatorJailed,
        StakingFailure::ZeroAmount,
        StakingFailure::InsufficientBond,
        StakingFailure::TooManyDelegations,
        StakingFailure::TooManyUnbondings,
        StakingFailure::NothingToWithdraw,
        StakingFailure::InvalidConsensusKey,
        StakingFailure::Overflow,
    ];
    for (code, failure) in (0u8..).zip(staking) {
        let status = ExecutionStatus::Failure(FailureReason::Staking(failure));
        encoding(&format!("{failure:?}"), &status, &hex::encode([2, 11, code]));
    }
}

fn validator_set() -> ValidatorSet {
    ValidatorSet {
        validators: (1u8..=4)
            .map(|i| Validator {
                address: key(i).address(),
                consensus_key: key(i.wrapping_add(0x40)).public_key(),
                power: u128::from(i) * 10,
            })
            .collect(),
    }
}

#[test]
fn votes() {
    let prevote = Vote {
        chain_id: 1,
        height: 42,
        round: 3,
        kind: VoteKind::Prevote,
        block_hash: Some(header().hash()),
    };
    let nil_precommit =
        Vote { chain_id: 1, height: 42, round: 0, kind: VoteKind::Precommit, block_hash: None };
    encoding(
        "prevote",
        &prevote,
        concat!(
            "01000000000000002a00000000000000030000000001be10fd2437814269530351fb271677f32409",
            "f046645420f83c6af5be1033501d"
        ),
    );
    id(
        "prevote signing_hash",
        prevote.signing_hash(),
        "0xb7f7f7b3ce79626f0e40305240d0f955e5e3184618eac81d69225976de981c0f",
    );
    encoding("nil precommit", &nil_precommit, "01000000000000002a00000000000000000000000100");
    id(
        "nil precommit signing_hash",
        nil_precommit.signing_hash(),
        "0x088bebeed0b3d97f722100653cdfa8ef06955acd89bdbb521601255751f69e8f",
    );

    let signed: SignedVote = prevote.sign(&key(0x41));
    encoding(
        "signed prevote",
        &signed,
        concat!(
            "01000000000000002a00000000000000030000000001be10fd2437814269530351fb271677f32409",
            "f046645420f83c6af5be1033501d75fc538944bbf66dcd79e2c71c3e48b7e67a7a449cc39351e008",
            "667fba5a863d0cdf2c17a041800b5150829b4a7ea01b46973dc76f5c1fee64be711f14d3a6df00"
        ),
    );
    assert_eq!(signed.signer(), Ok(key(0x41).public_key()));

    encoding(
        "validator set",
        &validator_set(),
        concat!(
            "101a642f0e3c3af545e7acbd38b07251b3990914f102eec7245d6b7d2ccb30380bfbe2a3648cd7a9",
            "42653f5aa340edcea1f2836866190a0000000000000000000000000000005050a4f4b3f9338c3472",
            "dcc01a87c76a144b3c9c0324653eac434488002cc06bbfb7f10fe18991e35f9fe4302dbea6d2353d",
            "c0ab1c140000000000000000000000000000003325a78425f17a7e487eb5666b2bfd93abb06c7002",
            "7f31ebc5462c1fdce1b737ecff52d37d75dea43ce11c74d25aa297165faa20071e00000000000000",
            "0000000000000000c48b812bb43401392c037381aca934f4069c0517032c0b7cf95324a07d05398b",
            "240174dc0c2be444d96b159aa6c7f7b1e66868099128000000000000000000000000000000"
        ),
    );
}

#[test]
fn certificate() {
    let set = validator_set();
    let mut certificate =
        Certificate { height: 42, round: 1, block_hash: header().hash(), signatures: Vec::new() };
    let precommit = certificate.precommit(1);
    id(
        "certificate precommit signing_hash",
        precommit.signing_hash(),
        "0x806fa1c49b341d884526aba6ff7c796de064b7cc2b566a3ba9785207f99e7dac",
    );
    certificate.signatures = [1u16, 2, 3]
        .into_iter()
        .map(|index| CommitSignature {
            validator_index: index,
            signature: precommit.clone().sign(&key(0x41 + index as u8)).signature,
        })
        .collect();
    encoding(
        "certificate",
        &certificate,
        concat!(
            "2a0000000000000001000000be10fd2437814269530351fb271677f32409f046645420f83c6af5be",
            "1033501d0c010080c8f9cd6fb0888e898514283b9dfc81cb34e3adc8019fed3c779aabbf25aad31d",
            "3a8f9b833a07b4636da74684545d8f417e59c46d362f0cca6d064a774a0a370002004473bf07f7b2",
            "fdba58f49f22fc0af34ca7f60c3f689b12d829e97ebdb0b570354cec0d6dde99de145291725e52fc",
            "28a93dcadc964355258b823689b6ee49d7a70003005369f3dce3aa30b8742fdba9e14c9446598be4",
            "8cf36eb7805fcb5b085e80d92c68aaaf4d2dda93006eb01f323e827cf8783e6237656f29c31dacdd",
            "ab71feafb400"
        ),
    );
    assert_eq!(certificate.verify(1, &set), Ok(()), "the golden certificate is valid");
}

#[test]
fn proposals() {
    let fresh = Proposal {
        chain_id: 1,
        height: 42,
        round: 3,
        block_hash: blake3(b"proposed block"),
        pol_round: None,
    };
    let relocked = Proposal { round: 5, pol_round: Some(4), ..fresh.clone() };
    encoding(
        "proposal",
        &fresh,
        concat!(
            "01000000000000002a000000000000000300000096a2031946b7b2b1b1c5b2bfca886f3cdcb7efc2",
            "89d6877f97b0c23228ae826f00"
        ),
    );
    id(
        "proposal signing_hash",
        fresh.signing_hash(),
        "0x6f83fa5929deda82fb7a59a58c1313ab9cf951eee9b6d656a86a884d4869d704",
    );
    encoding(
        "proposal with pol_round",
        &relocked,
        concat!(
            "01000000000000002a000000000000000500000096a2031946b7b2b1b1c5b2bfca886f3cdcb7efc2",
            "89d6877f97b0c23228ae826f0104000000"
        ),
    );
    id(
        "proposal with pol_round signing_hash",
        relocked.signing_hash(),
        "0xa58e4bc1a75823c94599058bff98e1b15ab1012b658dd5e2c9f6a7c038859aa5",
    );

    let signed = fresh.sign(&key(0x41));
    encoding(
        "signed proposal",
        &signed,
        concat!(
            "01000000000000002a000000000000000300000096a2031946b7b2b1b1c5b2bfca886f3cdcb7efc2",
            "89d6877f97b0c23228ae826f0021f8b8cb85326fa7b8d717fd57518101adfdf694db2c3488940c07",
            "0442380e3d1c44766533ce78000b962e1c04d578e3d724e0436d26e2336e37ae973c2febe600"
        ),
    );
    assert_eq!(signed.signer(), Ok(key(0x41).public_key()));
}

#[test]
fn evidence() {
    let vote = |block_hash| Vote {
        chain_id: 1,
        height: 42,
        round: 3,
        kind: VoteKind::Precommit,
        block_hash,
    };
    let for_block = vote(Some(blake3(b"voted block"))).sign(&key(0x42));
    let for_nil = vote(None).sign(&key(0x42));
    // Nil encodes as 0x00 and sorts first, whichever order the votes come in.
    let duplicate_vote = Evidence::duplicate_vote(for_block.clone(), for_nil.clone());
    assert_eq!(duplicate_vote, Evidence::duplicate_vote(for_nil, for_block));
    encoding(
        "duplicate vote evidence",
        &duplicate_vote,
        concat!(
            "0001000000000000002a0000000000000003000000010022b59d68136bad33191f20b247f7705294",
            "94d49b6055fd42c198391200e29953453db1586861eb653e693a50790b7b07d3b369a4612f711747",
            "43d6fd9a58fb640101000000000000002a000000000000000300000001013952fc27ba184bcbf8d6",
            "a1e8b009b40172c1f3f979b1587d00e8096d9dbadfd2969594689c8df8f6297993b89da4ef2ac5b1",
            "bf3a4a195ed18ecd7963478cda1b1d3a6ab3e305d1d7063d35ebb92a7cf3429e7d2e34b6cb4d8e54",
            "81d74f94337701"
        ),
    );
    id(
        "duplicate vote evidence hash",
        duplicate_vote.hash(),
        "0x165fba9202dfe410c2af7b36668f58ea725f2319448f2254368ef6a966aa6ffc",
    );
    assert_eq!(duplicate_vote.verify(), Ok(key(0x42).public_key()));

    let proposal =
        |block_hash| Proposal { chain_id: 1, height: 42, round: 3, block_hash, pol_round: None };
    let duplicate_proposal = Evidence::duplicate_proposal(
        proposal(blake3(b"one")).sign(&key(0x43)),
        proposal(blake3(b"two")).sign(&key(0x43)),
    );
    encoding(
        "duplicate proposal evidence",
        &duplicate_proposal,
        concat!(
            "0101000000000000002a0000000000000003000000d33fb48ab5adff269ae172b29a6913ff04f6f2",
            "66207a7a8e976f2ecd571d4492000dbefddf6921e8f9324aaa43bb34a2a4e5b50dc2832196799330",
            "12baa635bb3c492441f333f373e6c735c79fd2c71e5dda1c1a89608ed1a5b80c55110d3a76ce0001",
            "000000000000002a0000000000000003000000dc770fff53f50835f8cc957e01c0d5731d3c2ed544",
            "c375493a28c09be5e0976300bc2c384b673492d7fbe5f8c28ba2cef21f1fcb68d67424a3421be0d2",
            "0bd88bb9065025c2f2a75844a898d7f55b705fd8409d8f83e4ef2033d7fb71dba23619a900"
        ),
    );
    id(
        "duplicate proposal evidence hash",
        duplicate_proposal.hash(),
        "0xc0f687508ed79fe8ed68d83cebe786a0478a20a4a43816b8667d7c09ffd5445f",
    );
    assert_eq!(duplicate_proposal.verify(), Ok(key(0x43).public_key()));
}

#[test]
fn chain_spec() {
    let spec = ChainSpec {
        name: "altan-golden".into(),
        chain_id: 1,
        genesis_time_ms: 1_700_000_000_000,
        block_gas_limit: 30_000_000,
        epoch_length: 100,
        accounts: vec![
            GenesisAccount { address: key(ACCOUNT_KEY).address(), balance: 1_000_000 },
            GenesisAccount { address: Address([0xaa; 20]), balance: u128::MAX },
        ],
        validators: vec![GenesisValidator {
            address: key(1).address(),
            consensus_key: key(0x41).public_key(),
            stake: 10,
            commission_bps: 1_000,
        }],
        staking: StakingParams {
            min_validator_stake: 1_000,
            max_validators: 21,
            unbonding_period: 1_000,
            evidence_max_age: 500,
            block_reward: 1_000_000,
            proposer_bonus_bps: 500,
            slash_fraction_bps: 1_000,
        },
        min_gas_price: 7,
    };
    encoding(
        "chain spec",
        &spec,
        concat!(
            "30616c74616e2d676f6c64656e01000000000000000068e5cf8b01000080c3c90100000000640000",
            "00000000000819e7e376e7c213b7e7e7e46cc70a5dd086daff2a40420f0000000000000000000000",
            "0000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaffffffffffffffffffffffffffffffff041a",
            "642f0e3c3af545e7acbd38b07251b3990914f102eec7245d6b7d2ccb30380bfbe2a3648cd7a94265",
            "3f5aa340edcea1f2836866190a000000000000000000000000000000e803e8030000000000000000",
            "0000000000001500e803000000000000f40100000000000040420f00000000000000000000000000",
            "f401e803",
            "07000000000000000000000000000000"
        ),
    );
    id(
        "chain spec hash",
        spec.hash(),
        "0xd4e009c26a1bb1cac01f87fe06471366a06d27872a5e6b5ab9a7b9cac135dffe",
    );
}

#[test]
fn merkle_roots() {
    let leaves: Vec<Hash> = (0u8..5).map(|i| blake3(&[i])).collect();
    let expected = [
        "0xaf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "0x06c735e42b9a521df7e4904a4f685c1e84777bd9cf2755c4fa975b0fda387054",
        "0x37d48b68a108669a1088e77e73fc20485e41d22841b0412a4bf56b7bdad41a8b",
        "0x22b50dfde982a36af914878aad8cd9ea981594795bb411200e948b797b133823",
        "0x3d42510c8a033d8191c69083b13fd8f3ff2b71c7188d690c940cfca866353d32",
    ];
    for (n, expected) in [0, 1, 2, 3, 5].into_iter().zip(expected) {
        id(&format!("merkle root of {n}"), merkle::root(&leaves[..n]), expected);
    }
}
