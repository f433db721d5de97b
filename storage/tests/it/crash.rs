//! A writer killed with SIGKILL in the middle of its commits leaves a database that opens at a
//! complete version: every commit it acknowledged is there, and nothing of a torn one. Each
//! reopen goes through `State::open`, which rebuilds the latest tree from the stored values and
//! refuses the store unless it hashes to the stored root.
//!
//! The writer is this test binary itself, started again with a filter that runs only
//! [`crash_writer`] and an environment variable naming the database. That way the test needs no
//! separate binary (which nextest would not build) and the writer is the same code under test.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use altan_runtime::state::Version;

use crate::common::{Model, apply_model, block, key, memory, open_rocks};

/// Set in the child: the directory of the database to write.
const WRITER_DIR: &str = "ALTAN_STORAGE_CRASH_WRITER_DIR";
/// The line the writer prints after each acknowledged commit, followed by the version.
const COMMITTED: &str = "crash-writer committed ";
const KEY_SPACE: u64 = 3_000;
const MAX_WRITES: u64 = 400;
/// The writer stops by itself after this many versions, should nobody kill it.
const MAX_VERSIONS: Version = 1_000_000;
/// How long each round lets the writer run after its first commit before killing it.
const KILL_AFTER_MS: [u64; 5] = [300, 740, 460, 800, 530];

/// The body of the child process, not a test of its own: without [`WRITER_DIR`] it returns at
/// once. With it, it commits the deterministic blocks from the database's next version on,
/// printing each version once its commit has returned, until it is killed. If the parent goes
/// away, printing to the closed pipe fails and the writer stops.
#[test]
fn crash_writer() {
    let Some(dir) = std::env::var_os(WRITER_DIR) else { return };
    let state = open_rocks(Path::new(&dir));
    let start = state.latest_version().unwrap().map_or(0, |latest| latest + 1);
    for version in start..MAX_VERSIONS {
        state.apply(version, &block(version, KEY_SPACE, MAX_WRITES)).unwrap();
        println!("{COMMITTED}{version}");
    }
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a writer on `dir` and returns it with the versions it reports, as they come.
fn start_writer(dir: &Path) -> (KillOnDrop, mpsc::Receiver<Version>, thread::JoinHandle<()>) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["crash::crash_writer", "--exact", "--nocapture", "--test-threads", "1"])
        .env(WRITER_DIR, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    let reader = thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest may print its own text before ours on the same line.
            let Some(at) = line.find(COMMITTED) else { continue };
            if let Ok(version) = line[at + COMMITTED.len()..].trim().parse() {
                let _ = sender.send(version);
            }
        }
    });
    (KillOnDrop(child), receiver, reader)
}

#[test]
fn a_killed_writer_leaves_its_acknowledged_commits_and_nothing_torn() {
    let dir = tempfile::tempdir().unwrap();
    let replay = memory();
    let mut model = Model::new();
    let mut replayed: Option<Version> = None;

    for (round, kill_after) in KILL_AFTER_MS.into_iter().enumerate() {
        let (mut writer, versions, reader) = start_writer(dir.path());
        let first = versions
            .recv_timeout(Duration::from_secs(120))
            .expect("the writer commits a first version");
        thread::sleep(Duration::from_millis(kill_after));
        writer.0.kill().unwrap();
        writer.0.wait().unwrap();
        reader.join().unwrap();
        let acknowledged = versions.try_iter().fold(first, Version::max);

        let state = open_rocks(dir.path());
        let latest = state.latest_version().unwrap().expect("a committed version");
        assert!(
            (acknowledged..=acknowledged + 1).contains(&latest),
            "round {round}: acknowledged {acknowledged}, found {latest}"
        );
        println!(
            "round {round}: killed after {kill_after} ms at version {acknowledged}, reopened at {latest}"
        );

        let next = replayed.map_or(0, |v| v + 1);
        for version in next..=latest {
            let changes = block(version, KEY_SPACE, MAX_WRITES);
            replay.apply(version, &changes).unwrap();
            apply_model(&mut model, &changes);
        }
        replayed = Some(latest);

        for version in 0..=latest {
            assert_eq!(
                state.root(version).unwrap(),
                replay.root(version).unwrap(),
                "root of {version}"
            );
        }
        for i in 0..KEY_SPACE {
            assert_eq!(state.get(&key(i), latest).unwrap().as_ref(), model.get(&key(i)), "key {i}");
        }
        let root = state.root(latest).unwrap();
        for i in (0..KEY_SPACE).step_by(97) {
            let (value, proof) = state.get_with_proof(&key(i), latest).unwrap();
            proof.verify(root, &key(i), value.as_deref()).unwrap();
        }
    }
}
