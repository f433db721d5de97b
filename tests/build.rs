//! Compiles every contract under contracts/ to Wasm with the contract builder, so that the tests
//! run the real modules the chain would run.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.parent().expect("tests/ sits in the workspace").to_path_buf();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    // A target directory of its own: the outer build holds the lock on the main one.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("contract-wasm");
    let options = altan_contract_builder::Options { target_dir, out_dir: out.join("contracts") };

    for watched in [
        "contracts",
        "sdk/src",
        "sdk/macros/src",
        "primitives/src",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("contracts"))
        .expect("contracts/ exists")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();

    let mut listing = String::from(
        "/// Every example contract, compiled: (name, Wasm).\npub const ALL: &[(&str, &[u8])] = &[\n",
    );
    for dir in &dirs {
        let built = altan_contract_builder::build(dir, &options)
            .unwrap_or_else(|e| panic!("building {}: {e}", dir.display()));
        listing.push_str(&format!(
            "    ({:?}, include_bytes!({:?})),\n",
            built.name,
            path_str(&built.wasm)
        ));
    }
    listing.push_str("];\n");
    std::fs::write(out.join("contracts.rs"), listing).expect("OUT_DIR is writable");
}

fn path_str(path: &Path) -> String {
    path.to_str().expect("UTF-8 path").to_owned()
}
