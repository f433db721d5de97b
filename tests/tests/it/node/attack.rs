//! Free work used as an attack against a real `altan dev`: each test runs the attack and checks
//! the limit that stops it (issue #16). What anyone can ask for without paying must never stop
//! blocks, and is answered (served, or refused as busy) rather than left to pile up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use altan_node::client::{self, GasSettings};
use altan_node::rpc::AltanApiClient;
use altan_node::rpc::error::BUSY;
use altan_node::rpc::types::{HexBytes, QueryRequest, StatusJson};
use altan_primitives::{Action, Address};
use altan_tests::node::DevNode;
use jsonrpsee::core::ClientError;
use jsonrpsee::ws_client::WsClientBuilder;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{deploy, dev_key, input_for};

/// Attacking clients, as in the issue.
const ATTACKERS: usize = 40;
/// Honest transfers sent one after another during the attack, at least.
const HONEST_TRANSFERS: usize = 10;
/// How long the attack lasts, at least.
const ATTACK: Duration = Duration::from_secs(3);
/// The most one honest transfer may take from submission to its receipt under attack. Blocks
/// come on demand in well under a second when idle; the slack is for a loaded test machine.
const MAX_HONEST_LATENCY: Duration = Duration::from_secs(20);

/// What one attacking client got back.
#[derive(Debug, Default)]
struct Answers {
    served: u32,
    busy: u32,
    other: Vec<String>,
}

/// Issue #16, hole 1: 40 clients query, as fast as they are answered, a contract that calls
/// itself 63 times (64 live instances per query, which once exhausted the pool that block
/// execution shared), while an honest client sends transfers one after another. Every honest
/// transfer must be included promptly, every attacking query served or refused as busy, and
/// the deep query must still work after the attack. The node runs queries on one thread with a
/// queue of four, so that the attack also meets the busy refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deep_queries_from_many_clients_never_stop_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(
        &dir.path().join("data"),
        // Every client of this test shares 127.0.0.1: lift the per-address limit, which is not
        // what this test is about.
        &[
            "--rpc-execution-threads",
            "1",
            "--rpc-execution-queue",
            "4",
            "--rpc-max-connections-per-ip",
            "1024",
        ],
    );
    let rpc = client::http(&node.rpc).unwrap();
    let recurse = deploy(&rpc, &dev_key(1), "recurse", &[], 0).await;
    let input = input_for(&rpc, recurse, "fan_out", &[("count", Value::from(63))]).await;
    let request =
        QueryRequest { contract: recurse, input: HexBytes(input), from: None, gas: None, at: None };
    let deep = rpc.query(request.clone()).await.unwrap();
    assert_eq!(deep.status, StatusJson::Success, "{deep:?}");
    assert_eq!(deep.output.0, 63u32.to_le_bytes(), "the query nests 64 instances");

    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            let (rpc, request, stop) =
                (client::http(&node.rpc).unwrap(), request.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut answers = Answers::default();
                while !stop.load(Ordering::Relaxed) {
                    match rpc.query(request.clone()).await {
                        Ok(outcome) if outcome.status == StatusJson::Success => answers.served += 1,
                        Err(ClientError::Call(error)) if error.code() == BUSY => answers.busy += 1,
                        other => answers.other.push(format!("{other:?}")),
                    }
                }
                answers
            })
        })
        .collect();

    let height_before = rpc.head().await.unwrap().height;
    let honest = dev_key(2);
    let gas = GasSettings { limit: Some(100_000), price: 1 };
    let mut slowest = Duration::ZERO;
    let attack_started = Instant::now();
    let mut sent = 0;
    while sent < HONEST_TRANSFERS || attack_started.elapsed() < ATTACK {
        sent += 1;
        let started = Instant::now();
        let action = Action::Transfer { to: Address([0x16; 20]), value: 1 };
        let receipt =
            tokio::time::timeout(MAX_HONEST_LATENCY, client::send(&rpc, &honest, action, gas))
                .await
                .expect("an honest transfer was not included in time under attack")
                .unwrap();
        assert_eq!(receipt.status, StatusJson::Success, "{receipt:?}");
        slowest = slowest.max(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = Answers::default();
    for attacker in attackers {
        let answers = attacker.await.unwrap();
        total.served += answers.served;
        total.busy += answers.busy;
        total.other.extend(answers.other);
    }
    eprintln!(
        "under attack: slowest honest transfer {slowest:?}; attacking queries served {}, refused as busy {}",
        total.served, total.busy
    );
    assert!(
        total.other.is_empty(),
        "answers other than served or busy: {:?}",
        &total.other[..total.other.len().min(5)]
    );
    assert!(total.served > 0, "the pool serves queries while it refuses the excess");
    assert!(total.busy > 0, "beyond one running and four waiting, queries are refused as busy");
    let height_after = rpc.head().await.unwrap().height;
    assert!(height_after >= height_before + sent as u64, "one block per transfer at least");
    let deep = rpc.query(request).await.unwrap();
    assert_eq!(deep.status, StatusJson::Success, "queries work after the attack: {deep:?}");
}

/// Issue #16, hole 2: WebSocket sessions that sit idle (answering pings) fill every WebSocket
/// slot; HTTP requests are still served, because they have a limit of their own, and one more
/// WebSocket is refused rather than let in.
#[tokio::test]
async fn idle_websockets_never_lock_out_http() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(
        &dir.path().join("data"),
        &["--rpc-max-ws-sessions", "8", "--rpc-max-http-requests", "8"],
    );
    let ws_url = node.rpc.replacen("http://", "ws://", 1);
    let mut sessions = Vec::new();
    for _ in 0..8 {
        sessions.push(WsClientBuilder::default().build(&ws_url).await.unwrap());
    }
    for session in &sessions {
        session.head().await.unwrap();
    }
    assert!(WsClientBuilder::default().build(&ws_url).await.is_err(), "a ninth session is refused");
    let rpc = client::http(&node.rpc).unwrap();
    for _ in 0..32 {
        rpc.head().await.expect("HTTP is served while every WebSocket slot is taken");
    }
    drop(sessions.pop());
    let again = until_ok(|| WsClientBuilder::default().build(&ws_url)).await;
    again.head().await.unwrap();
}

/// Issue #16, hole 2: one address holds at most its share of connections, and a connection that
/// sends nothing is closed after the idle timeout, giving its place back.
#[tokio::test]
async fn connections_are_bounded_per_address_and_idle_ones_closed() {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(
        &dir.path().join("data"),
        &["--rpc-max-connections-per-ip", "4", "--rpc-idle-timeout", "1"],
    );
    let host = node.rpc.strip_prefix("http://").unwrap().to_string();
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(&host).await.unwrap());
    }
    // The fifth connection from this address is closed without an answer.
    let mut fifth = TcpStream::connect(&host).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"chain_head"}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = fifth.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), fifth.read_to_end(&mut answer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the fifth connection got {:?}",
        String::from_utf8_lossy(&answer)
    );
    // The idle four are closed by the server within a few idle timeouts.
    for stream in &mut idle {
        let mut byte = [0; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "an idle connection stayed open: {read:?}");
    }
    // Their places are free again.
    let rpc = client::http(&node.rpc).unwrap();
    let head = until_ok(|| rpc.head()).await;
    assert!(head.height < u64::MAX);
}

/// Tries `attempt` until it succeeds, for up to 10 s (a freed place is given back when the
/// server notices the connection closed).
async fn until_ok<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    mut attempt: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(error) if Instant::now() > deadline => {
                panic!("still failing after 10 s: {error:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
