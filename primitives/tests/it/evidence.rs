//! `Evidence::verify`: two conflicting messages by one key convict it; anything else, including
//! any tampering with valid evidence, is refused with the reason.

use altan_primitives::{
    Evidence, EvidenceError, EvidencePart, Offence, Proposal, SecretKey, Signature, SignatureError,
    SignedProposal, SignedVote, Vote, VoteKind, blake3,
};
use parity_scale_codec::{DecodeAll, Encode};

use crate::key;

const CHAIN: u64 = 7;

fn vote(kind: VoteKind, round: u32, block: Option<&[u8]>) -> Vote {
    Vote { chain_id: CHAIN, height: 10, round, kind, block_hash: block.map(blake3) }
}

fn proposal(round: u32, block: &[u8], pol_round: Option<u32>) -> Proposal {
    Proposal { chain_id: CHAIN, height: 10, round, block_hash: blake3(block), pol_round }
}

fn signed_votes(a: Vote, b: Vote, key: &SecretKey) -> (SignedVote, SignedVote) {
    (a.sign(key), b.sign(key))
}

fn vote_evidence() -> Evidence {
    let (a, b) = signed_votes(
        vote(VoteKind::Prevote, 2, Some(b"a")),
        vote(VoteKind::Prevote, 2, Some(b"b")),
        &key(0x50),
    );
    Evidence::duplicate_vote(a, b)
}

fn proposal_evidence() -> Evidence {
    Evidence::duplicate_proposal(
        proposal(1, b"a", None).sign(&key(0x51)),
        proposal(1, b"a", Some(0)).sign(&key(0x51)),
    )
}

#[test]
fn conflicting_votes_convict_their_signer() {
    let evidence = vote_evidence();
    assert_eq!(evidence.verify(), Ok(key(0x50).public_key()));
    assert_eq!(evidence.height(), 10);
    assert_eq!(evidence.round(), 2);
    assert_eq!(evidence.chain_id(), CHAIN);
    assert_eq!(
        evidence.offence(),
        Ok(Offence {
            offender: key(0x50).public_key(),
            height: 10,
            round: 2,
            step: Some(VoteKind::Prevote)
        })
    );
}

#[test]
fn a_vote_for_a_block_and_a_vote_for_nil_conflict() {
    let (a, b) = signed_votes(
        vote(VoteKind::Precommit, 0, None),
        vote(VoteKind::Precommit, 0, Some(b"a")),
        &key(0x52),
    );
    assert_eq!(Evidence::duplicate_vote(a, b).verify(), Ok(key(0x52).public_key()));
}

#[test]
fn conflicting_proposals_convict_their_signer() {
    // The same block with a different valid round is a different proposal.
    let evidence = proposal_evidence();
    assert_eq!(evidence.verify(), Ok(key(0x51).public_key()));
    assert_eq!(evidence.offence().map(|o| o.step), Ok(None));
}

#[test]
fn the_canonical_form_does_not_depend_on_the_order_given() {
    let (a, b) = signed_votes(
        vote(VoteKind::Prevote, 2, Some(b"a")),
        vote(VoteKind::Prevote, 2, Some(b"b")),
        &key(0x50),
    );
    let one = Evidence::duplicate_vote(a.clone(), b.clone());
    let other = Evidence::duplicate_vote(b.clone(), a.clone());
    assert_eq!(one.encode(), other.encode());
    assert_eq!(one.hash(), other.hash());

    // Built by hand in the other order, it is refused rather than given a second hash.
    let (first, second) = match one {
        Evidence::DuplicateVote { first, second } => (first, second),
        Evidence::DuplicateProposal { .. } => unreachable!("built from votes"),
    };
    let swapped = Evidence::DuplicateVote { first: second, second: first };
    assert_eq!(swapped.verify(), Err(EvidenceError::NotCanonical));
}

#[test]
fn one_message_twice_is_not_evidence() {
    let signed = vote(VoteKind::Prevote, 0, Some(b"a")).sign(&key(0x50));
    let evidence = Evidence::duplicate_vote(signed.clone(), signed);
    assert_eq!(evidence.verify(), Err(EvidenceError::SameContent));

    let signed = proposal(0, b"a", None).sign(&key(0x50));
    let evidence = Evidence::duplicate_proposal(signed.clone(), signed);
    assert_eq!(evidence.verify(), Err(EvidenceError::SameContent));
}

#[test]
fn messages_by_two_keys_are_not_evidence() {
    let a = vote(VoteKind::Prevote, 0, Some(b"a")).sign(&key(0x50));
    let b = vote(VoteKind::Prevote, 0, Some(b"b")).sign(&key(0x53));
    let evidence = Evidence::duplicate_vote(a, b);
    assert!(matches!(evidence.verify(), Err(EvidenceError::DifferentSigners { .. })));
}

#[test]
fn messages_for_different_steps_are_not_evidence() {
    let k = key(0x50);
    let cases = [
        (
            vote(VoteKind::Prevote, 0, Some(b"a")),
            Vote { chain_id: CHAIN + 1, ..vote(VoteKind::Prevote, 0, Some(b"b")) },
            EvidenceError::DifferentChains { first: CHAIN, second: CHAIN + 1 },
        ),
        (
            vote(VoteKind::Prevote, 0, Some(b"a")),
            Vote { height: 11, ..vote(VoteKind::Prevote, 0, Some(b"b")) },
            EvidenceError::DifferentHeights { first: 10, second: 11 },
        ),
        (
            vote(VoteKind::Prevote, 0, Some(b"a")),
            vote(VoteKind::Prevote, 1, Some(b"b")),
            EvidenceError::DifferentRounds { first: 0, second: 1 },
        ),
        (
            vote(VoteKind::Prevote, 0, Some(b"a")),
            vote(VoteKind::Precommit, 0, Some(b"b")),
            EvidenceError::DifferentKinds { first: VoteKind::Prevote, second: VoteKind::Precommit },
        ),
    ];
    for (a, b, expected) in cases {
        // Written in the order given, which is also the canonical one for these.
        let evidence = Evidence::DuplicateVote { first: a.sign(&k), second: b.sign(&k) };
        assert_eq!(evidence.verify(), Err(expected));
    }

    let evidence = Evidence::DuplicateProposal {
        first: proposal(0, b"a", None).sign(&k),
        second: proposal(1, b"b", None).sign(&k),
    };
    assert_eq!(evidence.verify(), Err(EvidenceError::DifferentRounds { first: 0, second: 1 }));
}

#[test]
fn a_message_changed_after_signing_is_refused() {
    let evidence = vote_evidence();
    let Evidence::DuplicateVote { first, mut second } = evidence else {
        unreachable!("built from votes")
    };
    // Still a conflict, still canonical, but the second signature no longer recovers the key.
    second.vote.block_hash = Some(blake3(b"c"));
    let evidence = Evidence::DuplicateVote { first, second };
    assert!(matches!(
        evidence.verify(),
        Err(EvidenceError::DifferentSigners { .. } | EvidenceError::BadSignature { .. })
    ));
}

#[test]
fn a_malformed_signature_is_refused_and_named() {
    let Evidence::DuplicateProposal { first, second } = proposal_evidence() else {
        unreachable!("built from proposals")
    };
    let mut bad = second.signature.0;
    bad[64] = 2;
    let evidence = Evidence::DuplicateProposal {
        first,
        second: SignedProposal { signature: Signature(bad), ..second },
    };
    assert_eq!(
        evidence.verify(),
        Err(EvidenceError::BadSignature {
            part: EvidencePart::Second,
            error: SignatureError::InvalidRecoveryId(2)
        })
    );
}

/// Flipping any single bit of valid evidence's encoding gives bytes that either do not decode
/// or do not verify: nothing in evidence can be altered without breaking it.
#[test]
fn every_bit_flip_of_valid_evidence_is_refused() {
    for evidence in [vote_evidence(), proposal_evidence()] {
        let bytes = evidence.encode();
        for at in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut tampered = bytes.clone();
                tampered[at] ^= bit;
                if let Ok(decoded) = Evidence::decode_all(&mut &tampered[..]) {
                    assert!(
                        decoded.verify().is_err(),
                        "flipping bit {bit:#x} of byte {at} left valid evidence: {decoded:?}"
                    );
                }
            }
        }
    }
}
