//! The chain on rocksdb (or a simulated [`MemoryDisk`]): the versioned state and, in column
//! families beside it, the blocks, certificates, receipts, indexes and metadata.
//!
//! Every committed block is one synced write batch: the state version of its height, the block,
//! its receipts and certificate, the index entries and the new head. After a crash (kill -9 or
//! power loss) the database holds a prefix of the committed blocks, each complete.
//!
//! Layout (all keys big-endian so that rocksdb's order is numeric order):
//!
//! | column family  | key                                        | value                      |
//! |----------------|--------------------------------------------|----------------------------|
//! | `blocks`       | block hash                                 | SCALE `Block`              |
//! | `block_hashes` | height                                     | block hash                 |
//! | `receipts`     | block hash                                 | SCALE `Vec<Receipt>`       |
//! | `certificates` | height                                     | SCALE `Certificate`        |
//! | `tx_index`     | transaction id                             | SCALE `(height, index)`    |
//! | `event_index`  | contract ‖ height ‖ tx index ‖ event index | empty                      |
//! | `chain_meta`   | `spec`, `head`, `final`                    | SCALE                      |
//! | `consensus_wal`| height ‖ round ‖ step                      | a signed consensus message |
//!
//! The consensus write-ahead log holds what this validator signed at heights not yet
//! committed; each entry is synced before the message is sent, and a block's batch deletes
//! the entries of its height and below.

use std::path::Path;
use std::sync::Arc;

use altan_primitives::{Address, Block, Certificate, ChainSpec, Hash, Header, Height, Receipt};
use altan_runtime::state::{State, StateCommit, StateConfig, StoreError};
use parity_scale_codec::{Decode, Encode};

use crate::kv::{Batch, Cf, Kv, MemoryDisk, Scan};
use crate::{DiskStore, StoreOptions};

const BLOCKS_CF: &str = "blocks";
const BLOCK_HASHES_CF: &str = "block_hashes";
const RECEIPTS_CF: &str = "receipts";
const CERTIFICATES_CF: &str = "certificates";
const TX_INDEX_CF: &str = "tx_index";
const EVENT_INDEX_CF: &str = "event_index";
const CHAIN_META_CF: &str = "chain_meta";
const CONSENSUS_WAL_CF: &str = "consensus_wal";
/// Each block's transaction senders, by block hash: recovered once while executing, so that
/// serving a block in full never recovers a signature. A node-local index, not a consensus
/// object; a block committed before it existed has none, and its senders are recovered.
const SENDERS_CF: &str = "senders";

const CHAIN_COLUMN_FAMILIES: [&str; 9] = [
    BLOCKS_CF,
    BLOCK_HASHES_CF,
    RECEIPTS_CF,
    CERTIFICATES_CF,
    TX_INDEX_CF,
    EVENT_INDEX_CF,
    CHAIN_META_CF,
    CONSENSUS_WAL_CF,
    SENDERS_CF,
];

const META_SPEC: &[u8] = b"spec";
const META_HEAD: &[u8] = b"head";
const META_FINAL: &[u8] = b"final";

/// Length of an event index key: address, height, transaction index, event index.
const EVENT_KEY_LEN: usize = 20 + 8 + 4 + 4;

/// Why the chain store failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainStoreError {
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StoreError),
    /// Stored bytes do not decode.
    #[error("corrupt chain data in {column}: {detail}")]
    Corrupt {
        /// Where.
        column: &'static str,
        /// What did not decode.
        detail: String,
    },
    /// The database holds another chain.
    #[error("the data directory holds chain {found} but the spec is for chain {expected}")]
    WrongChain {
        /// The spec's hash.
        expected: Hash,
        /// The stored spec's hash.
        found: Hash,
    },
    /// A block does not follow the head.
    #[error("block {height} does not follow the head {head}")]
    NotNext {
        /// The block's height.
        height: Height,
        /// The head's height.
        head: Height,
    },
}

/// A pointer to a block: height and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct BlockRef {
    /// The height.
    pub height: Height,
    /// The block hash.
    pub hash: Hash,
}

/// Where an event sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLocation {
    /// The block height.
    pub height: Height,
    /// The transaction's index in the block.
    pub transaction_index: u32,
    /// The event's index in the receipt.
    pub event_index: u32,
}

/// A block ready to be written: everything its batch holds.
pub struct BlockCommit<'a> {
    /// The block.
    pub block: &'a Block,
    /// Its receipts.
    pub receipts: &'a [Receipt],
    /// The sender of each transaction, in order.
    pub senders: &'a [Address],
    /// The state version its execution produced.
    pub state: &'a StateCommit,
    /// Its finality certificate, if it is final at commit.
    pub certificate: Option<&'a Certificate>,
}

/// The chain's durable store. Cheap to share behind an `Arc`; reads need no lock.
pub struct ChainStore {
    state: State<DiskStore>,
}

fn height_key(height: Height) -> [u8; 8] {
    height.to_be_bytes()
}

/// The step byte under which a round's proposed block is kept in the consensus log (message
/// steps are 0, 1 and 2).
const WAL_BLOCK_STEP: u8 = 0xFF;

/// A consensus log entry's key: height, round, step.
fn wal_key(height: Height, round: u32, step: u8) -> [u8; 13] {
    let mut key = [0u8; 13];
    key[..8].copy_from_slice(&height_key(height));
    key[8..12].copy_from_slice(&round.to_be_bytes());
    key[12] = step;
    key
}

fn event_key(contract: &Address, location: EventLocation) -> [u8; EVENT_KEY_LEN] {
    let mut key = [0; EVENT_KEY_LEN];
    key[..20].copy_from_slice(contract.as_bytes());
    key[20..28].copy_from_slice(&location.height.to_be_bytes());
    key[28..32].copy_from_slice(&location.transaction_index.to_be_bytes());
    key[32..].copy_from_slice(&location.event_index.to_be_bytes());
    key
}

fn decode<T: Decode>(column: &'static str, bytes: &[u8]) -> Result<T, ChainStoreError> {
    T::decode(&mut &bytes[..])
        .map_err(|error| ChainStoreError::Corrupt { column, detail: error.to_string() })
}

/// Where a chain store lives.
#[derive(Debug, Clone)]
pub enum ChainLocation<'a> {
    /// rocksdb in this directory.
    Disk(&'a Path),
    /// A simulated disk (see [`MemoryDisk`]).
    Memory(&'a MemoryDisk),
}

impl ChainStore {
    /// Opens the store at `location`, creating it with `spec`'s genesis if empty. An existing
    /// store must hold the same spec.
    pub fn open(
        location: ChainLocation<'_>,
        spec: &ChainSpec,
        genesis: impl FnOnce(&State<DiskStore>) -> Result<(Block, StateCommit), ChainStoreError>,
        options: StoreOptions,
        state_config: StateConfig,
    ) -> Result<ChainStore, ChainStoreError> {
        let mut options = options;
        options.extra_column_families =
            CHAIN_COLUMN_FAMILIES.iter().map(|s| s.to_string()).collect();
        let disk = match location {
            ChainLocation::Disk(path) => DiskStore::open(path, &options)?,
            ChainLocation::Memory(disk) => DiskStore::open_memory(disk, &options)?,
        };
        let state = State::open_with(Arc::new(disk), state_config)?;
        let store = ChainStore { state };
        match store.spec()? {
            Some(stored) => {
                if stored.hash() != spec.hash() {
                    return Err(ChainStoreError::WrongChain {
                        expected: spec.hash(),
                        found: stored.hash(),
                    });
                }
            }
            None => {
                let (block, commit) = genesis(&store.state)?;
                store.write_block(
                    BlockCommit {
                        block: &block,
                        receipts: &[],
                        senders: &[],
                        state: &commit,
                        certificate: None,
                    },
                    Some(spec),
                )?;
            }
        }
        Ok(store)
    }

    /// The versioned state.
    pub fn state(&self) -> &State<DiskStore> {
        &self.state
    }

    fn kv(&self) -> &Kv {
        self.state.store().kv()
    }

    fn cf(&self, column: &'static str) -> Result<Cf, ChainStoreError> {
        Ok(self.kv().cf(column)?)
    }

    fn get(&self, column: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, ChainStoreError> {
        Ok(self.kv().get(self.cf(column)?, key)?)
    }

    /// The stored chain spec.
    pub fn spec(&self) -> Result<Option<ChainSpec>, ChainStoreError> {
        self.get(CHAIN_META_CF, META_SPEC)?.map(|b| decode(CHAIN_META_CF, &b)).transpose()
    }

    /// The newest block.
    pub fn head(&self) -> Result<BlockRef, ChainStoreError> {
        let bytes = self
            .get(CHAIN_META_CF, META_HEAD)?
            .ok_or(ChainStoreError::Corrupt { column: CHAIN_META_CF, detail: "no head".into() })?;
        decode(CHAIN_META_CF, &bytes)
    }

    /// The newest final block.
    pub fn final_head(&self) -> Result<BlockRef, ChainStoreError> {
        match self.get(CHAIN_META_CF, META_FINAL)? {
            Some(bytes) => decode(CHAIN_META_CF, &bytes),
            None => self.block_ref(0)?.ok_or(ChainStoreError::Corrupt {
                column: BLOCK_HASHES_CF,
                detail: "no genesis".into(),
            }),
        }
    }

    /// The hash of the block at `height`.
    pub fn block_hash(&self, height: Height) -> Result<Option<Hash>, ChainStoreError> {
        self.get(BLOCK_HASHES_CF, &height_key(height))?
            .map(|bytes| decode(BLOCK_HASHES_CF, &bytes))
            .transpose()
    }

    fn block_ref(&self, height: Height) -> Result<Option<BlockRef>, ChainStoreError> {
        Ok(self.block_hash(height)?.map(|hash| BlockRef { height, hash }))
    }

    /// A block by hash.
    pub fn block(&self, hash: &Hash) -> Result<Option<Block>, ChainStoreError> {
        self.get(BLOCKS_CF, hash.as_bytes())?.map(|bytes| decode(BLOCKS_CF, &bytes)).transpose()
    }

    /// A block's header, without decoding its body: a block's encoding starts with its header's.
    pub fn header(&self, hash: &Hash) -> Result<Option<Header>, ChainStoreError> {
        self.get(BLOCKS_CF, hash.as_bytes())?.map(|bytes| decode(BLOCKS_CF, &bytes)).transpose()
    }

    /// The header of the block at `height`.
    pub fn header_at(&self, height: Height) -> Result<Option<Header>, ChainStoreError> {
        match self.block_hash(height)? {
            Some(hash) => self.header(&hash),
            None => Ok(None),
        }
    }

    /// A block by height.
    pub fn block_at(&self, height: Height) -> Result<Option<Block>, ChainStoreError> {
        match self.block_hash(height)? {
            Some(hash) => self.block(&hash),
            None => Ok(None),
        }
    }

    /// A block's receipts.
    pub fn receipts(&self, block: &Hash) -> Result<Option<Vec<Receipt>>, ChainStoreError> {
        self.get(RECEIPTS_CF, block.as_bytes())?
            .map(|bytes| decode(RECEIPTS_CF, &bytes))
            .transpose()
    }

    /// The senders of a block's transactions, in order; `None` for a block committed before
    /// the node kept them.
    pub fn senders(&self, block: &Hash) -> Result<Option<Vec<Address>>, ChainStoreError> {
        self.get(SENDERS_CF, block.as_bytes())?.map(|bytes| decode(SENDERS_CF, &bytes)).transpose()
    }

    /// The certificate that made the block at `height` final.
    pub fn certificate(&self, height: Height) -> Result<Option<Certificate>, ChainStoreError> {
        self.get(CERTIFICATES_CF, &height_key(height))?
            .map(|bytes| decode(CERTIFICATES_CF, &bytes))
            .transpose()
    }

    /// Where a transaction was included: block height and index.
    pub fn transaction_location(
        &self,
        id: &Hash,
    ) -> Result<Option<(Height, u32)>, ChainStoreError> {
        self.get(TX_INDEX_CF, id.as_bytes())?.map(|bytes| decode(TX_INDEX_CF, &bytes)).transpose()
    }

    /// The events `contract` emitted in blocks `from..=to`, in chain order, at most `limit`.
    pub fn events_of(
        &self,
        contract: &Address,
        from: Height,
        to: Height,
        limit: usize,
    ) -> Result<Vec<EventLocation>, ChainStoreError> {
        let start = event_key(
            contract,
            EventLocation { height: from, transaction_index: 0, event_index: 0 },
        );
        let mut found = Vec::new();
        self.kv().scan(self.cf(EVENT_INDEX_CF)?, &start, Scan::Short, &mut |key, _| {
            if key.len() != EVENT_KEY_LEN || &key[..20] != contract.as_bytes() {
                return Ok(false);
            }
            let number = |range: std::ops::Range<usize>| -> u64 {
                key[range].iter().fold(0, |n, b| (n << 8) | u64::from(*b))
            };
            let height = number(20..28);
            if height > to || found.len() >= limit {
                return Ok(false);
            }
            found.push(EventLocation {
                height,
                transaction_index: u32::try_from(number(28..32)).unwrap_or(u32::MAX),
                event_index: u32::try_from(number(32..36)).unwrap_or(u32::MAX),
            });
            Ok(true)
        })?;
        Ok(found)
    }

    /// Records a consensus message this validator signed under its height, round and step, and
    /// with a proposal the block it proposes (which the message names only by hash), in one
    /// write, synced before it returns when the store syncs its writes (a throwaway dev chain
    /// does not). A restarted validator thus still has the block it may have voted for.
    pub fn persist_message(
        &self,
        height: Height,
        round: u32,
        step: u8,
        message: &[u8],
        proposed_block: Option<&[u8]>,
    ) -> Result<(), ChainStoreError> {
        let cf = self.cf(CONSENSUS_WAL_CF)?;
        let mut batch = Batch::default();
        batch.put(cf, wal_key(height, round, step), message);
        if let Some(block) = proposed_block {
            batch.put(cf, wal_key(height, round, WAL_BLOCK_STEP), block);
        }
        Ok(self.kv().write(&batch)?)
    }

    /// The consensus messages persisted for `height`, in (round, step) order.
    pub fn persisted_messages(&self, height: Height) -> Result<Vec<Vec<u8>>, ChainStoreError> {
        self.wal_entries(height, |step| step != WAL_BLOCK_STEP)
    }

    /// The blocks proposed with the messages persisted for `height`, in round order.
    pub fn persisted_blocks(&self, height: Height) -> Result<Vec<Vec<u8>>, ChainStoreError> {
        self.wal_entries(height, |step| step == WAL_BLOCK_STEP)
    }

    fn wal_entries(
        &self,
        height: Height,
        wanted: impl Fn(u8) -> bool,
    ) -> Result<Vec<Vec<u8>>, ChainStoreError> {
        let prefix = height_key(height);
        let mut found = Vec::new();
        self.kv().scan(self.cf(CONSENSUS_WAL_CF)?, &prefix, Scan::Short, &mut |key, value| {
            if !key.starts_with(&prefix) {
                return Ok(false);
            }
            if key.get(12).copied().is_some_and(&wanted) {
                found.push(value.to_vec());
            }
            Ok(true)
        })?;
        Ok(found)
    }

    /// Writes a block with its state version, receipts, certificate and indexes in one synced
    /// batch, and makes it the head (and the final head, with a certificate).
    pub fn commit_block(&self, commit: BlockCommit<'_>) -> Result<(), ChainStoreError> {
        let head = self.head()?;
        let height = commit.block.header.height;
        if Some(height) != head.height.checked_add(1) {
            return Err(ChainStoreError::NotNext { height, head: head.height });
        }
        self.write_block(commit, None)
    }

    fn write_block(
        &self,
        commit: BlockCommit<'_>,
        spec: Option<&ChainSpec>,
    ) -> Result<(), ChainStoreError> {
        let cfs = [
            self.cf(BLOCKS_CF)?,
            self.cf(BLOCK_HASHES_CF)?,
            self.cf(RECEIPTS_CF)?,
            self.cf(CERTIFICATES_CF)?,
            self.cf(TX_INDEX_CF)?,
            self.cf(EVENT_INDEX_CF)?,
            self.cf(CHAIN_META_CF)?,
            self.cf(CONSENSUS_WAL_CF)?,
            self.cf(SENDERS_CF)?,
        ];
        let [
            blocks,
            block_hashes,
            receipts,
            certificates,
            tx_index,
            event_index,
            meta,
            wal,
            senders,
        ] = cfs;
        let block = commit.block;
        let hash = block.hash();
        let height = block.header.height;
        let head = BlockRef { height, hash }.encode();
        let fill = |batch: &mut Batch| {
            batch.put(blocks, hash.as_bytes(), block.encode());
            batch.put(block_hashes, height_key(height), hash.encode());
            batch.put(receipts, hash.as_bytes(), commit.receipts.encode());
            batch.put(senders, hash.as_bytes(), commit.senders.encode());
            for (index, transaction) in block.transactions.iter().enumerate() {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                batch.put(tx_index, transaction.id().as_bytes(), (height, index).encode());
            }
            for (tx, receipt) in commit.receipts.iter().enumerate() {
                for (event_number, event) in receipt.events.iter().enumerate() {
                    let location = EventLocation {
                        height,
                        transaction_index: u32::try_from(tx).unwrap_or(u32::MAX),
                        event_index: u32::try_from(event_number).unwrap_or(u32::MAX),
                    };
                    batch.put(event_index, event_key(&event.contract, location), []);
                }
            }
            if let Some(certificate) = commit.certificate {
                batch.put(certificates, height_key(height), certificate.encode());
                batch.put(meta, META_FINAL, &head);
            }
            if let Some(spec) = spec {
                batch.put(meta, META_SPEC, spec.encode());
                batch.put(meta, META_FINAL, &head);
            }
            batch.put(meta, META_HEAD, &head);
            // What was signed for this height and below can no longer matter.
            batch.delete_range(wal, height_key(0), height_key(height.saturating_add(1)));
        };
        self.state.commit_using(commit.state, |store, state| store.commit_with(state, fill))?;
        Ok(())
    }
}
