//! Builds Altan contracts.
//!
//! [`build`] compiles a contract crate for `wasm32-unknown-unknown` with the workspace's
//! `contract` profile (size-optimized, LTO, one codegen unit, `panic = "abort"`, stripped), runs
//! binaryen's `wasm-opt -Oz` over it, checks the result against the runtime's deploy-time
//! validation (with the `validate` feature), and writes `<name>.wasm` to the output directory.
//! The same sources with the same toolchain and binaryen give the same bytes, hence the same code
//! hash, on any machine: source paths are remapped and no timestamps end up in the module.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A built contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The crate's name.
    pub name: String,
    /// Where the optimized Wasm was written.
    pub wasm: PathBuf,
    /// Its size in bytes.
    pub size: usize,
    /// blake3 of the Wasm: the code hash the chain will use.
    pub code_hash: [u8; 32],
}

impl Built {
    /// The code hash as 0x hex.
    pub fn code_hash_hex(&self) -> String {
        let mut out = String::from("0x");
        for byte in self.code_hash {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

/// Why a build failed.
#[derive(Debug)]
pub enum BuildError {
    /// A command could not be run.
    Spawn(&'static str, std::io::Error),
    /// A command failed.
    Failed(String),
    /// A file could not be read or written.
    Io(PathBuf, std::io::Error),
    /// The contract does not pass the chain's deploy-time validation.
    Invalid(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Spawn(what, error) => write!(f, "could not run {what}: {error}"),
            BuildError::Failed(message) => f.write_str(message),
            BuildError::Io(path, error) => write!(f, "{}: {error}", path.display()),
            BuildError::Invalid(message) => {
                write!(f, "the chain would refuse this contract: {message}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Where and how to build.
#[derive(Debug, Clone)]
pub struct Options {
    /// Cargo's target directory for the Wasm build.
    pub target_dir: PathBuf,
    /// Where to write `<name>.wasm`.
    pub out_dir: PathBuf,
}

/// The wasm-opt flags: the features rustc's wasm32 target emits, all of which the chain accepts.
const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// The package's name and its workspace's root.
fn package(manifest: &Path) -> Result<(String, PathBuf), BuildError> {
    let output = Command::new(cargo())
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(manifest)
        .output()
        .map_err(|e| BuildError::Spawn("cargo metadata", e))?;
    if !output.status.success() {
        return Err(BuildError::Failed(String::from_utf8_lossy(&output.stderr).into_owned()));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| BuildError::Failed(format!("cargo metadata: {e}")))?;
    let manifest =
        std::fs::canonicalize(manifest).map_err(|e| BuildError::Io(manifest.to_path_buf(), e))?;
    let name = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .and_then(|p| p["name"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| BuildError::Failed(format!("no package in {}", manifest.display())))?;
    let root = metadata["workspace_root"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| BuildError::Failed("cargo metadata has no workspace_root".into()))?;
    Ok((name, root))
}

/// The flags of the Wasm build. Source paths (the workspace, cargo's registry) are remapped, so
/// that panic locations compiled into the module do not depend on where the sources sit: two
/// machines build the same bytes. The stack size matches `.cargo/config.toml`, which these flags
/// replace.
fn rustflags(workspace_root: &Path) -> String {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let mut flags = vec![
        "-Clink-arg=-zstack-size=32768".to_owned(),
        format!("--remap-path-prefix={}=/src", workspace_root.display()),
    ];
    if let Some(cargo_home) = cargo_home {
        flags.push(format!("--remap-path-prefix={}=/cargo", cargo_home.display()));
    }
    flags.join("\u{1f}")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds the contract crate in `dir`.
pub fn build(dir: &Path, options: &Options) -> Result<Built, BuildError> {
    let manifest = dir.join("Cargo.toml");
    let (name, workspace_root) = package(&manifest)?;
    let mut command = Command::new(cargo());
    command
        .args([
            "build",
            "--quiet",
            "--locked",
            "--profile",
            "contract",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&options.target_dir);
    // A build script calling this inherits flags meant for the host build; the Wasm build gets
    // its own.
    // Under `cargo clippy` the outer build also passes its wrapper, which would lint the
    // contract's dependencies for wasm32 instead of building them.
    for variable in [
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
    ] {
        command.env_remove(variable);
    }
    command.env("CARGO_ENCODED_RUSTFLAGS", rustflags(&workspace_root));
    let status = command.status().map_err(|e| BuildError::Spawn("cargo build", e))?;
    if !status.success() {
        return Err(BuildError::Failed(format!("cargo build of {name} failed")));
    }
    let raw = options
        .target_dir
        .join("wasm32-unknown-unknown/contract")
        .join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::create_dir_all(&options.out_dir)
        .map_err(|e| BuildError::Io(options.out_dir.clone(), e))?;
    let wasm = options.out_dir.join(format!("{name}.wasm"));
    let status = Command::new("wasm-opt")
        .arg("-Oz")
        .args(WASM_OPT_FEATURES)
        .arg(&raw)
        .arg("-o")
        .arg(&wasm)
        .status()
        .map_err(|e| BuildError::Spawn("wasm-opt (install binaryen: ./x setup)", e))?;
    if !status.success() {
        return Err(BuildError::Failed(format!("wasm-opt failed on {}", raw.display())));
    }
    let bytes = std::fs::read(&wasm).map_err(|e| BuildError::Io(wasm.clone(), e))?;
    #[cfg(feature = "validate")]
    altan_runtime::vm::validate(&bytes).map_err(|e| BuildError::Invalid(e.to_string()))?;
    Ok(Built { name, wasm, size: bytes.len(), code_hash: *blake3::hash(&bytes).as_bytes() })
}
