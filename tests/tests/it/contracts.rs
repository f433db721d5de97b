use altan_primitives::{Address, ExecutionStatus, Hash};
use altan_sdk::Event;
use altan_tests::chain::{Chain, account, revert_of};
use altan_tests::{custom_section, wasm};
use parity_scale_codec::Decode;

#[test]
fn every_contract_passes_validation_and_embeds_its_interface() {
    assert!(wasm::ALL.len() >= 2);
    for (name, code) in wasm::ALL {
        altan_runtime::vm::validate(code).unwrap_or_else(|e| panic!("{name}: {e}"));
        let interface = custom_section(code, "altan.interface")
            .unwrap_or_else(|| panic!("{name} has no interface"));
        let text = std::str::from_utf8(interface).unwrap();
        assert!(text.starts_with("{\"name\":"), "{name}: {text}");
    }
    assert_eq!(
        custom_section(wasm::get("token"), "altan.interface").unwrap(),
        token::Token::INTERFACE.as_bytes()
    );
}

#[test]
fn events_and_errors_are_described_in_the_wasm() {
    use altan_sdk::ContractError;
    let code = wasm::get("token");
    let events =
        std::str::from_utf8(custom_section(code, "altan.events").expect("events section")).unwrap();
    let mut lines: Vec<&str> = events.lines().collect();
    lines.sort();
    let mut expected =
        vec![<token::Transfer as Event>::INTERFACE, <token::Approval as Event>::INTERFACE];
    expected.sort();
    assert_eq!(lines, expected);
    assert!(
        token::Transfer::INTERFACE
            .contains("\"name\":\"from\",\"type\":\"Address\",\"topic\":true")
    );
    let errors =
        std::str::from_utf8(custom_section(code, "altan.errors").expect("errors section")).unwrap();
    assert_eq!(errors.trim_end(), <token::Error as ContractError>::INTERFACE);
    assert!(errors.contains(
        "{\"code\":1,\"name\":\"InsufficientAllowance\",\"message\":\"insufficient allowance\"}"
    ));
}

#[test]
fn the_same_sources_build_to_the_same_bytes() {
    // A second build from scratch, in a target directory of its own, must match the build
    // script's byte for byte: no paths, times or randomness reach the module.
    let target = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let options = altan_contract_builder::Options {
        target_dir: target.path().join("target"),
        out_dir: target.path().join("out"),
    };
    let built = altan_contract_builder::build(&root.join("contracts/counter"), &options).unwrap();
    assert_eq!(std::fs::read(&built.wasm).unwrap(), wasm::get("counter"));
    assert_eq!(built.code_hash, *altan_primitives::blake3(wasm::get("counter")).as_bytes());
}

fn deploy_token(chain: &mut Chain, supply: u128) -> Address {
    chain.deploy_ok(
        0,
        wasm::get("token"),
        (String::from("Altan"), String::from("ALT"), 18u8, supply),
    )
}

#[test]
fn token_transfers_and_emits_on_chain() {
    let mut chain = Chain::new();
    let token = deploy_token(&mut chain, 1_000);
    assert_eq!(chain.query_ok::<String>(token, "symbol", ()), "ALT");
    assert_eq!(chain.query_ok::<u128>(token, "balance_of", (account(0),)), 1_000);

    let receipt = chain.call(0, token, "transfer", (account(1), 300u128), 0);
    assert_eq!(receipt.status, ExecutionStatus::Success, "{receipt:?}");
    let event = &receipt.events[0];
    let transfer = token::Transfer { from: account(0), to: account(1), value: 300 };
    assert_eq!(event.topics, transfer.topics());
    assert_eq!(token::Transfer::decode(&mut &event.data[..]).unwrap(), transfer);
    assert_eq!(chain.query_ok::<u128>(token, "balance_of", (account(1),)), 300);
    assert_eq!(chain.query_ok::<u128>(token, "balance_of", (account(0),)), 700);
}

#[test]
fn token_errors_revert_with_code_and_message_and_keep_the_fee() {
    let mut chain = Chain::new();
    let token = deploy_token(&mut chain, 10);
    let before = chain.account(&account(1));
    let receipt = chain.call(1, token, "transfer", (account(0), 5u128), 0);
    let revert = revert_of(&receipt);
    assert_eq!((revert.code, revert.message.as_str()), (0, "insufficient balance"));
    assert!(receipt.events.is_empty());
    let after = chain.account(&account(1));
    assert_eq!(after.balance, before.balance - u128::from(receipt.gas_used));
    assert_eq!(chain.query_ok::<u128>(token, "balance_of", (account(0),)), 10);
}

#[test]
fn sdk_rules_hold_on_chain() {
    let mut chain = Chain::new();
    let token = deploy_token(&mut chain, 10);
    // Value sent to a method that is not payable.
    let receipt = chain.call(0, token, "balance_of", (account(0),), 5);
    assert_eq!(revert_of(&receipt).code, altan_sdk::codes::NOT_PAYABLE);
    // An unknown selector, and arguments that do not decode.
    let receipt = chain.call(0, token, "mint", (account(0),), 0);
    assert_eq!(revert_of(&receipt).code, altan_sdk::codes::UNKNOWN_SELECTOR);
    let receipt = chain.call(0, token, "transfer", (account(1),), 0);
    assert_eq!(revert_of(&receipt).code, altan_sdk::codes::BAD_ARGUMENTS);
    // Read-only methods run without a transaction.
    assert_eq!(chain.query_ok::<u128>(token, "total_supply", ()), 10);
}

#[test]
fn counter_counts_on_chain_and_refuses_strangers() {
    let mut chain = Chain::new();
    let counter = chain.deploy_ok(0, wasm::get("counter"), (7u64,));
    assert_eq!(chain.call_ok::<u64>(1, counter, "increment", (5u64,)), 12);
    assert_eq!(
        revert_of(&chain.call(1, counter, "reset", (), 0)).message,
        "only the owner may reset the counter"
    );
    chain.call_ok::<()>(0, counter, "reset", ());
    assert_eq!(chain.query_ok::<u64>(counter, "get", ()), 0);
    let _ = Hash::ZERO;
}
