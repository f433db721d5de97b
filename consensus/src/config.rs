//! Timeouts and bounds: every duration the machine asks for and every limit on what it stores.

use core::time::Duration;

use crate::TimeoutKind;

/// The machine's configuration. Every validator of a chain should use the same timeouts (they
/// are part of the liveness argument, not of safety); the bounds are local.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How long a validator waits for the round's proposal in round 0.
    pub timeout_propose: Duration,
    /// How much longer it waits for a proposal in each further round.
    pub timeout_propose_delta: Duration,
    /// How long it waits, after seeing prevotes from more than 2/3 of stake for different
    /// values, before precommitting nil, in round 0.
    pub timeout_prevote: Duration,
    /// How much longer it waits for prevotes in each further round.
    pub timeout_prevote_delta: Duration,
    /// How long it waits, after seeing precommits from more than 2/3 of stake for different
    /// values, before moving to the next round, in round 0.
    pub timeout_precommit: Duration,
    /// How much longer it waits for precommits in each further round.
    pub timeout_precommit_delta: Duration,
    /// How often a validator sends its current round's messages again while the round lasts, so
    /// that messages lost by the network are eventually delivered (Tendermint assumes gossip
    /// eventually delivers every message; this is how the machine makes it so).
    pub rebroadcast_interval: Duration,
    /// Messages for rounds more than this many rounds ahead of the current one are refused.
    pub max_round_lookahead: u32,
    /// Messages for rounds more than this many rounds behind the current one are refused and
    /// such rounds are forgotten (except the rounds of the lock and of the valid value).
    pub max_round_lookback: u32,
    /// At most this many messages for the next height are kept until that height starts.
    pub max_pending_messages: usize,
}

impl Config {
    /// Timeouts for a network whose messages arrive within about `delay`: proposals get 12
    /// delays (a block must be built and checked), votes 4, and each round adds 2 delays more
    /// to each, so rounds grow until they outlast any finite delay.
    pub fn for_message_delay(delay: Duration) -> Config {
        Config {
            timeout_propose: delay.saturating_mul(12),
            timeout_propose_delta: delay.saturating_mul(2),
            timeout_prevote: delay.saturating_mul(4),
            timeout_prevote_delta: delay.saturating_mul(2),
            timeout_precommit: delay.saturating_mul(4),
            timeout_precommit_delta: delay.saturating_mul(2),
            rebroadcast_interval: delay.saturating_mul(10),
            max_round_lookahead: 16,
            max_round_lookback: 16,
            max_pending_messages: 4_096,
        }
    }

    /// The duration of a timeout of `kind` in `round`: the base plus `round` times the delta.
    pub fn timeout(&self, kind: TimeoutKind, round: u32) -> Duration {
        let (base, delta) = match kind {
            TimeoutKind::Propose => (self.timeout_propose, self.timeout_propose_delta),
            TimeoutKind::Prevote => (self.timeout_prevote, self.timeout_prevote_delta),
            TimeoutKind::Precommit => (self.timeout_precommit, self.timeout_precommit_delta),
            TimeoutKind::Rebroadcast => return self.rebroadcast_interval,
        };
        base.saturating_add(delta.saturating_mul(round))
    }
}

impl Default for Config {
    /// Timeouts for links of up to about 250 ms: a 3 s proposal timeout and 1 s vote timeouts in
    /// round 0, growing by 0.5 s a round.
    fn default() -> Config {
        Config::for_message_delay(Duration::from_millis(250))
    }
}
