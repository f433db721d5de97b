//! The heavy reads of the API: whole blocks, transactions with their receipts, events, state
//! proofs and leader schedules. Each reads and decodes more than a key lookup, so the server
//! runs them on its reads pool ([`RpcServer::on_reads`]), never on the threads that serve
//! everything else.

use altan_primitives::{Address, Block, Hash, Receipt};
use altan_runtime::state::StateKey;
use jsonrpsee::core::RpcResult;

use super::error::{self, chain_error};
use super::server::{MAX_EVENT_SCAN, MAX_SCHEDULE_HEIGHTS, RpcServer};
use super::types::{
    BlockId, BlockJson, EventFilter, EventJson, HexBytes, LeaderJson, ReceiptJson, StorageJson,
    TransactionJson,
};

impl RpcServer {
    pub(super) fn block_now(&self, at: BlockId, full: bool) -> RpcResult<Option<BlockJson>> {
        let Some(block) = self.block_of(at)? else { return Ok(None) };
        let hash = block.hash();
        let senders = match full {
            true => self.chain.store().senders(&hash).map_err(|e| chain_error(e.into()))?,
            false => None,
        };
        let is_final = self.is_final(block.header.height);
        Ok(Some(BlockJson::new(&block, senders.as_deref(), full, is_final)))
    }

    pub(super) fn transaction_now(&self, id: &Hash) -> RpcResult<Option<TransactionJson>> {
        let Some((block, index, transaction, _)) =
            self.chain.transaction(id).map_err(chain_error)?
        else {
            return Ok(None);
        };
        let hash = block.hash();
        let senders = self.chain.store().senders(&hash).map_err(|e| chain_error(e.into()))?;
        let position = usize::try_from(index).unwrap_or(usize::MAX);
        let from = senders.and_then(|s| s.get(position).copied());
        let location = (block.header.height, hash, index);
        Ok(Some(TransactionJson::new(&transaction, from, Some(location))))
    }

    pub(super) fn receipt_now(&self, id: &Hash) -> RpcResult<Option<ReceiptJson>> {
        Ok(self.chain.transaction(id).map_err(chain_error)?.map(|(block, index, _, receipt)| {
            ReceiptJson::new(&receipt, block.header.height, block.hash(), index)
        }))
    }

    pub(super) fn events_now(&self, filter: EventFilter) -> RpcResult<Vec<EventJson>> {
        let head = self.chain.head().height;
        let to = filter.to_block.unwrap_or(head).min(head);
        let limit = filter.limit.unwrap_or(self.config.max_events).min(self.config.max_events);
        let mut events = Collected::new(limit, self.config.max_response_bytes);
        match filter.contract {
            Some(contract) => {
                let from = filter.from_block.unwrap_or(0);
                let locations = self
                    .chain
                    .events_of(&contract, from, to, MAX_EVENT_SCAN)
                    .map_err(chain_error)?;
                // Locations come in chain order; read each block's receipts once.
                let mut current: Option<(u64, Block, Vec<Receipt>)> = None;
                for location in locations {
                    if current.as_ref().is_none_or(|(h, _, _)| *h != location.height) {
                        current = self
                            .receipts_at(location.height)?
                            .map(|(block, receipts)| (location.height, block, receipts));
                    }
                    let Some((height, block, receipts)) = &current else { continue };
                    let tx = usize::try_from(location.transaction_index).unwrap_or(usize::MAX);
                    let index = usize::try_from(location.event_index).unwrap_or(usize::MAX);
                    let Some(receipt) = receipts.get(tx) else { continue };
                    let Some(event) = receipt.events.get(index) else { continue };
                    if filter.matches(event) {
                        debug_assert_eq!(*height, block.header.height);
                        let full = events.push(EventJson {
                            block_height: Some(*height),
                            transaction_id: Some(receipt.transaction_id),
                            transaction_index: Some(location.transaction_index),
                            event_index: Some(location.event_index),
                            ..EventJson::bare(event)
                        });
                        if full {
                            break;
                        }
                    }
                }
            }
            None => {
                let from = filter.from_block.unwrap_or(to);
                // The range asked for is what is bounded, whether or not the chain reaches it.
                let asked_to = filter.to_block.unwrap_or(head);
                let span = asked_to.saturating_sub(from).saturating_add(1);
                if from <= asked_to && span > self.config.max_event_range {
                    return Err(error::error(
                        error::RANGE_TOO_LARGE,
                        format!(
                            "blocks {from}..={asked_to} span {span} blocks; without a contract the most is {}",
                            self.config.max_event_range
                        ),
                    ));
                }
                'blocks: for height in from..=to {
                    let Some((block, receipts)) = self.receipts_at(height)? else { continue };
                    for event in located_events(&block, &receipts, &filter) {
                        if events.push(event) {
                            break 'blocks;
                        }
                    }
                }
            }
        }
        Ok(events.events)
    }

    pub(super) fn storage_now(
        &self,
        contract: Address,
        key: HexBytes,
        at: Option<BlockId>,
    ) -> RpcResult<StorageJson> {
        if key.0.len() > altan_primitives::limits::MAX_STORAGE_KEY {
            return Err(error::error(
                jsonrpsee::types::error::INVALID_PARAMS_CODE,
                format!(
                    "storage keys are at most {} bytes",
                    altan_primitives::limits::MAX_STORAGE_KEY
                ),
            ));
        }
        let height = self.height_of(at)?;
        let state_key = StateKey::storage(&contract, &key.0);
        let (value, proof, state_root) =
            self.chain.proof_at(&state_key, height).map_err(chain_error)?;
        Ok(StorageJson {
            contract,
            key,
            value: value.map(HexBytes),
            proof: HexBytes(proof.to_bytes()),
            state_root,
            block_height: height,
        })
    }

    pub(super) fn leader_schedule_now(&self, from: u64, count: u32) -> RpcResult<Vec<LeaderJson>> {
        if count == 0 || count > MAX_SCHEDULE_HEIGHTS {
            return Err(error::error(
                jsonrpsee::types::error::INVALID_PARAMS_CODE,
                format!("count is 1..={MAX_SCHEDULE_HEIGHTS}"),
            ));
        }
        let head = self.chain.head().height;
        let state = self.chain.state_at(head).map_err(chain_error)?;
        let read = |e: altan_runtime::state::StoreError| chain_error(e.into());
        let config = altan_runtime::staking::config(&*state).map_err(read)?;
        let last = from.saturating_add(u64::from(count)).saturating_sub(1);
        let epoch = config.epoch_of(from);
        let no_set = |why: String| error::error(error::NO_VALIDATOR_SET, why);
        if config.epoch_of(last) != epoch {
            return Err(no_set(format!("heights {from}..={last} span more than epoch {epoch}")));
        }
        let set = altan_runtime::staking::validator_set(&*state, epoch)
            .map_err(read)?
            .ok_or_else(|| no_set(format!("the chain keeps no validator set for epoch {epoch}")))?;
        let seed = self.chain.leader_seed_for(from).map_err(chain_error)?.ok_or_else(|| {
            no_set(format!("the block that seeds epoch {epoch}'s leaders is not final yet"))
        })?;
        let schedule = altan_consensus::LeaderSchedule::new(&set, seed)
            .map_err(|e| no_set(format!("epoch {epoch}'s set has no leader: {e}")))?;
        let leaders = schedule.schedule(from..=last, 0).map_err(|e| {
            error::error(jsonrpsee::types::error::INVALID_PARAMS_CODE, e.to_string())
        })?;
        Ok(leaders
            .into_iter()
            .map(|l| LeaderJson { height: l.height, index: l.index, address: l.address })
            .collect())
    }
}

pub(super) fn located_events(
    block: &Block,
    receipts: &[Receipt],
    filter: &EventFilter,
) -> impl Iterator<Item = EventJson> {
    let height = block.header.height;
    let mut out = Vec::new();
    for (tx_index, receipt) in receipts.iter().enumerate() {
        for (event_index, event) in receipt.events.iter().enumerate() {
            if filter.matches(event) {
                out.push(EventJson {
                    block_height: Some(height),
                    transaction_id: Some(receipt.transaction_id),
                    transaction_index: Some(u32::try_from(tx_index).unwrap_or(u32::MAX)),
                    event_index: Some(u32::try_from(event_index).unwrap_or(u32::MAX)),
                    ..EventJson::bare(event)
                });
            }
        }
    }
    out.into_iter()
}

/// Events collected for one answer, up to a count and to half the response limit in JSON, so
/// that an answer is cut short (the client asks again from the last block it saw, as when the
/// count is reached) instead of being built whole and then refused as too big.
struct Collected {
    events: Vec<EventJson>,
    bytes: usize,
    limit: usize,
    max_bytes: usize,
}

/// An event's JSON apart from its topics and data (names, contract, location), rounded up.
const EVENT_JSON_OVERHEAD: usize = 320;
/// A topic in JSON: 0x and 64 hex digits, quotes and a comma.
const TOPIC_JSON_BYTES: usize = 69;

impl Collected {
    fn new(limit: u32, max_response_bytes: u32) -> Collected {
        Collected {
            events: Vec::new(),
            bytes: 0,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(max_response_bytes / 2).unwrap_or(usize::MAX),
        }
    }

    /// The JSON size of an event, from above.
    fn json_bytes(event: &EventJson) -> usize {
        EVENT_JSON_OVERHEAD
            .saturating_add(event.topics.len().saturating_mul(TOPIC_JSON_BYTES))
            .saturating_add(event.data.0.len().saturating_mul(2))
    }

    /// Adds `event` if there is room for it; returns whether the answer is full.
    fn push(&mut self, event: EventJson) -> bool {
        let bytes = Self::json_bytes(&event);
        if self.events.len() >= self.limit || self.bytes.saturating_add(bytes) > self.max_bytes {
            return true;
        }
        self.bytes = self.bytes.saturating_add(bytes);
        self.events.push(event);
        self.events.len() >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use altan_primitives::{Event, Hash};

    use super::*;

    fn event(data: usize) -> EventJson {
        EventJson::bare(&Event {
            contract: Address::ZERO,
            topics: vec![Hash::ZERO; 2],
            data: vec![7; data],
        })
    }

    #[test]
    fn the_size_estimate_bounds_the_json_from_above() {
        for data in [0, 1, 100, 16 << 10] {
            let mut located = event(data);
            located.block_height = Some(u64::MAX);
            located.transaction_id = Some(Hash([0xff; 32]));
            located.transaction_index = Some(u32::MAX);
            located.event_index = Some(u32::MAX);
            let json = serde_json::to_vec(&located).unwrap().len();
            assert!(
                Collected::json_bytes(&located) >= json,
                "{data} bytes of data: {json} bytes of JSON"
            );
        }
    }

    #[test]
    fn collecting_stops_at_the_count_or_half_the_response_limit() {
        let mut by_count = Collected::new(3, 1 << 20);
        assert!(!by_count.push(event(10)));
        assert!(!by_count.push(event(10)));
        assert!(by_count.push(event(10)), "the third fills it");
        assert_eq!(by_count.events.len(), 3);
        // 16 KiB events (about 33 KB of JSON each) against a 1 MiB response: 15 fit in half.
        let mut by_size = Collected::new(1_000, 1 << 20);
        let mut pushed = 0;
        while !by_size.push(event(16 << 10)) {
            pushed += 1;
        }
        assert_eq!(by_size.events.len(), pushed);
        let json = serde_json::to_vec(&by_size.events).unwrap().len();
        assert!(json <= 1 << 19, "{json} bytes");
        assert!(by_size.events.len() >= 14, "{}", by_size.events.len());
    }
}
