//! `altan-contract build <dir>...`: builds contracts and prints their size and code hash.

use std::path::PathBuf;
use std::process::ExitCode;

use altan_contract_builder::{Options, build};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some("build"), dirs) =
        (args.first().map(String::as_str), args.get(1..).unwrap_or_default())
    else {
        eprintln!("usage: altan-contract build <contract dir>...");
        return ExitCode::from(2);
    };
    if dirs.is_empty() {
        eprintln!("usage: altan-contract build <contract dir>...");
        return ExitCode::from(2);
    }
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let options = Options { out_dir: target_dir.join("contracts"), target_dir };
    for dir in dirs {
        match build(&PathBuf::from(dir), &options) {
            Ok(built) => {
                #[allow(clippy::print_stdout)]
                {
                    println!(
                        "{:<10} {:>7} bytes  code hash {}  {}",
                        built.name,
                        built.size,
                        built.code_hash_hex(),
                        built.wasm.display()
                    );
                }
            }
            Err(error) => {
                eprintln!("{dir}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
