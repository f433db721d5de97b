//! The network's mailbox: the commands a [`NetworkHandle`] sends to the swarm's loop.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{MessageId, Multiaddr, NetworkError, PeerId, PeerInfo, Topic, Validation};

/// Extra time the handle waits beyond the request timeout, so that the swarm's own timeout (which
/// says what happened) normally fires first.
const REQUEST_GRACE: Duration = Duration::from_secs(1);

/// A command for the swarm's loop.
#[derive(Debug)]
pub(crate) enum Message {
    Publish {
        topic: Topic,
        data: Vec<u8>,
        respond: oneshot::Sender<Result<MessageId, NetworkError>>,
    },
    Report {
        id: MessageId,
        source: PeerId,
        validation: Validation,
    },
    RequestBlocks {
        peer: PeerId,
        from: u64,
        to: u64,
        respond: oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>,
    },
    Peers {
        respond: oneshot::Sender<Vec<PeerInfo>>,
    },
    TopicPeers {
        topic: Topic,
        respond: oneshot::Sender<Vec<PeerId>>,
    },
    PeerScore {
        peer: PeerId,
        respond: oneshot::Sender<Option<f64>>,
    },
    ListenAddresses {
        respond: oneshot::Sender<Vec<Multiaddr>>,
    },
}

/// The node's side of the network service. Cheap to clone; the service stops when every handle
/// is dropped.
#[derive(Debug, Clone)]
pub struct NetworkHandle {
    sender: mpsc::Sender<Message>,
    local_peer_id: PeerId,
    request_timeout: Duration,
}

impl NetworkHandle {
    pub(crate) fn new(
        sender: mpsc::Sender<Message>,
        local_peer_id: PeerId,
        request_timeout: Duration,
    ) -> Self {
        Self { sender, local_peer_id, request_timeout }
    }

    async fn ask<T>(
        &self,
        message: impl FnOnce(oneshot::Sender<T>) -> Message,
    ) -> Result<T, NetworkError> {
        let (respond, answer) = oneshot::channel();
        self.sender.send(message(respond)).await.map_err(|_| NetworkError::Closed)?;
        answer.await.map_err(|_| NetworkError::Closed)
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Publishes `data` on `topic` and returns its message id (blake3 of `data`).
    ///
    /// Fails with [`NetworkError::NoPeers`] when no connected peer is subscribed (a lone node),
    /// [`NetworkError::MessageTooLarge`] above the topic's limit and [`NetworkError::Duplicate`]
    /// when the same bytes were seen recently.
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<MessageId, NetworkError> {
        self.ask(|respond| Message::Publish { topic, data, respond }).await?
    }

    /// Reports the node's verdict on a [`super::NetworkEvent::Gossip`] message: accepted ones
    /// are forwarded, rejected ones cost `source` score.
    pub async fn report(
        &self,
        id: MessageId,
        source: PeerId,
        validation: Validation,
    ) -> Result<(), NetworkError> {
        self.sender
            .send(Message::Report { id, source, validation })
            .await
            .map_err(|_| NetworkError::Closed)
    }

    /// Asks `peer` for the items at heights `from..=to`. The answer may hold fewer items than
    /// asked (the peer's head, or its response size limit); they are for consecutive heights
    /// from `from` on.
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        from: u64,
        to: u64,
    ) -> Result<Vec<Vec<u8>>, NetworkError> {
        let wait = self.request_timeout.saturating_add(REQUEST_GRACE);
        tokio::time::timeout(
            wait,
            self.ask(|respond| Message::RequestBlocks { peer, from, to, respond }),
        )
        .await
        .map_err(|_| NetworkError::Timeout)??
    }

    /// The connected peers, ordered by peer id.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetworkError> {
        self.ask(|respond| Message::Peers { respond }).await
    }

    /// The connected peers subscribed to `topic`, ordered by peer id.
    pub async fn topic_peers(&self, topic: Topic) -> Result<Vec<PeerId>, NetworkError> {
        self.ask(|respond| Message::TopicPeers { topic, respond }).await
    }

    /// Gossipsub's score of a peer (negative after invalid messages), if it has one.
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NetworkError> {
        self.ask(|respond| Message::PeerScore { peer, respond }).await
    }

    /// The addresses the node listens on.
    pub async fn listen_addresses(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.ask(|respond| Message::ListenAddresses { respond }).await
    }
}
