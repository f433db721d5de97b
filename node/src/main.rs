//! The `altan` binary: see `altan --help`.

use std::process::ExitCode;

/// jemalloc rather than the system allocator. A block's state root copies the paths it touches
/// into some 10 MB of fresh tree nodes, in pieces of up to 2 KB, and the commit allocates once per
/// value; with glibc's malloc, computing and committing a block of 10,000 fresh keys took 7%
/// longer (BENCHMARKS.md, state: root and commit).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
