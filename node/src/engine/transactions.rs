//! Transaction gossip: what this node's clients submit goes to peers in batches; what peers send
//! is admitted to the pool (and forwarded by gossipsub only if it was valid).

use std::sync::Arc;
use std::time::Duration;

use altan_primitives::SignedTransaction;
use altan_runtime::exec::InvalidTransaction;
use parity_scale_codec::Encode;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::host::{Host, Network};
use super::wire::{self, Envelope, MAX_GOSSIP_TRANSACTIONS};
use crate::chain::{Chain, SubmitError};
use crate::network::{MessageId, NetworkError, PeerId, Topic, Validation};

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
pub fn spawn<H: Host, N: Network>(chain: Arc<Chain>, host: H, network: N) -> mpsc::Sender<Inbound> {
    let (outbound_tx, outbound) = mpsc::channel(OUTBOUND_QUEUE);
    let (inbound_tx, inbound) = mpsc::channel(INBOUND_QUEUE);
    chain.gossip_transactions_to(outbound_tx);
    host.spawn(run(chain, host.clone(), network, outbound, inbound));
    inbound_tx
}

async fn run<H: Host, N: Network>(
    chain: Arc<Chain>,
    host: H,
    network: N,
    mut outbound: mpsc::Receiver<SignedTransaction>,
    mut inbound: mpsc::Receiver<Inbound>,
) {
    let mut batch: Vec<SignedTransaction> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut flush_at: Option<Duration> = None;
    let mut sending: u64 = host.random();
    loop {
        let wait = super::sleep_until(&host, flush_at);
        // Biased, so that the same inputs give the same steps: a due batch first.
        tokio::select! {
            biased;
            () = wait => {
                sending = sending.wrapping_add(1);
                send(&network, std::mem::take(&mut batch), sending).await;
                batch_bytes = 0;
                flush_at = None;
            }
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
                    flush_at = Some(host.now().saturating_add(BATCH_DELAY));
                }
            }
            message = inbound.recv() => {
                let Some(message) = message else { return };
                let validation = admit(&host, &chain, &message.data).await;
                if validation == Validation::Reject {
                    chain.metrics().invalid_peer_messages.inc();
                }
                network.report(message.id, message.source, validation).await;
            }
        }
    }
}

async fn send<N: Network>(network: &N, batch: Vec<SignedTransaction>, sending: u64) {
    if batch.is_empty() {
        return;
    }
    let count = batch.len();
    // The sending counter keeps a resubmitted transaction's batch from looking like a
    // duplicate of an earlier one.
    let bytes = Envelope { sending, body: batch }.encode();
    match network.publish(Topic::Transactions, bytes).await {
        Ok(()) => debug!(target: TARGET, count, "gossiped transactions"),
        Err(NetworkError::NoPeers) => debug!(target: TARGET, count, "no peers for transactions"),
        Err(error) => warn!(target: TARGET, count, %error, "cannot gossip transactions"),
    }
}

/// Admits a peer's batch and says what gossipsub should do with it: reject it if anything in
/// it could never be valid (a bad signature, another chain), accept it if something was new.
async fn admit<H: Host>(host: &H, chain: &Arc<Chain>, data: &[u8]) -> Validation {
    let transactions = match wire::decode_transactions_envelope(data) {
        Ok(transactions) => transactions,
        Err(error) => {
            debug!(target: TARGET, %error, "refusing a transactions message");
            return Validation::Reject;
        }
    };
    let chain = Arc::clone(chain);
    let Ok(results) = host.run_blocking(move || chain.submit_from_peer(transactions)).await else {
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
