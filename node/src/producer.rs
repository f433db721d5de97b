//! Block production for a node that is the whole validator set (`altan dev`, a one-validator
//! `altan run`): a block as soon as transactions are ready, or one every interval.
//!
//! Building and committing a block executes contracts and waits for fsync, so it runs on the
//! blocking pool; the loop itself only waits.

use std::sync::Arc;
use std::time::Duration;

use tracing::error;

use crate::chain::Chain;

const TARGET: &str = "altan::producer";

/// When blocks are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockTime {
    /// As soon as transactions are ready; no empty blocks.
    Instant,
    /// Every interval, empty or not.
    Every(Duration),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn produce(chain: &Arc<Chain>, allow_empty: bool) -> bool {
    let chain = Arc::clone(chain);
    match tokio::task::spawn_blocking(move || chain.produce_block(now_ms(), allow_empty)).await {
        Ok(Ok(block)) => block.is_some(),
        Ok(Err(e)) => {
            error!(target: TARGET, error = %e, "block production failed");
            false
        }
        Err(e) => {
            error!(target: TARGET, error = %e, "block production panicked");
            false
        }
    }
}

/// Produces blocks until the task is dropped.
pub async fn run(chain: Arc<Chain>, block_time: BlockTime) {
    match block_time {
        BlockTime::Instant => loop {
            chain.transaction_arrived().await;
            // Keep building while transactions are ready: under load, blocks follow each other
            // back to back and each takes what arrived while the last was built.
            while produce(&chain, false).await {}
        },
        BlockTime::Every(interval) => {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                produce(&chain, true).await;
            }
        }
    }
}
