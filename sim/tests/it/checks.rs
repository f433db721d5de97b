//! The simulation's checks catch what they are for.

use altan_node::engine::host::Network;
use altan_node::engine::wire::{ConsensusGossip, Envelope};
use altan_node::network::Topic;
use altan_primitives::{Hash, SecretKey, Vote, VoteKind};
use altan_sim::network::{LinkFaults, SimNet};
use commonware_runtime::Runner as _;
use commonware_runtime::deterministic::Runner;
use parity_scale_codec::Encode;

fn vote_bytes(key: &SecretKey, block_hash: Option<Hash>, sending: u64) -> Vec<u8> {
    let vote = Vote { chain_id: 1, height: 5, round: 0, kind: VoteKind::Prevote, block_hash };
    Envelope { sending, body: ConsensusGossip::Vote(vote.sign(key)) }.encode()
}

#[test]
fn a_validator_signing_two_votes_for_one_step_is_caught_whoever_sends_them() {
    Runner::seeded(1).start(|context| async move {
        let net = SimNet::new(context, 3, LinkFaults::default(), 1);
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        // The vote, sent again and forwarded by another node: not a violation.
        for (node, sending) in [(0, 1), (0, 2), (1, 9)] {
            net.handle(node)
                .publish(Topic::Consensus, vote_bytes(&key, None, sending))
                .await
                .unwrap();
        }
        assert!(net.violations().is_empty());
        // Another vote for the same step, even sent by another node: a violation.
        let other = vote_bytes(&key, Some(Hash::ZERO), 3);
        net.handle(2).publish(Topic::Consensus, other).await.unwrap();
        let violations = net.violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("signed two messages for height 5, round 0, step 1"));
    });
}
