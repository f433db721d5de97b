//! The consensus machine's timeouts, in the host's time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use altan_consensus::Timeout;
use tracing::warn;

/// Timeouts held at once; the machine asks for a few per round.
pub const MAX_TIMERS: usize = 1_024;

/// Pending timeouts, earliest first; two due at one time fire in the order they were set.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Duration, u64, Timeout)>>,
    sequence: u64,
}

impl Timers {
    /// Sets `timeout` to fire `after` from `now`. One too far away to represent never fires;
    /// beyond [`MAX_TIMERS`] the new one is dropped.
    pub fn set(&mut self, now: Duration, timeout: Timeout, after: Duration) {
        if self.heap.len() >= MAX_TIMERS {
            warn!(target: super::TARGET, "too many timeouts pending; dropping one");
            return;
        }
        if let Some(at) = now.checked_add(after) {
            self.sequence = self.sequence.wrapping_add(1);
            self.heap.push(Reverse((at, self.sequence, timeout)));
        }
    }

    /// When the earliest fires.
    pub fn next(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse((at, ..))| *at)
    }

    /// Takes the earliest timeout if it is due at `now`.
    pub fn pop_due(&mut self, now: Duration) -> Option<Timeout> {
        let Reverse((at, _, timeout)) = *self.heap.peek()?;
        if at > now {
            return None;
        }
        self.heap.pop();
        Some(timeout)
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use altan_consensus::TimeoutKind;

    use super::*;

    fn timeout(height: u64, round: u32) -> Timeout {
        Timeout { height, round, kind: TimeoutKind::Propose }
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn timeouts_fire_in_time_order_then_in_the_order_set() {
        let mut timers = Timers::default();
        timers.set(ms(0), timeout(1, 0), ms(30));
        timers.set(ms(0), timeout(1, 1), ms(10));
        timers.set(ms(5), timeout(1, 2), ms(5));
        assert_eq!(timers.next(), Some(ms(10)));
        assert_eq!(timers.pop_due(ms(9)), None);
        assert_eq!(timers.pop_due(ms(10)), Some(timeout(1, 1)));
        assert_eq!(timers.pop_due(ms(10)), Some(timeout(1, 2)));
        assert_eq!(timers.pop_due(ms(29)), None);
        assert_eq!(timers.pop_due(ms(100)), Some(timeout(1, 0)));
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn a_timeout_beyond_representable_time_never_fires() {
        let mut timers = Timers::default();
        timers.set(ms(1), timeout(1, 0), Duration::MAX);
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn the_number_held_is_bounded() {
        let mut timers = Timers::default();
        for round in 0..=MAX_TIMERS as u32 {
            timers.set(ms(0), timeout(1, round), ms(1));
        }
        let mut fired = 0;
        while timers.pop_due(ms(1)).is_some() {
            fired += 1;
        }
        assert_eq!(fired, MAX_TIMERS);
    }
}
