//! Staking over the wire, with real `altan run` processes: a validator that joins by
//! transactions submitted over RPC becomes part of the set at the next epoch, after which
//! finality needs its votes; a validator whose conflicting votes reach a node over gossip is
//! reported in a block, jailed and left out of the next epoch's set.

use std::time::Duration;

use altan_node::client::{self, GasSettings};
use altan_node::engine::SYNC_BATCH;
use altan_node::engine::wire::{ConsensusGossip, decode_sync_item};
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::types::{BlockId, ReceiptJson, StatusJson, ValidatorsJson};
use altan_primitives::{
    Action, Address, Certificate, Evidence, SecretKey, StakingAction, Vote, VoteKind, blake3,
};
use parity_scale_codec::DecodeAll;

use crate::support::{EPOCH_LENGTH, Node, NodeConfig, Peer, Probe, TOKEN, key, spec, timed, until};

const CHAIN_ID: u64 = 7_101;
/// A's stake at genesis, and what C bonds: equal, so neither has more than 2/3 alone.
const STAKE: u128 = 1_000 * TOKEN;

async fn send(node: &Node, from: &SecretKey, action: StakingAction) -> ReceiptJson {
    let what = format!("{action:?}");
    let receipt = tokio::time::timeout(
        Duration::from_secs(20),
        client::send(node.rpc(), from, Action::Staking(action), GasSettings::default()),
    )
    .await
    .unwrap_or_else(|_| panic!("{what} was not included within 20 s"))
    .unwrap_or_else(|e| panic!("{what}: {e:#}"));
    assert_eq!(receipt.status, StatusJson::Success, "{what} failed: {:?}", receipt.failure);
    receipt
}

fn index_of(set: &ValidatorsJson, address: Address) -> Option<u16> {
    set.validators.iter().position(|v| v.address == address).map(|i| i as u16)
}

/// The validator indexes whose precommits the certificate of `height` carries, with the set
/// they index into.
async fn signers(node: &Node, height: u64) -> anyhow::Result<(Vec<u16>, ValidatorsJson)> {
    let bytes = timed(node.rpc().certificate(height))
        .await?
        .ok_or_else(|| anyhow::anyhow!("{} stores no certificate for {height}", node.name))?;
    let certificate = Certificate::decode_all(&mut &bytes.0[..])?;
    anyhow::ensure!(
        certificate.height == height,
        "certificate of {} at {height}",
        certificate.height
    );
    let set = node.validators(BlockId::Number(height)).await?;
    let mut indexes: Vec<u16> = certificate.signatures.iter().map(|s| s.validator_index).collect();
    indexes.sort_unstable();
    Ok((indexes, set))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_registered_over_rpc_joins_the_set_and_finality_needs_it() {
    let a = key();
    // C's operator account pays and bonds; C is only its consensus key.
    let operator = key();
    let c = key();
    let spec = spec(CHAIN_ID, &[(&a, STAKE)], &[(operator.address(), 10 * STAKE)]);

    let node_a =
        Node::start("A", &spec, NodeConfig { key: Some(a.clone()), ..Default::default() }).await;
    node_a.wait_final(2, Duration::from_secs(20)).await;
    let genesis_set = node_a.validators(BlockId::Number(0)).await.unwrap();
    assert_eq!(genesis_set.validators.len(), 1, "{genesis_set:?}");

    let register =
        StakingAction::RegisterValidator { consensus_key: c.public_key(), commission_bps: 500 };
    send(&node_a, &operator, register).await;
    let bond = StakingAction::Bond { validator: operator.address(), amount: STAKE };
    let bonded = send(&node_a, &operator, bond).await;

    // C follows the chain from A and signs once its key is in an epoch's set.
    let node_c = Node::start(
        "C",
        &spec,
        NodeConfig {
            key: Some(c.clone()),
            account: Some(operator.address()),
            bootnodes: vec![node_a.bootnode()],
        },
    )
    .await;

    let joined = until(
        "A's final block is in an epoch whose set has C",
        Duration::from_secs(30),
        || async {
            let set = node_a.validators(BlockId::Final).await?;
            Ok(if index_of(&set, operator.address()).is_some() {
                Probe::Done(set)
            } else {
                Probe::seen(set)
            })
        },
    )
    .await;
    let switch = joined.epoch * EPOCH_LENGTH;
    assert!(switch > bonded.block_height, "C's stake counts from the epoch after its bond");
    assert_eq!(joined.validators.len(), 2, "{joined:?}");
    let c_entry = &joined.validators[usize::from(index_of(&joined, operator.address()).unwrap())];
    assert_eq!(c_entry.consensus_key, c.public_key().to_string());
    assert!(
        joined.validators.iter().all(|v| v.power.0 == STAKE),
        "A and C should have equal power: {joined:?}"
    );
    // The set before the switch was A's alone: the change is the epoch's, not genesis'.
    let before = node_a.validators(BlockId::Number(switch - 1)).await.unwrap();
    assert_eq!(before.validators.len(), 1, "{before:?}");

    // Blocks keep being finalized after the switch, and C proposes some of them.
    let (last, c_proposed) =
        until("C proposes a final block after the switch", Duration::from_secs(40), || async {
            let final_height = node_a.final_height().await?;
            if final_height < switch + 4 {
                return Ok(Probe::seen(format!("final height {final_height}, switch at {switch}")));
            }
            for height in switch..=final_height {
                if node_a.header(height).await?.proposer == operator.address() {
                    return Ok(Probe::Done((final_height, height)));
                }
            }
            Ok(Probe::seen(format!("no block of {switch}..={final_height} proposed by C")))
        })
        .await;

    // Every final block since the switch carries C's precommit: A alone has half the power.
    for height in switch..=last {
        let (indexes, set) = signers(&node_a, height).await.unwrap();
        let c_index = index_of(&set, operator.address())
            .unwrap_or_else(|| panic!("C is not in the set of height {height}: {set:?}"));
        assert!(indexes.contains(&c_index), "block {height}'s certificate lacks C: {indexes:?}");
        assert_eq!(indexes.len(), 2, "block {height}'s certificate: {indexes:?}");
    }

    eprintln!(
        "bond in block {}, set with C from block {switch}, C proposed block {c_proposed}, \
         certificates checked to {last}",
        bonded.block_height
    );

    // C's node agrees with A's, and says it validates.
    let c_final = node_c.wait_final(last, Duration::from_secs(20)).await;
    assert!(c_final >= last);
    let on_a = node_a.header(c_proposed).await.unwrap();
    let on_c = node_c.header(c_proposed).await.unwrap();
    assert_eq!(on_a.hash, on_c.hash, "A and C disagree on block {c_proposed}");
    let health = node_c.health().await.unwrap();
    assert!(health.consensus.as_ref().is_some_and(|c| c.validating), "C does not sign: {health:?}");
}

/// Every piece of evidence in A's final blocks after `from`, with the height of the block that
/// carries it, read over block sync as a peer would.
async fn evidence_after(
    peer: &Peer,
    node: &Node,
    from: u64,
) -> anyhow::Result<Vec<(u64, Evidence)>> {
    let final_height = node.final_height().await?;
    let mut found = Vec::new();
    let mut next = from + 1;
    while next <= final_height {
        let to = final_height.min(next + SYNC_BATCH - 1);
        let items = timed(peer.handle.request_blocks(peer.node, next, to)).await?;
        anyhow::ensure!(!items.is_empty(), "{} served nothing for {next}..={to}", node.name);
        for bytes in &items {
            let item = decode_sync_item(bytes)?;
            anyhow::ensure!(
                item.block.header.height == next,
                "served {} for {next}",
                item.block.header.height
            );
            found.extend(item.block.evidence.into_iter().map(|e| (next, e)));
            next += 1;
        }
    }
    Ok(found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_signing_validator_is_reported_slashed_and_dropped_from_the_set() {
    let a = key();
    let b = key();
    // A alone has 3/4 of the power: it finalizes without B, who never runs a node.
    let spec = spec(CHAIN_ID + 1, &[(&a, 3 * STAKE), (&b, STAKE)], &[]);
    let node =
        Node::start("A", &spec, NodeConfig { key: Some(a.clone()), ..Default::default() }).await;
    node.wait_final(2, Duration::from_secs(20)).await;
    let genesis_set = node.validators(BlockId::Number(0)).await.unwrap();
    assert!(index_of(&genesis_set, b.address()).is_some(), "{genesis_set:?}");

    let mut peer = Peer::connect(&node).await;
    let health = node.health().await.unwrap();
    let before = health.final_height;
    // The machine's current height and the next (buffered): whichever A is at when the votes
    // arrive, it holds both of B's votes for one of them (it also checks the height it just
    // decided for equivocation).
    let current = health.consensus.map_or(before + 1, |c| c.height);
    let mut accused = Vec::new();
    for height in [current, current + 1] {
        let vote = |block_hash| {
            Vote { chain_id: spec.chain_id, height, round: 0, kind: VoteKind::Prevote, block_hash }
                .sign(&b)
        };
        let for_block = vote(Some(blake3(format!("block {height}").as_bytes())));
        let for_nil = vote(None);
        accused
            .push(Evidence::duplicate_vote(for_block.clone(), for_nil.clone()).offence().unwrap());
        peer.publish_consensus(ConsensusGossip::Vote(for_block)).await;
        peer.publish_consensus(ConsensusGossip::Vote(for_nil)).await;
    }

    let evidence =
        until("a final block of A carries the evidence", Duration::from_secs(20), || async {
            let evidence = evidence_after(&peer, &node, before).await?;
            Ok(if evidence.is_empty() {
                Probe::seen("no evidence yet")
            } else {
                Probe::Done(evidence)
            })
        })
        .await;
    let (included_at, _) = evidence[0];
    // RPC shows the evidence in the block, with its offender.
    let shown = node
        .rpc()
        .block(BlockId::Number(included_at), None)
        .await
        .unwrap()
        .expect("the block that carries the evidence");
    assert!(!shown.evidence.is_empty(), "chain_getBlock shows no evidence: {shown:?}");
    assert!(
        shown.evidence.iter().all(|e| e.offender == b.public_key().to_string()),
        "{:?}",
        shown.evidence
    );

    // B is jailed: the next epoch's set is A's alone.
    let next_epoch = included_at / EPOCH_LENGTH + 1;
    let after = until(
        "A finalizes a block of the epoch after the evidence",
        Duration::from_secs(30),
        || async {
            let set = node.validators(BlockId::Final).await?;
            Ok(if set.epoch >= next_epoch { Probe::Done(set) } else { Probe::seen(set) })
        },
    )
    .await;
    assert_eq!(
        after.validators.iter().map(|v| v.address).collect::<Vec<_>>(),
        vec![a.address()],
        "B should be out of the set after its equivocation"
    );
    // B's old epoch still lists it: it was removed, not never there.
    let during = node.validators(BlockId::Number(included_at)).await.unwrap();
    assert!(index_of(&during, b.address()).is_some(), "{during:?}");

    // And A keeps finalizing.
    let now = node.final_height().await.unwrap();
    node.wait_final(now + 5, Duration::from_secs(20)).await;

    // Every piece of evidence on the chain is of B's votes, each landed once (the node drops
    // what a committed block carried from its pool), and at most one per vote height we sent.
    let evidence = evidence_after(&peer, &node, before).await.unwrap();
    let mut offences = Vec::new();
    for (height, piece) in &evidence {
        let offence = piece.offence().expect("included evidence verifies");
        assert_eq!(offence.offender, b.public_key(), "evidence at {height} accuses someone else");
        assert!(
            accused.contains(&offence),
            "evidence at {height} is not of our votes: {offence:?}"
        );
        assert!(!offences.contains(&offence), "evidence of {offence:?} landed twice");
        offences.push(offence);
    }
    eprintln!("evidence of {} offences, the first in block {included_at}", offences.len());
}
