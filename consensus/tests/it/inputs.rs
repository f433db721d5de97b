//! Input from the network is untrusted: every malformed, misplaced or repeated message is
//! refused with a typed error, changes nothing, and never panics.

use altan_consensus::{Config, Consensus, Input, InputError, NewHeight, ValidatorSetError};
use altan_primitives::{
    Certificate, Proposal, Signature, SignedVote, ValidatorSet, Vote, VoteKind,
};
use proptest::prelude::*;

use crate::common::{CHAIN, Net, block, key};

fn started(net: &Net, who: usize, height: u64) -> Consensus {
    let mut machine = net.machine(who);
    machine.handle(net.start(height)).unwrap();
    machine
}

#[test]
fn nothing_is_accepted_before_a_height_starts() {
    let net = Net::four();
    let mut machine = net.machine(0);
    assert_eq!(machine.handle(net.prevote(1, 1, 0, None)), Err(InputError::NotStarted));
    assert_eq!(machine.status(), None);
}

#[test]
fn malformed_messages_are_refused_with_their_reason() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let mut machine = started(&net, 1, h);
    let before = machine.status();

    let vote =
        Vote { chain_id: CHAIN, height: h, round: 0, kind: VoteKind::Prevote, block_hash: None };
    let mut corrupted = vote.clone().sign(&key(2));
    corrupted.signature.0[64] = 7;
    let outsider =
        vote.clone().sign(&altan_primitives::SecretKey::from_bytes(&[0x77; 32]).unwrap());
    let other_chain = Vote { chain_id: CHAIN + 1, ..vote.clone() }.sign(&key(2));

    type Case = (&'static str, Input, fn(&InputError) -> bool);
    let cases: Vec<Case> = vec![
        ("bad signature", Input::Vote(corrupted), |e| matches!(e, InputError::BadSignature(_))),
        ("unknown signer", Input::Vote(outsider), |e| {
            matches!(e, InputError::UnknownSigner { .. })
        }),
        ("other chain", Input::Vote(other_chain), |e| matches!(e, InputError::WrongChain { .. })),
        ("stale height", net.prevote(2, h - 1, 0, None), |e| {
            matches!(e, InputError::StaleHeight { .. })
        }),
        ("far height", net.prevote(2, h + 2, 0, None), |e| {
            matches!(e, InputError::FutureHeight { .. })
        }),
        ("far round", net.prevote(2, h, 17, None), |e| matches!(e, InputError::RoundTooFar { .. })),
        ("not the leader", net.proposal(2, h, 0, block("b"), None), |e| {
            matches!(e, InputError::NotLeader { .. })
        }),
        ("proof of lock from the future", net.proposal(0, h, 0, block("b"), Some(0)), |e| {
            matches!(e, InputError::InvalidPolRound { .. })
        }),
        (
            "a verdict nobody asked for",
            Input::BlockVerdict { height: h, block_hash: block("z"), valid: true },
            |e| matches!(e, InputError::Unexpected { .. }),
        ),
        (
            "a block nobody asked for",
            Input::BlockBuilt { height: h, round: 0, block_hash: block("z") },
            |e| matches!(e, InputError::Unexpected { .. }),
        ),
        (
            "a certificate for another height",
            Input::Certificate(Certificate {
                height: h + 1,
                round: 0,
                block_hash: block("b"),
                signatures: Vec::new(),
            }),
            |e| matches!(e, InputError::FutureHeight { .. }),
        ),
        (
            "an unsigned certificate",
            Input::Certificate(Certificate {
                height: h,
                round: 0,
                block_hash: block("b"),
                signatures: Vec::new(),
            }),
            |e| matches!(e, InputError::InvalidCertificate(_)),
        ),
    ];
    for (name, input, expected) in cases {
        let error = machine.handle(input).expect_err(name);
        assert!(expected(&error), "{name}: refused with {error:?}");
        assert_eq!(machine.status(), before, "{name}: a refusal changes nothing");
    }

    // Only messages that no honest peer sends count against the peer.
    assert!(InputError::BadSignature(altan_primitives::SignatureError::HighS).is_misbehaviour());
    assert!(!InputError::Duplicate.is_misbehaviour());
    assert!(!InputError::StaleHeight { current: 2, found: 1 }.is_misbehaviour());
}

#[test]
fn a_message_seen_twice_is_a_duplicate() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let mut machine = started(&net, 1, h);
    assert_eq!(machine.handle(net.prevote(2, h, 0, None)), Ok(Vec::new()));
    assert_eq!(machine.handle(net.prevote(2, h, 0, None)), Err(InputError::Duplicate));
    // The next height's messages are buffered, once.
    assert_eq!(machine.handle(net.prevote(2, h + 1, 0, None)), Ok(Vec::new()));
    assert_eq!(machine.handle(net.prevote(2, h + 1, 0, None)), Err(InputError::Duplicate));
}

#[test]
fn the_next_heights_buffer_is_bounded() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let config = Config { max_pending_messages: 5, ..Net::config() };
    let mut machine = Consensus::new(config, CHAIN, key(1));
    machine.handle(net.start(h)).unwrap();
    for round in 0..5 {
        assert_eq!(machine.handle(net.prevote(2, h + 1, round, None)), Ok(Vec::new()));
    }
    assert_eq!(
        machine.handle(net.prevote(2, h + 1, 5, None)),
        Err(InputError::PendingFull { max: 5 })
    );
}

/// A next-height message whose signature does not recover is refused at once, as misbehaviour,
/// rather than taking a place in the buffer until its height starts.
#[test]
fn a_badly_signed_next_height_message_is_not_buffered() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let config = Config { max_pending_messages: 1, ..Net::config() };
    let mut machine = Consensus::new(config, CHAIN, key(1));
    machine.handle(net.start(h)).unwrap();
    let vote = Vote {
        chain_id: CHAIN,
        height: h + 1,
        round: 0,
        kind: VoteKind::Prevote,
        block_hash: None,
    };
    let mut corrupted = vote.sign(&key(2));
    corrupted.signature.0[64] = 9;
    let refused = machine.handle(Input::Vote(corrupted));
    assert!(
        matches!(&refused, Err(e @ InputError::BadSignature(_)) if e.is_misbehaviour()),
        "{refused:?}"
    );
    // The one place in the buffer is still free for a real message.
    assert_eq!(machine.handle(net.prevote(2, h + 1, 0, None)), Ok(Vec::new()));
}

/// Buffered messages of the next height count once it starts: two prevotes for round 3 pull a
/// validator that starts the height into round 3.
#[test]
fn buffered_messages_are_replayed_when_the_height_starts() {
    let net = Net::four();
    let h = (2..).find(|&h| net.leader(h, 0) != 1 && net.leader(h, 3) != 1).unwrap();
    let mut machine = started(&net, 1, h - 1);
    machine.handle(net.prevote(2, h, 3, None)).unwrap();
    machine.handle(net.prevote(3, h, 3, None)).unwrap();
    machine.handle(net.start(h)).unwrap();
    assert_eq!(machine.status().unwrap().round, 3);
}

#[test]
fn votes_of_an_equivocator_are_kept_for_a_bounded_number_of_values() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let mut machine = started(&net, 1, h);
    for i in 0..altan_consensus::MAX_VALUES_PER_VOTER {
        let value = Some(block(&format!("v{i}")));
        assert!(machine.handle(net.prevote(3, h, 0, value)).is_ok());
    }
    assert!(matches!(
        machine.handle(net.prevote(3, h, 0, Some(block("one too many")))),
        Err(InputError::TooManyValues { index: 3, .. })
    ));
}

#[test]
fn unusable_validator_sets_and_heights_are_refused() {
    let net = Net::four();
    let mut machine = net.machine(0);
    let start = |validators: ValidatorSet, height| {
        Input::StartHeight(NewHeight { height, validators, seed: net.seed, restored: Vec::new() })
    };
    assert_eq!(
        machine.handle(start(ValidatorSet::default(), 1)),
        Err(InputError::ValidatorSet(ValidatorSetError::Empty))
    );
    assert_eq!(
        machine.handle(start(Net::set_of(&[0, 0, 0]), 1)),
        Err(InputError::ValidatorSet(ValidatorSetError::NoPower))
    );
    machine.handle(start(net.set.clone(), 5)).unwrap();
    assert_eq!(
        machine.handle(start(net.set.clone(), 5)),
        Err(InputError::HeightNotIncreasing { current: 5, found: 5 })
    );
}

/// A full node (a key outside the set) follows without signing anything.
#[test]
fn a_non_validator_follows_without_signing() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let b = block("b");
    let mut machine = Consensus::new(Net::config(), CHAIN, key(9));
    let mut actions = Vec::new();
    for input in [
        net.start(h),
        net.proposal(0, h, 0, b, None),
        Input::BlockVerdict { height: h, block_hash: b, valid: true },
        net.prevote(0, h, 0, Some(b)),
        net.prevote(1, h, 0, Some(b)),
        net.prevote(2, h, 0, Some(b)),
        net.precommit(0, h, 0, Some(b)),
        net.precommit(1, h, 0, Some(b)),
        net.precommit(2, h, 0, Some(b)),
    ] {
        actions.extend(machine.handle(input).unwrap());
    }
    assert!(actions.iter().all(|a| !matches!(
        a,
        altan_consensus::Action::Persist(_) | altan_consensus::Action::Broadcast(_)
    )));
    assert!(actions.iter().any(|a| matches!(a, altan_consensus::Action::Commit(_))));
}

fn arbitrary_vote() -> impl Strategy<Value = Input> {
    (
        prop_oneof![Just(CHAIN), any::<u64>()],
        0u64..6,
        prop_oneof![0u32..4, any::<u32>()],
        any::<bool>(),
        proptest::option::of(any::<[u8; 32]>()),
        0usize..6,
        any::<Option<(usize, u8)>>(),
    )
        .prop_map(|(chain_id, height, round, precommit, value, signer, flip)| {
            let kind = if precommit { VoteKind::Precommit } else { VoteKind::Prevote };
            let vote = Vote {
                chain_id,
                height,
                round,
                kind,
                block_hash: value.map(altan_primitives::Hash),
            };
            let mut signed: SignedVote = vote.sign(&key(signer));
            if let Some((at, bits)) = flip {
                signed.signature = Signature({
                    let mut bytes = signed.signature.0;
                    bytes[at % 65] ^= bits;
                    bytes
                });
            }
            Input::Vote(signed)
        })
}

fn arbitrary_proposal() -> impl Strategy<Value = Input> {
    (0u64..6, 0u32..4, any::<[u8; 32]>(), proptest::option::of(0u32..5), 0usize..6).prop_map(
        |(height, round, value, pol_round, signer)| {
            let proposal = Proposal {
                chain_id: CHAIN,
                height,
                round,
                block_hash: altan_primitives::Hash(value),
                pol_round,
            };
            Input::Proposal(proposal.sign(&key(signer)))
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any sequence of votes and proposals, valid or not, from members or not: the machine
    /// answers each with actions or a refusal, and never signs twice for one step.
    #[test]
    fn arbitrary_messages_never_panic_or_double_sign(
        inputs in prop::collection::vec(prop_oneof![arbitrary_vote(), arbitrary_proposal()], 1..40)
    ) {
        let net = Net::four();
        let mut machine = started(&net, 1, 3);
        let mut signed = std::collections::BTreeMap::new();
        for input in inputs {
            if let Ok(actions) = machine.handle(input) {
                for action in actions {
                    if let altan_consensus::Action::Persist(m) = action {
                        let step = (m.height(), m.round(), m.step());
                        prop_assert!(signed.insert(step, m).is_none(), "signed twice for {step:?}");
                    }
                }
            }
        }
    }
}
