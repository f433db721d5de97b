//! What arrives from the network: gossip (consensus messages, certificates, transactions),
//! block requests to serve, and peers coming and going.
//!
//! The verdict on a proposal, vote or certificate is given after the machine's cheap checks
//! (signature, membership, leader, height window) and before the block executes or anything is
//! persisted, so a message crosses each hop without waiting on execution.

use std::sync::Arc;

use altan_consensus::{Input, InputError};
use altan_primitives::{Block, Hash, Height};
use tracing::debug;

use super::host::{Host, Network};
use super::wire::{self, BlockGossip, ConsensusGossip, Envelope};
use super::{Engine, EngineError, TARGET, sync, transactions};
use crate::network::{MessageId, NetworkEvent, PeerId, Topic, Validation};

impl<H: Host, N: Network> Engine<H, N> {
    pub(super) async fn on_network(&mut self, event: NetworkEvent) -> Result<(), EngineError> {
        match event {
            NetworkEvent::Gossip { topic: Topic::Transactions, source, id, data } => {
                let inbound = transactions::Inbound { id: id.clone(), source, data };
                if self.transactions.try_send(inbound).is_err() {
                    self.network.report(id, source, Validation::Ignore).await;
                }
            }
            NetworkEvent::Gossip { topic: Topic::Consensus, source, id, data } => {
                self.on_consensus_gossip(source, id, &data).await?;
            }
            NetworkEvent::Gossip { source, id, data, .. } => {
                self.on_block_gossip(source, id, &data).await?;
            }
            NetworkEvent::BlocksRequested { from, to, respond, .. } => {
                let chain = Arc::clone(&self.chain);
                let serve = self.host.run_blocking(move || sync::serve_blocks(&chain, from, to));
                self.host.spawn(async move {
                    if let Ok(items) = serve.await {
                        let _ = respond.send(items);
                    }
                });
            }
            NetworkEvent::PeerConnected(peer) => {
                // A new peer may be ahead: ask it.
                let request = self.sync.connected(peer, self.chain.head().height);
                self.send_request(request);
                self.refresh_peers();
            }
            NetworkEvent::PeerDisconnected(peer) => {
                self.sync.disconnected(peer);
                self.refresh_peers();
            }
        }
        Ok(())
    }

    /// A proposal or vote from gossip. Its verdict is given as soon as the machine has made
    /// its cheap checks, before the block it carries executes and before anything is persisted,
    /// so that forwarding does not wait on execution at every hop.
    pub(super) async fn on_consensus_gossip(
        &mut self,
        source: PeerId,
        id: MessageId,
        data: &[u8],
    ) -> Result<(), EngineError> {
        let envelope = match wire::decode_consensus(data) {
            Ok(envelope) => envelope,
            Err(error) => {
                debug!(target: TARGET, %source, %error, "refusing a consensus message");
                self.verdict(id, source, Validation::Reject).await;
                return Ok(());
            }
        };
        // A message of the next height is buffered by the machine, which cannot check its
        // signer's membership before that height's set is known: it is not forwarded.
        let ahead = envelope.body.height() > self.height();
        let (input, block) = match envelope.body {
            ConsensusGossip::Proposal { proposal, block } => {
                (Input::Proposal(proposal), block.map(|b| *b))
            }
            ConsensusGossip::Vote(vote) => (Input::Vote(vote), None),
        };
        // A block this node is waiting for (to check it, or to commit a decision) is taken from
        // any proposal that carries it, even a refused one: its hash is what the votes were for.
        let hash = block.as_ref().map(Block::hash);
        let wanted = hash.is_some_and(|hash| {
            self.blocks.is_awaited(&hash)
                || self.pending_commit.as_ref().is_some_and(|c| c.block_hash == hash)
        });
        let kept = if wanted { block.clone() } else { None };
        let accepted = self.accept(input, block);
        let validation = match &accepted {
            Ok(_) if ahead => Validation::Ignore,
            Ok(_) => Validation::Accept,
            Err(InputError::FutureHeight { found, .. }) => {
                // Someone decided the heights in between.
                self.saw_height(found.saturating_sub(1), source);
                Validation::Ignore
            }
            Err(error) if error.is_misbehaviour() => {
                debug!(target: TARGET, %source, %error, "invalid consensus message");
                Validation::Reject
            }
            Err(error) => {
                debug!(target: TARGET, %source, %error, "consensus message not used");
                Validation::Ignore
            }
        };
        self.verdict(id, source, validation).await;
        if let Ok(actions) = accepted {
            self.act(actions).await?;
        }
        if let (Some(block), Some(hash)) = (kept, hash) {
            self.take_wanted_block(block, hash).await?;
        }
        Ok(())
    }

    /// Uses a block that arrived after the machine asked for it: commits the decision that
    /// waits for it, or checks it.
    pub(super) async fn take_wanted_block(
        &mut self,
        block: Block,
        hash: Hash,
    ) -> Result<(), EngineError> {
        if let Some(certificate) = self.pending_commit.take_if(|c| c.block_hash == hash) {
            self.blocks.hold(block);
            self.commit(certificate);
        } else if self.blocks.is_awaited(&hash) {
            let height = block.header.height;
            self.blocks.hold(block);
            self.check(height, hash);
        } else {
            return Ok(());
        }
        self.drain().await?;
        self.report_status();
        Ok(())
    }

    /// A certificate announced on the blocks topic; its verdict, like a consensus message's,
    /// comes before the commit it may lead to.
    pub(super) async fn on_block_gossip(
        &mut self,
        source: PeerId,
        id: MessageId,
        data: &[u8],
    ) -> Result<(), EngineError> {
        let certificate = match wire::decode_blocks(data) {
            Ok(Envelope { body: BlockGossip::Committed(certificate), .. }) => certificate,
            Err(error) => {
                debug!(target: TARGET, %source, %error, "refusing a block announcement");
                self.verdict(id, source, Validation::Reject).await;
                return Ok(());
            }
        };
        let current = self.height();
        if certificate.height != current {
            if certificate.height > current {
                self.saw_height(certificate.height, source);
            }
            self.verdict(id, source, Validation::Ignore).await;
            return Ok(());
        }
        let accepted = self.accept(Input::Certificate(certificate), None);
        let validation = match &accepted {
            Ok(_) => Validation::Accept,
            Err(error) if error.is_misbehaviour() => Validation::Reject,
            Err(_) => Validation::Ignore,
        };
        self.verdict(id, source, validation).await;
        if let Ok(actions) = accepted {
            self.act(actions).await?;
        }
        Ok(())
    }

    /// A peer showed that the chain is final up to `height`.
    pub(super) fn saw_height(&mut self, height: Height, peer: PeerId) {
        let request = self.sync.saw_height(height, peer, self.chain.head().height);
        self.send_request(request);
    }

    /// Gives gossipsub the verdict on a message: accepted ones are forwarded at once.
    pub(super) async fn verdict(&mut self, id: MessageId, source: PeerId, validation: Validation) {
        if validation == Validation::Reject {
            self.chain.metrics().invalid_peer_messages.inc();
        }
        self.network.report(id, source, validation).await;
    }
}
