//! Address text forms: EIP-55 display, and parsing that accepts single-case hex but rejects a
//! mixed-case string whose checksum is wrong.

use altan_primitives::{Address, AddressParseError, HexError};
use proptest::prelude::*;

fn is_mixed_case(s: &str) -> bool {
    s.chars().any(|c| c.is_ascii_lowercase()) && s.chars().any(|c| c.is_ascii_uppercase())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn display_parse_round_trip(bytes in any::<[u8; 20]>()) {
        let address = Address(bytes);
        let shown = address.to_string();
        prop_assert_eq!(&shown, &address.to_checksum());
        prop_assert_eq!(shown.len(), 42);
        prop_assert!(shown.starts_with("0x"));
        prop_assert_eq!(shown[2..].to_ascii_lowercase(), hex::encode(bytes));
        prop_assert_eq!(shown.parse::<Address>(), Ok(address));
        prop_assert_eq!(format!("0x{}", hex::encode(bytes)).parse::<Address>(), Ok(address));
        prop_assert_eq!(
            format!("0x{}", hex::encode_upper(bytes)).parse::<Address>(),
            Ok(address)
        );
    }

    #[test]
    fn a_case_flip_in_a_checksummed_address_is_rejected(
        bytes in any::<[u8; 20]>(),
        pick in any::<prop::sample::Index>(),
    ) {
        let address = Address(bytes);
        let shown = address.to_checksum();
        let letters: Vec<usize> = shown
            .char_indices()
            .skip(2)
            .filter(|(_, c)| c.is_ascii_alphabetic())
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!letters.is_empty());
        let at = letters[pick.index(letters.len())];
        let mut flipped = shown.clone().into_bytes();
        flipped[at] = if flipped[at].is_ascii_uppercase() {
            flipped[at].to_ascii_lowercase()
        } else {
            flipped[at].to_ascii_uppercase()
        };
        let flipped = String::from_utf8(flipped).unwrap();
        let parsed = flipped.parse::<Address>();
        if is_mixed_case(&flipped[2..]) {
            prop_assert_eq!(parsed, Err(AddressParseError::BadChecksum { expected: shown }));
        } else {
            // The flip made it single-case, which carries no checksum and is accepted.
            prop_assert_eq!(parsed, Ok(address));
        }
    }
}

#[test]
fn wrong_checksums_of_known_addresses_are_rejected() {
    // From the EIP-55 specification, and one vector of shared/vectors.
    for good in [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        "0x83014F6cFEB4981F6F721264945684678f8DbA6b",
    ] {
        let address: Address = good.parse().unwrap();
        assert_eq!(address.to_string(), good);
        // Swap the case of every letter: still mixed case, and wrong everywhere.
        let swapped: String = good[2..]
            .chars()
            .map(|c| {
                if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() }
            })
            .collect();
        assert_eq!(
            format!("0x{swapped}").parse::<Address>(),
            Err(AddressParseError::BadChecksum { expected: good.to_owned() }),
            "{good} with every case swapped"
        );
    }
}

#[test]
fn malformed_addresses_are_rejected_with_specific_errors() {
    let hex = |e: HexError| Err(AddressParseError::Hex(e));
    let cases: [(&str, Result<Address, AddressParseError>); 8] = [
        ("", hex(HexError::MissingPrefix)),
        ("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", hex(HexError::MissingPrefix)),
        ("0X5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", hex(HexError::MissingPrefix)),
        ("0x", hex(HexError::WrongLength { expected: 20, found: 0 })),
        (
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea",
            hex(HexError::WrongLength { expected: 20, found: 19 }),
        ),
        (
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed00",
            hex(HexError::WrongLength { expected: 20, found: 21 }),
        ),
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae", hex(HexError::InvalidDigits)),
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", hex(HexError::InvalidDigits)),
    ];
    for (input, expected) in cases {
        assert_eq!(input.parse::<Address>(), expected, "input {input:?}");
    }
}
