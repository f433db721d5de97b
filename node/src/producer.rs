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

/// The first wait before a failed block is tried again; it doubles up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(50);
/// The longest wait between tries of a failed block.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(2);

/// What one try to produce a block gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Produced {
    /// A block was committed.
    Block,
    /// Nothing was ready (and an empty block was not wanted).
    Nothing,
    /// Building or committing failed (the disk, or resources the machine ran short of): none of
    /// that is the transactions' fault, so they stay in the pool and the block is tried again.
    Failed,
}

async fn produce(chain: &Arc<Chain>, allow_empty: bool) -> Produced {
    let chain = Arc::clone(chain);
    match tokio::task::spawn_blocking(move || chain.produce_block(now_ms(), allow_empty)).await {
        Ok(Ok(Some(_))) => Produced::Block,
        Ok(Ok(None)) => Produced::Nothing,
        Ok(Err(e)) => {
            error!(target: TARGET, error = %e, "block production failed; trying again");
            Produced::Failed
        }
        Err(e) => {
            error!(target: TARGET, error = %e, "block production panicked; trying again");
            Produced::Failed
        }
    }
}

/// Produces one block, trying again after a failure (with a growing delay) until it is built:
/// a failure must never lose a block, nor leave ready transactions waiting for another to
/// arrive. Returns whether a block was committed.
async fn produce_until_done(chain: &Arc<Chain>, allow_empty: bool) -> bool {
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        match produce(chain, allow_empty).await {
            Produced::Block => return true,
            Produced::Nothing => return false,
            Produced::Failed => {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2).min(MAX_RETRY_DELAY);
            }
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
            while produce_until_done(&chain, false).await {}
        },
        BlockTime::Every(interval) => {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                produce_until_done(&chain, true).await;
            }
        }
    }
}
