//! Block sync in the swarm's loop: the peers' requests it answers (through the node, within
//! the limits) and its own requests in flight.

use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use tokio::sync::oneshot;

use super::Actor;
use crate::network::codec::{BlocksRequest, BlocksResponse, Refusal, check_range, fit_response};
use crate::network::{LOG_TARGET, NetworkError, NetworkEvent};

/// The node's answer to a peer's block request, once it comes (or does not).
pub(super) struct Answer {
    channel: ResponseChannel<BlocksResponse>,
    peer: PeerId,
    count: u64,
    items: Option<Vec<Vec<u8>>>,
}

/// One of our block requests in flight.
pub(super) struct Outbound {
    peer: PeerId,
    count: u64,
    respond: oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>,
}

impl Actor {
    pub(super) fn on_sync(
        &mut self,
        event: request_response::Event<BlocksRequest, BlocksResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.on_request(peer, request, channel);
                }
                request_response::Message::Response { request_id, response } => {
                    self.on_response(request_id, response);
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                tracing::debug!(target: LOG_TARGET, %peer, %error, "block request failed");
                if let Some(outbound) = self.outbound.remove(&request_id) {
                    let error = match error {
                        request_response::OutboundFailure::Timeout => NetworkError::Timeout,
                        other => NetworkError::RequestFailed { peer, reason: other.to_string() },
                    };
                    let _ = outbound.respond.send(Err(error));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // Malformed or oversized requests end here (the codec's error), as do peers
                // that hang up before the answer.
                tracing::debug!(target: LOG_TARGET, %peer, %error, "inbound block request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    pub(super) fn on_request(
        &mut self,
        peer: PeerId,
        request: BlocksRequest,
        channel: ResponseChannel<BlocksResponse>,
    ) {
        let BlocksRequest { from, to } = request;
        let limits = &self.config.limits;
        let refusal = match check_range(from, to, limits.max_blocks_per_request) {
            Err(refusal) => Some(refusal),
            Ok(_) if self.inbound.len() >= limits.max_pending_inbound_requests => {
                Some(Refusal::Busy)
            }
            Ok(count) => {
                let (respond, answer) = oneshot::channel();
                match self.emit(NetworkEvent::BlocksRequested { peer, from, to, respond }) {
                    Ok(()) => {
                        let timeout = self.config.request_timeout;
                        self.inbound.push(Box::pin(async move {
                            let items = tokio::time::timeout(timeout, answer)
                                .await
                                .ok()
                                .and_then(Result::ok);
                            Answer { channel, peer, count, items }
                        }));
                        return;
                    }
                    Err(refusal) => Some(refusal),
                }
            }
        };
        if let Some(refusal) = refusal {
            tracing::debug!(target: LOG_TARGET, %peer, from, to, %refusal, "block request refused");
            // An error means the peer is gone; there is no one to tell.
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, BlocksResponse::Refused(refusal));
        }
    }

    pub(super) fn on_answer(&mut self, answer: Answer) {
        let Answer { channel, peer, count, items } = answer;
        let response = match items {
            Some(mut items) => {
                let limit = usize::try_from(count).unwrap_or(usize::MAX);
                if items.len() > limit {
                    tracing::warn!(
                        target: LOG_TARGET,
                        %peer,
                        asked = count,
                        given = items.len(),
                        "the node answered more items than asked; truncated"
                    );
                    items.truncate(limit);
                }
                BlocksResponse::Items(fit_response(items, self.config.limits.max_response_bytes))
            }
            None => BlocksResponse::Refused(Refusal::Unavailable),
        };
        let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
    }

    pub(super) fn on_response(&mut self, request_id: OutboundRequestId, response: BlocksResponse) {
        let Some(Outbound { peer, count, respond }) = self.outbound.remove(&request_id) else {
            return;
        };
        let result = match response {
            BlocksResponse::Items(items) => {
                if u64::try_from(items.len()).map_or(true, |n| n > count) {
                    tracing::warn!(
                        target: LOG_TARGET,
                        %peer,
                        asked = count,
                        given = items.len(),
                        "peer answered more items than asked"
                    );
                    Err(NetworkError::InvalidResponse {
                        peer,
                        reason: format!("{} items for a range of {count}", items.len()),
                    })
                } else {
                    Ok(items)
                }
            }
            BlocksResponse::Refused(refusal) => Err(NetworkError::Refused(refusal)),
        };
        let _ = respond.send(result);
    }

    /// Sends a block request, or answers at once when it cannot go out.
    pub(super) fn request_blocks(
        &mut self,
        peer: PeerId,
        from: u64,
        to: u64,
        respond: oneshot::Sender<Result<Vec<Vec<u8>>, NetworkError>>,
    ) {
        let Some(span) = to.checked_sub(from) else {
            let _ = respond.send(Err(NetworkError::InvalidRange { from, to }));
            return;
        };
        let max = self.config.limits.max_pending_outbound_requests;
        if self.outbound.len() >= max {
            let _ = respond.send(Err(NetworkError::Busy { max }));
            return;
        }
        let count = span.saturating_add(1);
        let request_id =
            self.swarm.behaviour_mut().sync.send_request(&peer, BlocksRequest { from, to });
        self.outbound.insert(request_id, Outbound { peer, count, respond });
    }
}
