//! Table-driven transitions: each row feeds one input to one machine and names the actions it
//! must return, in order, and where the machine must be after it.

use altan_consensus::{Action, Consensus, Input, RoundStep, SignedMessage, Step, TimeoutKind};
use altan_primitives::{Hash, Height};

use crate::common::{Net, block, key};

/// An action, reduced to what a row checks.
#[derive(Clone, Debug, PartialEq, Eq)]
enum E {
    Timeout(TimeoutKind, u32),
    Build(u32),
    Check(Hash),
    Persist(Step, Option<Hash>),
    Broadcast(Step, Option<Hash>),
    /// Block, round, number of signatures.
    Commit(Hash, u32, usize),
    /// The offender's index.
    Evidence(usize),
}

fn value(message: &SignedMessage) -> Option<Hash> {
    match message {
        SignedMessage::Proposal(p) => Some(p.proposal.block_hash),
        SignedMessage::Vote(v) => v.vote.block_hash,
    }
}

fn reduce(action: &Action) -> E {
    match action {
        Action::ScheduleTimeout { timeout, .. } => E::Timeout(timeout.kind, timeout.round),
        Action::BuildBlock { round, .. } => E::Build(*round),
        Action::CheckBlock { block_hash, .. } => E::Check(*block_hash),
        Action::Persist(m) => E::Persist(m.step(), value(m)),
        Action::Broadcast(m) => E::Broadcast(m.step(), value(m)),
        Action::Commit(c) => E::Commit(c.block_hash, c.round, c.signatures.len()),
        Action::ReportEvidence(e) => {
            let offender = e.verify().expect("reported evidence verifies");
            E::Evidence((0..4).find(|&i| key(i).public_key() == offender).unwrap())
        }
    }
}

/// Both signing actions for one message: persist first, then broadcast.
fn signs(step: Step, value: Option<Hash>) -> [E; 2] {
    [E::Persist(step, value), E::Broadcast(step, value)]
}

struct Row {
    name: &'static str,
    input: Input,
    expect: Vec<E>,
    round: u32,
    step: RoundStep,
    locked: Option<(u32, Hash)>,
}

fn row(
    name: &'static str,
    input: Input,
    expect: impl IntoIterator<Item = E>,
    (round, step, locked): (u32, RoundStep, Option<(u32, Hash)>),
) -> Row {
    Row { name, input, expect: expect.into_iter().collect(), round, step, locked }
}

fn run(table: &str, mut machine: Consensus, rows: Vec<Row>) -> Consensus {
    for (i, row) in rows.into_iter().enumerate() {
        let actions = machine
            .handle(row.input)
            .unwrap_or_else(|e| panic!("{table}, row {i} ({}): refused: {e}", row.name));
        let got: Vec<E> = actions.iter().map(reduce).collect();
        assert_eq!(got, row.expect, "{table}, row {i} ({}): actions", row.name);
        let status = machine.status().unwrap();
        assert_eq!(
            (status.round, status.step, status.locked),
            (row.round, row.step, row.locked),
            "{table}, row {i} ({}): state after",
            row.name
        );
    }
    machine
}

/// The good case from the leader's side: build, propose, prevote, lock and precommit on a
/// polka, commit on more than 2/3 of precommits, with a certificate of the precommits.
#[test]
fn leader_good_case() {
    let net = Net::four();
    let h: Height = net.height_led_by(0, 0, None);
    let b = block("b");
    use RoundStep::*;
    let rows = vec![
        row(
            "start",
            net.start(h),
            [
                E::Timeout(TimeoutKind::Propose, 0),
                E::Timeout(TimeoutKind::Rebroadcast, 0),
                E::Build(0),
            ],
            (0, Propose, None),
        ),
        row(
            "built: propose it and prevote for it",
            Input::BlockBuilt { height: h, round: 0, block_hash: b },
            signs(Step::Propose, Some(b)).into_iter().chain(signs(Step::Prevote, Some(b))),
            (0, Prevote, None),
        ),
        row("one prevote", net.prevote(1, h, 0, Some(b)), [], (0, Prevote, None)),
        row(
            "a polka: lock and precommit",
            net.prevote(2, h, 0, Some(b)),
            [E::Timeout(TimeoutKind::Prevote, 0)]
                .into_iter()
                .chain(signs(Step::Precommit, Some(b))),
            (0, Precommit, Some((0, b))),
        ),
        row("a late prevote", net.prevote(3, h, 0, Some(b)), [], (0, Precommit, Some((0, b)))),
        row("one precommit", net.precommit(2, h, 0, Some(b)), [], (0, Precommit, Some((0, b)))),
        row(
            "more than 2/3 precommit: commit",
            net.precommit(3, h, 0, Some(b)),
            [E::Commit(b, 0, 3)],
            (0, Decided, Some((0, b))),
        ),
    ];
    let machine = run("leader good case", net.machine(0), rows);
    let certificate = machine.decision().unwrap();
    assert_eq!(certificate.verify(crate::common::CHAIN, &net.set), Ok(()));
}

/// A follower checks the proposed block and prevotes for it if the host finds it valid, nil if
/// not.
#[test]
fn follower_prevotes_by_the_host_verdict() {
    use RoundStep::*;
    for (valid, prevote) in [(true, Some(block("b"))), (false, None)] {
        let net = Net::four();
        let h = net.height_led_by(0, 0, None);
        let b = block("b");
        let rows = vec![
            row(
                "start",
                net.start(h),
                [E::Timeout(TimeoutKind::Propose, 0), E::Timeout(TimeoutKind::Rebroadcast, 0)],
                (0, Propose, None),
            ),
            row(
                "proposal: check it",
                net.proposal(0, h, 0, b, None),
                [E::Check(b)],
                (0, Propose, None),
            ),
            row(
                "verdict",
                Input::BlockVerdict { height: h, block_hash: b, valid },
                signs(Step::Prevote, prevote),
                (0, Prevote, None),
            ),
        ];
        run("follower verdict", net.machine(1), rows);
    }
}

/// No proposal: prevote nil when the propose timeout fires, precommit nil when the prevote
/// timeout fires (after prevotes from more than 2/3 for different values), and start the next
/// round when the precommit timeout fires (after precommits from more than 2/3).
#[test]
fn timeouts_move_a_failed_round_on() {
    use RoundStep::*;
    let net = Net::four();
    let h = net.height_led_by(0, 0, Some(2));
    let timeout = |kind, round| Input::Timeout(altan_consensus::Timeout { height: h, round, kind });
    let rows = vec![
        row(
            "start",
            net.start(h),
            [E::Timeout(TimeoutKind::Propose, 0), E::Timeout(TimeoutKind::Rebroadcast, 0)],
            (0, Propose, None),
        ),
        row(
            "propose timeout: prevote nil",
            timeout(TimeoutKind::Propose, 0),
            signs(Step::Prevote, None),
            (0, Prevote, None),
        ),
        row(
            "a prevote for a block",
            net.prevote(2, h, 0, Some(block("x"))),
            [],
            (0, Prevote, None),
        ),
        row(
            "prevotes from more than 2/3, no polka: wait",
            net.prevote(3, h, 0, None),
            [E::Timeout(TimeoutKind::Prevote, 0)],
            (0, Prevote, None),
        ),
        row("a stale timeout is ignored", timeout(TimeoutKind::Propose, 0), [], (0, Prevote, None)),
        row(
            "prevote timeout: precommit nil",
            timeout(TimeoutKind::Prevote, 0),
            signs(Step::Precommit, None),
            (0, Precommit, None),
        ),
        row("a precommit", net.precommit(2, h, 0, None), [], (0, Precommit, None)),
        row(
            "precommits from more than 2/3, no decision: wait",
            net.precommit(3, h, 0, Some(block("x"))),
            [E::Timeout(TimeoutKind::Precommit, 0)],
            (0, Precommit, None),
        ),
        row(
            "precommit timeout: next round",
            timeout(TimeoutKind::Precommit, 0),
            [E::Timeout(TimeoutKind::Propose, 1), E::Timeout(TimeoutKind::Rebroadcast, 1)],
            (1, Propose, None),
        ),
        row(
            "rebroadcast: this height's own messages again",
            timeout(TimeoutKind::Rebroadcast, 1),
            [
                E::Broadcast(Step::Prevote, None),
                E::Broadcast(Step::Precommit, None),
                E::Timeout(TimeoutKind::Rebroadcast, 1),
            ],
            (1, Propose, None),
        ),
    ];
    run("timeouts", net.machine(1), rows);
}

/// Locking: once locked on a block, a validator prevotes nil for another block proposed without
/// a proof of lock, prevotes its locked block when it is re-proposed, and moves its lock only
/// on a later polka.
#[test]
fn a_lock_holds_until_a_later_polka() {
    use RoundStep::*;
    let net = Net::four();
    let h = net.height_led_by(0, 0, Some(2));
    let (b, c) = (block("b"), block("c"));
    let timeout = |kind, round| Input::Timeout(altan_consensus::Timeout { height: h, round, kind });
    let locked_b = Some((0, b));
    let rows = vec![
        row(
            "start",
            net.start(h),
            [E::Timeout(TimeoutKind::Propose, 0), E::Timeout(TimeoutKind::Rebroadcast, 0)],
            (0, Propose, None),
        ),
        row("proposal b", net.proposal(0, h, 0, b, None), [E::Check(b)], (0, Propose, None)),
        row(
            "b is valid",
            Input::BlockVerdict { height: h, block_hash: b, valid: true },
            signs(Step::Prevote, Some(b)),
            (0, Prevote, None),
        ),
        row("prevote b", net.prevote(0, h, 0, Some(b)), [], (0, Prevote, None)),
        row(
            "polka for b: lock",
            net.prevote(2, h, 0, Some(b)),
            [E::Timeout(TimeoutKind::Prevote, 0)]
                .into_iter()
                .chain(signs(Step::Precommit, Some(b))),
            (0, Precommit, locked_b),
        ),
        row("precommit nil", net.precommit(0, h, 0, None), [], (0, Precommit, locked_b)),
        row(
            "precommits from more than 2/3",
            net.precommit(2, h, 0, None),
            [E::Timeout(TimeoutKind::Precommit, 0)],
            (0, Precommit, locked_b),
        ),
        row(
            "round 1",
            timeout(TimeoutKind::Precommit, 0),
            [E::Timeout(TimeoutKind::Propose, 1), E::Timeout(TimeoutKind::Rebroadcast, 1)],
            (1, Propose, locked_b),
        ),
        row(
            "proposal c, no proof of lock",
            net.proposal(2, h, 1, c, None),
            [E::Check(c)],
            (1, Propose, locked_b),
        ),
        row(
            "c is valid but we are locked on b: prevote nil",
            Input::BlockVerdict { height: h, block_hash: c, valid: true },
            signs(Step::Prevote, None),
            (1, Prevote, locked_b),
        ),
        row("prevote c", net.prevote(0, h, 1, Some(c)), [], (1, Prevote, locked_b)),
        row(
            "prevote c",
            net.prevote(2, h, 1, Some(c)),
            [E::Timeout(TimeoutKind::Prevote, 1)],
            (1, Prevote, locked_b),
        ),
        row(
            "a polka for c in a later round: the lock moves to c",
            net.prevote(3, h, 1, Some(c)),
            signs(Step::Precommit, Some(c)),
            (1, Precommit, Some((1, c))),
        ),
    ];
    run("locking", net.machine(1), rows);
}

/// A locked block re-proposed with its proof of lock gets the locked validator's prevote at
/// once (rule 28); the host is not asked again about a block it already judged.
#[test]
fn a_re_proposal_with_a_proof_of_lock_is_prevoted() {
    use RoundStep::*;
    let net = Net::four();
    let h = net.height_led_by(0, 0, Some(2));
    let b = block("b");
    let timeout = |kind, round| Input::Timeout(altan_consensus::Timeout { height: h, round, kind });
    let locked_b = Some((0, b));
    let mut machine = net.machine(1);
    for input in [
        net.start(h),
        net.proposal(0, h, 0, b, None),
        Input::BlockVerdict { height: h, block_hash: b, valid: true },
        net.prevote(0, h, 0, Some(b)),
        net.prevote(2, h, 0, Some(b)),
        net.precommit(0, h, 0, None),
        net.precommit(2, h, 0, None),
        timeout(TimeoutKind::Precommit, 0),
    ] {
        machine.handle(input).unwrap();
    }
    let rows = vec![row(
        "b again, proof of lock from round 0",
        net.proposal(2, h, 1, b, Some(0)),
        signs(Step::Prevote, Some(b)),
        (1, Prevote, locked_b),
    )];
    run("re-proposal", machine, rows);
}

/// A polka of an earlier round whose proposal this validator never received (the leader sent it
/// another block) still becomes its valid value once the host has checked the block by hash,
/// and as the next leader it re-proposes that block with its proof of lock, not a fresh one.
#[test]
fn a_late_polka_without_its_proposal_becomes_the_valid_value() {
    use RoundStep::*;
    let net = Net::four();
    let h = net.height_led_by(0, 0, Some(1));
    let (x, y, fresh) = (block("x"), block("y"), block("fresh"));
    let timeout = |kind, round| Input::Timeout(altan_consensus::Timeout { height: h, round, kind });
    let rows = vec![
        row(
            "start",
            net.start(h),
            [E::Timeout(TimeoutKind::Propose, 0), E::Timeout(TimeoutKind::Rebroadcast, 0)],
            (0, Propose, None),
        ),
        row("proposal x", net.proposal(0, h, 0, x, None), [E::Check(x)], (0, Propose, None)),
        row(
            "x is valid",
            Input::BlockVerdict { height: h, block_hash: x, valid: true },
            signs(Step::Prevote, Some(x)),
            (0, Prevote, None),
        ),
        row("a prevote for y", net.prevote(0, h, 0, Some(y)), [], (0, Prevote, None)),
        row(
            "more than 2/3 prevoted",
            net.prevote(2, h, 0, Some(y)),
            [E::Timeout(TimeoutKind::Prevote, 0)],
            (0, Prevote, None),
        ),
        row(
            "a polka for y, whose proposal we lack",
            net.prevote(3, h, 0, Some(y)),
            [],
            (0, Prevote, None),
        ),
        row(
            "prevote timeout",
            timeout(TimeoutKind::Prevote, 0),
            signs(Step::Precommit, None),
            (0, Precommit, None),
        ),
        row("a precommit", net.precommit(2, h, 0, None), [], (0, Precommit, None)),
        row(
            "more than 2/3 precommitted",
            net.precommit(3, h, 0, None),
            [E::Timeout(TimeoutKind::Precommit, 0)],
            (0, Precommit, None),
        ),
        row(
            "round 1, which we lead: build, and have y checked",
            timeout(TimeoutKind::Precommit, 0),
            [
                E::Timeout(TimeoutKind::Propose, 1),
                E::Timeout(TimeoutKind::Rebroadcast, 1),
                E::Build(1),
                E::Check(y),
            ],
            (1, Propose, None),
        ),
        row(
            "y is valid: it is the valid value",
            Input::BlockVerdict { height: h, block_hash: y, valid: true },
            [],
            (1, Propose, None),
        ),
        row(
            "the built block gives way to y, re-proposed with its proof of lock",
            Input::BlockBuilt { height: h, round: 1, block_hash: fresh },
            signs(Step::Propose, Some(y))
                .into_iter()
                .chain([y, y, y].map(|v| E::Broadcast(Step::Prevote, Some(v))))
                .chain(signs(Step::Prevote, Some(y))),
            (1, Prevote, None),
        ),
    ];
    let machine = run("late polka", net.machine(1), rows);
    assert_eq!(machine.status().unwrap().valid, Some((0, y)));
}

/// More than 1/3 of stake in a later round: that round starts (rule 55).
#[test]
fn a_third_of_stake_ahead_pulls_the_round_forward() {
    use RoundStep::*;
    let net = Net::four();
    let h = (1..).find(|&h| net.leader(h, 0) != 1 && net.leader(h, 3) != 1).unwrap();
    let rows = vec![
        row(
            "start",
            net.start(h),
            [E::Timeout(TimeoutKind::Propose, 0), E::Timeout(TimeoutKind::Rebroadcast, 0)],
            (0, Propose, None),
        ),
        row("one validator in round 3", net.prevote(2, h, 3, None), [], (0, Propose, None)),
        row(
            "two: more than 1/3",
            net.precommit(3, h, 3, None),
            [E::Timeout(TimeoutKind::Propose, 3), E::Timeout(TimeoutKind::Rebroadcast, 3)],
            (3, Propose, None),
        ),
    ];
    run("round skip", net.machine(1), rows);
}

/// Two different votes of one validator for one step: evidence, reported once.
#[test]
fn equivocation_is_reported_once() {
    use RoundStep::*;
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let rows = vec![
        row(
            "start",
            net.start(h),
            [E::Timeout(TimeoutKind::Propose, 0), E::Timeout(TimeoutKind::Rebroadcast, 0)],
            (0, Propose, None),
        ),
        row("prevote x", net.prevote(3, h, 0, Some(block("x"))), [], (0, Propose, None)),
        row(
            "prevote y: evidence",
            net.prevote(3, h, 0, Some(block("y"))),
            [E::Evidence(3)],
            (0, Propose, None),
        ),
        row("prevote nil: already reported", net.prevote(3, h, 0, None), [], (0, Propose, None)),
        row(
            "proposal",
            net.proposal(0, h, 0, block("p"), None),
            [E::Check(block("p"))],
            (0, Propose, None),
        ),
        row(
            "another proposal: evidence",
            net.proposal(0, h, 0, block("q"), None),
            [E::Evidence(0)],
            (0, Propose, None),
        ),
    ];
    run("equivocation", net.machine(1), rows);
}

/// A certificate from sync decides the height at once.
#[test]
fn a_certificate_from_sync_decides() {
    let net = Net::four();
    let h = net.height_led_by(0, 0, None);
    let b = block("b");
    let mut source = net.machine(0);
    let mut certificate = None;
    for input in [
        net.start(h),
        Input::BlockBuilt { height: h, round: 0, block_hash: b },
        net.prevote(1, h, 0, Some(b)),
        net.prevote(2, h, 0, Some(b)),
        net.precommit(1, h, 0, Some(b)),
        net.precommit(2, h, 0, Some(b)),
    ] {
        for action in source.handle(input).unwrap() {
            if let Action::Commit(c) = action {
                certificate = Some(c);
            }
        }
    }
    let certificate = certificate.expect("the source decided");
    let rows = vec![
        row(
            "start",
            net.start(h),
            [E::Timeout(TimeoutKind::Propose, 0), E::Timeout(TimeoutKind::Rebroadcast, 0)],
            (0, RoundStep::Propose, None),
        ),
        row(
            "certificate",
            Input::Certificate(certificate),
            [E::Commit(b, 0, 3)],
            (0, RoundStep::Decided, None),
        ),
    ];
    run("sync", net.machine(3), rows);
}
