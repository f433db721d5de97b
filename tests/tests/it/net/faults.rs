//! Validators crash (SIGKILL): with one of four down the others go on; with two down (half the
//! stake, more than a third) finality stops, and nothing conflicting is finalized; once a
//! third validator is back, finality resumes and the returning nodes catch up.

use std::time::Duration;

use super::{TIMEOUT, start};

/// Final blocks the live validators must add after each change.
const PROGRESS: u64 = 3;
/// How long finality must stay stopped with two validators down.
const STALL: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finality_survives_one_crash_and_stops_at_two() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = start(dir.path());
    devnet.wait_final(&[0, 1, 2, 3], 2, TIMEOUT).await;

    // One down: three of four equal stakes are more than two thirds.
    devnet.kill(3);
    let before = devnet.max_final_height(&[0, 1, 2]).await;
    devnet.wait_final(&[0, 1, 2], before + PROGRESS, TIMEOUT).await;
    devnet.assert_agree(&[0, 1, 2], before + PROGRESS).await;

    // Two down: half the stake cannot finalize. A commit in flight when the second validator
    // died may still land, so the watch starts after a moment.
    devnet.kill(2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stalled = devnet.assert_stalled(&[0, 1], STALL).await;
    devnet.wait_final(&[0, 1], stalled, TIMEOUT).await;
    devnet.assert_agree(&[0, 1], stalled).await;
    devnet.assert_no_conflict(&[0, 1], stalled + 1, stalled + 5).await;

    // One back: three validators again, the returning one on its old data.
    devnet.restart(2);
    devnet.wait_final(&[0, 1, 2], stalled + PROGRESS, TIMEOUT).await;
    devnet.assert_agree(&[0, 1, 2], stalled + PROGRESS).await;

    // The last one back catches up from further behind.
    devnet.restart(3);
    let head = devnet.max_final_height(&[0, 1, 2]).await;
    devnet.wait_final(&[0, 1, 2, 3], head + 1, TIMEOUT).await;
    devnet.assert_agree(&[0, 1, 2, 3], head + 1).await;
}
