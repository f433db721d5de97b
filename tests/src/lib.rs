//! End-to-end test support: the example contracts compiled to Wasm by the build script, a small
//! chain on the real runtime and state to run them on, and real node processes (one dev node, or
//! a network of validators).

pub mod chain;
pub mod net;
pub mod node;

/// The example contracts as the chain runs them.
pub mod wasm {
    include!(concat!(env!("OUT_DIR"), "/contracts.rs"));

    /// The compiled contract named `name`.
    pub fn get(name: &str) -> &'static [u8] {
        ALL.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, wasm)| *wasm)
            .unwrap_or_else(|| panic!("no contract named {name} under contracts/"))
    }
}

/// The custom section `name` of a Wasm module, if present.
pub fn custom_section<'a>(wasm: &'a [u8], name: &str) -> Option<&'a [u8]> {
    wasmparser::Parser::new(0).parse_all(wasm).find_map(|payload| match payload {
        Ok(wasmparser::Payload::CustomSection(section)) if section.name() == name => {
            Some(section.data())
        }
        _ => None,
    })
}
