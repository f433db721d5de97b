//! A hostile peer against a real one-validator `altan run` process: undecodable gossip on every
//! topic, a consensus message with a bad signature, a proposal that carries another block than
//! it proposes, a flood of garbage, and block requests the node must refuse. Throughout, the
//! node must keep finalizing blocks, keep answering RPC and keep its memory bounded, and it
//! counts what it refused in `altan_network_invalid_messages`.
//!
//! What the hostile peer cannot see is how the node scores it (gossipsub graylists a peer after
//! a few rejected messages and then drops what it sends unread), so the assertions are on what
//! is observable from outside: the metric, RPC, block heights and the process's memory. Each
//! kind of abuse comes from a new identity, so that one step's penalty does not hide the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use altan_node::engine::wire::{ConsensusGossip, decode_sync_item};
use altan_node::network::codec::{BlocksRequest, BlocksResponse, SyncCodec};
use altan_node::network::{PeerId, Refusal, Topic};
use altan_node::rpc::AltanApiClient;
use altan_primitives::{Block, Hash, Header, Proposal, Vote, VoteKind, blake3};
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Swarm, request_response};

use crate::support::{
    Node, NodeConfig, Peer, RPC_TIMEOUT, TOKEN, key, now_ms, spec, sync_requester,
};

const CHAIN_ID: u64 = 7_201;
/// The metric of refused peer messages.
const INVALID: &str = "altan_network_invalid_messages";
/// The node's resident memory must stay below this (it idles at well under 100 MiB; its
/// rocksdb block cache may grow to 256 MiB, but this chain holds a few hundred small blocks).
const MAX_RSS_BYTES: u64 = 400 << 20;
/// Garbage messages in the flood.
const FLOOD: usize = 5_000;
/// The longest the node may go without finalizing a block while it is abused (it finalizes
/// one every ~200 ms when left alone; the slack is for a loaded test machine).
const MAX_STALL: Duration = Duration::from_secs(15);

/// What the watcher saw while the node was abused.
#[derive(Debug, Default)]
struct Watched {
    samples: u32,
    rpc_failures: Vec<String>,
    slowest_rpc: Duration,
    max_rss: u64,
    longest_stall: Duration,
    final_height: u64,
}

/// Polls the node's RPC and memory every 100 ms until `stop` is set.
async fn watch(
    client: jsonrpsee::http_client::HttpClient,
    pid: u32,
    stop: Arc<AtomicBool>,
) -> Watched {
    let mut watched = Watched::default();
    let mut last_progress = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match tokio::time::timeout(RPC_TIMEOUT, client.health()).await {
            Ok(Ok(health)) => {
                if health.final_height > watched.final_height {
                    watched.final_height = health.final_height;
                    last_progress = Instant::now();
                }
            }
            Ok(Err(error)) => watched.rpc_failures.push(error.to_string()),
            Err(_) => watched.rpc_failures.push(format!("no answer within {RPC_TIMEOUT:?}")),
        }
        watched.slowest_rpc = watched.slowest_rpc.max(started.elapsed());
        watched.longest_stall = watched.longest_stall.max(last_progress.elapsed());
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(status) => {
                let kib = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                watched.max_rss = watched.max_rss.max(kib.unwrap_or(0) * 1024);
            }
            Err(error) => watched.rpc_failures.push(format!("the process is gone: {error}")),
        }
        watched.samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watched
}

/// Waits until the invalid-message counter reaches `target`; false if it did not in `timeout`.
async fn invalid_reaches(node: &Node, target: f64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if node.metric(INVALID).await.is_ok_and(|v| v >= target) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn invalid(node: &Node) -> f64 {
    node.metric(INVALID).await.expect("the invalid-message metric")
}

type SyncSwarm = Swarm<request_response::Behaviour<SyncCodec>>;

async fn sync_request(swarm: &mut SyncSwarm, peer: PeerId, from: u64, to: u64) -> BlocksResponse {
    let id = swarm.behaviour_mut().send_request(&peer, BlocksRequest { from, to });
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, swarm.select_next_some())
            .await
            .unwrap_or_else(|_| panic!("no answer to the request for {from}..={to}"));
        match event {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            }) if request_id == id => return response,
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            }) if request_id == id => panic!("the request for {from}..={to} failed: {error}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_neither_stops_nor_bloats_the_node() {
    let v = key();
    let spec = spec(CHAIN_ID, &[(&v, 1_000 * TOKEN)], &[]);
    let node =
        Node::start("V", &spec, NodeConfig { key: Some(v.clone()), ..Default::default() }).await;
    node.wait_final(2, Duration::from_secs(20)).await;
    let first = invalid(&node).await;
    assert_eq!(first, 0.0, "nothing was refused before the abuse");

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch(node.rpc().clone(), node.pid(), Arc::clone(&stop)));

    // (a) Bytes that decode as nothing, on every topic.
    let peer = Peer::connect(&node).await;
    for (i, topic) in Topic::ALL.into_iter().enumerate() {
        // Distinct lengths: gossip message ids are hashes of the bytes, whatever the topic.
        peer.publish_raw(topic, vec![0xff; 40 + i]).await.expect("publishing garbage");
    }
    assert!(
        invalid_reaches(&node, first + 3.0, Duration::from_secs(10)).await,
        "undecodable messages on the three topics were not all counted: {}",
        invalid(&node).await
    );
    drop(peer);

    // (b) A vote of the validator's own key with a signature that recovers nothing. It is
    // checked only at the node's current height (or the one just decided), so it is sent for
    // the height the node reports and again if the node moved on too fast.
    let mut peer = Peer::connect(&node).await;
    let base = invalid(&node).await;
    let mut counted = false;
    for _attempt in 0..5 {
        let health = node.health().await.unwrap();
        let height = health.consensus.map_or(health.final_height + 1, |c| c.height);
        let mut vote = Vote {
            chain_id: spec.chain_id,
            height,
            round: 0,
            kind: VoteKind::Prevote,
            block_hash: Some(blake3(b"a block")),
        }
        .sign(&v);
        vote.signature.0[64] = 9;
        peer.publish_consensus(ConsensusGossip::Vote(vote)).await;
        if invalid_reaches(&node, base + 1.0, Duration::from_secs(3)).await {
            counted = true;
            break;
        }
    }
    assert!(counted, "a badly signed vote was not counted as invalid");
    drop(peer);

    // (c) A proposal, signed by the validator, whose carried block is not the proposed one.
    let mut peer = Peer::connect(&node).await;
    let base = invalid(&node).await;
    let height = node.final_height().await.unwrap() + 1;
    let header = Header {
        chain_id: spec.chain_id,
        height,
        parent_hash: Hash::ZERO,
        timestamp_ms: now_ms(),
        proposer: v.address(),
        state_root: Hash::ZERO,
        transactions_root: Hash::ZERO,
        receipts_root: Hash::ZERO,
        parent_certificate_hash: Hash::ZERO,
        evidence_root: Hash::ZERO,
        gas_used: 0,
        gas_limit: spec.block_gas_limit,
    };
    let block =
        Block { header, transactions: Vec::new(), parent_certificate: None, evidence: Vec::new() };
    let proposal = Proposal {
        chain_id: spec.chain_id,
        height,
        round: 0,
        block_hash: blake3(b"another block"),
        pol_round: None,
    }
    .sign(&v);
    assert_ne!(proposal.proposal.block_hash, block.hash());
    peer.publish_consensus(ConsensusGossip::Proposal { proposal, block: Some(Box::new(block)) })
        .await;
    assert!(
        invalid_reaches(&node, base + 1.0, Duration::from_secs(10)).await,
        "a proposal carrying another block was not counted as invalid"
    );
    drop(peer);

    // (d) A flood of distinct garbage, as fast as the peer can publish it.
    let peer = Peer::connect(&node).await;
    let base = invalid(&node).await;
    let before_flood = node.final_height().await.unwrap();
    let started = Instant::now();
    let (mut published, mut refused_locally) = (0usize, 0usize);
    for i in 0..FLOOD {
        let topic = Topic::ALL[i % Topic::ALL.len()];
        // Eight distinct bytes, then a tag no enum has and a length prefix over every limit.
        let mut bytes = (i as u64).to_le_bytes().to_vec();
        bytes.resize(64 + (i % 16) * 256, 0xfe);
        match peer.publish_raw(topic, bytes).await {
            Ok(()) => published += 1,
            Err(_) => refused_locally += 1,
        }
    }
    let flood_time = started.elapsed();
    assert!(published > 0, "the peer could publish none of the flood");
    assert!(
        invalid_reaches(&node, base + 1.0, Duration::from_secs(10)).await,
        "the flood was not counted as invalid"
    );
    let counted = invalid(&node).await - base;
    eprintln!(
        "flood: {published} of {FLOOD} published in {flood_time:?} ({refused_locally} refused by \
         the peer's own queue); the node counted {counted} as invalid"
    );
    // One identity's garbage is cheap to ignore: after a few rejections gossipsub graylists
    // the peer and drops what it sends before the node decodes it.
    assert!(
        counted < (published / 2) as f64,
        "the node validated {counted} of {published} garbage messages from one peer"
    );
    node.wait_final(before_flood + 5, Duration::from_secs(30)).await;
    drop(peer);

    // (e) Block requests the node must refuse, and one it must serve, on one connection.
    let mut client = sync_requester(
        spec.chain_id,
        SyncCodec { max_response_bytes: 32 << 20 },
        Duration::from_secs(10),
    );
    client.dial(node.bootnode()).expect("dialing the node");
    let reversed = sync_request(&mut client, node.peer_id, 9, 8).await;
    assert_eq!(reversed, BlocksResponse::Refused(Refusal::InvalidRange));
    let oversized = sync_request(&mut client, node.peer_id, 1, 1_000).await;
    assert_eq!(oversized, BlocksResponse::Refused(Refusal::RangeTooLarge { max: 64 }));
    let everything = sync_request(&mut client, node.peer_id, 0, u64::MAX).await;
    assert_eq!(everything, BlocksResponse::Refused(Refusal::RangeTooLarge { max: 64 }));
    match sync_request(&mut client, node.peer_id, 1, 3).await {
        BlocksResponse::Items(items) => {
            let heights: Vec<(u64, u64)> = items
                .iter()
                .map(|bytes| decode_sync_item(bytes).expect("a sync item"))
                .map(|item| (item.block.header.height, item.certificate.height))
                .collect();
            assert_eq!(heights, vec![(1, 1), (2, 2), (3, 3)]);
        }
        refused => panic!("a valid request was refused: {refused:?}"),
    }

    // Through all of it the node kept finalizing, answering and within its memory bound.
    let now = node.final_height().await.unwrap();
    node.wait_final(now + 3, Duration::from_secs(20)).await;
    stop.store(true, Ordering::Relaxed);
    let watched = watcher.await.expect("the watcher");
    eprintln!("watched: {watched:?}");
    assert!(watched.samples > 10, "too few samples: {watched:?}");
    assert!(watched.rpc_failures.is_empty(), "RPC failed while abused: {watched:?}");
    assert!(watched.longest_stall < MAX_STALL, "finality stalled: {watched:?}");
    assert!(
        watched.max_rss > 0 && watched.max_rss < MAX_RSS_BYTES,
        "resident memory {} MiB (bound {} MiB)",
        watched.max_rss >> 20,
        MAX_RSS_BYTES >> 20
    );
    let rss = node.rss_bytes().unwrap();
    assert!(rss < MAX_RSS_BYTES, "resident memory {} MiB at the end", rss >> 20);
    let total = invalid(&node).await;
    assert!(total >= first + 6.0, "{total} refused messages counted in all");
}
