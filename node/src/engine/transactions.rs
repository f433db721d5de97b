//! Transaction gossip: what this node's clients submit goes to peers in batches; what peers send
//! is admitted to the pool (and forwarded by gossipsub only if it was valid).

use std::sync::Arc;
use std::time::Duration;

use altan_primitives::SignedTransaction;
use altan_runtime::exec::InvalidTransaction;
use parity_scale_codec::Encode;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::wire::{self, Envelope, MAX_GOSSIP_TRANSACTIONS};
use crate::chain::{Chain, SubmitError};
use crate::network::{MessageId, NetworkError, NetworkHandle, PeerId, Topic, Validation};

const TARGET: &str = "altan::gossip";

/// Transactions from clients waiting to be gossiped.
pub const OUTBOUND_QUEUE: usize = 20_000;
/// Gossip messages from peers waiting to be admitted.
pub const INBOUND_QUEUE: usize = 256;
/// The most bytes of transactions in one gossip message (the topic allows 256 KiB).
pub const MAX_BATCH_BYTES: usize = 200 * 1024;
/// How long a batch waits for more transactions before it is sent.
pub const BATCH_DELAY: Duration = Duration::from_millis(5);

/// A transactions gossip message to validate and admit.
#[derive(Debug)]
pub struct Inbound {
    /// Its id, for the verdict.
    pub id: MessageId,
    /// Who forwarded it.
    pub source: PeerId,
    /// The payload.
    pub data: Vec<u8>,
}

/// Starts the gossip task and registers it with the chain; returns where inbound messages go.
pub fn spawn(chain: Arc<Chain>, network: NetworkHandle) -> mpsc::Sender<Inbound> {
    let (outbound_tx, outbound) = mpsc::channel(OUTBOUND_QUEUE);
    let (inbound_tx, inbound) = mpsc::channel(INBOUND_QUEUE);
    chain.gossip_transactions_to(outbound_tx);
    tokio::spawn(run(chain, network, outbound, inbound));
    inbound_tx
}

async fn run(
    chain: Arc<Chain>,
    network: NetworkHandle,
    mut outbound: mpsc::Receiver<SignedTransaction>,
    mut inbound: mpsc::Receiver<Inbound>,
) {
    let mut batch: Vec<SignedTransaction> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut flush_at: Option<tokio::time::Instant> = None;
    let mut sending: u64 = rand::random();
    loop {
        let wait = async {
            match flush_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            transaction = outbound.recv() => {
                let Some(transaction) = transaction else { return };
                batch_bytes = batch_bytes.saturating_add(transaction.encoded_size());
                batch.push(transaction);
                let full = batch_bytes >= MAX_BATCH_BYTES
                    || batch.len() >= MAX_GOSSIP_TRANSACTIONS as usize;
                if full {
                    sending = sending.wrapping_add(1);
                    send(&network, std::mem::take(&mut batch), sending).await;
                    batch_bytes = 0;
                    flush_at = None;
                } else if flush_at.is_none() {
                    flush_at = tokio::time::Instant::now().checked_add(BATCH_DELAY);
                }
            }
            () = wait => {
                sending = sending.wrapping_add(1);
                send(&network, std::mem::take(&mut batch), sending).await;
                batch_bytes = 0;
                flush_at = None;
            }
            message = inbound.recv() => {
                let Some(message) = message else { return };
                let validation = admit(&chain, &message.data).await;
                if validation == Validation::Reject {
                    chain.metrics().invalid_peer_messages.inc();
                }
                let _ = network.report(message.id, message.source, validation).await;
            }
        }
    }
}

async fn send(network: &NetworkHandle, batch: Vec<SignedTransaction>, sending: u64) {
    if batch.is_empty() {
        return;
    }
    let count = batch.len();
    // The sending counter keeps a resubmitted transaction's batch from looking like a
    // duplicate of an earlier one.
    let bytes = Envelope { sending, body: batch }.encode();
    match network.publish(Topic::Transactions, bytes).await {
        Ok(_) => debug!(target: TARGET, count, "gossiped transactions"),
        Err(NetworkError::NoPeers) => debug!(target: TARGET, count, "no peers for transactions"),
        Err(error) => warn!(target: TARGET, count, %error, "cannot gossip transactions"),
    }
}

/// Admits a peer's batch and says what gossipsub should do with it: reject it if anything in
/// it could never be valid (a bad signature, another chain), accept it if something was new.
async fn admit(chain: &Arc<Chain>, data: &[u8]) -> Validation {
    let transactions = match wire::decode_transactions_envelope(data) {
        Ok(transactions) => transactions,
        Err(error) => {
            debug!(target: TARGET, %error, "refusing a transactions message");
            return Validation::Reject;
        }
    };
    let chain = Arc::clone(chain);
    let Ok(results) =
        tokio::task::spawn_blocking(move || chain.submit_from_peer(transactions)).await
    else {
        return Validation::Ignore;
    };
    let mut admitted = false;
    for result in results {
        match result {
            Ok(_) => admitted = true,
            Err(SubmitError::Invalid(
                InvalidTransaction::BadSignature(_)
                | InvalidTransaction::WrongChainId { .. }
                | InvalidTransaction::TooLarge { .. }
                | InvalidTransaction::GasLimitTooLow { .. },
            ))
            | Err(SubmitError::GasLimitAboveBlock { .. }) => return Validation::Reject,
            // Known already, a nonce used meanwhile, a full pool: nobody's fault.
            Err(_) => {}
        }
    }
    if admitted { Validation::Accept } else { Validation::Ignore }
}
