//! The `altan` binary: see `altan --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match altan_node::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain of causes, without a backtrace: these are messages for people.
            eprintln!("error: {}", altan_node::cli::describe_error(&error));
            ExitCode::FAILURE
        }
    }
}
