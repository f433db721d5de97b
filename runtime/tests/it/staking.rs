//! Native staking on a chain whose blocks carry real commit certificates and evidence: genesis,
//! the staking transactions and their failures, epochs and validator-set selection, rewards,
//! slashing, and property tests of supply conservation and determinism.

use std::collections::BTreeMap;
use std::sync::Arc;

use altan_primitives::{
    Action, Address, Balance, Block, Certificate, ChainSpec, CommitSignature, Evidence,
    ExecutionStatus, FailureReason, GenesisAccount, GenesisValidator, Hash, Header, PublicKey,
    Receipt, SecretKey, SignedTransaction, StakingAction, StakingFailure, StakingParams,
    Transaction, ValidatorSet, Vote, VoteKind, blake3,
};
use altan_runtime::exec::{BlockContext, BlockError, GenesisError, Runtime, intrinsic_gas};
use altan_runtime::gas;
use altan_runtime::staking::{
    self, ConsensusError, EvidenceRejection, REWARD_SCALE, Totals, UnbondingPool,
};
use altan_runtime::state::{Account, MemoryStore, State, StateKey, StateRead};
use altan_runtime::vm::VmConfig;
use parity_scale_codec::{Decode, Encode};
use proptest::prelude::*;

const CHAIN_ID: u64 = 9;
const GAS_PRICE: Balance = 1;
const FUNDS: Balance = 1_000_000_000_000;
const STAKE_GAS: u64 = 100_000;

/// Account keys: the same as the other tests' `key(i)`.
fn account(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i.saturating_add(1); 32]).expect("valid key")
}

/// Consensus keys, distinct from every account key.
fn consensus(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i.saturating_add(0x81); 32]).expect("valid key")
}

fn params() -> StakingParams {
    StakingParams {
        min_validator_stake: 1_000,
        max_validators: 3,
        unbonding_period: 12,
        evidence_max_age: 8,
        block_reward: 1_000_000,
        proposer_bonus_bps: 1_000,
        slash_fraction_bps: 1_000,
    }
}

/// Accounts 0..10 funded; genesis validators are accounts `i` with consensus keys `i` and the
/// given stakes and commissions.
fn spec(validators: &[(u8, Balance, u16)]) -> ChainSpec {
    ChainSpec {
        name: "staking".into(),
        chain_id: CHAIN_ID,
        genesis_time_ms: 1_700_000_000_000,
        block_gas_limit: 100_000_000,
        epoch_length: 4,
        accounts: (0..10)
            .map(|i| GenesisAccount { address: account(i).address(), balance: FUNDS })
            .collect(),
        validators: validators
            .iter()
            .map(|&(i, stake, commission_bps)| GenesisValidator {
                address: account(i).address(),
                consensus_key: consensus(i).public_key(),
                stake,
                commission_bps,
            })
            .collect(),
        staking: params(),
        min_gas_price: 0,
    }
}

/// Who signs the parent certificate of the next block.
#[derive(Clone, Debug)]
enum Signers {
    /// Every validator of the parent's epoch.
    All,
    /// These indices of the parent epoch's set.
    Only(Vec<u16>),
}

/// A chain that builds full blocks: headers with real roots, certificates signed by the
/// validators' consensus keys, and the evidence it is given.
struct Net {
    state: State<MemoryStore>,
    runtime: Runtime,
    height: u64,
    last_hash: Hash,
    keys: BTreeMap<PublicKey, SecretKey>,
    supply: Balance,
}

impl Net {
    fn new(spec: &ChainSpec) -> Net {
        let state = State::open(Arc::new(MemoryStore::new())).expect("state opens");
        state.apply(0, &Runtime::genesis(spec).expect("genesis")).expect("genesis commits");
        let keys = (0..16u8).map(|i| (consensus(i).public_key(), consensus(i))).collect();
        let supply = spec.accounts.iter().map(|a| a.balance).sum::<Balance>()
            + spec.validators.iter().map(|v| v.stake).sum::<Balance>();
        Net {
            state,
            runtime: Runtime::new(CHAIN_ID, VmConfig::default()).expect("engine"),
            height: 0,
            last_hash: spec.hash(),
            keys,
            supply,
        }
    }

    fn snapshot(&self) -> Arc<dyn StateRead> {
        Arc::new(self.state.snapshot(self.height).expect("kept"))
    }

    fn balance(&self, address: &Address) -> Balance {
        self.state
            .get(&StateKey::account(address), self.height)
            .expect("reads")
            .map(|bytes| Account::decode(&mut bytes.as_slice()).expect("decodes").balance)
            .unwrap_or(0)
    }

    fn nonce(&self, address: &Address) -> u64 {
        self.state
            .get(&StateKey::account(address), self.height)
            .expect("reads")
            .map(|bytes| Account::decode(&mut bytes.as_slice()).expect("decodes").nonce)
            .unwrap_or(0)
    }

    fn set_at(&self, height: u64) -> Option<ValidatorSet> {
        staking::validator_set_at(&*self.snapshot(), height).expect("reads")
    }

    fn totals(&self) -> Totals {
        staking::totals(&*self.snapshot()).expect("reads")
    }

    fn tx(&self, signer: &SecretKey, action: StakingAction) -> SignedTransaction {
        Transaction {
            chain_id: CHAIN_ID,
            nonce: self.nonce(&signer.address()),
            gas_limit: STAKE_GAS,
            gas_price: GAS_PRICE,
            action: Action::Staking(action),
        }
        .sign(signer)
    }

    /// The certificate for the latest block, signed by `signers` of its epoch's set.
    fn certificate(&self, signers: &Signers) -> Option<Certificate> {
        let set = self.set_at(self.height).expect("the parent's set is kept");
        if self.height == 0 || set.validators.is_empty() {
            return None;
        }
        let precommit = Vote {
            chain_id: CHAIN_ID,
            height: self.height,
            round: 0,
            kind: VoteKind::Precommit,
            block_hash: Some(self.last_hash),
        };
        let indices: Vec<u16> = match signers {
            Signers::All => (0..set.validators.len() as u16).collect(),
            Signers::Only(indices) => indices.clone(),
        };
        let signatures = indices
            .into_iter()
            .filter_map(|index| {
                let validator = set.validators.get(usize::from(index))?;
                let key = self.keys.get(&validator.consensus_key)?;
                Some(CommitSignature {
                    validator_index: index,
                    signature: precommit.clone().sign(key).signature,
                })
            })
            .collect();
        Some(Certificate { height: self.height, round: 0, block_hash: self.last_hash, signatures })
    }

    /// The proposer of the next block: validators of its epoch take turns.
    fn proposer(&self) -> Address {
        let next = self.height + 1;
        match self.set_at(next) {
            Some(set) if !set.validators.is_empty() => {
                set.validators[(next as usize) % set.validators.len()].address
            }
            _ => Address([0xee; 20]),
        }
    }

    /// A block on top of the latest, with the roots of its body.
    fn block(
        &self,
        transactions: Vec<SignedTransaction>,
        parent_certificate: Option<Certificate>,
        evidence: Vec<Evidence>,
        proposer: Address,
    ) -> Block {
        let height = self.height + 1;
        Block {
            header: Header {
                chain_id: CHAIN_ID,
                height,
                parent_hash: self.last_hash,
                timestamp_ms: 1_700_000_000_000 + height * 1_000,
                proposer,
                state_root: Hash::ZERO,
                transactions_root: Block::compute_transactions_root(&transactions),
                receipts_root: Hash::ZERO,
                parent_certificate_hash: Block::compute_parent_certificate_hash(
                    parent_certificate.as_ref(),
                ),
                evidence_root: Block::compute_evidence_root(&evidence),
                gas_used: 0,
                gas_limit: 100_000_000,
            },
            transactions,
            parent_certificate,
            evidence,
        }
    }

    /// Executes `block` and, if valid, commits it and makes it the latest.
    fn import(&mut self, mut block: Block) -> Result<Vec<Receipt>, BlockError> {
        let outcome = self.runtime.execute_block(self.snapshot(), &block)?;
        self.height += 1;
        let root = self.state.apply(self.height, &outcome.changes).expect("commits");
        block.header.state_root = root;
        block.header.receipts_root = outcome.receipts_root;
        block.header.gas_used = outcome.gas_used;
        self.last_hash = block.hash();
        Ok(outcome.receipts)
    }

    /// The next block, with every validator signing the parent and the proposer in turn.
    fn next(
        &mut self,
        transactions: Vec<SignedTransaction>,
        evidence: Vec<Evidence>,
    ) -> Result<Vec<Receipt>, BlockError> {
        self.next_signed(transactions, evidence, &Signers::All)
    }

    fn next_signed(
        &mut self,
        transactions: Vec<SignedTransaction>,
        evidence: Vec<Evidence>,
        signers: &Signers,
    ) -> Result<Vec<Receipt>, BlockError> {
        let block = self.block(transactions, self.certificate(signers), evidence, self.proposer());
        self.import(block)
    }

    /// Runs one staking transaction in its own block.
    fn run(&mut self, signer: &SecretKey, action: StakingAction) -> Receipt {
        let tx = self.tx(signer, action);
        self.next(vec![tx], Vec::new()).expect("block is valid").remove(0)
    }

    fn empty_blocks(&mut self, count: u64) {
        for _ in 0..count {
            self.next(Vec::new(), Vec::new()).expect("block is valid");
        }
    }

    /// Every token on the chain, counted from the accounts of `addresses` and the staking sums.
    fn counted_supply(&self, addresses: &[Address]) -> Balance {
        let totals = self.totals();
        addresses.iter().map(|a| self.balance(a)).sum::<Balance>()
            + totals.bonded
            + totals.unbonding
            + totals.rewards_pool
    }

    /// Checks the staking sums against the records of `validators` and `delegators`, and that
    /// the reward pool covers every pending reward.
    fn check_records(&self, validators: &[Address], delegators: &[Address]) {
        let state = self.snapshot();
        let totals = self.totals();
        let config = staking::config(&*state).unwrap();
        let bonded: Balance = validators
            .iter()
            .filter_map(|v| staking::validator(&*state, v).unwrap())
            .map(|r| r.tokens)
            .sum();
        assert_eq!(totals.bonded, bonded, "bonded total = sum of validators' tokens");
        let mut unbonding = 0;
        for v in validators {
            for epoch in 0..=config.epoch_of(self.height) {
                let key = StateKey::staking(b"pool/", &[v.as_bytes(), &epoch.to_be_bytes()]);
                if let Some(bytes) = state.get(&key).unwrap() {
                    unbonding += UnbondingPool::decode(&mut bytes.as_slice()).unwrap().tokens;
                }
            }
        }
        assert_eq!(totals.unbonding, unbonding, "unbonding total = sum of the pools' tokens");
        let mut pending = 0;
        let mut shares: BTreeMap<Address, Balance> = BTreeMap::new();
        for d in delegators {
            let view = staking::delegator(&*state, d).unwrap();
            for bond in &view.bonds {
                pending += bond.pending_reward;
                *shares.entry(bond.validator).or_default() += bond.shares;
            }
        }
        assert!(pending <= totals.rewards_pool, "pending {pending} > pool {}", totals.rewards_pool);
        for v in validators {
            if let Some(record) = staking::validator(&*state, v).unwrap() {
                assert_eq!(
                    record.shares,
                    shares.get(v).copied().unwrap_or(0),
                    "a validator's shares are its delegations'"
                );
            }
        }
    }
}

fn failed(failure: StakingFailure) -> ExecutionStatus {
    ExecutionStatus::Failure(FailureReason::Staking(failure))
}

fn duplicate_vote(signer: &SecretKey, height: u64) -> Evidence {
    let vote = |hash: &[u8]| Vote {
        chain_id: CHAIN_ID,
        height,
        round: 0,
        kind: VoteKind::Precommit,
        block_hash: Some(blake3(hash)),
    };
    Evidence::duplicate_vote(vote(b"one").sign(signer), vote(b"two").sign(signer))
}

#[test]
fn genesis_validators_are_bonded_and_form_the_first_set() {
    // Accounts 1 and 2 tie on stake: the lower address goes first.
    let net = Net::new(&spec(&[(0, 5_000, 500), (1, 3_000, 0), (2, 3_000, 10_000)]));
    let set = net.set_at(0).expect("epoch 0's set");
    let mut tied = [account(1).address(), account(2).address()];
    tied.sort();
    let order: Vec<Address> = set.validators.iter().map(|v| v.address).collect();
    assert_eq!(order, vec![account(0).address(), tied[0], tied[1]]);
    assert_eq!(set.validators.iter().map(|v| v.power).collect::<Vec<_>>(), [5_000, 3_000, 3_000]);
    assert_eq!(set.validators[0].consensus_key, consensus(0).public_key());
    assert!(net.set_at(4).is_none(), "epoch 1's set is fixed at the end of epoch 0");

    let state = net.snapshot();
    let record = staking::validator(&*state, &account(0).address()).unwrap().unwrap();
    assert_eq!((record.tokens, record.shares, record.commission_bps), (5_000, 5_000, 500));
    let view = staking::delegator(&*state, &account(0).address()).unwrap();
    assert_eq!(view.bonds.len(), 1);
    assert_eq!((view.bonds[0].tokens, view.bonds[0].pending_reward), (5_000, 0));
    assert_eq!(net.totals(), Totals { bonded: 11_000, ..Totals::default() });
    // The stake is created at genesis: the accounts keep their funds.
    assert_eq!(net.balance(&account(0).address()), FUNDS);
    assert_eq!(staking::epoch_of(&*state, 7).unwrap(), 1);
}

#[test]
fn an_epoch_of_one_block_fixes_the_next_set_at_genesis() {
    let mut spec = spec(&[(0, 5_000, 0)]);
    spec.epoch_length = 1;
    let net = Net::new(&spec);
    assert_eq!(net.set_at(0), net.set_at(1));
    assert!(net.set_at(1).is_some());
}

#[test]
fn invalid_genesis_specs_are_refused() {
    let check = |spec: ChainSpec, expected: fn(&GenesisError) -> bool| {
        let error = Runtime::genesis(&spec).expect_err("refused");
        assert!(expected(&error), "{error:?}");
    };
    check(spec(&[(0, 5_000, 0), (0, 5_000, 0)]), |e| {
        matches!(e, GenesisError::DuplicateValidator(_))
    });
    let mut same_key = spec(&[(0, 5_000, 0), (1, 5_000, 0)]);
    same_key.validators[1].consensus_key = consensus(0).public_key();
    check(same_key, |e| {
        matches!(
            e,
            GenesisError::InvalidValidator {
                reason: FailureReason::Staking(StakingFailure::ConsensusKeyInUse),
                ..
            }
        )
    });
    check(spec(&[(0, 999, 0)]), |e| matches!(e, GenesisError::ValidatorStakeTooLow { .. }));
    check(spec(&[(0, 5_000, 10_001)]), |e| {
        matches!(
            e,
            GenesisError::InvalidValidator {
                reason: FailureReason::Staking(StakingFailure::InvalidCommission),
                ..
            }
        )
    });
    check(spec(&[(0, 5_000, 0), (1, 5_000, 0), (2, 5_000, 0), (3, 5_000, 0)]), |e| {
        matches!(e, GenesisError::TooManyValidators { count: 4, max: 3 })
    });
    let mut zero_epoch = spec(&[]);
    zero_epoch.epoch_length = 0;
    check(zero_epoch, |e| matches!(e, GenesisError::InvalidStakingParams { .. }));
    let mut late_evidence = spec(&[]);
    late_evidence.staking.evidence_max_age = 9;
    check(late_evidence, |e| matches!(e, GenesisError::InvalidStakingParams { .. }));
    let mut overflow = spec(&[(0, u128::MAX, 0)]);
    overflow.accounts.truncate(1);
    check(overflow, |e| matches!(e, GenesisError::SupplyOverflow));
}

#[test]
fn register_bond_and_join_the_next_epoch() {
    let mut net = Net::new(&spec(&[(0, 5_000, 0)]));
    let newcomer = account(5);
    let tx = net.tx(
        &newcomer,
        StakingAction::RegisterValidator {
            consensus_key: consensus(5).public_key(),
            commission_bps: 2_000,
        },
    );
    let receipt = net.next(vec![tx.clone()], Vec::new()).unwrap().remove(0);
    assert_eq!(receipt.status, ExecutionStatus::Success);
    assert_eq!(receipt.gas_used, intrinsic_gas(&tx, tx.encoded_size()) + gas::STAKING);
    let before = net.balance(&newcomer.address());
    let receipt =
        net.run(&newcomer, StakingAction::Bond { validator: newcomer.address(), amount: 7_000 });
    assert_eq!(receipt.status, ExecutionStatus::Success);
    let fee = Balance::from(receipt.gas_used) * GAS_PRICE;
    assert_eq!(net.balance(&newcomer.address()), before - 7_000 - fee);
    assert_eq!(staking::candidates(&*net.snapshot()).unwrap().len(), 2);

    // Height 2 now; epoch 0 ends at height 3, whose end fixes epoch 1 (heights 4..=7).
    assert!(net.set_at(4).is_none());
    net.empty_blocks(1);
    let next = net.set_at(4).expect("epoch 1's set is fixed");
    assert_eq!(next.validators[0].address, newcomer.address(), "the larger stake goes first");
    assert_eq!(next.validators[0].power, 7_000);
    assert_eq!(net.set_at(3).unwrap().validators.len(), 1, "epoch 0 keeps its set");
    // The newcomer signs from epoch 1 on: blocks of epoch 1 need both signatures for > 2/3.
    net.empty_blocks(2);
    assert_eq!(net.height, 5);
    net.check_records(
        &[account(0).address(), newcomer.address()],
        &[account(0).address(), newcomer.address()],
    );
}

#[test]
fn top_k_by_stake_with_ties_to_the_lower_address() {
    let mut net = Net::new(&spec(&[(0, 9_000, 0)]));
    // Four newcomers with equal stake compete for the two places left (K = 3).
    let newcomers: Vec<u8> = vec![4, 5, 6, 7];
    let mut txs = Vec::new();
    for &i in &newcomers {
        let key = account(i);
        txs.push(net.tx(
            &key,
            StakingAction::RegisterValidator {
                consensus_key: consensus(i).public_key(),
                commission_bps: 0,
            },
        ));
    }
    let receipts = net.next(txs, Vec::new()).unwrap();
    assert!(receipts.iter().all(|r| r.status == ExecutionStatus::Success));
    let txs = newcomers
        .iter()
        .map(|&i| {
            let key = account(i);
            net.tx(&key, StakingAction::Bond { validator: key.address(), amount: 2_000 })
        })
        .collect();
    net.next(txs, Vec::new()).unwrap();
    net.empty_blocks(2);
    let set = net.set_at(4).expect("epoch 1");
    let mut tied: Vec<Address> = newcomers.iter().map(|&i| account(i).address()).collect();
    tied.sort();
    let chosen: Vec<Address> = set.validators.iter().map(|v| v.address).collect();
    assert_eq!(chosen, vec![account(0).address(), tied[0], tied[1]]);
}

#[test]
fn failed_staking_operations_charge_gas_and_change_nothing_else() {
    // A chain without validators and without block reward: a failed operation may change only
    // the sender's account (fee, nonce), the proposer's (the fee) and the block record.
    let mut spec = spec(&[]);
    spec.staking.block_reward = 0;
    spec.staking.min_validator_stake = FUNDS;
    let mut net = Net::new(&spec);
    let (alice, bob) = (account(0), account(1));
    let register = |consensus_key: PublicKey, commission_bps: u16| {
        StakingAction::RegisterValidator { consensus_key, commission_bps }
    };
    assert_eq!(
        net.run(&alice, register(consensus(0).public_key(), 100)).status,
        ExecutionStatus::Success
    );
    assert_eq!(
        net.run(&alice, StakingAction::Bond { validator: alice.address(), amount: 500 }).status,
        ExecutionStatus::Success
    );

    let mut bad_key = consensus(1).public_key();
    bad_key.0[0] = 0x07;
    let cases: Vec<(SecretKey, StakingAction, StakingFailure)> = vec![
        (alice.clone(), register(consensus(1).public_key(), 0), StakingFailure::AlreadyValidator),
        (bob.clone(), register(consensus(0).public_key(), 0), StakingFailure::ConsensusKeyInUse),
        (
            bob.clone(),
            register(consensus(1).public_key(), 10_001),
            StakingFailure::InvalidCommission,
        ),
        (bob.clone(), register(bad_key, 0), StakingFailure::InvalidConsensusKey),
        (
            bob.clone(),
            StakingAction::Bond { validator: bob.address(), amount: 10 },
            StakingFailure::NotAValidator,
        ),
        (
            bob.clone(),
            StakingAction::Bond { validator: alice.address(), amount: 0 },
            StakingFailure::ZeroAmount,
        ),
        (
            bob.clone(),
            StakingAction::Unbond { validator: alice.address(), amount: 1 },
            StakingFailure::InsufficientBond,
        ),
        (
            alice.clone(),
            StakingAction::Unbond { validator: alice.address(), amount: 501 },
            StakingFailure::InsufficientBond,
        ),
        (
            bob.clone(),
            StakingAction::Unbond { validator: bob.address(), amount: 1 },
            StakingFailure::NotAValidator,
        ),
        (bob.clone(), StakingAction::Withdraw, StakingFailure::NothingToWithdraw),
    ];
    for (signer, action, failure) in cases {
        let before = net.balance(&signer.address());
        let tx = net.tx(&signer, action.clone());
        let cost = match action {
            StakingAction::Withdraw => gas::STAKING_WITHDRAW,
            _ => gas::STAKING,
        };
        let block = net.block(vec![tx.clone()], None, Vec::new(), Address([0xee; 20]));
        let outcome = net.runtime.execute_block(net.snapshot(), &block).unwrap();
        let receipt = &outcome.receipts[0];
        assert_eq!(receipt.status, failed(failure), "{action:?}");
        assert_eq!(receipt.gas_used, intrinsic_gas(&tx, tx.encoded_size()) + cost);
        let keys: Vec<Vec<u8>> = outcome.changes.keys().cloned().collect();
        let expected = [
            StateKey::account(&signer.address()),
            StateKey::account(&Address([0xee; 20])),
            altan_runtime::exec::block_record_key(),
        ];
        // An epoch's last block also writes the next (still empty) validator set.
        let sets = StateKey::staking(b"set/", &[]);
        let keys: Vec<Vec<u8>> = keys.into_iter().filter(|k| !k.starts_with(&sets)).collect();
        assert_eq!(keys.len(), 3, "{action:?}: {keys:?}");
        assert!(expected.iter().all(|k| keys.contains(k)), "{action:?}");
        net.import(block).unwrap();
        assert_eq!(net.balance(&signer.address()), before - Balance::from(receipt.gas_used));
    }

    // Out of gas before the operation runs: charged the gas limit, nothing else.
    let intrinsic = {
        let tx = net.tx(&bob, StakingAction::Withdraw);
        intrinsic_gas(&tx, tx.encoded_size())
    };
    let tx = Transaction {
        chain_id: CHAIN_ID,
        nonce: net.nonce(&bob.address()),
        gas_limit: intrinsic + 10,
        gas_price: GAS_PRICE,
        action: Action::Staking(StakingAction::Withdraw),
    }
    .sign(&bob);
    let receipt = net.next(vec![tx], Vec::new()).unwrap().remove(0);
    assert_eq!(receipt.status, ExecutionStatus::Failure(FailureReason::OutOfGas));
    assert_eq!(receipt.gas_used, intrinsic + 10);
}

#[test]
fn too_many_delegations_and_unbondings_are_refused() {
    let mut spec = spec(&[]);
    spec.staking.min_validator_stake = FUNDS;
    spec.staking.max_validators = 64;
    spec.accounts
        .extend((10..60).map(|i| GenesisAccount { address: account(i).address(), balance: FUNDS }));
    let mut net = Net::new(&spec);
    let validators: Vec<u8> = (10..(10 + gas::MAX_DELEGATIONS as u8 + 1)).collect();
    let txs = validators
        .iter()
        .map(|&i| {
            net.tx(
                &account(i),
                StakingAction::RegisterValidator {
                    consensus_key: consensus(i % 16).public_key(),
                    commission_bps: 0,
                },
            )
        })
        .collect::<Vec<_>>();
    // Consensus keys repeat after 16: only the first 16 registrations succeed.
    let receipts = net.next(txs, Vec::new()).unwrap();
    let registered: Vec<u8> = validators
        .iter()
        .zip(&receipts)
        .filter(|(_, r)| r.status == ExecutionStatus::Success)
        .map(|(&i, _)| i)
        .collect();
    assert_eq!(registered.len(), 16);
    assert!(receipts[16..].iter().all(|r| r.status == failed(StakingFailure::ConsensusKeyInUse)));

    // Delegation slots: bond to all 16, then unbond one token at a time up to the limit.
    let alice = account(0);
    for &v in &registered {
        let r =
            net.run(&alice, StakingAction::Bond { validator: account(v).address(), amount: 100 });
        assert_eq!(r.status, ExecutionStatus::Success);
    }
    let target = account(registered[0]).address();
    for _ in 0..gas::MAX_UNBONDINGS {
        let r = net.run(&alice, StakingAction::Unbond { validator: target, amount: 1 });
        assert_eq!(r.status, ExecutionStatus::Success);
    }
    let r = net.run(&alice, StakingAction::Unbond { validator: target, amount: 1 });
    assert_eq!(r.status, failed(StakingFailure::TooManyUnbondings));
    assert_eq!(
        staking::delegator(&*net.snapshot(), &alice.address()).unwrap().unbondings.len(),
        32
    );
}

#[test]
fn the_delegation_limit_counts_validators() {
    let mut spec = spec(&[]);
    spec.staking.min_validator_stake = FUNDS;
    let mut net = Net::new(&spec);
    let alice = account(0);
    // One more operator than an account may delegate to, each its own consensus key.
    let operators: Vec<SecretKey> = (0..=gas::MAX_DELEGATIONS as u32)
        .map(|i| {
            let mut bytes = [0x40u8; 32];
            bytes[..4].copy_from_slice(&i.to_be_bytes());
            bytes[31] = 1;
            SecretKey::from_bytes(&bytes).unwrap()
        })
        .collect();
    // Fund the operators so they can pay for registration.
    let funding = operators
        .iter()
        .enumerate()
        .map(|(n, op)| {
            Transaction {
                chain_id: CHAIN_ID,
                nonce: n as u64,
                gas_limit: 100_000,
                gas_price: GAS_PRICE,
                action: Action::Transfer { to: op.address(), value: 1_000_000 },
            }
            .sign(&alice)
        })
        .collect();
    net.next(funding, Vec::new()).unwrap();
    let registrations = operators
        .iter()
        .map(|op| {
            let consensus_key = op.public_key();
            net.tx(op, StakingAction::RegisterValidator { consensus_key, commission_bps: 0 })
        })
        .collect();
    let receipts = net.next(registrations, Vec::new()).unwrap();
    assert!(receipts.iter().all(|r| r.status == ExecutionStatus::Success));
    let bob = account(1);
    let nonce = net.nonce(&bob.address());
    let bonds = operators
        .iter()
        .enumerate()
        .map(|(n, op)| {
            Transaction {
                chain_id: CHAIN_ID,
                nonce: nonce + n as u64,
                gas_limit: STAKE_GAS,
                gas_price: GAS_PRICE,
                action: Action::Staking(StakingAction::Bond {
                    validator: op.address(),
                    amount: 10,
                }),
            }
            .sign(&bob)
        })
        .collect();
    let receipts = net.next(bonds, Vec::new()).unwrap();
    let (last, first) = receipts.split_last().unwrap();
    assert!(first.iter().all(|r| r.status == ExecutionStatus::Success));
    assert_eq!(last.status, failed(StakingFailure::TooManyDelegations));
    // Bonding more to a validator already delegated to needs no new slot.
    let again = net.run(&bob, StakingAction::Bond { validator: operators[0].address(), amount: 5 });
    assert_eq!(again.status, ExecutionStatus::Success);
}

#[test]
fn unbonding_waits_for_its_period_and_withdraw_pays_it() {
    let mut spec = spec(&[(0, 5_000, 0)]);
    spec.staking.block_reward = 0;
    let mut net = Net::new(&spec);
    let (validator, delegator) = (account(0), account(3));
    let r =
        net.run(&delegator, StakingAction::Bond { validator: validator.address(), amount: 2_000 });
    assert_eq!(r.status, ExecutionStatus::Success);
    let r = net
        .run(&delegator, StakingAction::Unbond { validator: validator.address(), amount: 1_500 });
    assert_eq!(r.status, ExecutionStatus::Success);
    let unbond_height = net.height;
    let view = staking::delegator(&*net.snapshot(), &delegator.address()).unwrap();
    assert_eq!(view.bonds[0].tokens, 500);
    assert_eq!(view.unbondings.len(), 1);
    assert_eq!(view.unbondings[0].tokens, 1_500);
    assert_eq!(view.unbondings[0].completes_at, unbond_height + 12);
    assert_eq!(net.totals().unbonding, 1_500);

    // Too early: the first withdrawal collects the rewards from fees earned so far, the second
    // in the same block finds nothing (a block's rewards come after its transactions).
    let txs = vec![
        net.tx(&delegator, StakingAction::Withdraw),
        Transaction {
            chain_id: CHAIN_ID,
            nonce: net.nonce(&delegator.address()) + 1,
            gas_limit: STAKE_GAS,
            gas_price: GAS_PRICE,
            action: Action::Staking(StakingAction::Withdraw),
        }
        .sign(&delegator),
    ];
    let receipts = net.next(txs, Vec::new()).unwrap();
    assert_eq!(receipts[1].status, failed(StakingFailure::NothingToWithdraw));
    assert_eq!(net.totals().unbonding, 1_500, "still unbonding");
    while net.height + 1 < unbond_height + 12 {
        net.empty_blocks(1);
    }
    let view = staking::delegator(&*net.snapshot(), &delegator.address()).unwrap();
    let pending = view.bonds[0].pending_reward;
    let balance = net.balance(&delegator.address());
    let r = net.run(&delegator, StakingAction::Withdraw);
    assert_eq!(net.height, unbond_height + 12);
    assert_eq!(r.status, ExecutionStatus::Success);
    assert_eq!(
        net.balance(&delegator.address()),
        balance + pending + 1_500 - Balance::from(r.gas_used)
    );
    assert_eq!(net.totals().unbonding, 0);
    assert!(
        staking::delegator(&*net.snapshot(), &delegator.address()).unwrap().unbondings.is_empty()
    );

    // Unbonding everything removes the delegation; the validator keeps its own stake.
    let r =
        net.run(&delegator, StakingAction::Unbond { validator: validator.address(), amount: 500 });
    assert_eq!(r.status, ExecutionStatus::Success);
    let view = staking::delegator(&*net.snapshot(), &delegator.address()).unwrap();
    assert!(view.bonds.is_empty());
    let record = staking::validator(&*net.snapshot(), &validator.address()).unwrap().unwrap();
    assert_eq!((record.tokens, record.shares), (5_000, 5_000));
}

#[test]
fn a_validator_below_the_minimum_leaves_the_set_but_the_set_is_never_empty() {
    let mut net = Net::new(&spec(&[(0, 5_000, 0), (1, 2_000, 0)]));
    let r = net
        .run(&account(1), StakingAction::Unbond { validator: account(1).address(), amount: 1_500 });
    assert_eq!(r.status, ExecutionStatus::Success);
    assert_eq!(staking::candidates(&*net.snapshot()).unwrap(), vec![account(0).address()]);
    net.empty_blocks(2);
    let set = net.set_at(4).unwrap();
    assert_eq!(
        set.validators.iter().map(|v| v.address).collect::<Vec<_>>(),
        [account(0).address()]
    );
    // Everyone leaves: the set carries over rather than become empty.
    let r = net
        .run(&account(0), StakingAction::Unbond { validator: account(0).address(), amount: 5_000 });
    assert_eq!(r.status, ExecutionStatus::Success);
    net.empty_blocks(3);
    assert_eq!(net.height, 7);
    assert_eq!(net.set_at(8).unwrap(), set);
    net.empty_blocks(4);
    assert_eq!(net.set_at(12).unwrap(), set);
    // With no shares left, validator 0 (proposer and only voter) takes whole blocks' rewards
    // into its own account; nothing goes to the reward pool.
    let (pool, balance) = (net.totals().rewards_pool, net.balance(&account(0).address()));
    net.empty_blocks(1);
    assert_eq!(net.totals().rewards_pool, pool);
    assert_eq!(net.balance(&account(0).address()), balance + 1_000_000);
}

/// One block's reward, by hand: 10% to the proposer, 90% to the voters by power, each split
/// into commission and the delegators' part.
#[test]
fn rewards_go_to_the_proposer_and_the_voters_after_commission() {
    let mut spec = spec(&[(0, 6_000, 1_000), (1, 4_000, 0)]);
    spec.staking.proposer_bonus_bps = 1_000;
    let mut net = Net::new(&spec);
    let (v0, v1, delegator) = (account(0).address(), account(1).address(), account(3));
    // Block 1 (no certificate: all to the proposer), then a delegation to validator 0 in
    // block 2 (certificate signed by both; the delegation comes after this block's rewards).
    net.empty_blocks(1);
    let r = net.run(&delegator, StakingAction::Bond { validator: v0, amount: 4_000 });
    assert_eq!(r.status, ExecutionStatus::Success);
    net.empty_blocks(1); // height 3 closes epoch 0; epoch 1 has v0 at 10,000 and v1 at 4,000
    let state = net.snapshot();
    let before = |a: &Address| staking::validator(&*state, a).unwrap().unwrap();
    let (r0, r1) = (before(&v0), before(&v1));
    let (b0, b1) = (net.balance(&v0), net.balance(&v1));

    // Block 4: the first of epoch 1; its parent (height 3) was signed by epoch 0's set
    // (v0: 6,000, v1: 4,000). Only v1 signs: 4,000 of 10,000 is not enough.
    let err = net.next_signed(Vec::new(), Vec::new(), &Signers::Only(vec![1])).unwrap_err();
    assert!(matches!(err, BlockError::Consensus(ConsensusError::InvalidParentCertificate(_))));
    let proposer = net.proposer();
    net.next(Vec::new(), Vec::new()).unwrap();
    let pot: Balance = 1_000_000; // no transactions, no fees
    let bonus = pot / 10;
    let voters = pot - bonus;
    let to_v0 = voters * 6_000 / 10_000 + if proposer == v0 { bonus } else { 0 };
    let to_v1 = voters * 4_000 / 10_000 + if proposer == v1 { bonus } else { 0 };
    assert_eq!(to_v0 + to_v1, pot);
    // v0 keeps 10% commission; the rest is spread over its 10,000 shares.
    let commission = to_v0 / 10;
    assert_eq!(net.balance(&v0), b0 + commission);
    assert_eq!(net.balance(&v1), b1, "no commission and no collection yet");
    let state = net.snapshot();
    let after = |a: &Address| staking::validator(&*state, a).unwrap().unwrap();
    assert_eq!(
        after(&v0).reward_per_share - r0.reward_per_share,
        (to_v0 - commission) * REWARD_SCALE / 10_000
    );
    assert_eq!(after(&v1).reward_per_share - r1.reward_per_share, to_v1 * REWARD_SCALE / 4_000);
    let view = staking::delegator(&*state, &delegator.address()).unwrap();
    let earned_block4 = (to_v0 - commission) * 4_000 / 10_000;
    // The delegator also earned from block 3 (its bond landed in block 2).
    assert!(view.bonds[0].pending_reward >= earned_block4);

    // Withdraw collects it.
    let pending = view.bonds[0].pending_reward;
    let balance = net.balance(&delegator.address());
    let r = net.run(&delegator, StakingAction::Withdraw);
    assert_eq!(r.status, ExecutionStatus::Success);
    // Withdraw collected what was pending before its block; the block's own rewards come
    // after its transactions.
    assert_eq!(net.balance(&delegator.address()), balance + pending - Balance::from(r.gas_used));
    let all = [v0, v1, delegator.address()];
    net.check_records(&[v0, v1], &all);
    assert_eq!(net.counted_supply(&all) - net.totals().minted, net.supply - (FUNDS * 7));
}

#[test]
fn certificates_must_be_for_the_parent_and_by_its_epoch() {
    let mut net = Net::new(&spec(&[(0, 5_000, 0), (1, 5_000, 0)]));
    // Height 1 carries no certificate: genesis is not voted on.
    let cert = Certificate { height: 0, round: 0, block_hash: net.last_hash, signatures: vec![] };
    let block = net.block(Vec::new(), Some(cert), Vec::new(), net.proposer());
    let err = net.import(block).unwrap_err();
    assert!(matches!(err, BlockError::Consensus(ConsensusError::UnexpectedParentCertificate)));
    net.empty_blocks(1);

    let missing = net.block(Vec::new(), None, Vec::new(), net.proposer());
    let err = net.import(missing).unwrap_err();
    assert!(matches!(err, BlockError::Consensus(ConsensusError::MissingParentCertificate)));

    let mut wrong = net.certificate(&Signers::All).unwrap();
    wrong.block_hash = blake3(b"another block");
    let block = net.block(Vec::new(), Some(wrong), Vec::new(), net.proposer());
    let err = net.import(block).unwrap_err();
    assert!(matches!(err, BlockError::Consensus(ConsensusError::WrongCertificateTarget { .. })));

    let stranger = Address([0x77; 20]);
    let block = net.block(Vec::new(), net.certificate(&Signers::All), Vec::new(), stranger);
    let err = net.import(block).unwrap_err();
    assert!(matches!(
        err,
        BlockError::Consensus(ConsensusError::ProposerNotInSet { proposer, epoch: 0 }) if proposer == stranger
    ));

    // A header that does not commit to its certificate.
    let mut block =
        net.block(Vec::new(), net.certificate(&Signers::All), Vec::new(), net.proposer());
    block.header.parent_certificate_hash = Hash::ZERO;
    let err = net.import(block).unwrap_err();
    assert!(matches!(err, BlockError::BodyMismatch { .. }));

    // The runtime's check without execution agrees.
    let good = BlockContext::of_block(&net.block(
        Vec::new(),
        net.certificate(&Signers::All),
        Vec::new(),
        net.proposer(),
    ));
    net.runtime.check_block_inputs(&*net.snapshot(), &good).unwrap();
    let bad = BlockContext { parent_certificate: None, ..good };
    assert!(net.runtime.check_block_inputs(&*net.snapshot(), &bad).is_err());
    net.empty_blocks(1);
}

#[test]
fn equivocation_slashes_bonded_and_unbonding_stake_and_jails() {
    let mut net = Net::new(&spec(&[(0, 10_000, 0), (1, 10_000, 0), (2, 10_000, 0)]));
    let (offender, delegator) = (account(2), account(4));
    let r =
        net.run(&delegator, StakingAction::Bond { validator: offender.address(), amount: 5_000 });
    assert_eq!(r.status, ExecutionStatus::Success);
    net.empty_blocks(3); // epoch 1 begins at height 4
    // The delegator unbonds 2,000 in epoch 1; the offence happens in epoch 1 too.
    let r =
        net.run(&delegator, StakingAction::Unbond { validator: offender.address(), amount: 2_000 });
    assert_eq!(r.status, ExecutionStatus::Success);
    let offence_height = net.height;
    let record = staking::validator(&*net.snapshot(), &offender.address()).unwrap().unwrap();
    assert_eq!(record.tokens, 13_000);
    let slashed_before = net.totals().slashed;

    let evidence = duplicate_vote(&consensus(2), offence_height);
    // The same offence twice in one block: punished once.
    net.next(Vec::new(), vec![evidence.clone(), evidence.clone()]).unwrap();
    let record = staking::validator(&*net.snapshot(), &offender.address()).unwrap().unwrap();
    assert_eq!(record.tokens, 13_000 - 1_300);
    assert_eq!(record.jailed_at, Some(net.height));
    let view = staking::delegator(&*net.snapshot(), &delegator.address()).unwrap();
    assert_eq!(view.unbondings[0].tokens, 2_000 - 200, "unbonding stake is slashed too");
    assert_eq!(view.bonds[0].tokens, 3_000 * 11_700 / 13_000);
    assert_eq!(net.totals().slashed - slashed_before, 1_300 + 200);
    assert!(!staking::candidates(&*net.snapshot()).unwrap().contains(&offender.address()));

    // Later evidence of the same validator changes nothing; bonding to it is refused.
    let punished = staking::validator(&*net.snapshot(), &offender.address()).unwrap().unwrap();
    net.next(Vec::new(), vec![duplicate_vote(&consensus(2), offence_height - 1)]).unwrap();
    let after = staking::validator(&*net.snapshot(), &offender.address()).unwrap().unwrap();
    assert_eq!((after.tokens, after.jailed_at), (punished.tokens, punished.jailed_at));
    let r = net.run(&delegator, StakingAction::Bond { validator: offender.address(), amount: 1 });
    assert_eq!(r.status, failed(StakingFailure::ValidatorJailed));
    let r = net.run(
        &offender,
        StakingAction::RegisterValidator {
            consensus_key: consensus(9).public_key(),
            commission_bps: 0,
        },
    );
    assert_eq!(r.status, failed(StakingFailure::AlreadyValidator), "jailing is for good");

    // It is out of the next set; delegators can still leave.
    while !net.height.is_multiple_of(4) {
        net.empty_blocks(1);
    }
    let set = net.set_at(net.height).unwrap();
    assert!(set.validators.iter().all(|v| v.address != offender.address()));
    let r = net.run(
        &delegator,
        StakingAction::Unbond { validator: offender.address(), amount: view.bonds[0].tokens },
    );
    assert_eq!(r.status, ExecutionStatus::Success);
    let all: Vec<Address> = (0..10).map(|i| account(i).address()).collect();
    net.check_records(&all[..3], &all);
    let totals = net.totals();
    assert_eq!(net.counted_supply(&all), net.supply + totals.minted - totals.slashed);
}

#[test]
fn unbondings_from_before_the_offence_epoch_are_not_slashed() {
    let mut net = Net::new(&spec(&[(0, 10_000, 0), (1, 10_000, 0), (2, 10_000, 0)]));
    let (offender, delegator) = (account(2), account(4));
    net.run(&delegator, StakingAction::Bond { validator: offender.address(), amount: 5_000 });
    net.run(&delegator, StakingAction::Unbond { validator: offender.address(), amount: 1_000 });
    net.empty_blocks(3); // now in epoch 1
    let offence_height = net.height;
    net.next(Vec::new(), vec![duplicate_vote(&consensus(2), offence_height)]).unwrap();
    let view = staking::delegator(&*net.snapshot(), &delegator.address()).unwrap();
    assert_eq!(view.unbondings[0].tokens, 1_000, "it left before epoch 1's power was fixed");
}

#[test]
fn invalid_evidence_makes_the_block_invalid() {
    let mut net = Net::new(&spec(&[(0, 10_000, 0), (1, 10_000, 0)]));
    net.empty_blocks(12);
    let height = net.height;
    let reject = |net: &mut Net, evidence: Evidence| -> EvidenceRejection {
        match net.next(Vec::new(), vec![evidence]).unwrap_err() {
            BlockError::Consensus(ConsensusError::InvalidEvidence { index: 0, reason }) => reason,
            other => panic!("unexpected {other:?}"),
        }
    };
    let stranger = SecretKey::from_bytes(&[0x55; 32]).unwrap();
    assert!(matches!(
        reject(&mut net, duplicate_vote(&stranger, height)),
        EvidenceRejection::UnknownOffender { .. }
    ));
    assert!(matches!(
        reject(&mut net, duplicate_vote(&consensus(0), height + 2)),
        EvidenceRejection::FromTheFuture { .. }
    ));
    // Max age 8: at block 13 the oldest provable offence is at height 5.
    assert!(matches!(
        reject(&mut net, duplicate_vote(&consensus(0), 4)),
        EvidenceRejection::Expired { height: 4, oldest: 5 }
    ));
    let vote = Vote {
        chain_id: CHAIN_ID + 1,
        height,
        round: 0,
        kind: VoteKind::Prevote,
        block_hash: None,
    };
    let other_chain = Evidence::duplicate_vote(
        vote.clone().sign(&consensus(0)),
        Vote { block_hash: Some(Hash::ZERO), ..vote }.sign(&consensus(0)),
    );
    assert!(matches!(reject(&mut net, other_chain), EvidenceRejection::WrongChain { .. }));
    let same =
        Vote { chain_id: CHAIN_ID, height, round: 0, kind: VoteKind::Prevote, block_hash: None };
    let not_an_offence = Evidence::DuplicateVote {
        first: same.clone().sign(&consensus(0)),
        second: same.sign(&consensus(0)),
    };
    assert!(matches!(reject(&mut net, not_an_offence), EvidenceRejection::Invalid(_)));
    let too_much = vec![duplicate_vote(&consensus(0), height); gas::MAX_BLOCK_EVIDENCE + 1];
    assert!(matches!(
        net.next(Vec::new(), too_much).unwrap_err(),
        BlockError::Consensus(ConsensusError::TooMuchEvidence { .. })
    ));
    // The oldest provable offence still lands.
    net.next(Vec::new(), vec![duplicate_vote(&consensus(0), 5)]).unwrap();
}

#[test]
fn old_validator_sets_are_dropped_once_no_evidence_can_need_them() {
    let mut net = Net::new(&spec(&[(0, 10_000, 0)]));
    net.empty_blocks(20);
    let state = net.snapshot();
    // Height 20: the blocks of epoch 5 (heights 20 to 23) accept offences from height 12
    // (epoch 3) on, so epochs 0 to 2 are gone and 3 to 5 are kept.
    for epoch in 0..=2 {
        assert!(staking::validator_set(&*state, epoch).unwrap().is_none(), "epoch {epoch}");
    }
    for epoch in 3..=5 {
        assert!(staking::validator_set(&*state, epoch).unwrap().is_some(), "epoch {epoch}");
    }
}

/// One random staking operation.
#[derive(Clone, Debug)]
enum Op {
    Register(u8, u16),
    Bond(u8, u8, u64),
    /// Unbonds this percentage of the account's bond to the validator (or 1 if it has none).
    Unbond(u8, u8, u64),
    Withdraw(u8),
    Transfer(u8, u8, u64),
    Offence(u8),
    Block(Vec<u16>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (3u8..8, 0u16..=10_000).prop_map(|(a, c)| Op::Register(a, c)),
        1 => (0u8..8, 0u8..8, 1u64..20_000).prop_map(|(a, v, x)| Op::Bond(a, v, x)),
        3 => (0u8..8, 0u8..8, 1u64..=100).prop_map(|(a, v, x)| Op::Unbond(a, v, x)),
        1 => (0u8..8).prop_map(Op::Withdraw),
        1 => (0u8..8, 0u8..8, 1u64..1_000_000).prop_map(|(a, b, x)| Op::Transfer(a, b, x)),
        1 => (0u8..8).prop_map(Op::Offence),
        4 => prop::collection::vec(0u16..4, 0..4).prop_map(Op::Block),
    ]
}

/// Runs `ops` as a chain of blocks: operations accumulate into the next block, `Block` ends it
/// with the given extra signers (all validators sign if that is what it takes), `Offence`
/// adds evidence against the account's consensus key if it validates now. Returns the root
/// after each block, and checks the invariants after each block.
fn run_ops(ops: &[Op]) -> Vec<Hash> {
    let mut net = Net::new(&spec(&[(0, 10_000, 500), (1, 8_000, 0), (2, 6_000, 2_000)]));
    let everyone: Vec<Address> = (0..10).map(|i| account(i).address()).collect();
    let mut roots = Vec::new();
    let mut txs: Vec<SignedTransaction> = Vec::new();
    let mut nonces: BTreeMap<u8, u64> = BTreeMap::new();
    let mut evidence = Vec::new();
    let tx = |net: &Net, from: u8, action: Action, nonces: &mut BTreeMap<u8, u64>| {
        let nonce = nonces.entry(from).or_insert_with(|| net.nonce(&account(from).address()));
        let signed = Transaction {
            chain_id: CHAIN_ID,
            nonce: *nonce,
            gas_limit: STAKE_GAS,
            gas_price: GAS_PRICE,
            action,
        }
        .sign(&account(from));
        *nonce += 1;
        signed
    };
    let mut ops = ops.to_vec();
    ops.push(Op::Block(Vec::new()));
    for op in ops {
        match op {
            Op::Register(a, commission_bps) => txs.push(tx(
                &net,
                a,
                Action::Staking(StakingAction::RegisterValidator {
                    consensus_key: consensus(a).public_key(),
                    commission_bps,
                }),
                &mut nonces,
            )),
            Op::Bond(a, v, amount) => txs.push(tx(
                &net,
                a,
                Action::Staking(StakingAction::Bond {
                    validator: account(v).address(),
                    amount: amount.into(),
                }),
                &mut nonces,
            )),
            Op::Unbond(a, v, percent) => {
                let validator = account(v).address();
                let bonded = staking::delegator(&*net.snapshot(), &account(a).address())
                    .unwrap()
                    .bonds
                    .iter()
                    .find(|b| b.validator == validator)
                    .map_or(0, |b| b.tokens);
                let amount = (bonded * Balance::from(percent) / 100).max(1);
                txs.push(tx(
                    &net,
                    a,
                    Action::Staking(StakingAction::Unbond { validator, amount }),
                    &mut nonces,
                ))
            }
            Op::Withdraw(a) => {
                txs.push(tx(&net, a, Action::Staking(StakingAction::Withdraw), &mut nonces))
            }
            Op::Transfer(a, b, value) => txs.push(tx(
                &net,
                a,
                Action::Transfer { to: account(b).address(), value: value.into() },
                &mut nonces,
            )),
            Op::Offence(a) => {
                let set = net.set_at(net.height + 1).unwrap();
                // The harness holds every consensus key, so certificates stay valid whoever is
                // jailed; one offence per block keeps the blocks small.
                if set.validators.iter().any(|v| v.consensus_key == consensus(a).public_key())
                    && evidence.is_empty()
                {
                    evidence.push(duplicate_vote(&consensus(a), net.height + 1));
                }
            }
            Op::Block(indices) => {
                let block_txs = std::mem::take(&mut txs);
                let block_evidence = std::mem::take(&mut evidence);
                nonces.clear();
                // These signers if they hold more than 2/3 of the parent epoch's power, else all.
                let parent_set = net.set_at(net.height).unwrap();
                let mut indices: Vec<u16> = indices
                    .into_iter()
                    .filter(|&i| usize::from(i) < parent_set.validators.len())
                    .collect();
                indices.sort();
                indices.dedup();
                let power: Balance =
                    indices.iter().map(|&i| parent_set.validators[usize::from(i)].power).sum();
                let signers = if parent_set.is_supermajority(power) {
                    Signers::Only(indices)
                } else {
                    Signers::All
                };
                net.next_signed(block_txs, block_evidence, &signers).expect("valid block");
                roots.push(net.state.root(net.height).unwrap());
                net.check_records(&everyone, &everyone);
                let totals = net.totals();
                assert_eq!(
                    net.counted_supply(&everyone),
                    net.supply + totals.minted - totals.slashed,
                    "supply is conserved apart from minting and slashing"
                );
                assert_eq!(totals.minted, 1_000_000 * Balance::from(net.height));
                let set = net.set_at(net.height + 1).unwrap();
                assert!(!set.validators.is_empty() && set.validators.len() <= 3);
                assert!(
                    set.validators
                        .windows(2)
                        .all(|w| (w[1].power, w[0].address) < (w[0].power, w[1].address)),
                    "canonical order"
                );
            }
        }
    }
    roots
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random staking operations, rewards and slashes over several epochs: the supply is
    /// conserved apart from minting and slashing, the sums match the records, every set is
    /// canonical, and a second run gives the same roots.
    #[test]
    fn random_operations_conserve_supply_and_replay_identically(ops in prop::collection::vec(op(), 1..120)) {
        let first = run_ops(&ops);
        let second = run_ops(&ops);
        prop_assert_eq!(first, second);
    }

    /// The next validator set depends on the stakes, not on the order of the operations
    /// that made them.
    #[test]
    fn the_next_set_does_not_depend_on_operation_order(
        stakes in prop::collection::vec((3u8..8, 0u64..5_000), 1..12),
        seed in any::<u64>(),
    ) {
        let mut ordered: Vec<(u8, u64)> = stakes.clone();
        let mut shuffled = stakes;
        // A deterministic shuffle from the seed.
        let mut state = seed;
        for i in (1..shuffled.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        ordered.sort();
        let set_after = |order: &[(u8, u64)]| {
            let mut net = Net::new(&spec(&[(0, 10_000, 0)]));
            let mut registered: Vec<u8> = order.iter().map(|(a, _)| *a).collect();
            registered.sort();
            registered.dedup();
            let regs = registered.iter().map(|&a| net.tx(&account(a), StakingAction::RegisterValidator {
                consensus_key: consensus(a).public_key(),
                commission_bps: 0,
            })).collect();
            net.next(regs, Vec::new()).unwrap();
            let mut nonces: BTreeMap<u8, u64> = BTreeMap::new();
            let bonds = order.iter().map(|&(a, amount)| {
                let nonce = nonces.entry(a).or_insert_with(|| net.nonce(&account(a).address()));
                let tx = Transaction {
                    chain_id: CHAIN_ID,
                    nonce: *nonce,
                    gas_limit: STAKE_GAS,
                    gas_price: GAS_PRICE,
                    action: Action::Staking(StakingAction::Bond { validator: account(a).address(), amount: amount.into() }),
                }.sign(&account(a));
                *nonce += 1;
                tx
            }).collect();
            net.next(bonds, Vec::new()).unwrap();
            net.empty_blocks(2);
            (net.set_at(4).unwrap(), staking::candidates(&*net.snapshot()).unwrap())
        };
        prop_assert_eq!(set_after(&ordered), set_after(&shuffled));
    }
}

/// The format of the staking records is consensus: a change of a key, a field or the genesis
/// rules shows here as a new root, which must be a deliberate decision.
#[test]
fn golden_genesis_root_and_record_encodings() {
    let net = Net::new(&spec(&[(0, 5_000, 500), (1, 3_000, 0)]));
    let root = net.state.root(0).unwrap().to_string();
    assert_eq!(root, "0xafda27329c5b4dfdd3e70135dcdc121dc138d64b6d105c8dc59f1200c9d8a26b");
    let key = StateKey::staking(b"validator/", &[account(1).address().as_bytes()]);
    let value = net.snapshot().get(&key).unwrap().expect("validator 1's record");
    assert_eq!(
        hex(&key),
        "047374616b696e672f76616c696461746f722f5050a4f4b3f9338c3472dcc01a87c76a144b3c9c"
    );
    // Consensus key, commission, tokens and shares (3,000), reward per share, not jailed,
    // registered at 0.
    assert_eq!(
        hex(&value),
        concat!(
            "037eff87ca3bb9f815f47e192641cad3aa58ed7343f67b835d735b28cec11a1bb40000b80b000000",
            "0000000000000000000000b80b000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000",
        )
    );
    let totals = Totals { bonded: 1, unbonding: 2, rewards_pool: 3, minted: 4, slashed: 5 };
    assert_eq!(Totals::decode(&mut totals.encode().as_slice()).unwrap(), totals);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
