//! A small validator network for driving one machine by hand.

use altan_consensus::{Config, Consensus, Input, LeaderSchedule, NewHeight};
use altan_primitives::{
    Balance, ChainId, Hash, Height, Proposal, SecretKey, Validator, ValidatorSet, Vote, VoteKind,
    blake3,
};

pub const CHAIN: ChainId = 7;

/// The consensus key of validator `i`.
pub fn key(i: usize) -> SecretKey {
    SecretKey::from_bytes(&[u8::try_from(i).unwrap() + 0x31; 32]).unwrap()
}

/// A block hash named by a word.
pub fn block(name: &str) -> Hash {
    blake3(name.as_bytes())
}

pub struct Net {
    pub set: ValidatorSet,
    pub seed: Hash,
    pub leaders: LeaderSchedule,
}

impl Net {
    pub fn new(powers: &[Balance]) -> Net {
        let set = Net::set_of(powers);
        let seed = blake3(b"test seed");
        let leaders = LeaderSchedule::new(&set, seed).unwrap();
        Net { set, seed, leaders }
    }

    /// Validators `0..powers.len()` with these powers, usable or not.
    pub fn set_of(powers: &[Balance]) -> ValidatorSet {
        ValidatorSet {
            validators: powers
                .iter()
                .enumerate()
                .map(|(i, &power)| Validator {
                    address: key(i).address(),
                    consensus_key: key(i).public_key(),
                    power,
                })
                .collect(),
        }
    }

    /// Four validators of equal power: three make more than 2/3, two more than 1/3.
    pub fn four() -> Net {
        Net::new(&[10, 10, 10, 10])
    }

    pub fn config() -> Config {
        Config::for_message_delay(core::time::Duration::from_millis(100))
    }

    pub fn machine(&self, who: usize) -> Consensus {
        Consensus::new(Net::config(), CHAIN, key(who))
    }

    pub fn start(&self, height: Height) -> Input {
        Input::StartHeight(NewHeight {
            height,
            validators: self.set.clone(),
            seed: self.seed,
            restored: Vec::new(),
        })
    }

    pub fn leader(&self, height: Height, round: u32) -> usize {
        usize::from(self.leaders.leader(height, round))
    }

    /// The first height whose round-`round` leader is `who` and, if `then` is given, whose
    /// round-`round + 1` leader is `then`.
    pub fn height_led_by(&self, who: usize, round: u32, then: Option<usize>) -> Height {
        (1..)
            .find(|&h| {
                self.leader(h, round) == who && then.is_none_or(|t| self.leader(h, round + 1) == t)
            })
            .unwrap()
    }

    pub fn vote(
        &self,
        who: usize,
        height: Height,
        round: u32,
        kind: VoteKind,
        value: Option<Hash>,
    ) -> Input {
        let vote = Vote { chain_id: CHAIN, height, round, kind, block_hash: value };
        Input::Vote(vote.sign(&key(who)))
    }

    pub fn prevote(&self, who: usize, height: Height, round: u32, value: Option<Hash>) -> Input {
        self.vote(who, height, round, VoteKind::Prevote, value)
    }

    pub fn precommit(&self, who: usize, height: Height, round: u32, value: Option<Hash>) -> Input {
        self.vote(who, height, round, VoteKind::Precommit, value)
    }

    pub fn proposal(
        &self,
        who: usize,
        height: Height,
        round: u32,
        value: Hash,
        pol_round: Option<u32>,
    ) -> Input {
        let proposal = Proposal { chain_id: CHAIN, height, round, block_hash: value, pol_round };
        Input::Proposal(proposal.sign(&key(who)))
    }
}
