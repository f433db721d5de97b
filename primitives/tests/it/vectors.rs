//! Known-answer tests against `primitives/tests/vectors/secp256k1-keys.json` (a copy, kept in
//! the repository so that a clone stands alone, of the vectors the project was given): public
//! keys and EIP-55 addresses as eth-account derives them, and signatures as libsecp256k1 makes
//! them.

use altan_primitives::{Address, Hash, SecretKey, Signature};

const PATH: &str = "primitives/tests/vectors/secp256k1-keys.json";
/// The vectors, compiled into the test.
const VECTORS: &str = include_str!("../vectors/secp256k1-keys.json");

/// The number of vectors the file holds; a shorter file must not pass silently.
const EXPECTED_VECTORS: usize = 16;

fn field<'a>(vector: &'a serde_json::Value, name: &str) -> &'a str {
    vector[name].as_str().unwrap_or_else(|| panic!("vector field {name} is missing: {vector}"))
}

/// Decodes a `0x`-prefixed hex field into exactly `N` bytes.
fn bytes<const N: usize>(vector: &serde_json::Value, name: &str) -> [u8; N] {
    let text = field(vector, name);
    let digits = text.strip_prefix("0x").unwrap_or_else(|| panic!("{name} lacks 0x: {text}"));
    let decoded = hex::decode(digits).unwrap_or_else(|e| panic!("{name} is not hex ({e}): {text}"));
    decoded.try_into().unwrap_or_else(|v: Vec<u8>| panic!("{name} has {} bytes, not {N}", v.len()))
}

fn load() -> Vec<serde_json::Value> {
    let json: serde_json::Value =
        serde_json::from_str(VECTORS).unwrap_or_else(|e| panic!("{PATH} is not valid JSON: {e}"));
    let vectors =
        json["vectors"].as_array().unwrap_or_else(|| panic!("{PATH} has no vectors array"));
    assert_eq!(vectors.len(), EXPECTED_VECTORS, "unexpected number of vectors in {PATH}");
    vectors.clone()
}

#[test]
fn keys_addresses_and_signatures_match_independent_implementations() {
    for (i, vector) in load().iter().enumerate() {
        let secret = SecretKey::from_bytes(&bytes::<32>(vector, "secret_key"))
            .unwrap_or_else(|e| panic!("vector {i}: secret key rejected: {e}"));

        let public = secret.public_key();
        let uncompressed = public.to_uncompressed().expect("a derived key is on the curve");
        assert_eq!(
            uncompressed,
            bytes::<65>(vector, "public_key_uncompressed"),
            "vector {i}: uncompressed public key"
        );

        let expected_address = field(vector, "address");
        let address = secret.address();
        assert_eq!(address.to_string(), expected_address, "vector {i}: address (Display)");
        assert_eq!(address.to_checksum(), expected_address, "vector {i}: address (to_checksum)");
        assert_eq!(public.address(), Ok(address), "vector {i}: address of the public key");
        assert_eq!(
            expected_address.parse::<Address>(),
            Ok(address),
            "vector {i}: the checksummed string parses back"
        );

        let prehash = Hash(bytes::<32>(vector, "prehash"));
        let signature = secret.sign_prehash(&prehash);
        assert_eq!(
            signature,
            Signature(bytes::<65>(vector, "signature_rsv")),
            "vector {i}: signature (r || s || v)"
        );
        assert_eq!(signature.recover_address(&prehash), Ok(address), "vector {i}: recovery");
        assert_eq!(signature.recover_public_key(&prehash), Ok(public), "vector {i}: recovered key");
    }
}
