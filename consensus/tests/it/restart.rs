//! Restart from persisted messages: the machine resumes where it signed last, keeps its lock,
//! sends its messages again, and never signs anything conflicting with them.

use altan_consensus::{
    Action, Consensus, Input, InputError, NewHeight, RoundStep, SignedMessage, Step,
};
use altan_primitives::{Height, Proposal, Vote, VoteKind};

use crate::common::{CHAIN, Net, block, key};

fn persisted(actions: &[Action]) -> Vec<SignedMessage> {
    actions
        .iter()
        .filter_map(|a| if let Action::Persist(m) = a { Some(m.clone()) } else { None })
        .collect()
}

fn restart(
    net: &Net,
    who: usize,
    height: Height,
    restored: Vec<SignedMessage>,
) -> (Consensus, Vec<Action>) {
    let mut machine = net.machine(who);
    let actions = machine
        .handle(Input::StartHeight(NewHeight {
            height,
            validators: net.set.clone(),
            seed: net.seed,
            restored,
        }))
        .unwrap();
    (machine, actions)
}

/// A validator locked on b in round 0 crashes after precommitting. After the restart it is in
/// round 0 at the precommit step, still locked, sends its prevote and precommit again (without
/// signing anything new), and in round 1 refuses to prevote another block.
#[test]
fn a_restart_keeps_the_round_the_step_and_the_lock() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, Some(2));
    let (b, c) = (block("b"), block("c"));
    let mut machine = net.machine(1);
    let mut disk = Vec::new();
    for input in [
        net.start(h),
        net.proposal(0, h, 0, b, None),
        Input::BlockVerdict { height: h, block_hash: b, valid: true },
        net.prevote(0, h, 0, Some(b)),
        net.prevote(2, h, 0, Some(b)),
    ] {
        disk.extend(persisted(&machine.handle(input).unwrap()));
    }
    assert_eq!(disk.len(), 2, "a prevote and a precommit were persisted");
    drop(machine);

    let (mut machine, actions) = restart(&net, 1, h, disk.clone());
    let status = machine.status().unwrap();
    assert_eq!((status.round, status.step, status.locked), (0, RoundStep::Precommit, Some((0, b))));
    assert!(persisted(&actions).is_empty(), "nothing new is signed at restart");
    let resent: Vec<&SignedMessage> = actions
        .iter()
        .filter_map(|a| if let Action::Broadcast(m) = a { Some(m) } else { None })
        .collect();
    assert_eq!(resent, disk.iter().collect::<Vec<_>>(), "both messages are sent again");

    // Round 0 fails; round 1 proposes c without a proof of lock: the lock holds.
    machine.handle(net.precommit(0, h, 0, None)).unwrap();
    machine.handle(net.precommit(2, h, 0, None)).unwrap();
    let timeout = altan_consensus::Timeout {
        height: h,
        round: 0,
        kind: altan_consensus::TimeoutKind::Precommit,
    };
    machine.handle(Input::Timeout(timeout)).unwrap();
    machine.handle(net.proposal(2, h, 1, c, None)).unwrap();
    let actions =
        machine.handle(Input::BlockVerdict { height: h, block_hash: c, valid: true }).unwrap();
    let prevote = persisted(&actions);
    assert!(
        matches!(prevote.as_slice(), [SignedMessage::Vote(v)] if v.vote.block_hash.is_none()),
        "a restarted validator locked on b prevotes nil for c: {prevote:?}"
    );
}

/// A validator restarted with a lock that leads a later round re-proposes its locked block with
/// the round of its proof of lock, and prevotes it itself: it judged the block valid before it
/// precommitted it. (The simulator found a height stuck when the restarted leader forgot that.)
#[test]
fn a_restarted_locked_leader_re_proposes_and_prevotes_its_block() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, Some(1));
    let b = block("b");
    let mut machine = net.machine(1);
    let mut disk = Vec::new();
    for input in [
        net.start(h),
        net.proposal(0, h, 0, b, None),
        Input::BlockVerdict { height: h, block_hash: b, valid: true },
        net.prevote(0, h, 0, Some(b)),
        net.prevote(2, h, 0, Some(b)),
    ] {
        disk.extend(persisted(&machine.handle(input).unwrap()));
    }
    drop(machine);

    let (mut machine, _) = restart(&net, 1, h, disk);
    // The others send their round-0 messages again; round 0 ends without a decision.
    for input in [
        net.prevote(0, h, 0, Some(b)),
        net.prevote(2, h, 0, Some(b)),
        net.precommit(0, h, 0, None),
        net.precommit(2, h, 0, None),
    ] {
        machine.handle(input).unwrap();
    }
    let timeout = altan_consensus::Timeout {
        height: h,
        round: 0,
        kind: altan_consensus::TimeoutKind::Precommit,
    };
    let signed = persisted(&machine.handle(Input::Timeout(timeout)).unwrap());
    assert!(
        matches!(
            signed.as_slice(),
            [SignedMessage::Proposal(p), SignedMessage::Vote(v)]
                if p.proposal.block_hash == b
                    && p.proposal.pol_round == Some(0)
                    && v.vote.round == 1
                    && v.vote.block_hash == Some(b)
        ),
        "round 1's leader re-proposes b with its proof of lock and prevotes it: {signed:?}"
    );
}

/// Persisted but not sent (a crash between the two actions): after the restart the message is
/// sent, and the machine does not sign a different one for that step even when the round's
/// inputs would now lead elsewhere.
#[test]
fn a_message_persisted_before_a_crash_is_the_only_one_for_its_step() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let b = block("b");
    let mut machine = net.machine(1);
    machine.handle(net.start(h)).unwrap();
    machine.handle(net.proposal(0, h, 0, b, None)).unwrap();
    let actions =
        machine.handle(Input::BlockVerdict { height: h, block_hash: b, valid: true }).unwrap();
    let disk = persisted(&actions);
    drop(machine);

    let (mut machine, actions) = restart(&net, 1, h, disk.clone());
    assert!(actions.contains(&Action::Broadcast(disk[0].clone())));
    assert_eq!(machine.status().unwrap().step, RoundStep::Prevote);
    // The propose timeout of round 0 would make a fresh validator prevote nil: this one has
    // prevoted b already and signs nothing.
    let timeout = altan_consensus::Timeout {
        height: h,
        round: 0,
        kind: altan_consensus::TimeoutKind::Propose,
    };
    let actions = machine.handle(Input::Timeout(timeout)).unwrap();
    assert!(persisted(&actions).is_empty());
}

/// A leader that crashed after persisting its proposal re-sends that proposal rather than
/// building another block.
#[test]
fn a_restarted_leader_does_not_propose_twice() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let b = block("b");
    let mut machine = net.machine(0);
    machine.handle(net.start(h)).unwrap();
    let actions = machine.handle(Input::BlockBuilt { height: h, round: 0, block_hash: b }).unwrap();
    let proposal: Vec<SignedMessage> =
        persisted(&actions).into_iter().filter(|m| m.step() == Step::Propose).collect();
    assert_eq!(proposal.len(), 1);

    let (_, actions) = restart(&net, 0, h, proposal.clone());
    assert!(!actions.iter().any(|a| matches!(a, Action::BuildBlock { .. })));
    assert!(actions.contains(&Action::Broadcast(proposal[0].clone())));
    // It prevotes its own proposal, which it had not done before the crash.
    let signed = persisted(&actions);
    assert!(matches!(signed.as_slice(), [SignedMessage::Vote(v)] if v.vote.block_hash == Some(b)));
}

#[test]
fn restored_messages_must_be_ours_and_consistent() {
    let net = Net::four();
    let h = 4;
    let vote = |who: usize, value| {
        let vote = Vote {
            chain_id: CHAIN,
            height: h,
            round: 0,
            kind: VoteKind::Prevote,
            block_hash: value,
        };
        SignedMessage::Vote(vote.sign(&key(who)))
    };
    let start = |restored| {
        net.machine(1).handle(Input::StartHeight(NewHeight {
            height: h,
            validators: net.set.clone(),
            seed: net.seed,
            restored,
        }))
    };
    assert!(matches!(start(vec![vote(2, None)]), Err(InputError::NotOurs { .. })));
    let other_height = Proposal {
        chain_id: CHAIN,
        height: h + 1,
        round: 0,
        block_hash: block("b"),
        pol_round: None,
    };
    assert!(matches!(
        start(vec![SignedMessage::Proposal(other_height.sign(&key(1)))]),
        Err(InputError::NotOurs { .. })
    ));
    assert_eq!(
        start(vec![vote(1, None), vote(1, Some(block("b")))]),
        Err(InputError::RestoredConflict { round: 0, step: Step::Prevote })
    );
}
