//! Block work off the loop. Building, checking and committing a block execute contracts and
//! wait for the disk; the engine queues them here as jobs, one runs at a time on the host's
//! blocking pool (they all write through the chain's one writer), and each result comes back
//! to the loop as an input. So timers, votes and sync answers keep flowing while a block
//! executes.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use altan_consensus::Input;
use altan_primitives::{Block, Certificate, Hash, Height};
use tracing::{debug, error, info, warn};

use super::host::{Host, Network, TaskFailed};
use super::pacing::{FIRST_BUILD_RETRY, MAX_BUILD_RETRY, PendingBuild};
use super::wire::BlockGossip;
use super::{Engine, EngineError, TARGET};
use crate::chain::{BlockRejection, Chain, ChainError, ExecutedBlock};
use crate::network::Topic;

/// Block work to do.
#[derive(Debug)]
pub enum Job {
    /// Build the block the machine asked this node to propose.
    Build(PendingBuild),
    /// Execute a proposed block on the head, for the machine's verdict.
    Check(Box<Block>),
    /// Commit a decided block, executing it first if it was not.
    Commit {
        /// The decision.
        certificate: Certificate,
        /// The block, executed on the head or not yet.
        block: Decided,
    },
}

/// A decided block as the engine holds it.
#[derive(Debug)]
pub enum Decided {
    /// Executed on the head (built here or checked).
    Executed(Arc<ExecutedBlock>),
    /// Not executed yet.
    Block(Box<Block>),
}

impl Job {
    fn height(&self) -> Height {
        match self {
            Job::Build(build) => build.height,
            Job::Check(block) => block.header.height,
            Job::Commit { certificate, .. } => certificate.height,
        }
    }
}

/// What a job gave.
#[derive(Debug)]
pub enum Done {
    /// A block was built (or building failed).
    Built(PendingBuild, Result<ExecutedBlock, ChainError>),
    /// A proposed block was executed, or refused.
    Checked(Height, Hash, Result<ExecutedBlock, BlockRejection>),
    /// A decided block was committed, or could not be.
    Committed(Certificate, Result<Committed, ChainError>),
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// The block is the new head.
    Now,
    /// The chain had passed that height already (sync imported it meanwhile).
    Already,
    /// The decided block did not execute: more than 2/3 of stake decided it, so this node
    /// failed, and sync will bring the height.
    Unexecutable,
}

/// The queue of jobs; one runs at a time.
#[derive(Debug, Default)]
pub struct Jobs {
    queue: VecDeque<Job>,
    running: Option<Running>,
    /// Blocks queued or running for a check, so that one is not executed twice.
    checking: HashSet<Hash>,
}

/// What the running job is, for the loop's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Running {
    /// A build or a check: the machine may go on meanwhile.
    Executing,
    /// A commit: the height ends with it, so nothing of the next is taken until it is done.
    Committing,
}

impl Jobs {
    /// Queues a job. A block already queued or running for a check is not queued again.
    pub fn push(&mut self, job: Job) {
        if let Job::Check(block) = &job
            && !self.checking.insert(block.hash())
        {
            return;
        }
        self.queue.push_back(job);
    }

    /// Whether a block is queued or running for a check.
    pub fn is_checking(&self, hash: &Hash) -> bool {
        self.checking.contains(hash)
    }

    /// The next job to start, if none is running.
    pub fn start(&mut self) -> Option<Job> {
        if self.running.is_some() {
            return None;
        }
        let job = self.queue.pop_front()?;
        self.running = Some(match job {
            Job::Commit { .. } => Running::Committing,
            Job::Build(_) | Job::Check(_) => Running::Executing,
        });
        Some(job)
    }

    /// Whether a commit is queued or running: the height is decided, and nothing of the next
    /// is taken until the commit is done.
    pub fn committing(&self) -> bool {
        self.running == Some(Running::Committing)
            || self.queue.iter().any(|job| matches!(job, Job::Commit { .. }))
    }

    /// The running job finished with `done`.
    pub fn finished(&mut self, done: &Done) {
        self.running = None;
        if let Done::Checked(_, hash, _) = done {
            self.checking.remove(hash);
        }
    }

    /// Height `height` starts: queued jobs of lower heights are dropped.
    pub fn start_height(&mut self, height: Height) {
        let checking = &mut self.checking;
        self.queue.retain(|job| {
            let keep = job.height() >= height;
            if let (false, Job::Check(block)) = (keep, job) {
                checking.remove(&block.hash());
            }
            keep
        });
    }
}

/// Does a job on the chain (on the blocking pool); `now_ms` is the wall clock for timestamps.
pub fn run(chain: &Chain, job: Job, now_ms: u64) -> Done {
    match job {
        Job::Build(build) => Done::Built(build, chain.build_block(now_ms)),
        Job::Check(block) => {
            let (height, hash) = (block.header.height, block.hash());
            Done::Checked(height, hash, chain.execute_block(*block, Some(now_ms)))
        }
        Job::Commit { certificate, block } => {
            let result = commit(chain, &certificate, block);
            Done::Committed(certificate, result)
        }
    }
}

fn commit(
    chain: &Chain,
    certificate: &Certificate,
    block: Decided,
) -> Result<Committed, ChainError> {
    if chain.head().height >= certificate.height {
        return Ok(Committed::Already);
    }
    let executed = match block {
        Decided::Executed(executed) => executed,
        Decided::Block(block) => match chain.execute_block(*block, None) {
            Ok(executed) => Arc::new(executed),
            Err(BlockRejection::Internal(error)) => return Err(error),
            Err(BlockRejection::Invalid(reason)) => {
                error!(target: TARGET, height = certificate.height, %reason,
                    "cannot execute a decided block");
                return Ok(Committed::Unexecutable);
            }
            Err(BlockRejection::NotNext { .. }) => return Ok(Committed::Already),
        },
    };
    chain.commit_executed(&executed, Some(certificate.clone()))?;
    Ok(Committed::Now)
}

impl<H: Host, N: Network> Engine<H, N> {
    /// Starts the next queued job if none is running; its result comes back on `done`.
    pub(super) fn start_job(&mut self) {
        let Some(mut job) = self.jobs.start() else { return };
        // A block checked since its commit was queued need not execute again.
        if let Job::Commit { certificate, block: block @ Decided::Block(_) } = &mut job
            && let Some(executed) = self.blocks.executed(&certificate.block_hash)
        {
            *block = Decided::Executed(Arc::clone(executed));
        }
        let chain = Arc::clone(&self.chain);
        let now_ms = self.host.wall_ms();
        let task = self.host.run_blocking(move || run(&chain, job, now_ms));
        let done = self.jobs_done.clone();
        self.host.spawn(async move {
            let _ = done.send(task.await).await;
        });
    }

    /// Queues the build of the pending block, if the machine is still in its round.
    pub(super) fn build(&mut self) {
        let Some(build) = self.building.take() else { return };
        if self.machine.status().map(|s| (s.height, s.round)) == Some((build.height, build.round)) {
            self.jobs.push(Job::Build(build));
        }
    }

    /// Queues the execution of a proposed block for the machine's verdict; a block already
    /// executed gets its verdict at once, and one that has not arrived is checked when it does.
    pub(super) fn check(&mut self, height: Height, block_hash: Hash) {
        if self.blocks.executed(&block_hash).is_some() {
            self.queue.push_back(Input::BlockVerdict { height, block_hash, valid: true });
            return;
        }
        if self.jobs.is_checking(&block_hash) {
            return;
        }
        let Some(block) = self.blocks.get(&block_hash).cloned() else {
            self.blocks.wait_for(block_hash);
            return;
        };
        self.blocks.arrived(&block_hash);
        self.jobs.push(Job::Check(Box::new(block)));
    }

    /// Queues the commit of a decided block; one that never arrived is fetched by sync.
    pub(super) fn commit(&mut self, certificate: Certificate) {
        let hash = certificate.block_hash;
        let block = if let Some(executed) = self.blocks.executed(&hash) {
            Decided::Executed(Arc::clone(executed))
        } else if let Some(block) = self.blocks.get(&hash) {
            Decided::Block(Box::new(block.clone()))
        } else {
            info!(target: TARGET, height = certificate.height, %hash,
                "decided a block this node does not have; fetching it");
            self.pending_commit = Some(certificate);
            let request = self.sync.ask_any(self.chain.head().height);
            self.send_request(request);
            return;
        };
        self.jobs.push(Job::Commit { certificate, block });
    }

    /// Takes a job's result, then feeds what it leads to.
    pub(super) async fn on_job_done(
        &mut self,
        done: Result<Done, TaskFailed>,
    ) -> Result<(), EngineError> {
        let done = done?;
        self.jobs.finished(&done);
        match done {
            Done::Built(build, result) => self.built(build, result).await?,
            Done::Checked(height, hash, result) => self.checked(height, hash, result)?,
            Done::Committed(certificate, result) => self.committed(certificate, result?).await,
        }
        self.drain().await?;
        self.report_status();
        Ok(())
    }

    /// Proposes a built block. A failure to build is not the transactions' fault (the disk, or
    /// resources the machine ran short of): the block is tried again after a growing delay, so
    /// that a failure never loses it nor leaves ready transactions waiting for another to arrive.
    async fn built(
        &mut self,
        build: PendingBuild,
        result: Result<ExecutedBlock, ChainError>,
    ) -> Result<(), EngineError> {
        let executed = match result {
            Ok(executed) => executed,
            Err(error) => {
                let retry_ms = u64::try_from(self.build_retry.as_millis()).unwrap_or(u64::MAX);
                error!(target: TARGET, height = build.height, %error, retry_ms,
                    "cannot build a block; trying again");
                self.building = Some(build.retry(self.host.now(), self.build_retry));
                self.build_retry = self.build_retry.saturating_mul(2).min(MAX_BUILD_RETRY);
                return Ok(());
            }
        };
        self.build_retry = FIRST_BUILD_RETRY;
        if executed.block.header.parent_hash != self.chain.head().hash() {
            debug!(target: TARGET, height = build.height, "the head moved while building");
            return Ok(());
        }
        let block_hash = executed.hash;
        self.blocks.add_executed(executed);
        let input = Input::BlockBuilt { height: build.height, round: build.round, block_hash };
        self.feed(input, "built block").await
    }

    /// Queues the machine's verdict on a checked block.
    fn checked(
        &mut self,
        height: Height,
        block_hash: Hash,
        result: Result<ExecutedBlock, BlockRejection>,
    ) -> Result<(), EngineError> {
        let valid = match result {
            Ok(executed) if executed.block.header.parent_hash != self.chain.head().hash() => {
                debug!(target: TARGET, height, "the head moved while checking");
                return Ok(());
            }
            Ok(executed) => {
                self.blocks.add_executed(executed);
                true
            }
            Err(BlockRejection::Invalid(reason)) => {
                warn!(target: TARGET, height, %block_hash, %reason, "invalid proposed block");
                self.chain.metrics().invalid_peer_messages.inc();
                false
            }
            Err(BlockRejection::NotNext { height, head }) => {
                debug!(target: TARGET, height, head, "a proposed block does not follow the head");
                return Ok(());
            }
            Err(BlockRejection::Internal(error)) => return Err(error.into()),
        };
        self.queue.push_back(Input::BlockVerdict { height, block_hash, valid });
        Ok(())
    }

    /// After a commit: gossips the certificate, and the next height starts once the actions of
    /// this one are done (see `drain`).
    async fn committed(&mut self, certificate: Certificate, committed: Committed) {
        match committed {
            Committed::Now => {
                self.sync.progressed(certificate.height, self.host.now());
                self.publish(Topic::Blocks, BlockGossip::Committed(certificate)).await;
                self.committed = true;
            }
            Committed::Already => self.committed = true,
            // The height is found again by sync once nothing moves for a while.
            Committed::Unexecutable => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::blocks::tests::block;

    fn build(height: Height) -> Job {
        Job::Build(PendingBuild {
            height,
            round: 0,
            not_before: Duration::ZERO,
            deadline: None,
            on_ready: true,
        })
    }

    fn commit(height: Height) -> Job {
        let certificate =
            Certificate { height, round: 0, block_hash: Hash::ZERO, signatures: Vec::new() };
        Job::Commit { certificate, block: Decided::Block(Box::new(block(height, 0))) }
    }

    fn checked(b: &Block) -> Done {
        Done::Checked(
            b.header.height,
            b.hash(),
            Err(BlockRejection::NotNext { height: 0, head: 0 }),
        )
    }

    #[test]
    fn one_job_runs_at_a_time_in_the_order_queued() {
        let mut jobs = Jobs::default();
        jobs.push(build(5));
        jobs.push(commit(5));
        assert!(matches!(jobs.start(), Some(Job::Build(_))));
        assert!(jobs.committing(), "a commit is queued");
        assert!(jobs.start().is_none(), "the build is running");
        let failed = Done::Built(
            PendingBuild {
                height: 5,
                round: 0,
                not_before: Duration::ZERO,
                deadline: None,
                on_ready: true,
            },
            Err(ChainError::Corrupt("test".into())),
        );
        jobs.finished(&failed);
        assert!(matches!(jobs.start(), Some(Job::Commit { .. })));
        assert!(jobs.committing(), "a commit is running");
        let done = Done::Committed(
            Certificate { height: 5, round: 0, block_hash: Hash::ZERO, signatures: Vec::new() },
            Ok(Committed::Now),
        );
        jobs.finished(&done);
        assert!(!jobs.committing());
    }

    #[test]
    fn a_block_is_checked_once_until_its_check_is_done() {
        let mut jobs = Jobs::default();
        let b = block(5, 1);
        jobs.push(Job::Check(Box::new(b.clone())));
        jobs.push(Job::Check(Box::new(b.clone())));
        assert!(jobs.is_checking(&b.hash()));
        assert!(matches!(jobs.start(), Some(Job::Check(_))));
        jobs.finished(&checked(&b));
        assert!(jobs.start().is_none(), "queued once");
        assert!(!jobs.is_checking(&b.hash()));
        jobs.push(Job::Check(Box::new(b)));
        assert!(jobs.start().is_some(), "checked again once the first is done");
    }

    #[test]
    fn a_new_height_drops_the_queued_jobs_below_it() {
        let mut jobs = Jobs::default();
        let (old, new) = (block(4, 1), block(5, 1));
        jobs.push(Job::Check(Box::new(old.clone())));
        jobs.push(Job::Check(Box::new(new.clone())));
        jobs.push(build(4));
        jobs.start_height(5);
        assert!(!jobs.is_checking(&old.hash()));
        assert!(jobs.is_checking(&new.hash()));
        assert!(matches!(jobs.start(), Some(Job::Check(b)) if b.header.height == 5));
        jobs.finished(&checked(&new));
        assert!(jobs.start().is_none());
    }
}
