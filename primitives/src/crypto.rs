//! secp256k1 keys and 65-byte recoverable signatures through k256.

use core::fmt;
use core::str::FromStr;

use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, SigningKey, VerifyingKey};
use k256::elliptic_curve::scalar::IsHigh;
use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use sha3::{Digest, Keccak256};

use crate::address::Address;
use crate::hash::{Hash, HexError, decode_hex_array, serde_via_hex};

/// keccak256, used only where Ethereum compatibility asks for it: addresses and their checksums.
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// Why a signature or key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// r or s is zero or not below the curve order.
    #[error("signature scalars out of range")]
    InvalidScalars,
    /// s is in the upper half of the curve order; only the low-S form of a signature is accepted,
    /// so that a signature cannot be altered into a second valid one.
    #[error("signature is not in low-S form")]
    HighS,
    /// The recovery id byte is not 0 or 1.
    #[error("invalid recovery id {0}")]
    InvalidRecoveryId(u8),
    /// No public key recovers from this signature and message.
    #[error("no public key recovers from this signature")]
    RecoveryFailed,
    /// The bytes are not a valid secret or public key.
    #[error("invalid key")]
    InvalidKey,
}

/// A 65-byte recoverable ECDSA signature: `r || s || v` with `v` the recovery id (0 or 1) and
/// `s` in the lower half of the curve order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen)]
pub struct Signature(pub [u8; 65]);

impl Signature {
    /// Recovers the public key that made this signature over `prehash`.
    pub fn recover_public_key(&self, prehash: &Hash) -> Result<PublicKey, SignatureError> {
        let (signature, recovery_id) = self.parts()?;
        VerifyingKey::recover_from_prehash(prehash.as_bytes(), &signature, recovery_id)
            .map(PublicKey::from_verifying_key)
            .map_err(|_| SignatureError::RecoveryFailed)
    }

    /// Recovers the address that made this signature over `prehash`.
    pub fn recover_address(&self, prehash: &Hash) -> Result<Address, SignatureError> {
        let (signature, recovery_id) = self.parts()?;
        let key = VerifyingKey::recover_from_prehash(prehash.as_bytes(), &signature, recovery_id)
            .map_err(|_| SignatureError::RecoveryFailed)?;
        Ok(address_of(&key))
    }

    fn parts(&self) -> Result<(EcdsaSignature, RecoveryId), SignatureError> {
        let signature = EcdsaSignature::from_slice(&self.0[..64])
            .map_err(|_| SignatureError::InvalidScalars)?;
        if bool::from(signature.s().is_high()) {
            return Err(SignatureError::HighS);
        }
        let v = self.0[64];
        // Recovery ids 2 and 3 (x-coordinate reduced mod n) have negligible probability in honest
        // signatures; Ethereum refuses them and so do we, so every signature has one form.
        if v > 1 {
            return Err(SignatureError::InvalidRecoveryId(v));
        }
        let recovery_id = RecoveryId::from_byte(v).ok_or(SignatureError::InvalidRecoveryId(v))?;
        Ok((signature, recovery_id))
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Signature {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex_array(s).map(Signature)
    }
}

serde_via_hex!(Signature);

/// A secp256k1 public key in 33-byte compressed SEC1 form: validators' consensus keys.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, MaxEncodedLen)]
pub struct PublicKey(pub [u8; 33]);

impl PublicKey {
    fn from_verifying_key(key: VerifyingKey) -> PublicKey {
        let point = key.to_sec1_point(true);
        let mut out = [0; 33];
        out.copy_from_slice(point.as_bytes());
        PublicKey(out)
    }

    /// Checks that the bytes are a point on the curve.
    pub fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        VerifyingKey::from_sec1_bytes(&self.0).map_err(|_| SignatureError::InvalidKey)
    }

    /// The 65-byte uncompressed form `0x04 || x || y`.
    pub fn to_uncompressed(&self) -> Result<[u8; 65], SignatureError> {
        let point = self.verifying_key()?.to_sec1_point(false);
        let mut out = [0; 65];
        out.copy_from_slice(point.as_bytes());
        Ok(out)
    }

    /// The address of this key.
    pub fn address(&self) -> Result<Address, SignatureError> {
        Ok(address_of(&self.verifying_key()?))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PublicKey {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex_array(s).map(PublicKey)
    }
}

serde_via_hex!(PublicKey);

fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_sec1_point(false);
    let mut xy = [0; 64];
    xy.copy_from_slice(&point.as_bytes()[1..]);
    Address::from_uncompressed_xy(&xy)
}

/// A secp256k1 secret key. It never prints its bytes.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// Reads a 32-byte big-endian secret scalar.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<SecretKey, SignatureError> {
        SigningKey::from_slice(bytes).map(SecretKey).map_err(|_| SignatureError::InvalidKey)
    }

    /// The secret scalar, big-endian. Handle with care.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    /// The compressed public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_verifying_key(*self.0.verifying_key())
    }

    /// The address of this key.
    pub fn address(&self) -> Address {
        address_of(self.0.verifying_key())
    }

    /// Signs a 32-byte prehash with an RFC 6979 deterministic nonce; the result is low-S.
    pub fn sign_prehash(&self, prehash: &Hash) -> Signature {
        let (signature, recovery_id) = self.0.sign_prehash_recoverable(prehash.as_bytes());
        let mut out = [0; 65];
        out[..64].copy_from_slice(&signature.to_bytes());
        out[64] = recovery_id.to_byte();
        Signature(out)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_s_is_rejected() {
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        let prehash = crate::blake3(b"message");
        let signature = key.sign_prehash(&prehash);
        assert_eq!(signature.recover_address(&prehash), Ok(key.address()));

        // Flip s to n - s and the recovery id: the same point, but the high-S twin.
        let parsed = EcdsaSignature::from_slice(&signature.0[..64]).unwrap();
        let (r, s) = parsed.split_scalars();
        let twin = EcdsaSignature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        let mut bytes = [0; 65];
        bytes[..64].copy_from_slice(&twin.to_bytes());
        bytes[64] = signature.0[64] ^ 1;
        assert_eq!(Signature(bytes).recover_address(&prehash), Err(SignatureError::HighS));
    }

    #[test]
    fn recovery_ids_above_one_are_rejected() {
        let key = SecretKey::from_bytes(&[9; 32]).unwrap();
        let prehash = crate::blake3(b"m");
        let mut signature = key.sign_prehash(&prehash);
        signature.0[64] = 2;
        assert_eq!(signature.recover_address(&prehash), Err(SignatureError::InvalidRecoveryId(2)));
    }

    #[test]
    fn secret_key_debug_does_not_leak() {
        let key = SecretKey::from_bytes(&[1; 32]).unwrap();
        let shown = alloc::format!("{key:?}");
        assert!(!shown.contains("0101"));
    }
}
