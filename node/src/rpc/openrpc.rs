//! The OpenRPC document `rpc.discover` returns. [`METHODS`] describes every method; the server
//! refuses to start if a registered method is missing from it or it names one that is not
//! registered, so the document cannot drift from the code.

use serde_json::{Value, json};

/// A parameter: name, schema name (in `components.schemas`), required.
pub type Param = (&'static str, &'static str, bool);

/// A method's description.
pub struct MethodDoc {
    /// Its name.
    pub name: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Its parameters, in order.
    pub params: &'static [Param],
    /// The schema of its result (for a subscription, of each notification).
    pub result: &'static str,
}

const fn m(
    name: &'static str,
    summary: &'static str,
    params: &'static [Param],
    result: &'static str,
) -> MethodDoc {
    MethodDoc { name, summary, params, result }
}

const AT: Param = ("at", "BlockId", false);

/// Every method of the API.
pub const METHODS: &[MethodDoc] = &[
    m("chain_info", "The chain's name, id, genesis hash and parameters.", &[], "ChainInfo"),
    m("chain_head", "The newest block's header.", &[], "Header"),
    m("chain_finalHead", "The newest final block's header.", &[], "Header"),
    m(
        "chain_getBlock",
        "A block by number, hash, \"latest\" or \"final\" (null if none); transactions in full with full=true.",
        &[("at", "BlockId", true), ("full", "Boolean", false)],
        "NullableBlock",
    ),
    m(
        "chain_getHeader",
        "A header by number, hash, \"latest\" or \"final\" (null if none).",
        &[("at", "BlockId", true)],
        "NullableHeader",
    ),
    m(
        "chain_getCertificate",
        "The SCALE-encoded certificate that made the block at a height final (null if none).",
        &[("height", "Height", true)],
        "NullableHexBytes",
    ),
    m(
        "chain_getEvents",
        "Events by contract, topics and block range, in chain order, bounded per query.",
        &[("filter", "EventFilter", true)],
        "Events",
    ),
    m(
        "chain_subscribeNewHeads",
        "Subscribes to every new block's header (notifications carry the same method name).",
        &[],
        "Header",
    ),
    m(
        "chain_unsubscribeNewHeads",
        "Ends a new-heads subscription.",
        &[("subscription", "SubscriptionId", true)],
        "Boolean",
    ),
    m(
        "chain_subscribeFinalHeads",
        "Subscribes to every newly final block's header (notifications carry the same method name).",
        &[],
        "Header",
    ),
    m(
        "chain_unsubscribeFinalHeads",
        "Ends a final-heads subscription.",
        &[("subscription", "SubscriptionId", true)],
        "Boolean",
    ),
    m(
        "tx_submit",
        "Submits a SCALE-encoded signed transaction; returns its id once admitted to the mempool.",
        &[("transaction", "HexBytes", true)],
        "Hash",
    ),
    m(
        "tx_submitBatch",
        "Submits up to 10,000 signed transactions; one result (id or error) each, in order.",
        &[("transactions", "HexBytesList", true)],
        "SubmitResults",
    ),
    m(
        "tx_get",
        "A transaction, included or pending (null if unknown).",
        &[("id", "Hash", true)],
        "NullableTransaction",
    ),
    m(
        "tx_receipt",
        "An included transaction's receipt with its events (null if not included).",
        &[("id", "Hash", true)],
        "NullableReceipt",
    ),
    m(
        "tx_dryRun",
        "Executes a transaction on top of the head and discards the result: status, gas, output, events.",
        &[("request", "DryRunRequest", true)],
        "Outcome",
    ),
    m(
        "tx_estimateGas",
        "The gas a transaction would use on top of the head; an error if it would fail.",
        &[("request", "DryRunRequest", true)],
        "Gas",
    ),
    m(
        "state_getAccount",
        "An account's balance and nonce (and its pending nonce at the latest block).",
        &[("address", "Address", true), AT],
        "Account",
    ),
    m(
        "state_getStorage",
        "A contract storage value with its Merkle proof against the block's state root.",
        &[("contract", "Address", true), ("key", "HexBytes", true), AT],
        "Storage",
    ),
    m(
        "contract_getCode",
        "A contract's Wasm code (null if the address holds none).",
        &[("contract", "Address", true), AT],
        "NullableHexBytes",
    ),
    m(
        "contract_getInterface",
        "A contract's embedded interface: methods, events and errors.",
        &[("contract", "Address", true), AT],
        "Interface",
    ),
    m(
        "contract_query",
        "Calls a contract read-only: status, gas, output, events; nothing is kept.",
        &[("request", "QueryRequest", true)],
        "Outcome",
    ),
    m(
        "contract_subscribeEvents",
        "Subscribes to events matching a filter as blocks commit (notifications carry the same method name).",
        &[("filter", "EventFilter", true)],
        "Event",
    ),
    m(
        "contract_unsubscribeEvents",
        "Ends an event subscription.",
        &[("subscription", "SubscriptionId", true)],
        "Boolean",
    ),
    m(
        "staking_validators",
        "The validator set of the epoch containing a block: address, consensus key, power.",
        &[AT],
        "Validators",
    ),
    m(
        "staking_leaderSchedule",
        "Round-0 leaders of up to 1,000 heights from a height, within one epoch.",
        &[("from", "Height", true), ("count", "Height", true)],
        "Leaders",
    ),
    m(
        "system_health",
        "Whether the node serves; its heights, peers and mempool size.",
        &[],
        "Health",
    ),
    m("system_peers", "Connected peers.", &[], "Peers"),
    m("system_version", "The node's version and host ABI.", &[], "Version"),
    m("rpc.discover", "This document.", &[], "OpenRpc"),
];

/// Errors of a registered method without documentation, or documentation without a method.
pub fn check_complete<'a>(registered: impl Iterator<Item = &'a str>) -> anyhow::Result<()> {
    let registered: std::collections::BTreeSet<&str> = registered.collect();
    let documented: std::collections::BTreeSet<&str> = METHODS.iter().map(|m| m.name).collect();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unregistered: Vec<_> = documented.difference(&registered).collect();
    if !undocumented.is_empty() || !unregistered.is_empty() {
        anyhow::bail!(
            "the OpenRPC document is out of date: undocumented {undocumented:?}, not registered {unregistered:?}"
        );
    }
    Ok(())
}

fn schemas() -> Value {
    let hex = |description: &str, pattern: &str| json!({"type": "string", "pattern": pattern, "description": description});
    let object = |description: &str| json!({"type": "object", "description": description});
    let nullable = |name: &str| json!({"oneOf": [{"$ref": format!("#/components/schemas/{name}")}, {"type": "null"}]});
    json!({
        "Address": hex("A 20-byte account or contract address with EIP-55 checksum.", "^0x[0-9a-fA-F]{40}$"),
        "Hash": hex("A 32-byte blake3 hash.", "^0x[0-9a-f]{64}$"),
        "HexBytes": hex("Bytes as 0x hex.", "^0x([0-9a-fA-F]{2})*$"),
        "HexBytesList": {"type": "array", "items": {"$ref": "#/components/schemas/HexBytes"}},
        "NullableHexBytes": nullable("HexBytes"),
        "Amount": {"type": "string", "pattern": "^[0-9]+$", "description": "A balance in the smallest unit, as a decimal string."},
        "Height": {"type": "integer", "minimum": 0},
        "Gas": {"type": "integer", "minimum": 0},
        "Boolean": {"type": "boolean"},
        "SubscriptionId": {"type": "string"},
        "BlockId": {"oneOf": [
            {"type": "integer", "minimum": 0},
            {"$ref": "#/components/schemas/Hash"},
            {"enum": ["latest", "final"]}
        ]},
        "ChainInfo": object("name, chainId, genesisHash, specHash, blockGasLimit, epochLength"),
        "Header": object("hash, chainId, height, parentHash, timestampMs, proposer, stateRoot, transactionsRoot, receiptsRoot, gasUsed, gasLimit"),
        "NullableHeader": nullable("Header"),
        "Block": object(
            "header, transactionIds, transactions (with full=true), isFinal, parentCertificateSigners, evidence [{hash, offender, height, round}]",
        ),
        "NullableBlock": nullable("Block"),
        "Transaction": object("id, from, chainId, nonce, gasLimit, gasPrice, action {type: transfer|deploy|call|staking, ...}, blockHeight, blockHash, index"),
        "NullableTransaction": nullable("Transaction"),
        "Event": object("contract, topics, data, blockHeight, transactionId, transactionIndex, eventIndex"),
        "Events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
        "Receipt": object("transactionId, blockHeight, blockHash, index, status (success|revert|failure), failure, gasUsed, output, events, contractAddress"),
        "NullableReceipt": nullable("Receipt"),
        "Outcome": object("status, failure, gasUsed, output, events, contractAddress"),
        "SubmitResults": {"type": "array", "items": object("id, or error {code, message}")},
        "DryRunRequest": object("{from?: Address, transaction: HexBytes}: a SCALE Transaction with from, or a SCALE SignedTransaction without"),
        "QueryRequest": object("{contract: Address, input: HexBytes, from?: Address, gas?: Gas, at?: BlockId}"),
        "EventFilter": object("{contract?: Address, topics?: [Hash|null], fromBlock?: Height, toBlock?: Height, limit?: integer}"),
        "Account": object("address, balance, nonce, pendingNonce, codeHash, blockHeight"),
        "Storage": object("contract, key, value, proof (SCALE StateProof), stateRoot, blockHeight"),
        "Interface": object("name, reentrant, constructor, methods, events, errors"),
        "Validators": object("epoch, blockHeight, validators [{address, consensusKey, power}], totalPower"),
        "Leaders": {"type": "array", "items": object("height, index, address")},
        "Health": object(
            "ok, height, finalHeight, peers, syncing, bestSeenHeight, syncedBlocks, consensus {height, round, validating} (networked nodes), mempool",
        ),
        "Peers": {"type": "array", "items": object("peerId, address")},
        "Version": object("version, hostAbi, chain"),
        "OpenRpc": object("An OpenRPC 1.2 document")
    })
}

/// The document.
pub fn document() -> Value {
    let methods: Vec<Value> = METHODS
        .iter()
        .map(|method| {
            let params: Vec<Value> = method
                .params
                .iter()
                .map(|(name, schema, required)| {
                    json!({"name": name, "required": required, "schema": {"$ref": format!("#/components/schemas/{schema}")}})
                })
                .collect();
            json!({
                "name": method.name,
                "summary": method.summary,
                "params": params,
                "result": {"name": "result", "schema": {"$ref": format!("#/components/schemas/{}", method.result)}},
            })
        })
        .collect();
    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "Altan node JSON-RPC",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "See docs/rpc.md for errors and examples."
        },
        "methods": methods,
        "components": {"schemas": schemas()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_a_method_names_is_defined() {
        let schemas = schemas();
        for method in METHODS {
            assert!(schemas.get(method.result).is_some(), "{}: {}", method.name, method.result);
            for (_, schema, _) in method.params {
                assert!(schemas.get(schema).is_some(), "{}: {schema}", method.name);
            }
        }
    }

    #[test]
    fn completeness_check_catches_drift() {
        let names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        assert!(check_complete(names.iter().copied()).is_ok());
        assert!(check_complete(names.iter().copied().skip(1)).is_err());
        assert!(check_complete(names.iter().copied().chain(["chain_secret"])).is_err());
    }
}
