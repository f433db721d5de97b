//! Altan's BFT consensus: Tendermint ("The latest gossip on BFT consensus", Buchman, Kwon and
//! Milosevic, 2018) with stake-weighted leaders, as a pure state machine, and the deterministic
//! simulation that tests it. Why Tendermint, and why it is safe, is in
//! `docs/adr/0003-consensus.md`.
//!
//! # Shape
//!
//! [`Consensus`] is a transition function: the host feeds it one [`Input`] at a time and performs
//! the [`Action`]s it returns, in order. It does no I/O, reads no clock and draws no random
//! numbers, so the same inputs always give the same actions; the node (issue #6) and the
//! simulator in [`sim`] drive the same code. It holds the validator's consensus key and signs
//! inside (k256 signatures are deterministic, RFC 6979).
//!
//! # Driving it from a node
//!
//! 1. Create it with [`Consensus::new`] (config, chain id, consensus key).
//! 2. Feed [`Input::StartHeight`] with a [`NewHeight`]: the height after the last final block,
//!    the validator set of its epoch, and the epoch's leader seed (the hash of the last block
//!    of the previous epoch, the genesis hash in epoch 0), both read from the chain. After a
//!    restart, pass in `restored` the messages persisted for that height.
//! 3. Feed what arrives: [`Input::Proposal`] and [`Input::Vote`] from gossip (the machine checks
//!    signatures, membership, chain, height and round itself; a refused message returns an
//!    [`InputError`], whose [`InputError::is_misbehaviour`] says whether to penalize the peer),
//!    [`Input::Certificate`] from sync, [`Input::Timeout`] when a scheduled timeout fires,
//!    [`Input::BlockBuilt`] and [`Input::BlockVerdict`] when the host answers a request.
//! 4. Perform the actions, in order (below).
//! 5. Read [`Consensus::status`] (height, round, step, lock) and [`Consensus::leaders`] for logs,
//!    metrics and RPC.
//!
//! The actions:
//! - [`Action::Persist`]: write the message durably *before* the next action (it is always
//!   followed by the [`Action::Broadcast`] of the same message). This, with the machine's
//!   own record of what it signed, is what keeps a validator from ever signing two
//!   different messages for one (height, round, step), even across a crash.
//! - [`Action::Broadcast`]: gossip the message. Usually one this validator signed; with a
//!   re-proposal and on rebroadcast also other validators' prevotes (the proof of lock that
//!   others need to accept the re-proposal).
//! - [`Action::ScheduleTimeout`]: feed [`Input::Timeout`] back after the duration.
//! - [`Action::BuildBlock`] / [`Action::CheckBlock`]: build a block on the last final one,
//!   or obtain a block by hash (from the proposal's gossip or from peers; it may be a block
//!   that more than 2/3 prevoted in a round whose proposal this node never saw) and execute
//!   it, and answer.
//! - [`Action::Commit`]: apply the block with its [`altan_primitives::Certificate`] (which
//!   verifies with `Certificate::verify` against the epoch's validator set), then feed
//!   [`Input::StartHeight`] for the next height.
//! - [`Action::ReportEvidence`]: submit the [`altan_primitives::Evidence`] to the chain.
//!
//! Messages for the next height are buffered (up to [`Config::max_pending_messages`]) and
//! replayed when it starts; messages further ahead are refused with
//! [`InputError::FutureHeight`]. Catching up is the host's job: when it sees messages of later
//! heights and stays behind, it fetches the final blocks with their certificates (block sync)
//! and feeds the current height's certificate as [`Input::Certificate`] (or applies the blocks
//! and starts the height after them).
//!
//! The machine sends its own messages of the height again every
//! [`Config::rebroadcast_interval`] (with the proof of lock behind its valid value), because
//! Tendermint is only live if every honest message is eventually delivered. A gossip layer that
//! drops messages it has seen before (gossipsub's message-id cache) must let these repeats
//! through, for example by sending them to peers directly.
//!
//! Signatures are recovered through a [`Verifier`]; [`Consensus::new`] uses [`Recover`] (k256).
//! A host that has already recovered a message's signer (say, in gossip validation) can pass a
//! verifier that remembers results, as the simulator does.
//!
//! # Restart
//!
//! The host keeps every message of the current height that the machine asked it to persist,
//! and after a restart passes them in [`NewHeight::restored`]. The machine resumes in the latest
//! round it signed in, at the step after its last message there, with its lock (its last
//! precommit for a block), sends those messages again, and never signs a different message for
//! a step it already signed. Drop a height's messages only once its block is durably committed:
//! a validator restarted at a height with its messages lost could sign again differently.
//!
//! # Leader schedule
//!
//! [`LeaderSchedule::new`] with a validator set and seed gives [`LeaderSchedule::leader`] for
//! one (height, round) and [`LeaderSchedule::schedule`] for a range of heights (for RPC).
//!
//! # Bounds
//!
//! Per height the machine keeps at most one proposal per round and, per round and vote kind, one
//! vote per validator and value for at most [`MAX_VALUES_PER_VOTER`] values (an honest validator
//! has one), for rounds within [`Config::max_round_lookback`] behind and
//! [`Config::max_round_lookahead`] ahead of the current one (plus the lock's and the valid
//! value's rounds); the same for the previous height, kept to catch late equivocation; and at
//! most [`Config::max_pending_messages`] messages for the next height.
//!
//! # Simulation
//!
//! [`sim`] runs validators on a simulated network with virtual time, seeded: delays, drops,
//! reordering, duplication, partitions, crashes with restarts, and byzantine validators. The
//! tests run a thousand seeds; for a hundred thousand:
//!
//! ```text
//! cargo run --release -p altan-consensus --example simulate -- --seeds 100000
//! ```
//!
//! A failing seed is printed with the command that replays it
//! (`--seed <seed> --verbose`). The finality latency report is
//! `cargo run --release -p altan-consensus --example latency`.

// Pure: no clocks, timers, tasks or thread-local randomness (clippy.toml).
#![warn(clippy::disallowed_methods, clippy::disallowed_types)]
extern crate alloc;

mod config;
mod error;
mod leader;
mod machine;
mod message;
pub mod sim;
mod verify;
mod votes;

pub use config::Config;
pub use error::{InputError, ValidatorSetError};
pub use leader::{LeaderSchedule, MAX_SCHEDULE_SPAN, ScheduleSpanError, ScheduledLeader};
pub use machine::{Action, Consensus, Input, NewHeight, RoundStep, Status, Timeout, TimeoutKind};
pub use message::{SignedMessage, Step};
pub use verify::{Recover, Verifier};
pub use votes::MAX_VALUES_PER_VOTER;
