//! Block sync: whom to ask for the final blocks after the head and when, and what to do with
//! the items a peer serves.
//!
//! [`SyncState`] decides; it reads no clock and sends nothing. The engine gives it the time and
//! the head, and sends the [`Request`]s it returns. One request is in flight at a time: a node
//! behind by many blocks asks for [`SYNC_BATCH`] at once and asks again as soon as a full batch
//! imports.

use std::sync::Arc;
use std::time::Duration;

use altan_primitives::Height;
use parity_scale_codec::Encode;
use tracing::{debug, info, warn};

use super::host::{Host, Network};
use super::wire::{self, SyncItem};
use super::{Engine, EngineError, SyncAnswer, TARGET, blocking};
use crate::chain::{BlockRejection, Chain, ChainError};
use crate::network::PeerId;
use crate::status::SyncStatus;

/// Final blocks asked of a peer at once.
pub const SYNC_BATCH: u64 = 64;

/// A block request to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Whom to ask.
    pub peer: PeerId,
    /// The first height asked for.
    pub from: Height,
    /// The last height asked for.
    pub to: Height,
}

/// What sync knows: the peers, the request in flight, the best final height seen, and when the
/// chain last moved.
#[derive(Debug)]
pub struct SyncState {
    in_flight: Option<PeerId>,
    best_seen: Height,
    imported: u64,
    last_progress: Duration,
    stall_timeout: Duration,
    peers: Vec<PeerId>,
    next_peer: usize,
}

impl SyncState {
    /// Sync of a chain final at `head`, at time `now`; with no progress for `stall_timeout`, it
    /// asks a peer whether the others moved on.
    pub fn new(head: Height, now: Duration, stall_timeout: Duration) -> SyncState {
        SyncState {
            in_flight: None,
            best_seen: head,
            imported: 0,
            last_progress: now,
            stall_timeout,
            peers: Vec::new(),
            next_peer: 0,
        }
    }

    /// The connected peers, in the order they connected.
    pub fn peers(&self) -> &[PeerId] {
        &self.peers
    }

    /// A peer connected: it may be ahead, so it is asked.
    pub fn connected(&mut self, peer: PeerId, head: Height) -> Option<Request> {
        if !self.peers.contains(&peer) {
            self.peers.push(peer);
        }
        self.ask(peer, head)
    }

    /// A peer disconnected.
    pub fn disconnected(&mut self, peer: PeerId) {
        self.peers.retain(|p| *p != peer);
    }

    /// A peer showed that the chain is final up to `height`: asked if that is past the head.
    pub fn saw_height(&mut self, height: Height, peer: PeerId, head: Height) -> Option<Request> {
        self.best_seen = self.best_seen.max(height);
        if height > head { self.ask(peer, head) } else { None }
    }

    /// Asks the next peer in turn.
    pub fn ask_any(&mut self, head: Height) -> Option<Request> {
        if self.peers.is_empty() {
            return None;
        }
        self.next_peer = self.next_peer.wrapping_add(1).checked_rem(self.peers.len()).unwrap_or(0);
        let peer = *self.peers.get(self.next_peer)?;
        self.ask(peer, head)
    }

    /// Asks `peer` for the batch after `head`, unless a request is in flight.
    pub fn ask(&mut self, peer: PeerId, head: Height) -> Option<Request> {
        if self.in_flight.is_some() {
            return None;
        }
        self.in_flight = Some(peer);
        let from = head.saturating_add(1);
        Some(Request { peer, from, to: from.saturating_add(SYNC_BATCH - 1) })
    }

    /// The request in flight was answered (or failed).
    pub fn answered(&mut self) {
        self.in_flight = None;
    }

    /// The chain is final up to `height`, reached at `now` by consensus or by sync.
    pub fn progressed(&mut self, height: Height, now: Duration) {
        self.best_seen = self.best_seen.max(height);
        self.last_progress = now;
    }

    /// `count` blocks were imported from a peer, up to `last`.
    pub fn imported(&mut self, count: u64, last: Height, now: Duration) {
        self.imported = self.imported.saturating_add(count);
        self.progressed(last, now);
    }

    /// The highest final height seen.
    pub fn best_seen(&self) -> Height {
        self.best_seen
    }

    /// With nothing final for the stall timeout, asks a peer whether the others moved on
    /// without this node.
    pub fn tick(&mut self, now: Duration, head: Height) -> Option<Request> {
        if now.saturating_sub(self.last_progress) < self.stall_timeout {
            return None;
        }
        self.last_progress = now;
        self.ask_any(head)
    }

    /// What the status RPC shows.
    pub fn status(&self, head: Height) -> SyncStatus {
        SyncStatus {
            syncing: self.best_seen > head.saturating_add(1),
            best_seen: self.best_seen.max(head),
            imported: self.imported,
        }
    }
}

/// Why importing synced blocks stopped early.
#[derive(Debug)]
pub enum ImportFailure {
    /// The peer's block or certificate is invalid.
    Invalid(String),
    /// This node failed.
    Internal(ChainError),
}

/// Imports synced items in order; returns how many were imported and why it stopped early.
pub fn import_items(chain: &Chain, items: Vec<Vec<u8>>) -> (u64, Option<ImportFailure>) {
    let mut imported = 0u64;
    for bytes in items {
        let item: SyncItem = match wire::decode_sync_item(&bytes) {
            Ok(item) => item,
            Err(error) => return (imported, Some(ImportFailure::Invalid(error.to_string()))),
        };
        let failure = match chain.import_block(item.block, item.certificate) {
            Ok(_) => {
                imported = imported.saturating_add(1);
                continue;
            }
            Err(BlockRejection::Invalid(reason)) => ImportFailure::Invalid(reason.to_string()),
            Err(BlockRejection::NotNext { height, head }) => ImportFailure::Invalid(format!(
                "served block {height} where {} was asked for",
                head.saturating_add(1)
            )),
            Err(BlockRejection::Internal(error)) => ImportFailure::Internal(error),
        };
        return (imported, Some(failure));
    }
    (imported, None)
}

/// The final blocks `from..=to` with their certificates, as sync items, up to the first this
/// node does not have.
pub fn serve_blocks(chain: &Chain, from: Height, to: Height) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    for height in from..=to {
        let (Ok(Some(block)), Ok(Some(certificate))) =
            (chain.store().block_at(height), chain.store().certificate(height))
        else {
            break;
        };
        items.push(SyncItem { block, certificate }.encode());
    }
    items
}

impl<H: Host, N: Network> Engine<H, N> {
    /// Sends a block request; its answer comes back to the loop.
    pub(super) fn send_request(&mut self, request: Option<Request>) {
        let Some(Request { peer, from, to }) = request else { return };
        let answer = self.network.request_blocks(peer, from, to);
        let answers = self.sync_answers.clone();
        self.host.spawn(async move {
            let _ = answers.send((peer, from, answer.await)).await;
        });
    }

    pub(super) async fn on_sync_answer(&mut self, answer: SyncAnswer) -> Result<(), EngineError> {
        self.sync.answered();
        let (peer, from, result) = answer;
        let items = match result {
            Ok(items) => items,
            Err(error) => {
                debug!(target: TARGET, %peer, %error, "block request failed");
                return Ok(());
            }
        };
        if items.is_empty() || from != self.chain.head().height.saturating_add(1) {
            self.report_status();
            return Ok(());
        }
        let count = items.len() as u64;
        let started = self.host.now();
        let chain = Arc::clone(&self.chain);
        let (imported, failure) = blocking(&self.host, move || import_items(&chain, items)).await?;
        if imported > 0 {
            let last = from.saturating_add(imported).saturating_sub(1);
            let now = self.host.now();
            self.sync.imported(imported, last, now);
            self.chain.metrics().blocks_imported.inc_by(imported);
            let rate = imported as f64 / now.saturating_sub(started).as_secs_f64().max(1e-6);
            info!(target: TARGET, from, to = last, best_seen = self.sync.best_seen(), %peer,
                blocks_per_second = rate as u64, "synced final blocks");
            self.start_height(false).await?;
        }
        match failure {
            Some(ImportFailure::Invalid(reason)) => {
                warn!(target: TARGET, %peer, %reason, "a peer served an invalid block");
                self.chain.metrics().invalid_peer_messages.inc();
            }
            Some(ImportFailure::Internal(error)) => return Err(error.into()),
            None if imported == count && count == SYNC_BATCH => {
                // There may be more.
                let request = self.sync.ask(peer, self.chain.head().height);
                self.send_request(request);
            }
            None => {}
        }
        self.report_status();
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(2);

    fn peer(n: u8) -> PeerId {
        let key = libp2p::identity::ed25519::SecretKey::try_from_bytes([n.max(1); 32])
            .expect("32 bytes are a key");
        libp2p::identity::Keypair::from(libp2p::identity::ed25519::Keypair::from(key))
            .public()
            .to_peer_id()
    }

    fn request(p: u8, from: Height) -> Option<Request> {
        Some(Request { peer: peer(p), from, to: from + SYNC_BATCH - 1 })
    }

    /// One step and what it should return.
    enum Step {
        Connect(u8, Height, Option<Request>),
        Disconnect(u8),
        Saw(Height, u8, Height, Option<Request>),
        Answered,
        AskAny(Height, Option<Request>),
        Tick(u64, Height, Option<Request>),
        Progressed(Height, u64),
        Status(Height, SyncStatus),
    }

    fn run(steps: Vec<Step>) {
        let mut sync = SyncState::new(10, Duration::ZERO, STALL);
        for (index, step) in steps.into_iter().enumerate() {
            let (found, expected) = match step {
                Step::Connect(p, head, expected) => (sync.connected(peer(p), head), expected),
                Step::Disconnect(p) => {
                    sync.disconnected(peer(p));
                    continue;
                }
                Step::Saw(height, p, head, expected) => {
                    (sync.saw_height(height, peer(p), head), expected)
                }
                Step::Answered => {
                    sync.answered();
                    continue;
                }
                Step::AskAny(head, expected) => (sync.ask_any(head), expected),
                Step::Tick(ms, head, expected) => {
                    (sync.tick(Duration::from_millis(ms), head), expected)
                }
                Step::Progressed(height, ms) => {
                    sync.progressed(height, Duration::from_millis(ms));
                    continue;
                }
                Step::Status(head, expected) => {
                    assert_eq!(sync.status(head), expected, "step {index}");
                    continue;
                }
            };
            assert_eq!(found, expected, "step {index}");
        }
    }

    #[test]
    fn a_new_peer_is_asked_and_one_request_flies_at_a_time() {
        run(vec![
            Step::Connect(1, 10, request(1, 11)),
            // In flight: the second peer waits.
            Step::Connect(2, 10, None),
            Step::Saw(50, 2, 10, None),
            Step::Answered,
            Step::Saw(50, 2, 10, request(2, 11)),
        ]);
    }

    #[test]
    fn heights_at_or_below_the_head_ask_nobody() {
        run(vec![
            Step::Connect(1, 10, request(1, 11)),
            Step::Answered,
            Step::Saw(10, 1, 10, None),
            Step::Saw(9, 1, 10, None),
            Step::Status(10, SyncStatus { syncing: false, best_seen: 10, imported: 0 }),
            Step::Saw(12, 1, 10, request(1, 11)),
            Step::Status(10, SyncStatus { syncing: true, best_seen: 12, imported: 0 }),
        ]);
    }

    #[test]
    fn asking_any_goes_round_the_peers_and_skips_the_gone() {
        run(vec![
            Step::AskAny(10, None),
            Step::Connect(1, 10, request(1, 11)),
            Step::Answered,
            Step::Connect(2, 10, request(2, 11)),
            Step::Answered,
            Step::Connect(3, 10, request(3, 11)),
            Step::Answered,
            Step::AskAny(10, request(2, 11)),
            Step::Answered,
            Step::AskAny(10, request(3, 11)),
            Step::Answered,
            Step::Disconnect(1),
            Step::AskAny(20, request(3, 21)),
        ]);
    }

    #[test]
    fn a_stall_asks_once_per_timeout_and_progress_resets_it() {
        run(vec![
            Step::Connect(1, 10, request(1, 11)),
            Step::Answered,
            Step::Tick(1_999, 10, None),
            Step::Tick(2_000, 10, request(1, 11)),
            Step::Answered,
            // The stall clock restarted when it asked.
            Step::Tick(3_000, 10, None),
            Step::Progressed(11, 3_500),
            Step::Tick(5_000, 11, None),
            Step::Tick(5_500, 11, request(1, 12)),
        ]);
    }
}
