//! What nodes send each other: the payloads of the gossip topics and the items of block sync,
//! SCALE-encoded. Every decoder takes bytes from a peer, so each checks its limits before it
//! allocates and refuses trailing bytes.

use altan_primitives::{Block, Certificate, SignedProposal, SignedTransaction, SignedVote};
use parity_scale_codec::{Compact, Decode, DecodeAll, Encode};

/// The most transactions one gossip message carries.
pub const MAX_GOSSIP_TRANSACTIONS: u32 = 2_000;

/// A message on the consensus topic.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ConsensusGossip {
    /// A proposal with the block it proposes. The block is left out only when the sender does
    /// not hold it (a re-proposal of a value it learned from votes); receivers then wait for
    /// it from another proposal or from sync.
    Proposal {
        /// The signed proposal.
        proposal: SignedProposal,
        /// The proposed block, whose hash is the proposal's.
        block: Option<Box<Block>>,
    },
    /// A prevote or precommit.
    Vote(SignedVote),
}

/// A message on the blocks topic: the certificate a node committed a height with. A node still
/// deciding that height decides it at once (it has the block from the proposal, or fetches it);
/// one further behind learns how far the chain is.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum BlockGossip {
    /// A height was committed with this certificate.
    Committed(Certificate),
}

/// What every gossip payload is wrapped in. Gossipsub drops a message whose bytes it has seen
/// recently; consensus sends its messages again on purpose (Tendermint is live only if every
/// message is eventually delivered), so each sending is made distinct by a counter.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Envelope<T> {
    /// Distinguishes repeated sendings of the same body, and the same body sent by different
    /// nodes: a counter from a random start.
    pub sending: u64,
    /// The message.
    pub body: T,
}

/// An item of block sync: a final block with the certificate that made it final.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SyncItem {
    /// The block.
    pub block: Block,
    /// Its certificate.
    pub certificate: Certificate,
}

/// Why a peer's bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes do not decode as the expected message (or have bytes left over).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was expected.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// More transactions than one message may carry.
    #[error("{count} transactions in one message; the limit is {max}")]
    TooManyTransactions {
        /// How many the prefix announced.
        count: u32,
        /// The limit.
        max: u32,
    },
    /// A proposal whose block is not the one it proposes.
    #[error("the proposal is for block {proposed} but carries block {carried}")]
    BlockMismatch {
        /// The proposal's block hash.
        proposed: altan_primitives::Hash,
        /// The carried block's.
        carried: altan_primitives::Hash,
    },
}

fn decode_all<T: Decode>(what: &'static str, mut bytes: &[u8]) -> Result<T, WireError> {
    T::decode_all(&mut bytes)
        .map_err(|error| WireError::Malformed { what, reason: error.to_string() })
}

impl ConsensusGossip {
    /// The height the message is for.
    pub fn height(&self) -> altan_primitives::Height {
        match self {
            ConsensusGossip::Proposal { proposal, .. } => proposal.proposal.height,
            ConsensusGossip::Vote(vote) => vote.vote.height,
        }
    }
}

/// Decodes a consensus topic payload; a proposal's block must be the proposed one.
pub fn decode_consensus(bytes: &[u8]) -> Result<Envelope<ConsensusGossip>, WireError> {
    let envelope: Envelope<ConsensusGossip> = decode_all("consensus message", bytes)?;
    if let ConsensusGossip::Proposal { proposal, block: Some(block) } = &envelope.body {
        let carried = block.hash();
        if carried != proposal.proposal.block_hash {
            return Err(WireError::BlockMismatch {
                proposed: proposal.proposal.block_hash,
                carried,
            });
        }
    }
    Ok(envelope)
}

/// Decodes a blocks topic payload.
pub fn decode_blocks(bytes: &[u8]) -> Result<Envelope<BlockGossip>, WireError> {
    decode_all("block announcement", bytes)
}

/// Decodes a transactions topic payload (an [`Envelope`] of transactions): at most
/// [`MAX_GOSSIP_TRANSACTIONS`], checked from the length prefix before anything is decoded.
pub fn decode_transactions_envelope(bytes: &[u8]) -> Result<Vec<SignedTransaction>, WireError> {
    let mut input = bytes.get(8..).unwrap_or_default();
    let Compact(count) = Compact::<u32>::decode(&mut input)
        .map_err(|e| WireError::Malformed { what: "transactions", reason: e.to_string() })?;
    if count > MAX_GOSSIP_TRANSACTIONS {
        return Err(WireError::TooManyTransactions { count, max: MAX_GOSSIP_TRANSACTIONS });
    }
    let envelope: Envelope<Vec<SignedTransaction>> = decode_all("transactions", bytes)?;
    Ok(envelope.body)
}

/// Decodes a block sync item.
pub fn decode_sync_item(bytes: &[u8]) -> Result<SyncItem, WireError> {
    decode_all("sync item", bytes)
}

#[cfg(test)]
mod tests {
    use altan_primitives::{Hash, Proposal, SecretKey, Vote, VoteKind};

    use super::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[7; 32]).expect("a valid key")
    }

    fn vote() -> SignedVote {
        Vote {
            chain_id: 9,
            height: 3,
            round: 0,
            kind: VoteKind::Prevote,
            block_hash: Some(Hash::ZERO),
        }
        .sign(&key())
    }

    #[test]
    fn consensus_messages_round_trip_and_refuse_trailing_bytes() {
        let envelope = Envelope { sending: 5, body: ConsensusGossip::Vote(vote()) };
        let bytes = envelope.encode();
        assert_eq!(decode_consensus(&bytes), Ok(envelope));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode_consensus(&longer), Err(WireError::Malformed { .. })));
        assert!(matches!(
            decode_consensus(&bytes[..bytes.len() - 1]),
            Err(WireError::Malformed { .. })
        ));
        assert!(matches!(decode_consensus(&[]), Err(WireError::Malformed { .. })));
    }

    #[test]
    fn a_proposal_must_carry_its_own_block() {
        let block = Block {
            header: crate::chain::genesis_header(&crate::dev::dev_spec(1), Hash::ZERO),
            transactions: Vec::new(),
            parent_certificate: None,
            evidence: Vec::new(),
        };
        let proposal =
            Proposal { chain_id: 9, height: 1, round: 0, block_hash: Hash::ZERO, pol_round: None }
                .sign(&key());
        let envelope = Envelope {
            sending: 0,
            body: ConsensusGossip::Proposal { proposal, block: Some(Box::new(block.clone())) },
        };
        assert_eq!(
            decode_consensus(&envelope.encode()),
            Err(WireError::BlockMismatch { proposed: Hash::ZERO, carried: block.hash() })
        );
    }

    #[test]
    fn a_transaction_count_above_the_limit_is_refused_before_decoding() {
        let mut bytes = 3u64.encode();
        bytes.extend(Compact(MAX_GOSSIP_TRANSACTIONS + 1).encode());
        bytes.extend([0u8; 64]);
        assert_eq!(
            decode_transactions_envelope(&bytes),
            Err(WireError::TooManyTransactions {
                count: MAX_GOSSIP_TRANSACTIONS + 1,
                max: MAX_GOSSIP_TRANSACTIONS
            })
        );
        // A huge announced length with no bytes behind it is malformed, not an allocation.
        let mut bytes = 3u64.encode();
        bytes.extend(Compact(1_000u32).encode());
        bytes.push(1);
        assert!(matches!(decode_transactions_envelope(&bytes), Err(WireError::Malformed { .. })));
        assert!(matches!(decode_transactions_envelope(&[1, 2]), Err(WireError::Malformed { .. })));
    }
}
