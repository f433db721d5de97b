//! Nodes that join late: a full node started from genesis after the chain has advanced, and a
//! validator restarted after the others went on without it, which must then vote again.

use super::{TIMEOUT, start};

/// Final blocks the chain adds while a node is away.
const AWAY: u64 = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_nodes_catch_up_and_the_validator_votes_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = start(dir.path());
    devnet.wait_final(&[0, 1, 2, 3], 2, TIMEOUT).await;

    devnet.kill(3);
    let before = devnet.max_final_height(&[0, 1, 2]).await;
    devnet.wait_final(&[0, 1, 2], before + AWAY, TIMEOUT).await;

    // A full node with nothing but the spec syncs from genesis to the head.
    let full = devnet.start_full_node();
    let head = devnet.max_final_height(&[0, 1, 2]).await;
    devnet.wait_final(&[full], head, TIMEOUT).await;
    devnet.assert_agree(&[0, 1, 2, full], head).await;

    // The validator comes back behind the others and catches up.
    devnet.restart(3);
    let head = devnet.max_final_height(&[0, 1, 2]).await;
    devnet.wait_final(&[3], head, TIMEOUT).await;
    devnet.assert_agree(&[0, 1, 2, 3, full], head).await;

    // With validator 0 down, blocks are final only if validator 3 votes: {1, 2, 3} are the
    // only three quarters of the stake left.
    devnet.kill(0);
    let head = devnet.max_final_height(&[1, 2, 3, full]).await;
    devnet.wait_final(&[1, 2, 3, full], head + AWAY, TIMEOUT).await;
    devnet.assert_agree(&[1, 2, 3, full], head + AWAY).await;
}
