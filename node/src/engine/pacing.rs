//! When a leader builds the block the machine asked it for.

use std::sync::Arc;
use std::time::Duration;

use altan_primitives::Height;

use super::host::Host;
use crate::chain::Chain;

/// The first wait before a block that failed to build is tried again; it doubles up to
/// [`MAX_BUILD_RETRY`].
pub const FIRST_BUILD_RETRY: Duration = Duration::from_millis(50);
/// The longest wait between tries of a block that failed to build.
pub const MAX_BUILD_RETRY: Duration = Duration::from_secs(2);

/// When a leader builds its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockPacing {
    /// As soon as a transaction is ready; with none, an empty block once `empty_after` has
    /// passed since the parent's timestamp (never, if `None`).
    Ready {
        /// The longest wait for a transaction.
        empty_after: Option<Duration>,
    },
    /// One block each interval after its parent's timestamp, empty or not.
    Every(Duration),
}

impl BlockPacing {
    /// The longest a leader may wait before it builds (`Duration::MAX` for ever).
    pub fn longest_wait(self) -> Duration {
        match self {
            BlockPacing::Ready { empty_after } => empty_after.unwrap_or(Duration::MAX),
            BlockPacing::Every(interval) => interval,
        }
    }
}

/// A block the machine asked for, waiting for its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingBuild {
    /// Its height.
    pub height: Height,
    /// The round it is proposed in.
    pub round: u32,
    /// Not built before this (a retry after a failure waits).
    pub not_before: Duration,
    /// Built at this time, ready transactions or not.
    pub deadline: Option<Duration>,
    /// Built as soon as a transaction is ready.
    pub on_ready: bool,
}

impl PendingBuild {
    /// The build of the block of `height` and `round` that the machine asked for at `now`, on
    /// a parent stamped `parent_ms`, with the wall clock at `wall_ms`.
    pub fn new(
        pacing: BlockPacing,
        (height, round): (Height, u32),
        now: Duration,
        parent_ms: u64,
        wall_ms: u64,
    ) -> PendingBuild {
        let after_parent = |interval: Duration| {
            let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
            let due_ms = parent_ms.saturating_add(interval_ms);
            now.saturating_add(Duration::from_millis(due_ms.saturating_sub(wall_ms)))
        };
        let (deadline, on_ready) = match pacing {
            BlockPacing::Ready { empty_after } => (empty_after.map(after_parent), true),
            BlockPacing::Every(interval) => (Some(after_parent(interval)), false),
        };
        PendingBuild { height, round, not_before: now, deadline, on_ready }
    }

    /// The same build, tried again after `delay` from `now`.
    pub fn retry(self, now: Duration, delay: Duration) -> PendingBuild {
        PendingBuild { not_before: now.saturating_add(delay), ..self }
    }
}

/// Resolves when `build` is due: never without one.
pub async fn build_ready<H: Host>(host: H, chain: Arc<Chain>, build: Option<PendingBuild>) {
    let Some(build) = build else { return std::future::pending().await };
    host.sleep_until(build.not_before).await;
    loop {
        let due = build.deadline.is_some_and(|deadline| host.now() >= deadline);
        if due || (build.on_ready && chain.has_ready_transactions()) {
            return;
        }
        let deadline = super::sleep_until(&host, build.deadline);
        if !build.on_ready {
            return deadline.await;
        }
        tokio::select! {
            biased;
            () = deadline => return,
            () = chain.transaction_arrived() => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_deadline_counts_from_the_parent_timestamp() {
        // (pacing, parent_ms, wall_ms, now, expected deadline, expected on_ready)
        let cases = [
            (
                BlockPacing::Ready { empty_after: Some(ms(1_000)) },
                10_000,
                10_400,
                50,
                Some(650),
                true,
            ),
            (BlockPacing::Ready { empty_after: None }, 10_000, 10_400, 50, None, true),
            (BlockPacing::Every(ms(500)), 10_000, 10_100, 0, Some(400), false),
            // Already late: due now.
            (BlockPacing::Every(ms(500)), 10_000, 12_000, 7, Some(7), false),
            // A parent stamped ahead of this clock: the wait includes the difference.
            (BlockPacing::Every(ms(500)), 10_000, 9_900, 0, Some(600), false),
        ];
        for (index, (pacing, parent, wall, now, deadline, on_ready)) in
            cases.into_iter().enumerate()
        {
            let build = PendingBuild::new(pacing, (3, 1), ms(now), parent, wall);
            assert_eq!(build.deadline, deadline.map(ms), "case {index}");
            assert_eq!(build.on_ready, on_ready, "case {index}");
            assert_eq!(build.not_before, ms(now), "case {index}");
            assert_eq!((build.height, build.round), (3, 1), "case {index}");
        }
    }

    #[test]
    fn a_retry_waits_and_keeps_the_rest() {
        let build = PendingBuild::new(BlockPacing::Every(ms(500)), (3, 0), ms(0), 0, 0);
        let again = build.retry(ms(100), ms(50));
        assert_eq!(again.not_before, ms(150));
        assert_eq!(again.deadline, build.deadline);
    }
}
