//! Signature recovery behind a trait, so that a host that has already checked a signature (or
//! a simulator running many validators in one process) need not check it again.

use altan_primitives::{Hash, PublicKey, Signature, SignatureError};

/// Recovers the key that signed a prehash. Implementations must be pure: the same prehash and
/// signature always give the same answer, the answer of [`Signature::recover_public_key`].
pub trait Verifier {
    /// The public key that made `signature` over `prehash`.
    fn recover(&self, prehash: &Hash, signature: &Signature) -> Result<PublicKey, SignatureError>;
}

/// Recovers every signature with k256, with no memory: what the node uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Recover;

impl Verifier for Recover {
    fn recover(&self, prehash: &Hash, signature: &Signature) -> Result<PublicKey, SignatureError> {
        signature.recover_public_key(prehash)
    }
}

impl<V: Verifier + ?Sized> Verifier for &V {
    fn recover(&self, prehash: &Hash, signature: &Signature) -> Result<PublicKey, SignatureError> {
        (**self).recover(prehash, signature)
    }
}
