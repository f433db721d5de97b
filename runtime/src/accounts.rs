//! Reading and writing accounts: the one place that knows where an account lives in the state
//! and how it is encoded.

use altan_primitives::{Address, Balance};
use parity_scale_codec::{Decode, Encode};

use crate::state::{Account, Overlay, StateKey, StateRead, StoreError};

/// The account at `address` in a committed state (what the node reads for RPC and admission);
/// a missing account is an empty one.
pub fn read(state: &dyn StateRead, address: &Address) -> Result<Account, StoreError> {
    decode(address, state.get(&StateKey::account(address))?)
}

/// The account at `address`; a missing account is an empty one.
pub(crate) fn load(overlay: &mut Overlay, address: &Address) -> Result<Account, StoreError> {
    decode(address, overlay.get(&StateKey::account(address))?)
}

fn decode(address: &Address, bytes: Option<Vec<u8>>) -> Result<Account, StoreError> {
    match bytes {
        Some(bytes) => Account::decode(&mut bytes.as_slice())
            .map_err(|e| StoreError::Corrupt(format!("account {address}: {e}"))),
        None => Ok(Account::default()),
    }
}

/// Writes `account`; an empty account is removed rather than stored.
pub(crate) fn store(overlay: &mut Overlay, address: &Address, account: &Account) {
    let value = (*account != Account::default()).then(|| account.encode());
    overlay.set(StateKey::account(address), value);
}

/// Moves `value` from `from` to `to`. `Ok(false)` if `from` has too little; nothing changes then.
pub(crate) fn transfer(
    overlay: &mut Overlay,
    from: &Address,
    to: &Address,
    value: Balance,
) -> Result<bool, StoreError> {
    if value == 0 || from == to {
        return Ok(load(overlay, from)?.balance >= value);
    }
    let mut sender = load(overlay, from)?;
    let Some(rest) = sender.balance.checked_sub(value) else { return Ok(false) };
    sender.balance = rest;
    store(overlay, from, &sender);
    credit(overlay, to, value)?;
    Ok(true)
}

/// Whether moving `value` from `from` to `to` would create `to`'s account.
pub(crate) fn creates_account(
    overlay: &mut Overlay,
    from: &Address,
    to: &Address,
    value: Balance,
) -> Result<bool, StoreError> {
    Ok(value > 0 && from != to && overlay.get(&StateKey::account(to))?.is_none())
}

/// Adds `value` to `to`. Balances cannot overflow while the total supply fits a u128, which
/// genesis checks, so an overflow means the state is corrupt.
pub(crate) fn credit(
    overlay: &mut Overlay,
    to: &Address,
    value: Balance,
) -> Result<(), StoreError> {
    let mut account = load(overlay, to)?;
    account.balance = account
        .balance
        .checked_add(value)
        .ok_or_else(|| StoreError::Corrupt(format!("balance of {to} overflows")))?;
    store(overlay, to, &account);
    Ok(())
}
