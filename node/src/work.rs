//! Bounded pools for free work: what any RPC client can ask for without paying (contract
//! queries, dry runs, gas estimates, heavy reads).
//!
//! The rule they enforce: free work never competes with building, checking or committing blocks.
//! So each kind of free work runs on a [`WorkPool`] of its own threads, never on tokio's blocking
//! pool (where block execution runs) nor on jsonrpsee's async threads; the threads run at a lower
//! scheduling priority than the rest of the node, so that on a loaded machine the CPU goes to
//! blocks first; and a pool takes at most `threads + queue` requests at once. One more is
//! refused at once with [`Busy`], and a request that waited `max_wait` for a thread is refused
//! rather than served late, so a flood is answered quickly and cheaply instead of piling up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};

const TARGET: &str = "altan::work";

/// How large a pool is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Requests served at once (each on a thread of its own).
    pub threads: usize,
    /// Requests that may wait for a thread; one more is refused at once.
    pub queue: usize,
    /// The longest a request waits for a thread before it is refused.
    pub max_wait: Duration,
}

/// Why a pool refused a request. Nothing was done; the caller may try again later.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Busy {
    /// Every thread is working and the queue is full.
    #[error(
        "the node is busy: {pool} requests fill its {threads} threads and a queue of {queue}; try again later"
    )]
    Full {
        /// The pool's name.
        pool: &'static str,
        /// Its threads.
        threads: usize,
        /// Its queue.
        queue: usize,
    },
    /// The request waited for a thread longer than the pool allows.
    #[error(
        "the node is busy: the request waited {waited_ms} ms for one of the {pool} threads (the most is {max_wait_ms} ms); try again later"
    )]
    TimedOut {
        /// The pool's name.
        pool: &'static str,
        /// How long it waited.
        waited_ms: u64,
        /// The pool's `max_wait`.
        max_wait_ms: u64,
    },
    /// The pool stopped before it ran the request (the node is shutting down).
    #[error("the {pool} pool stopped")]
    Stopped {
        /// The pool's name.
        pool: &'static str,
    },
}

/// A fixed set of low-priority threads with a bounded queue in front.
pub struct WorkPool {
    name: &'static str,
    config: PoolConfig,
    threads: rayon::ThreadPool,
    /// One permit per request in the pool, running or queued.
    admitted: Arc<Semaphore>,
}

impl std::fmt::Debug for WorkPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkPool").field("name", &self.name).field("config", &self.config).finish()
    }
}

impl WorkPool {
    /// Starts the pool's threads (at least one).
    pub fn new(name: &'static str, config: PoolConfig) -> std::io::Result<WorkPool> {
        let config = PoolConfig { threads: config.threads.max(1), ..config };
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads)
            .thread_name(move |i| format!("altan-{name}-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .map_err(std::io::Error::other)?;
        let admitted = Arc::new(Semaphore::new(config.threads.saturating_add(config.queue)));
        Ok(WorkPool { name, config, threads, admitted })
    }

    /// The pool's size.
    pub fn config(&self) -> PoolConfig {
        self.config
    }

    /// Runs `work` on one of the pool's threads and returns its result, or refuses it when the
    /// pool is full or no thread came free within `max_wait`. If the caller stops waiting (the
    /// client left), work that has not started yet is skipped.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = Arc::clone(&self.admitted).try_acquire_owned().map_err(|_| Busy::Full {
            pool: self.name,
            threads: self.config.threads,
            queue: self.config.queue,
        })?;
        let (sender, receiver) = oneshot::channel();
        let queued_at = Instant::now();
        let (pool, max_wait) = (self.name, self.config.max_wait);
        self.threads.spawn(move || {
            let _permit = permit;
            let waited = queued_at.elapsed();
            if waited > max_wait {
                let _ = sender.send(Err(Busy::TimedOut {
                    pool,
                    waited_ms: millis(waited),
                    max_wait_ms: millis(max_wait),
                }));
                return;
            }
            if sender.is_closed() {
                tracing::debug!(target: TARGET, pool, "request dropped before it ran");
                return;
            }
            let _ = sender.send(Ok(work()));
        });
        receiver.await.unwrap_or(Err(Busy::Stopped { pool: self.name }))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// How much nicer free-work threads are than the thread that started them: the scheduler gives a
/// thread about ten times the CPU of one 10 steps nicer, so a block being built or checked wins
/// a contended core.
#[cfg(target_os = "linux")]
const FREE_WORK_NICENESS: i32 = 10;
/// The nicest a thread can be.
#[cfg(target_os = "linux")]
const MAX_NICENESS: i32 = 19;

/// The calling thread's niceness. On Linux a thread is a task of its own, and
/// `getpriority`/`setpriority(PRIO_PROCESS, 0, ..)` apply to the calling thread only.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn niceness() -> i32 {
    // SAFETY: getpriority takes plain integers and touches no memory of ours. (-1 is also a
    // valid niceness; misreading an error as -1 only makes the threads a little less nice.)
    unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
}

/// Lowers the calling thread's scheduling priority by [`FREE_WORK_NICENESS`].
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn lower_priority() {
    let nicer = niceness().saturating_add(FREE_WORK_NICENESS).min(MAX_NICENESS);
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nicer) };
    if result != 0 {
        tracing::debug!(target: TARGET, error = %std::io::Error::last_os_error(), "could not lower a free-work thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_priority() {}

#[cfg(test)]
mod tests {
    use std::sync::Barrier;

    use super::*;

    fn pool(threads: usize, queue: usize, max_wait: Duration) -> WorkPool {
        WorkPool::new("test", PoolConfig { threads, queue, max_wait }).unwrap()
    }

    #[tokio::test]
    async fn runs_work_and_returns_its_result() {
        let pool = pool(2, 4, Duration::from_secs(5));
        assert_eq!(pool.run(|| 6 * 7).await, Ok(42));
        let name = pool.run(|| std::thread::current().name().map(String::from)).await.unwrap();
        assert!(name.unwrap().starts_with("altan-test-"));
    }

    #[tokio::test]
    async fn a_full_pool_refuses_at_once_and_serves_again_when_it_drains() {
        let pool = Arc::new(pool(1, 1, Duration::from_secs(30)));
        let gate = Arc::new(Barrier::new(2));
        // One request holds the thread until the gate opens, one waits in the queue.
        let held = {
            let (pool, gate) = (Arc::clone(&pool), Arc::clone(&gate));
            tokio::spawn(async move { pool.run(move || gate.wait()).await.map(|_| 1) })
        };
        let queued = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.run(|| 2).await })
        };
        while pool.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        let refused = pool.run(|| 3).await;
        assert_eq!(refused, Err(Busy::Full { pool: "test", threads: 1, queue: 1 }));
        assert!(started.elapsed() < Duration::from_secs(1), "a refusal must not wait");
        gate.wait();
        assert_eq!(held.await.unwrap(), Ok(1));
        assert_eq!(queued.await.unwrap(), Ok(2));
        assert_eq!(pool.run(|| 4).await, Ok(4));
    }

    #[tokio::test]
    async fn a_request_that_waited_too_long_is_refused_not_run() {
        let pool = Arc::new(pool(1, 4, Duration::from_millis(50)));
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let slow = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                pool.run(|| std::thread::sleep(Duration::from_millis(300))).await
            })
        };
        while pool.admitted.available_permits() == 5 {
            tokio::task::yield_now().await;
        }
        let flag = Arc::clone(&ran);
        let late = pool.run(move || flag.store(true, std::sync::atomic::Ordering::SeqCst)).await;
        assert!(
            matches!(late, Err(Busy::TimedOut { pool: "test", max_wait_ms: 50, .. })),
            "{late:?}"
        );
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "late work must not run");
        assert_eq!(slow.await.unwrap(), Ok(()));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn threads_run_below_the_default_priority() {
        let ours = niceness();
        let pool = pool(1, 0, Duration::from_secs(5));
        let theirs = pool.run(niceness).await.unwrap();
        assert_eq!(theirs, ours.saturating_add(FREE_WORK_NICENESS).min(MAX_NICENESS));
    }
}
