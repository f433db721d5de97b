//! Transactions and their signatures.

use alloc::vec::Vec;

use parity_scale_codec::{Decode, Encode};

use crate::crypto::{PublicKey, SecretKey, Signature, SignatureError};
use crate::{Address, Balance, ChainId, Gas, Hash, Nonce, blake3, blake3_tagged, domain};

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Action {
    /// Moves native tokens to an account or contract (a contract's code does not run).
    Transfer {
        /// The recipient.
        to: Address,
        /// The amount.
        value: Balance,
    },
    /// Deploys a Wasm contract and runs its constructor.
    Deploy {
        /// The Wasm module.
        code: Vec<u8>,
        /// The constructor's input.
        input: Vec<u8>,
        /// Native tokens sent to the new contract.
        value: Balance,
        /// Chosen by the deployer; with the deployer and the code hash it fixes the address, so
        /// the address is known before the transaction lands.
        salt: Hash,
    },
    /// Calls a deployed contract.
    Call {
        /// The contract.
        contract: Address,
        /// The call's input: the method selector and its arguments, as the contract expects.
        input: Vec<u8>,
        /// Native tokens sent with the call.
        value: Balance,
    },
    /// A native staking operation.
    Staking(StakingAction),
}

/// Native staking operations. Their rules live in the runtime's staking module.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum StakingAction {
    /// Registers the sender as a validator.
    RegisterValidator {
        /// The key the validator signs votes with (it may differ from the account key).
        consensus_key: PublicKey,
        /// The share of rewards kept before delegators are paid, in basis points (<= 10,000).
        commission_bps: u16,
    },
    /// Bonds the sender's tokens to a validator (its own account's, or as a delegator).
    Bond {
        /// The validator's account address.
        validator: Address,
        /// The amount to bond.
        amount: Balance,
    },
    /// Starts unbonding; the tokens become withdrawable after the unbonding period.
    Unbond {
        /// The validator's account address.
        validator: Address,
        /// The amount to unbond.
        amount: Balance,
    },
    /// Withdraws every unbonded amount whose period has passed.
    Withdraw,
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Transaction {
    /// The chain this transaction is for.
    pub chain_id: ChainId,
    /// The sender's next nonce.
    pub nonce: Nonce,
    /// The most gas this transaction may use.
    pub gas_limit: Gas,
    /// The price paid per unit of gas used.
    pub gas_price: Balance,
    /// What it does.
    pub action: Action,
}

impl Transaction {
    /// The 32-byte prehash that is signed: the transaction domain tag, the chain id and the
    /// SCALE encoding of the transaction.
    pub fn signing_hash(&self) -> Hash {
        blake3_tagged(domain::TRANSACTION, &[&self.chain_id.to_le_bytes(), &self.encode()])
    }

    /// Signs the transaction.
    pub fn sign(self, key: &SecretKey) -> SignedTransaction {
        let signature = key.sign_prehash(&self.signing_hash());
        SignedTransaction { transaction: self, signature }
    }

    /// The native value this transaction moves out of the sender, apart from fees.
    pub fn value(&self) -> Balance {
        match &self.action {
            Action::Transfer { value, .. }
            | Action::Deploy { value, .. }
            | Action::Call { value, .. } => *value,
            Action::Staking(StakingAction::Bond { amount, .. }) => *amount,
            Action::Staking(_) => 0,
        }
    }
}

/// A transaction with its sender's signature. The sender is recovered from the signature.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedTransaction {
    /// The transaction.
    pub transaction: Transaction,
    /// The sender's signature over [`Transaction::signing_hash`].
    pub signature: Signature,
}

impl SignedTransaction {
    /// The transaction id: blake3 of the signed transaction's encoding.
    pub fn id(&self) -> Hash {
        blake3(&self.encode())
    }

    /// Recovers the sender. This is the expensive step of admission (an EC multiplication).
    pub fn recover_sender(&self) -> Result<Address, SignatureError> {
        self.signature.recover_address(&self.transaction.signing_hash())
    }
}
