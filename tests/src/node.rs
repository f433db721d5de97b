//! A real `altan` node process for end-to-end tests: started on loopback with ports chosen by
//! the operating system, its data on disk, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `altan` binary beside the test executable (`target/<profile>/altan`), or `$ALTAN_BIN`.
pub fn altan_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ALTAN_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/it-<hash> -> target/<profile>/altan
    let dir = exe.parent().and_then(Path::parent).expect("the target directory");
    let binary = dir.join("altan");
    assert!(
        binary.exists(),
        "{} is missing: build it first with `cargo build -p altan-node` (./x test does)",
        binary.display()
    );
    binary
}

/// A running `altan dev` node.
pub struct DevNode {
    child: Option<Child>,
    /// Its JSON-RPC URL (http://).
    pub rpc: String,
    /// Its metrics URL.
    pub metrics: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// What `altan dev --json` printed at start.
    pub banner: serde_json::Value,
}

impl DevNode {
    /// Starts `altan dev` on `data_dir` with extra arguments; waits for its banner.
    pub fn start(data_dir: &Path, extra: &[&str]) -> DevNode {
        let mut child = Command::new(altan_binary())
            .args(["dev", "--json", "--rpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting altan dev");
        let stdout = child.stdout.take().expect("piped stdout");
        let started = Instant::now();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reading the banner");
        assert!(!line.is_empty(), "altan dev exited before printing its banner");
        assert!(started.elapsed() < Duration::from_secs(30), "altan dev took too long to start");
        let banner: serde_json::Value = serde_json::from_str(&line).expect("a JSON banner");
        DevNode {
            rpc: banner["rpc"].as_str().expect("rpc in the banner").to_string(),
            metrics: banner["metrics"].as_str().expect("metrics in the banner").to_string(),
            data_dir: data_dir.to_path_buf(),
            banner,
            child: Some(child),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline =
                Instant::now().checked_add(Duration::from_secs(20)).unwrap_or_else(Instant::now);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        self.kill();
    }
}
