//! The client commands: keys, transactions, reads.

use std::path::PathBuf;

use altan_primitives::{Action, Address, SecretKey, blake3};
use altan_runtime::vm::contract_address;
use anyhow::{Context, bail};
use jsonrpsee::http_client::HttpClient;
use serde_json::{Value, json};

use super::{Command, KeysCommand, SignArgs};
use crate::client::{self, GasSettings};
use crate::interface::{self, ContractInterface};
use crate::keys::{KeyStore, default_dir, parse_secret};
use crate::rpc::AltanApiClient;
use crate::rpc::types::{
    BlockId, EventFilter, EventJson, HexBytes, QueryRequest, ReceiptJson, StatusJson,
};

/// Prints `value` as JSON, or `text` for people.
fn output(json_mode: bool, value: &Value, text: impl FnOnce() -> String) {
    if json_mode {
        print_line(&value.to_string());
    } else {
        print_line(&text());
    }
}

/// Writes a line to stdout. A reader that has gone away (`altan block | head -1`) is not worth
/// a panic, which `println!` would give on the broken pipe: the output is dropped.
fn print_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn key_store(dir: Option<PathBuf>) -> KeyStore {
    KeyStore::new(dir.unwrap_or_else(default_dir))
}

fn signer(sign: &SignArgs) -> anyhow::Result<SecretKey> {
    key_store(sign.keys_dir.clone()).load(&sign.from)
}

fn gas(sign: &SignArgs) -> GasSettings {
    GasSettings { limit: sign.gas_limit, price: sign.gas_price }
}

/// Parses `name=value` arguments; values that are JSON (arrays, numbers, booleans) are taken as
/// such, anything else as a string.
fn parse_args(args: &[String]) -> anyhow::Result<Vec<(String, Value)>> {
    args.iter()
        .map(|arg| {
            let (name, value) = arg
                .split_once('=')
                .with_context(|| format!("arguments are name=value; got {arg:?}"))?;
            let value = match serde_json::from_str::<Value>(value) {
                Ok(Value::Array(items)) => Value::Array(items),
                Ok(Value::Bool(b)) => Value::Bool(b),
                _ => Value::String(value.to_string()),
            };
            Ok((name.to_string(), value))
        })
        .collect()
}

async fn interface_of(rpc: &HttpClient, contract: Address) -> anyhow::Result<ContractInterface> {
    Ok(rpc.interface(contract, None).await?)
}

fn parse_block_id(text: &str) -> anyhow::Result<BlockId> {
    Ok(serde_json::from_value(match text.parse::<u64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::String(text.to_string()),
    })?)
}

/// Events with their decoded form, when the emitting contract describes it.
async fn decoded_events(rpc: &HttpClient, events: &[EventJson]) -> Vec<Value> {
    let mut interfaces: std::collections::BTreeMap<Address, Option<ContractInterface>> =
        std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for event in events {
        if let std::collections::btree_map::Entry::Vacant(entry) = interfaces.entry(event.contract)
        {
            entry.insert(rpc.interface(event.contract, None).await.ok());
        }
        let decoded = interfaces
            .get(&event.contract)
            .and_then(|i| i.as_ref())
            .and_then(|i| interface::decode_event(i, &event.topics, &event.data.0));
        let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
        if let (Some(decoded), Value::Object(map)) = (decoded, &mut value) {
            map.insert("decoded".into(), decoded);
        }
        out.push(value);
    }
    out
}

fn event_line(event: &Value) -> String {
    match event.get("decoded") {
        Some(decoded) => {
            let fields = decoded["fields"]
                .as_object()
                .map(|f| {
                    f.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect::<Vec<_>>().join(" ")
                })
                .unwrap_or_default();
            format!(
                "  {} {fields}  (contract {})",
                decoded["event"].as_str().unwrap_or("?"),
                plain(&event["contract"])
            )
        }
        None => format!(
            "  event from {} topics {} data {}",
            plain(&event["contract"]),
            event["topics"],
            plain(&event["data"])
        ),
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A receipt as JSON with decoded events, output and revert, and its text form.
async fn describe_receipt(
    rpc: &HttpClient,
    receipt: &ReceiptJson,
    method: Option<(&ContractInterface, &str)>,
) -> (Value, String) {
    let events = decoded_events(rpc, &receipt.events).await;
    let mut value = serde_json::to_value(receipt).unwrap_or(Value::Null);
    let mut lines = vec![format!(
        "transaction {} in block {} ({:?}, gas used {})",
        receipt.transaction_id, receipt.block_height, receipt.status, receipt.gas_used
    )];
    if let Some(failure) = &receipt.failure {
        lines.push(format!("  failed: {failure}"));
    }
    match receipt.status {
        StatusJson::Revert => {
            if let Some(revert) =
                interface::decode_revert(method.map(|(i, _)| i), &receipt.output.0)
            {
                lines.push(format!(
                    "  reverted: {} (code {}{})",
                    plain(&revert["message"]),
                    revert["code"],
                    revert["name"].as_str().map(|n| format!(", {n}")).unwrap_or_default()
                ));
                value["revert"] = revert;
            }
        }
        StatusJson::Success => {
            if let Some((interface, name)) = method
                && let Ok(method) = interface.method(name)
                && let Ok(result) = interface::decode_output(method, &receipt.output.0)
                && !result.is_null()
            {
                lines.push(format!("  returned: {}", plain(&result)));
                value["result"] = result;
            }
        }
        StatusJson::Failure => {}
    }
    if let Some(address) = receipt.contract_address {
        lines.push(format!("  contract address: {address}"));
    }
    for event in &events {
        lines.push(event_line(event));
    }
    value["events"] = Value::Array(events);
    (value, lines.join("\n"))
}

async fn send_and_report(
    rpc: &HttpClient,
    sign: &SignArgs,
    key: &SecretKey,
    action: Action,
    method: Option<(&ContractInterface, &str)>,
    json_mode: bool,
) -> anyhow::Result<()> {
    let transaction = client::sign(rpc, key, action, gas(sign)).await?;
    let id = client::submit(rpc, &transaction).await?;
    if sign.no_wait {
        output(json_mode, &json!({"id": id}), || format!("submitted {id}"));
        return Ok(());
    }
    let receipt = client::wait_for_receipt(rpc, id, std::time::Duration::from_secs(60)).await?;
    let (value, text) = describe_receipt(rpc, &receipt, method).await;
    output(json_mode, &value, || text);
    if receipt.status != StatusJson::Success {
        bail!("the transaction did not succeed");
    }
    Ok(())
}

/// Runs a client command.
pub async fn run(command: Command, json_mode: bool) -> anyhow::Result<()> {
    match command {
        Command::Keys { keys_dir, command } => keys(key_store(keys_dir), command, json_mode),
        Command::Transfer { rpc, sign, to, amount } => {
            let client = client::http(&rpc.rpc)?;
            let key = signer(&sign)?;
            send_and_report(
                &client,
                &sign,
                &key,
                Action::Transfer { to, value: amount },
                None,
                json_mode,
            )
            .await
        }
        Command::Deploy { rpc, sign, wasm, args, value, salt } => {
            let client = client::http(&rpc.rpc)?;
            let key = signer(&sign)?;
            let code =
                std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
            let interface = ContractInterface::from_wasm(&code)?;
            let given = parse_args(&args)?;
            let input = match &interface.constructor {
                Some(constructor) => interface::encode_arguments(constructor, &given)?,
                None if given.is_empty() => Vec::new(),
                None => bail!("{} has no constructor; it takes no arguments", interface.name),
            };
            let nonce = client.account(key.address(), None).await?;
            let nonce = nonce.pending_nonce.unwrap_or(nonce.nonce);
            let salt = salt.unwrap_or_else(|| blake3(&nonce.to_le_bytes()));
            let expected = contract_address(&key.address(), &blake3(&code), &salt);
            let action = Action::Deploy { code, input, value, salt };
            if !json_mode {
                print_line(&format!("deploying {} to {expected}", interface.name));
            }
            send_and_report(&client, &sign, &key, action, None, json_mode).await
        }
        Command::Call { rpc, sign, contract, method, args, value } => {
            let client = client::http(&rpc.rpc)?;
            let key = signer(&sign)?;
            let interface = interface_of(&client, contract).await?;
            let description = interface.method(&method)?;
            let mut input = selector_bytes(description)?;
            input.extend(interface::encode_arguments(description, &parse_args(&args)?)?);
            let action = Action::Call { contract, input, value };
            send_and_report(&client, &sign, &key, action, Some((&interface, &method)), json_mode)
                .await
        }
        Command::Query { rpc, contract, method, args, caller } => {
            let client = client::http(&rpc.rpc)?;
            let interface = interface_of(&client, contract).await?;
            let description = interface.method(&method)?;
            let mut input = selector_bytes(description)?;
            input.extend(interface::encode_arguments(description, &parse_args(&args)?)?);
            let outcome = client
                .query(QueryRequest {
                    contract,
                    input: HexBytes(input),
                    from: caller,
                    gas: None,
                    at: None,
                })
                .await?;
            match outcome.status {
                StatusJson::Success => {
                    let result = interface::decode_output(description, &outcome.output.0)?;
                    output(
                        json_mode,
                        &json!({"result": result, "gasUsed": outcome.gas_used}),
                        || plain(&result),
                    );
                    Ok(())
                }
                StatusJson::Revert => {
                    let revert = interface::decode_revert(Some(&interface), &outcome.output.0);
                    output(json_mode, &json!({"revert": revert}), || {
                        format!(
                            "reverted: {}",
                            revert.as_ref().map(|r| plain(&r["message"])).unwrap_or_default()
                        )
                    });
                    bail!("the query reverted")
                }
                StatusJson::Failure => {
                    bail!("the query failed: {}", outcome.failure.unwrap_or_default())
                }
            }
        }
        Command::Account { rpc, address, keys_dir } => {
            let client = client::http(&rpc.rpc)?;
            let address = match address.parse::<Address>() {
                Ok(address) => address,
                Err(_) => key_store(keys_dir).load(&address)?.address(),
            };
            let account = client.account(address, None).await?;
            output(json_mode, &serde_json::to_value(&account)?, || {
                format!(
                    "address  {}\nbalance  {}\nnonce    {}{}",
                    account.address,
                    account.balance.0,
                    account.nonce,
                    account.code_hash.map(|h| format!("\ncode     {h}")).unwrap_or_default()
                )
            });
            Ok(())
        }
        Command::Block { rpc, at } => {
            let client = client::http(&rpc.rpc)?;
            let block =
                client.block(parse_block_id(&at)?, Some(false)).await?.context("no such block")?;
            output(json_mode, &serde_json::to_value(&block)?, || {
                let h = &block.header;
                format!(
                    "block {} {}\n  parent     {}\n  time       {} ms\n  proposer   {}\n  state root {}\n  gas used   {} of {}\n  final      {}\n  transactions {}{}",
                    h.height,
                    h.hash,
                    h.parent_hash,
                    h.timestamp_ms,
                    h.proposer,
                    h.state_root,
                    h.gas_used,
                    h.gas_limit,
                    block.is_final,
                    block.transaction_ids.len(),
                    block
                        .transaction_ids
                        .iter()
                        .map(|id| format!("\n    {id}"))
                        .collect::<String>()
                )
            });
            Ok(())
        }
        Command::Tx { rpc, id } => {
            let client = client::http(&rpc.rpc)?;
            let tx = client.transaction(id).await?.context("no such transaction")?;
            output(json_mode, &serde_json::to_value(&tx)?, || {
                format!(
                    "transaction {}\n  from   {}\n  nonce  {}\n  gas    {} at {}\n  action {}\n  block  {}",
                    tx.id,
                    tx.from.map(|a| a.to_string()).unwrap_or_default(),
                    tx.nonce,
                    tx.gas_limit,
                    tx.gas_price.0,
                    serde_json::to_string(&tx.action).unwrap_or_default(),
                    tx.block_height.map_or("pending".into(), |h| h.to_string())
                )
            });
            Ok(())
        }
        Command::Receipt { rpc, id } => {
            let client = client::http(&rpc.rpc)?;
            let receipt = client
                .receipt(id)
                .await?
                .context("no receipt: the transaction is unknown or pending")?;
            let (value, text) = describe_receipt(&client, &receipt, None).await;
            output(json_mode, &value, || text);
            Ok(())
        }
        Command::Events { rpc, contract, from_block, to_block } => {
            let client = client::http(&rpc.rpc)?;
            let filter = EventFilter {
                contract: Some(contract),
                topics: Vec::new(),
                from_block,
                to_block,
                limit: None,
            };
            let events = decoded_events(&client, &client.events(filter).await?).await;
            output(json_mode, &Value::Array(events.clone()), || {
                if events.is_empty() {
                    return "no events".into();
                }
                events
                    .iter()
                    .map(|e| format!("block {}:{}", e["blockHeight"], event_line(e)))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Command::Dev { .. } | Command::Run { .. } | Command::Genesis(_) | Command::Bench(_) => {
            bail!("not a client command")
        }
    }
}

fn selector_bytes(method: &interface::Method) -> anyhow::Result<Vec<u8>> {
    let text = method.selector.as_deref().context("the method has no selector")?;
    let bytes = hex::decode(text.trim_start_matches("0x"))?;
    if bytes.len() != 4 {
        bail!("selector {text} is not 4 bytes");
    }
    Ok(bytes)
}

fn keys(store: KeyStore, command: KeysCommand, json_mode: bool) -> anyhow::Result<()> {
    match command {
        KeysCommand::New { name } => {
            let key = crate::keys::generate();
            let file = store.save(&name, &key)?;
            output(json_mode, &json!({"name": name, "address": file.address}), || {
                format!("created key {name}: {} (in {})", file.address, store.dir().display())
            });
        }
        KeysCommand::Import { name, secret } => {
            let secret = match secret {
                Some(secret) => secret,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line
                }
            };
            let file = store.save(&name, &parse_secret(&secret)?)?;
            output(json_mode, &json!({"name": name, "address": file.address}), || {
                format!("imported key {name}: {}", file.address)
            });
        }
        KeysCommand::Show { name, reveal } => {
            let key = store.load(&name)?;
            let secret = reveal.then(|| format!("0x{}", hex::encode(key.to_bytes())));
            let value = json!({"name": name, "address": key.address(), "publicKey": key.public_key().to_string(), "secretKey": secret});
            output(json_mode, &value, || {
                format!(
                    "{name}\n  address    {}\n  public key {}{}",
                    key.address(),
                    key.public_key(),
                    secret.as_ref().map(|s| format!("\n  secret key {s}")).unwrap_or_default()
                )
            });
        }
        KeysCommand::List => {
            let keys = store.list()?;
            let value: Vec<Value> =
                keys.iter().map(|(n, a)| json!({"name": n, "address": a})).collect();
            output(json_mode, &Value::Array(value), || {
                if keys.is_empty() {
                    return format!("no keys in {}", store.dir().display());
                }
                keys.iter().map(|(n, a)| format!("{n}  {a}")).collect::<Vec<_>>().join("\n")
            });
        }
    }
    Ok(())
}
