//! The network service with real swarms on loopback TCP: discovery, gossip and its validation,
//! size limits, block sync and the persistent identity.
//!
//! Every wait is for an event or a condition, bounded by [`WAIT`], and fails with what it was
//! waiting for.

use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use altan_node::network::codec::{BlocksResponse, fit_response};
use altan_node::network::{
    self, MessageId, Multiaddr, NetworkConfig, NetworkError, NetworkEvent, NetworkHandle, PeerId,
    Refusal, Topic, Validation, load_or_create_key,
};
use futures::StreamExt;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{StreamProtocol, request_response};

use crate::support::sync_requester;
use parity_scale_codec::Encode;
use tokio::sync::mpsc;

const CHAIN: u64 = 7;
/// The longest any one condition may take to come true.
const WAIT: Duration = Duration::from_secs(15);
/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(50);

fn config() -> NetworkConfig {
    let mut config = NetworkConfig::new(
        "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        Keypair::generate_ed25519(),
        CHAIN,
    );
    config.heartbeat_interval = Duration::from_millis(200);
    config.discovery_interval = Duration::from_millis(500);
    config.request_timeout = Duration::from_secs(5);
    config
}

struct Node {
    handle: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    /// The listen address with `/p2p/<peer id>`, as a bootnode entry.
    address: Multiaddr,
}

impl Node {
    fn id(&self) -> PeerId {
        self.handle.local_peer_id()
    }

    async fn start(config: NetworkConfig) -> Node {
        let (handle, events) = network::start(config).await.expect("the network starts");
        let listen = handle.listen_addresses().await.unwrap();
        let address = listen[0].clone().with(Protocol::P2p(handle.local_peer_id()));
        Node { handle, events, address }
    }

    async fn peer_ids(&self) -> Vec<PeerId> {
        self.handle.peers().await.unwrap().into_iter().map(|p| p.peer_id).collect()
    }

    /// The next gossip message, skipping peer events.
    async fn next_gossip(&mut self, what: &str) -> (Topic, PeerId, MessageId, Vec<u8>) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.events.recv()).await {
                Ok(Some(NetworkEvent::Gossip { topic, source, id, data })) => {
                    return (topic, source, id, data);
                }
                Ok(Some(NetworkEvent::BlocksRequested { .. })) => panic!("{what}: block request"),
                Ok(Some(_)) => {}
                Ok(None) => panic!("{what}: the network stopped"),
                Err(_) => panic!("{what}: nothing within {WAIT:?}"),
            }
        }
    }
}

fn with_bootnodes(mut config: NetworkConfig, bootnodes: &[&Node]) -> NetworkConfig {
    config.bootnodes = bootnodes.iter().map(|n| n.address.clone()).collect();
    config
}

/// Checks `condition` until it holds, failing after [`WAIT`] with `what`.
async fn until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(POLL).await;
    }
}

fn sorted(mut peers: Vec<PeerId>) -> Vec<PeerId> {
    peers.sort();
    peers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_discover_each_other_and_gossip() {
    let mut a = Node::start(config()).await;
    let mut b = Node::start(with_bootnodes(config(), &[&a])).await;
    // c knows only a, and finds b through Kademlia.
    let mut c = Node::start(with_bootnodes(config(), &[&a])).await;

    for (node, others) in [(&a, [b.id(), c.id()]), (&b, [a.id(), c.id()]), (&c, [a.id(), b.id()])] {
        let others = sorted(others.to_vec());
        until("every node connected to the two others", || async {
            node.peer_ids().await == others
        })
        .await;
        until("the two others subscribed to every topic", || async {
            for topic in Topic::ALL {
                if node.handle.topic_peers(topic).await.unwrap() != others {
                    return false;
                }
            }
            true
        })
        .await;
    }

    let data = b"a transaction".to_vec();
    let id = a.handle.publish(Topic::Transactions, data.clone()).await.unwrap();
    assert_eq!(id, MessageId::new(blake3::hash(&data).as_bytes()));
    // `source` is the peer that forwarded the message: a, or the other node once it accepted it.
    let (b_id, c_id) = (b.id(), c.id());
    for (node, other) in [(&mut b, c_id), (&mut c, b_id)] {
        let (topic, source, got_id, got) = node.next_gossip("a's transaction").await;
        assert_eq!((topic, &got_id, &got), (Topic::Transactions, &id, &data));
        assert!(source == a.id() || source == other, "forwarded by a stranger: {source}");
        node.handle.report(got_id, source, Validation::Accept).await.unwrap();
    }
    // The same bytes again are the same message.
    let again = a.handle.publish(Topic::Transactions, data.clone()).await;
    assert!(matches!(again, Err(NetworkError::Duplicate)), "{again:?}");

    let block = b"a block".to_vec();
    c.handle.publish(Topic::Blocks, block.clone()).await.unwrap();
    let (a_id, b_id) = (a.id(), b.id());
    for (node, other) in [(&mut a, b_id), (&mut b, a_id)] {
        let (topic, source, _, got) = node.next_gossip("c's block").await;
        assert_eq!((topic, got), (Topic::Blocks, block.clone()));
        assert!(source == c.id() || source == other, "forwarded by a stranger: {source}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_message_is_not_forwarded_and_costs_its_sender_score() {
    // A line a - b - c: the ends take one connection each, so c hears a only through b.
    let mut end = config();
    end.limits.max_peers = 1;
    let a = Node::start(end.clone()).await;
    let mut b = Node::start(with_bootnodes(config(), &[&a])).await;
    let mut end = config();
    end.limits.max_peers = 1;
    let mut c = Node::start(with_bootnodes(end, &[&b])).await;

    until("b sees a and c on the consensus topic", || async {
        b.handle.topic_peers(Topic::Consensus).await.unwrap() == sorted(vec![a.id(), c.id()])
    })
    .await;
    until("a and c see b on the consensus topic", || async {
        a.handle.topic_peers(Topic::Consensus).await.unwrap() == vec![b.id()]
            && c.handle.topic_peers(Topic::Consensus).await.unwrap() == vec![b.id()]
    })
    .await;
    assert_eq!(b.handle.peer_score(a.id()).await.unwrap().map(|s| s >= 0.0), Some(true));

    a.handle.publish(Topic::Consensus, b"an invalid vote".to_vec()).await.unwrap();
    let (_, source, id, data) = b.next_gossip("the invalid vote").await;
    assert_eq!((source, data.as_slice()), (a.id(), &b"an invalid vote"[..]));
    b.handle.report(id, source, Validation::Reject).await.unwrap();
    until("a's score at b is negative", || async {
        b.handle.peer_score(a.id()).await.unwrap().is_some_and(|s| s < 0.0)
    })
    .await;

    a.handle.publish(Topic::Consensus, b"a valid vote".to_vec()).await.unwrap();
    let (_, source, id, data) = b.next_gossip("the valid vote").await;
    assert_eq!(data, b"a valid vote");
    b.handle.report(id, source, Validation::Accept).await.unwrap();
    // The first message c gets is the valid one: the rejected one never left b.
    let (topic, source, _, data) = c.next_gossip("the forwarded valid vote").await;
    assert_eq!((topic, source, data.as_slice()), (Topic::Consensus, b.id(), &b"a valid vote"[..]));

    // The connection limits held the line despite discovery.
    assert_eq!(a.peer_ids().await, vec![b.id()]);
    assert_eq!(c.peer_ids().await, vec![b.id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_gossip_is_not_delivered() {
    let mut sender = config();
    sender.limits.max_tx_gossip_bytes = 64 * 1024;
    let a = Node::start(sender).await;
    let mut receiver = with_bootnodes(config(), &[&a]);
    receiver.limits.max_tx_gossip_bytes = 1024;
    let mut b = Node::start(receiver).await;
    until("a sees b on the transactions topic", || async {
        a.handle.topic_peers(Topic::Transactions).await.unwrap() == vec![b.id()]
    })
    .await;

    // b's own limit refuses it locally.
    let local = b.handle.publish(Topic::Transactions, vec![1; 2048]).await;
    assert!(
        matches!(local, Err(NetworkError::MessageTooLarge { size: 2048, max: 1024 })),
        "{local:?}"
    );

    a.handle.publish(Topic::Transactions, vec![2; 2048]).await.unwrap();
    a.handle.publish(Topic::Transactions, b"small".to_vec()).await.unwrap();
    let (_, _, _, data) = b.next_gossip("the small message").await;
    assert_eq!(data, b"small", "the oversized message was delivered");
    until("a's score at b is negative", || async {
        b.handle.peer_score(a.id()).await.unwrap().is_some_and(|s| s < 0.0)
    })
    .await;
}

/// Items for `from..=to`: 8 bytes each below height 100, 200 bytes from 100 on.
fn items(from: u64, to: u64) -> Vec<Vec<u8>> {
    (from..=to)
        .map(|h| if h < 100 { h.to_le_bytes().to_vec() } else { vec![h as u8; 200] })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_requests() {
    const HELD: u64 = 1_000;
    let mut server = config();
    server.limits.max_blocks_per_request = 16;
    server.limits.max_response_bytes = 1024;
    // Longer than the client's, so that the client's timeout is the one that fires.
    server.request_timeout = Duration::from_secs(20);
    let a = Node::start(server).await;
    let mut client = with_bootnodes(config(), &[&a]);
    client.request_timeout = Duration::from_secs(1);
    let b = Node::start(client).await;
    until("b connected to a", || async { b.peer_ids().await == vec![a.id()] }).await;

    // a's node answers every request but one, which it holds without answering.
    let Node { events: mut a_events, handle: a_handle, .. } = a;
    let a_id = a_handle.local_peer_id();
    let b_id = b.id();
    let (held_tx, mut held_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(event) = a_events.recv().await {
            if let NetworkEvent::BlocksRequested { peer, from, to, respond } = event {
                assert_eq!(peer, b_id);
                if from == HELD {
                    held.push(respond);
                    held_tx.send(()).await.unwrap();
                } else {
                    let _ = respond.send(items(from, to));
                }
            }
        }
    });

    assert_eq!(b.handle.request_blocks(a_id, 1, 16).await.unwrap(), items(1, 16));
    assert_eq!(b.handle.request_blocks(a_id, 5, 5).await.unwrap(), items(5, 5));

    // Too many to fit 1 KiB: a sends the prefix that fits.
    let expected = fit_response(items(100, 115), 1024);
    assert!(!expected.is_empty() && expected.len() < 16);
    assert_eq!(b.handle.request_blocks(a_id, 100, 115).await.unwrap(), expected);

    let too_many = b.handle.request_blocks(a_id, 1, 17).await;
    assert!(
        matches!(too_many, Err(NetworkError::Refused(Refusal::RangeTooLarge { max: 16 }))),
        "{too_many:?}"
    );
    let everything = b.handle.request_blocks(a_id, 0, u64::MAX).await;
    assert!(
        matches!(everything, Err(NetworkError::Refused(Refusal::RangeTooLarge { max: 16 }))),
        "{everything:?}"
    );
    let reversed = b.handle.request_blocks(a_id, 9, 8).await;
    assert!(matches!(reversed, Err(NetworkError::InvalidRange { from: 9, to: 8 })), "{reversed:?}");

    let started = Instant::now();
    let held = b.handle.request_blocks(a_id, HELD, HELD).await;
    assert!(matches!(held, Err(NetworkError::Timeout)), "{held:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "timed out after {:?}", started.elapsed());
    tokio::time::timeout(WAIT, held_rx.recv()).await.expect("a's node saw the held request");

    // A peer nobody can reach.
    let nobody = b.handle.request_blocks(PeerId::random(), 1, 1).await;
    assert!(matches!(nobody, Err(NetworkError::RequestFailed { .. })), "{nobody:?}");
    // The connection survived all of it.
    assert_eq!(b.handle.request_blocks(a_id, 2, 3).await.unwrap(), items(2, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_key_persists_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let key = load_or_create_key(dir.path()).unwrap();
    let mut first = config();
    first.keypair = key.clone();
    let node = Node::start(first).await;
    let peer_id = node.id();
    assert_eq!(peer_id, key.public().to_peer_id());
    drop(node);

    let mut second = config();
    second.keypair = load_or_create_key(dir.path()).unwrap();
    let restarted = Node::start(second).await;
    assert_eq!(restarted.id(), peer_id);
    // The running swarm uses it: a dial that expects the old peer id succeeds (noise checks it).
    let address = restarted.handle.listen_addresses().await.unwrap()[0].clone();
    let mut other = config();
    other.bootnodes = vec![address.with(Protocol::P2p(peer_id))];
    let other = Node::start(other).await;
    until("a peer connected to the restarted node by its old id", || async {
        other.peer_ids().await == vec![peer_id]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_chain_is_dropped() {
    let mut a = Node::start(config()).await;
    let mut stranger = with_bootnodes(config(), &[&a]);
    stranger.chain_id = CHAIN + 1;
    let stranger = Node::start(stranger).await;
    let stranger_id = stranger.id();
    let deadline = Instant::now() + WAIT;
    let mut connected = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, a.events.recv()).await {
            Ok(Some(NetworkEvent::PeerConnected(peer))) if peer == stranger_id => connected = true,
            Ok(Some(NetworkEvent::PeerDisconnected(peer))) if peer == stranger_id => break,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the network stopped"),
            Err(_) => panic!("the stranger was not disconnected within {WAIT:?}"),
        }
    }
    assert!(connected);
    let bootnode = with_bootnodes(config(), &[&a]).bootnodes[0].clone();
    assert!(network::peer_id_of(&bootnode).is_some());
    let invalid = network::start(NetworkConfig {
        bootnodes: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
        ..config()
    })
    .await;
    assert!(matches!(invalid, Err(NetworkError::InvalidBootnode { .. })), "{:?}", invalid.err());
}

/// A client that writes whatever bytes it is given on the block sync protocol, and reads
/// whatever comes back.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        Err(io::Error::other("the raw client serves nothing"))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut response = Vec::new();
        io.take(1 << 20).read_to_end(&mut response).await?;
        Ok(response)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Err(io::Error::other("the raw client serves nothing"))
    }
}

/// Sends `bytes` as a block request and returns what came back (`None`: the stream failed).
async fn raw_request(
    swarm: &mut libp2p::Swarm<request_response::Behaviour<RawCodec>>,
    peer: PeerId,
    bytes: Vec<u8>,
) -> Option<Vec<u8>> {
    let id = swarm.behaviour_mut().send_request(&peer, bytes);
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, swarm.select_next_some())
            .await
            .expect("the raw request ends within the wait");
        match event {
            SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            }) if request_id == id => return Some(response),
            SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                request_id, ..
            }) if request_id == id => return None,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_block_requests_are_dropped() {
    let mut server = config();
    server.limits.max_blocks_per_request = 16;
    let a = Node::start(server).await;
    let Node { events: mut a_events, handle: a_handle, address: a_address } = a;
    tokio::spawn(async move {
        while let Some(event) = a_events.recv().await {
            if let NetworkEvent::BlocksRequested { from, to, respond, .. } = event {
                let _ = respond.send(items(from, to));
            }
        }
    });
    let a_id = a_handle.local_peer_id();

    let mut raw = sync_requester(CHAIN, RawCodec, Duration::from_secs(5));
    raw.dial(a_address).unwrap();

    let frame = |body: Vec<u8>| {
        let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
        frame.extend(body);
        frame
    };
    let request = |from: u64, to: u64| (from, to).encode();
    let mut trailing = request(1, 2);
    trailing.push(0);
    for (what, bytes) in [
        ("a length over the limit", u32::MAX.to_le_bytes().to_vec()),
        ("a body shorter than its length", vec![16, 0, 0, 0, 1, 2, 3]),
        ("trailing bytes", frame(trailing)),
        ("nothing at all", Vec::new()),
    ] {
        let answer = raw_request(&mut raw, a_id, bytes).await;
        // No answer, or at most an empty stream: never items or a refusal.
        assert!(answer.as_ref().is_none_or(|a| a.is_empty()), "{what}: answered {answer:?}");
    }

    // A well-formed request on the same connection is still served, and a refusal is a value.
    let answer = raw_request(&mut raw, a_id, frame(request(3, 4))).await.expect("served");
    let expected = BlocksResponse::Items(items(3, 4)).encode();
    assert_eq!(answer, frame(expected));
    let answer = raw_request(&mut raw, a_id, frame(request(1, 100))).await.expect("refused");
    let expected = BlocksResponse::Refused(Refusal::RangeTooLarge { max: 16 }).encode();
    assert_eq!(answer, frame(expected));
    assert!(a_handle.peers().await.unwrap().iter().any(|p| p.peer_id == *raw.local_peer_id()));
}
