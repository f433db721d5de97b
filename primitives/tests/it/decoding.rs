//! Decoders read bytes from the network and from clients: arbitrary input must give an error,
//! never a panic, and whatever decodes must re-encode to exactly the input (one encoding per
//! value, so ids and signatures cannot be varied by re-encoding).

use altan_primitives::{
    Block, Certificate, ChainSpec, Evidence, Receipt, SignedProposal, SignedTransaction, SignedVote,
};
use parity_scale_codec::{Decode, DecodeAll, Encode};
use proptest::prelude::*;

fn canonical<T: Decode + Encode>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = T::decode_all(&mut &bytes[..]) {
        prop_assert_eq!(value.encode(), bytes);
    }
    Ok(())
}

fn all(bytes: &[u8]) -> Result<(), TestCaseError> {
    canonical::<SignedTransaction>(bytes)?;
    canonical::<Block>(bytes)?;
    canonical::<Receipt>(bytes)?;
    canonical::<SignedVote>(bytes)?;
    canonical::<SignedProposal>(bytes)?;
    canonical::<Evidence>(bytes)?;
    canonical::<Certificate>(bytes)?;
    canonical::<ChainSpec>(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_decode_canonically_or_not_at_all(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        all(&bytes)?;
    }

    /// Mutations of a valid encoding reach much deeper into the decoders than random bytes.
    #[test]
    fn mutated_transactions_decode_canonically_or_not_at_all(index in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let tx = altan_primitives::Transaction {
            chain_id: 1,
            nonce: 300,
            gas_limit: 70_000,
            gas_price: 1 << 70,
            action: altan_primitives::Action::Call {
                contract: altan_primitives::Address([3; 20]),
                input: vec![1; 70],
                value: 5,
            },
        }
        .sign(&crate::key(4));
        let mut bytes = tx.encode();
        let at = index.index(bytes.len());
        if cut { bytes.truncate(at) } else { bytes[at] = byte }
        all(&bytes)?;
    }
}

#[test]
fn a_huge_length_prefix_is_refused_without_allocating_it() {
    // A call whose input claims 2^30 bytes, followed by nothing.
    let mut bytes = vec![0u8; 8 + 8 + 8 + 16];
    bytes.push(2); // Action::Call
    bytes.extend_from_slice(&[0; 20]);
    bytes.extend_from_slice(&parity_scale_codec::Compact(1u32 << 30).encode());
    assert!(SignedTransaction::decode(&mut &bytes[..]).is_err());
}
