//! The engine's [`Host`] on commonware's deterministic executor: virtual time, seeded
//! randomness, tasks supervised by the node's root task (aborting it, a crash, ends them all),
//! and blocking work run inline and charged in virtual time. Each node's clock may run fast or
//! slow and its wall clock may be off, by amounts drawn from the seed.
//!
//! This file is the one place the simulation meets commonware's runtime (ADR 0005).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use altan_node::engine::host::{Host, TaskFailed};
use commonware_runtime::deterministic::Context;
use commonware_runtime::{Clock, Spawner, Supervisor};
use rand_core::TryRng;

/// Parts per million.
const PPM: i128 = 1_000_000;

/// How a node's clocks differ from true (virtual) time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skew {
    /// How far its wall clock is ahead (or behind, negative), in milliseconds.
    pub wall_offset_ms: i64,
    /// How much faster (or slower) its clocks run, in parts per million.
    pub rate_ppm: i32,
}

/// What blocking work costs in virtual time. The work itself runs at once on the executor's
/// thread; its real duration never shows, so a run is the same on any machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkCost {
    /// Charged for each piece of blocking work (building, checking or committing a block,
    /// reading the chain at the start of a height).
    pub per_job: Duration,
}

/// A sleep on the executor's clock, with the context's borrow erased (the executor's futures
/// are `'static` but name the borrow in their type).
type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Sleeps until `deadline` on the executor's clock.
pub fn sleep_until(context: &Context, deadline: SystemTime) -> Sleep {
    Box::pin(context.sleep_until(deadline))
}

/// Sleeps for `duration` on the executor's clock.
pub fn sleep(context: &Context, duration: Duration) -> Sleep {
    Box::pin(context.sleep(duration))
}

/// A true duration on a clock running `rate_ppm` fast (rounded down), or with `inverse` a
/// duration on such a clock in true time (rounded up), so that a sleep until a time on the
/// node's clock never wakes before the node's clock shows it: an early wake-up would be a timer
/// that is not yet due, slept on again with a deadline that has passed, for ever.
fn scale(duration: Duration, rate_ppm: i32, inverse: bool) -> Duration {
    let rate = PPM.saturating_add(i128::from(rate_ppm)).max(1);
    let nanos = i128::try_from(duration.as_nanos()).unwrap_or(i128::MAX);
    let scaled = if inverse {
        let numerator = nanos.saturating_mul(PPM);
        let rounds_up = numerator.checked_rem(rate).is_some_and(|rest| rest != 0);
        numerator.checked_div(rate).map(|q| q.saturating_add(i128::from(rounds_up)))
    } else {
        nanos.saturating_mul(rate).checked_div(PPM)
    };
    let scaled = u64::try_from(scaled.unwrap_or(0).max(0)).unwrap_or(u64::MAX);
    Duration::from_nanos(scaled)
}

/// A node's host in the simulation.
#[derive(Clone)]
pub struct SimHost {
    /// The node's root task's context: every task spawned here is a child of it.
    context: Arc<Context>,
    /// The virtual time this node's clock counts from.
    origin: SystemTime,
    skew: Skew,
    cost: WorkCost,
}

impl SimHost {
    /// A host for a node whose root task runs on `context`: its monotonic clock starts now,
    /// its wall clock is the executor's virtual time (which the simulation starts at a date)
    /// off by the skew.
    pub fn new(context: Context, skew: Skew, cost: WorkCost) -> SimHost {
        let origin = context.current();
        SimHost { context: Arc::new(context), origin, skew, cost }
    }

    fn elapsed(&self) -> Duration {
        self.context.current().duration_since(self.origin).unwrap_or_default()
    }

    fn scale(&self, duration: Duration, inverse: bool) -> Duration {
        scale(duration, self.skew.rate_ppm, inverse)
    }
}

impl Host for SimHost {
    fn now(&self) -> Duration {
        self.scale(self.elapsed(), false)
    }

    fn wall_ms(&self) -> u64 {
        let since_epoch = self.context.current().duration_since(UNIX_EPOCH).unwrap_or_default();
        let wall = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
        wall.saturating_add_signed(self.skew.wall_offset_ms)
    }

    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> + Send + 'static + use<> {
        // `at` is on the node's clock; the executor sleeps on true time.
        let deadline = self.origin.checked_add(self.scale(at, true));
        let sleep = deadline.map(|deadline| sleep_until(&self.context, deadline));
        async move {
            match sleep {
                Some(sleep) => sleep.await,
                None => std::future::pending().await,
            }
        }
    }

    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        // A child of this node's task: a crash (aborting that task) ends it too.
        drop(self.context.child("task").spawn(move |_| future));
    }

    fn run_blocking<T: Send + 'static, W: FnOnce() -> T + Send + 'static>(
        &self,
        work: W,
    ) -> impl Future<Output = Result<T, TaskFailed>> + Send + 'static + use<T, W> {
        let charge = sleep(&self.context, self.cost.per_job);
        async move {
            let done = work();
            charge.await;
            Ok(done)
        }
    }

    fn random(&self) -> u64 {
        let mut context = self.context.child("random");
        match context.try_next_u64() {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_on_a_skewed_clock_never_wakes_before_its_time() {
        for rate_ppm in [-2_000, -1, 0, 1, 999, 2_000] {
            for nanos in [0_u64, 1, 7, 999, 1_000_003, 123_456_789_011] {
                let at = Duration::from_nanos(nanos);
                let true_deadline = scale(at, rate_ppm, true);
                assert!(scale(true_deadline, rate_ppm, false) >= at, "{rate_ppm} ppm, {nanos} ns");
                // And not later than it must be: one nanosecond less would be early.
                if let Some(earlier) = true_deadline.checked_sub(Duration::from_nanos(1)) {
                    assert!(
                        scale(earlier, rate_ppm, false) < at || nanos == 0,
                        "{rate_ppm}, {nanos}"
                    );
                }
            }
        }
    }
}
