//! Chain routes: status, blocks and their results, transactions (submit and look up),
//! event streams and validator sets.

use std::{convert::Infallible, sync::Arc, time::Duration};

use acta_contracts::{
    answer::{self, result_json},
    executor::{next_nonce, BlockResults},
    staking::validators_at,
    view::StateView,
    Outcome, Receipt,
};
use acta_ledger::{
    blocklog,
    bundle::TxEntry,
    checkpoint::{Checkpoint, SignedCheckpoint},
    merkle,
    store::{Store, TxLocation},
    Hash, Height, PublicKey, Transaction,
};
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    Json,
};
use futures::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot, OwnedSemaphorePermit};

use super::{
    blocking, ok,
    read::{bundle, checkpoint_entry, resolve_height},
    Api, ApiError, ApiResult, ReadParams,
};
use crate::{
    genesis::ChainSpec,
    mempool::AddError,
    node::{Committed, Request},
};

pub async fn status(State(api): State<Api>) -> ApiResult {
    let s = api.node.status.read().map_err(ApiError::internal)?.clone();
    let mut v = serde_json::to_value(&s).map_err(ApiError::internal)?;
    if let Value::Object(m) = &mut v {
        m.insert(
            "role".into(),
            Value::String(if s.validator { "validator" } else { "observer" }.into()),
        );
        m.insert(
            "genesis_hash".into(),
            Value::String(api.node.spec.hash.to_hex()),
        );
        m.insert(
            "version".into(),
            Value::String(env!("CARGO_PKG_VERSION").into()),
        );
    }
    ok(v)
}

/// How long the driver may go without updating the status before the node is not live:
/// it does after every event and at least every 3 s.
const LIVE_WITHIN: Duration = Duration::from_secs(30);

/// Whether the node's loop runs, and if not, why not.
fn liveness(s: &crate::node::Status) -> Result<(), String> {
    match s.updated {
        Some(t) if t.elapsed() <= LIVE_WITHIN => Ok(()),
        Some(t) => Err(format!(
            "the node's loop has not run for {} s",
            t.elapsed().as_secs()
        )),
        None => Err("the node's loop has not started".into()),
    }
}

fn health_answer(ok: bool, body: Value) -> ApiResult {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(body)).into_response())
}

/// `GET /health`: live (200) while the node's loop runs, else 503: for a process
/// supervisor's liveness probe.
pub async fn health(State(api): State<Api>) -> ApiResult {
    let s = api.node.status.read().map_err(ApiError::internal)?.clone();
    let live = liveness(&s);
    health_answer(
        live.is_ok(),
        json!({
            "live": live.is_ok(),
            "height": s.height,
            "reasons": live.err().into_iter().collect::<Vec<_>>(),
        }),
    )
}

/// `GET /ready`: ready (200) when live, caught up with its peers, and the chain not
/// stalled; else 503 with the reasons: for a load balancer, and an alert.
pub async fn ready(State(api): State<Api>) -> ApiResult {
    let s = api.node.status.read().map_err(ApiError::internal)?.clone();
    let mut reasons = Vec::new();
    let live = liveness(&s);
    if let Err(e) = &live {
        reasons.push(e.clone());
    }
    if s.syncing {
        reasons.push(format!(
            "syncing: a peer is past height {}, which this node is deciding",
            s.consensus_height
        ));
    }
    if let Some(stall) = &s.stalled {
        reasons.push(format!(
            "stalled at height {} round {} for {} s: {}",
            stall.height,
            stall.round,
            stall.for_ms / 1000,
            stall.reason
        ));
    }
    let ready = reasons.is_empty();
    health_answer(
        ready,
        json!({
            "live": live.is_ok(),
            "ready": ready,
            "height": s.height,
            "reasons": reasons,
        }),
    )
}

fn latest(store: &Store) -> Result<Height, ApiError> {
    Ok(store
        .latest_height()
        .map_err(ApiError::internal)?
        .unwrap_or(Height(0)))
}

pub async fn latest_block(State(api): State<Api>) -> ApiResult {
    blocking(move || {
        let h = latest(&api.node.store)?;
        block_at(&api.node.store, h)
    })
    .await
}

pub async fn block(State(api): State<Api>, Path(height): Path<u64>) -> ApiResult {
    blocking(move || block_at(&api.node.store, Height(height))).await
}

#[derive(Serialize)]
struct BlockAnswer<'a> {
    hash: Hash,
    block: &'a acta_ledger::Block,
    commit: Option<&'a acta_ledger::Commit>,
}

fn no_block(height: Height) -> ApiError {
    ApiError::not_found(format!("no block at height {height}"))
}

/// A block with its hash and the commit certificate that signs it.
fn block_at(store: &Store, height: Height) -> ApiResult {
    let block = store
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_block(height))?;
    let commit = store.commit(height).map_err(ApiError::internal)?;
    ok(BlockAnswer {
        hash: block.hash(),
        block: &block,
        commit: commit.as_ref(),
    })
}

fn results_at(store: &Store, height: Height) -> Result<BlockResults, ApiError> {
    let bytes = store
        .results(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| no_block(height))?;
    BlockResults::decode(&bytes).map_err(ApiError::internal)
}

/// What each transaction of a block did, and the events of the block's start.
pub async fn block_results(State(api): State<Api>, Path(height): Path<u64>) -> ApiResult {
    blocking(move || {
        let results = results_at(&api.node.store, Height(height))?;
        ok(json!({
            "height": height,
            "receipts": results.receipts,
            "events": results.events,
            "messages": results.messages,
        }))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitParams {
    #[serde(default)]
    pub(super) mode: Mode,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Mode {
    /// Queued for the mempool; the answer does not wait for its verdict.
    Async,
    /// Checked by the mempool (signature, chain id, nonce, limits).
    #[default]
    Sync,
    /// Answered when the transaction is in a committed block, or when the wait ends.
    Commit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    /// The transaction's borsh encoding in hex.
    tx: String,
}

fn parse_hash(s: &str) -> Result<Hash, ApiError> {
    Hash::from_hex(s).map_err(|e| ApiError::bad_request(format!("{s:?} is not a hash: {e}")))
}

/// `POST /txs?mode=async|sync|commit` with `{"tx": "<hex>"}`.
pub async fn submit(
    State(api): State<Api>,
    Query(params): Query<SubmitParams>,
    Json(body): Json<SubmitBody>,
) -> ApiResult {
    let bytes = hex::decode(body.tx.trim())
        .map_err(|e| ApiError::bad_request(format!("tx is not hex: {e}")))?;
    let tx = Transaction::decode(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_transaction", e.to_string()))?;
    let id = tx.id();
    let requests = &api.node.requests;
    match params.mode {
        Mode::Async => {
            requests
                .try_send(Request::SubmitTx {
                    tx: Box::new(tx),
                    reply: None,
                })
                .map_err(|e| match e {
                    tokio::sync::mpsc::error::TrySendError::Full(_) => {
                        ApiError::busy("the node's queue is full; try again shortly")
                    }
                    tokio::sync::mpsc::error::TrySendError::Closed(_) => ApiError::stopping(),
                })?;
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "hash": id, "status": "queued" })),
            )
                .into_response())
        }
        Mode::Sync => {
            add_to_mempool(&api, tx).await?;
            ok(json!({ "hash": id, "status": "pending" }))
        }
        Mode::Commit => {
            // Its place among `max_commit_waits` was taken before its body was read
            // (`rpc::limit_concurrency`).
            // Listen before submitting, so that the block cannot pass unseen.
            let mut blocks = api.node.committed.subscribe();
            if let Err(e) = add_to_mempool(&api, tx).await {
                // Submitted again after it was committed (here or through another node):
                // answer with its block.
                if matches!(e.code.as_str(), "stale_nonce" | "duplicate") {
                    let store = api.node.store.clone();
                    if let Some(found) = blocking(move || find_stored(&store, id)).await? {
                        return commit_answer(id, &found);
                    }
                }
                return Err(e);
            }
            let wait = Duration::from_millis(api.config.commit_timeout_ms);
            let found = tokio::time::timeout(wait, wait_for(&api, &mut blocks, id)).await;
            match found {
                Ok(Ok(found)) => commit_answer(id, &found),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "commit_timeout",
                    format!(
                        "not in a committed block within {} ms; it is in the mempool and may still be committed: look it up at /txs/{id}",
                        api.config.commit_timeout_ms
                    ),
                )
                .with("hash", id.to_hex())),
            }
        }
    }
}

/// The most transactions one `POST /txs/batch` carries.
pub const SUBMIT_BATCH_MAX: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatchBody {
    /// Borsh encodings in hex, each a transaction.
    txs: Vec<String>,
}

/// `POST /txs/batch` with `{"txs": ["<hex>", ...]}`: up to [`SUBMIT_BATCH_MAX`]
/// transactions checked by the mempool together (signatures verified as one batch), like
/// `mode=sync` for each. The answer has one entry per transaction, in order: its hash and
/// `pending`, or a refusal's `code` and `message`. One transaction's refusal does not
/// affect the others; a signer's transactions must come in nonce order.
pub async fn submit_batch(State(api): State<Api>, Json(body): Json<SubmitBatchBody>) -> ApiResult {
    if body.txs.len() > SUBMIT_BATCH_MAX {
        return Err(ApiError::bad_request(format!(
            "{} transactions in one batch; at most {SUBMIT_BATCH_MAX}",
            body.txs.len()
        )));
    }
    let mut answers: Vec<Option<Value>> = Vec::with_capacity(body.txs.len());
    let mut txs = Vec::with_capacity(body.txs.len());
    for (i, hex_tx) in body.txs.iter().enumerate() {
        let decoded = hex::decode(hex_tx.trim())
            .map_err(|e| format!("txs[{i}] is not hex: {e}"))
            .and_then(|b| Transaction::decode(&b).map_err(|e| format!("txs[{i}]: {e}")));
        match decoded {
            Ok(tx) => {
                txs.push(tx);
                answers.push(None);
            }
            Err(message) => answers.push(Some(
                json!({ "code": "bad_transaction", "message": message }),
            )),
        }
    }
    let (reply, verdicts) = oneshot::channel();
    api.node
        .requests
        .send(Request::SubmitBatch { txs, reply })
        .await
        .map_err(|_| ApiError::stopping())?;
    let mut verdicts = verdicts
        .await
        .map_err(|_| ApiError::stopping())?
        .into_iter();
    let results: Vec<Value> = answers
        .into_iter()
        .map(|a| {
            a.unwrap_or_else(|| match verdicts.next() {
                Some(Ok(hash)) => json!({ "hash": hash, "status": "pending" }),
                Some(Err(e)) => json!({ "code": e.code(), "message": e.to_string() }),
                None => json!({ "code": "internal", "message": "no verdict" }),
            })
        })
        .collect();
    let accepted = results.iter().filter(|r| r["status"] == "pending").count();
    ok(json!({ "accepted": accepted, "results": results }))
}

async fn add_to_mempool(api: &Api, tx: Transaction) -> Result<(), ApiError> {
    let id = tx.id();
    let (reply, answer) = oneshot::channel();
    api.node
        .requests
        .send(Request::SubmitTx {
            tx: Box::new(tx),
            reply: Some(reply),
        })
        .await
        .map_err(|_| ApiError::stopping())?;
    match answer.await.map_err(|_| ApiError::stopping())? {
        Ok(_) => Ok(()),
        Err(e) => {
            let status = match e {
                AddError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            Err(ApiError::new(status, e.code(), e.to_string()).with("hash", id.to_hex()))
        }
    }
}

/// A signer's next nonce: the one the latest committed state expects, and the one after its
/// transactions waiting in this node's mempool (`next`, what a wallet signs its next
/// transaction with when it does not wait for the last one's block).
pub async fn nonce(State(api): State<Api>, Path(key): Path<String>) -> ApiResult {
    let signer = PublicKey::from_hex(&key)
        .map_err(|e| ApiError::bad_request(format!("{key:?} is not a public key: {e}")))?;
    // The pool first, then the store: a block is stored before its transactions leave the
    // pool, so the store read after the pool is never behind it, and the larger of the two
    // is the signer's next nonce (the pool may still hold transactions the store passed).
    let (reply, pooled) = oneshot::channel();
    api.node
        .requests
        .send(Request::NextAfterPool { signer, reply })
        .await
        .map_err(|_| ApiError::stopping())?;
    let pooled = pooled.await.map_err(|_| ApiError::stopping())?;
    let store = api.node.store.clone();
    let (height, committed) = blocking(move || {
        let height = latest(&store)?;
        let view = StateView::new(store.as_ref(), height);
        let committed = next_nonce(&view, &signer).map_err(ApiError::internal)?;
        Ok((height, committed))
    })
    .await?;
    let next = pooled.map_or(committed, |n| n.max(committed));
    ok(json!({
        "signer": signer,
        "height": height,
        "committed": committed,
        "next": next,
        "pending": next - committed,
    }))
}

/// Where a committed transaction is and what it did.
struct Found {
    height: Height,
    index: u32,
    outcome: Outcome,
    message: Option<String>,
}

fn find_in(c: &Committed, id: Hash) -> Option<Found> {
    c.txs.iter().find(|t| t.hash == id).map(|t| Found {
        height: Height(c.height),
        index: t.index,
        outcome: t.outcome.clone(),
        message: t.message.clone(),
    })
}

/// The result of a committed transaction, from the store.
fn find_stored(store: &Store, id: Hash) -> Result<Option<Found>, ApiError> {
    let Some(TxLocation { height, index }) = store.tx_location(&id).map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let results = results_at(store, height)?;
    let message = results.message(index).map(str::to_string);
    let receipt = results
        .receipts
        .into_iter()
        .nth(index as usize)
        .ok_or_else(|| ApiError::internal(format!("no result for {id} in block {height}")))?;
    Ok(Some(Found {
        height,
        index,
        outcome: receipt.outcome,
        message,
    }))
}

/// Waits until `id` is in a committed block; a subscriber that fell behind looks in the
/// store.
async fn wait_for(
    api: &Api,
    blocks: &mut broadcast::Receiver<Arc<Committed>>,
    id: Hash,
) -> Result<Found, ApiError> {
    loop {
        match blocks.recv().await {
            Ok(c) => {
                if let Some(f) = find_in(&c, id) {
                    return Ok(f);
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let store = api.node.store.clone();
                if let Some(f) = blocking(move || find_stored(&store, id)).await? {
                    return Ok(f);
                }
            }
            Err(broadcast::error::RecvError::Closed) => return Err(ApiError::stopping()),
        }
    }
}

fn commit_answer(id: Hash, f: &Found) -> ApiResult {
    match &f.outcome {
        Outcome::Accepted { events } => ok(json!({
            "hash": id,
            "status": "committed",
            "height": f.height.0,
            "index": f.index,
            "events": events,
        })),
        Outcome::Refused { code } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code.as_str(),
            format!(
                "the ledger refused the transaction: {}",
                f.message.as_deref().unwrap_or(code.as_str())
            ),
        )
        .with("hash", id.to_hex())
        .with("height", f.height.0)),
    }
}

/// A committed transaction's answer for `GET /txs/{hash}` (with its bundle if `prove`), or
/// `None` if the store does not hold it.
fn committed_tx(
    store: &Store,
    spec: &ChainSpec,
    id: Hash,
    prove: bool,
    checkpoint: Option<u64>,
) -> Result<Option<Value>, ApiError> {
    let Some(loc) = store.tx_location(&id).map_err(ApiError::internal)? else {
        return Ok(None);
    };
    let block = store
        .block(loc.height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("no block {}", loc.height)))?;
    let results = results_at(store, loc.height)?;
    let i = loc.index as usize;
    let (Some(tx), Some(receipt)) = (block.txs.get(i), results.receipts.get(i)) else {
        return Err(ApiError::internal(format!(
            "no transaction {i} in block {}",
            loc.height
        )));
    };
    // The refusal's message is not in the block's results, and the position is not proven
    // (the header does not commit to the number of transactions): a proven answer leaves
    // both out.
    let message = if prove {
        None
    } else {
        results.message(loc.index)
    };
    let index = (!prove).then_some(u64::from(loc.index));
    let mut answer = answer::tx_answer(tx, loc.height, index, &receipt.outcome, message);
    if prove {
        let ids: Vec<Hash> = block
            .txs
            .iter()
            .map(|t| merkle::leaf_hash(&t.id().0))
            .collect();
        let leaves = Receipt::leaves(&results.receipts);
        let leaf_hashes: Vec<Hash> = leaves.iter().map(|l| merkle::leaf_hash(l)).collect();
        let entry = TxEntry {
            tx: tx.encode(),
            tx_proof: merkle::inclusion_proof(&ids, i).map_err(ApiError::internal)?,
            result: leaves[i].clone(),
            result_proof: merkle::inclusion_proof(&leaf_hashes, i).map_err(ApiError::internal)?,
        };
        let mut b = bundle(
            store,
            spec,
            loc.height,
            Some(format!("/txs/{id}")),
            Vec::new(),
            Some(entry),
        )?;
        b.checkpoint = checkpoint_entry(store, loc.height, checkpoint)?;
        answer["proof"] = serde_json::to_value(b).map_err(ApiError::internal)?;
    }
    Ok(Some(answer))
}

/// `GET /txs/{hash}`: a committed transaction with its result (and, with `prove=true`, a
/// bundle proving both), or `pending` while it waits in the mempool.
pub async fn tx(
    State(api): State<Api>,
    Path(hash): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let id = parse_hash(&hash)?;
    if params.height.is_some() {
        return Err(ApiError::bad_request(
            "a transaction has one height; leave out ?height=",
        ));
    }
    let (prove, checkpoint) = (params.prove, params.checkpoint);
    if checkpoint.is_some() && !prove {
        return Err(ApiError::bad_request(
            "checkpoint= proves the header in a checkpoint's log: it needs prove=true",
        ));
    }
    let lookup = || {
        let (store, spec) = (api.node.store.clone(), api.node.spec.clone());
        blocking(move || committed_tx(&store, &spec, id, prove, checkpoint))
    };
    if let Some(answer) = lookup().await? {
        return ok(answer);
    }
    let (reply, pending) = oneshot::channel();
    api.node
        .requests
        .send(Request::Pending { id, reply })
        .await
        .map_err(|_| ApiError::stopping())?;
    if pending.await.map_err(|_| ApiError::stopping())? {
        return ok(json!({ "hash": id, "status": "pending" }));
    }
    // It may have left the mempool for a block between the two looks.
    if let Some(answer) = lookup().await? {
        return ok(answer);
    }
    Err(ApiError::not_found(format!(
        "transaction {id} is neither committed nor waiting in this node's mempool"
    )))
}

/// How long a transaction subscription waits for its block before it ends.
const TX_SUBSCRIPTION_MS: u64 = 120_000;

fn subscription_permit(api: &Api) -> Result<OwnedSemaphorePermit, ApiError> {
    api.limits
        .subscriptions
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::busy(format!(
                "{} subscriptions are open; try again later",
                api.config.max_subscriptions
            ))
        })
}

/// `GET /events/blocks`: server-sent events, one `block` event per committed block (its
/// height, hash, time and each transaction's result); `lagged` if the client fell behind.
pub async fn block_events(State(api): State<Api>) -> Result<Response, ApiError> {
    let permit = subscription_permit(&api)?;
    let receiver = api.node.committed.subscribe();
    let events = stream::unfold((receiver, permit), |(mut rx, permit)| async move {
        let event = match rx.recv().await {
            Ok(c) => Event::default()
                .event("block")
                .id(c.height.to_string())
                .json_data(&*c)
                .unwrap_or_else(|_| Event::default().event("error")),
            Err(broadcast::error::RecvError::Lagged(n)) => Event::default()
                .event("lagged")
                .data(format!("{{\"missed\":{n}}}")),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), (rx, permit)))
    });
    Ok(sse(events))
}

fn sse(events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `GET /events/txs/{hash}`: one `tx` event when the transaction is committed (at once if
/// it already is), then the stream ends; a `timeout` event ends it after two minutes.
pub async fn tx_events(State(api): State<Api>, Path(hash): Path<String>) -> ApiResult {
    let id = parse_hash(&hash)?;
    let permit = subscription_permit(&api)?;
    let mut receiver = api.node.committed.subscribe();
    let store = api.node.store.clone();
    let already = blocking(move || find_stored(&store, id)).await?;
    let event = move |f: &Found| {
        Event::default().event("tx").data(
            json!({
                "hash": id,
                "height": f.height.0,
                "index": f.index,
                "result": result_json(&f.outcome, f.message.as_deref()),
            })
            .to_string(),
        )
    };
    let api2 = api.clone();
    let one = async move {
        let _permit = permit;
        let found = match already {
            Some(f) => Ok(f),
            None => tokio::time::timeout(
                Duration::from_millis(TX_SUBSCRIPTION_MS),
                wait_for(&api2, &mut receiver, id),
            )
            .await
            .unwrap_or_else(|_| Err(ApiError::not_found("timeout"))),
        };
        let e = match found {
            Ok(f) => event(&f),
            Err(_) => Event::default()
                .event("timeout")
                .data(json!({ "hash": id }).to_string()),
        };
        Ok::<_, Infallible>(e)
    };
    Ok(sse(stream::once(one)))
}

/// `GET /validators?height=H`: the set that signs block `H` (the latest by default), with
/// `prove=true` a bundle whose header at `H` names it.
pub async fn validators(State(api): State<Api>, Query(params): Query<ReadParams>) -> ApiResult {
    blocking(move || {
        let store = &api.node.store;
        let height = resolve_height(store, params.height)?;
        let signs = if height == Height(0) {
            Height(1)
        } else {
            height
        };
        let set = validators_at(store.as_ref(), signs).map_err(ApiError::internal)?;
        let next = validators_at(store.as_ref(), signs.next()).map_err(ApiError::internal)?;
        // Names come from the genesis file, not the chain: a proven answer leaves them out.
        let names = (!params.prove).then_some(&api.node.spec.names);
        let mut answer = answer::validators_answer(signs, &set, next.hash(), names);
        if params.prove {
            if height == Height(0) {
                return Err(ApiError::bad_request(
                    "no proof at height 0: the genesis set is in the genesis file",
                ));
            }
            if params.checkpoint.is_some() {
                return Err(ApiError::bad_request(
                    "a checkpoint does not name validator sets: prove /validators against the genesis",
                ));
            }
            let b = bundle(
                store,
                &api.node.spec,
                signs,
                Some("/validators".into()),
                Vec::new(),
                None,
            )?;
            answer["proof"] = serde_json::to_value(b).map_err(ApiError::internal)?;
        }
        ok(answer)
    })
    .await
}

/// The most checkpoint sizes looked at, newest first, for one with a quorum of cosignatures.
const CHECKPOINTS_SCANNED: usize = 16;

/// `GET /checkpoint`: the latest checkpoint of the block log cosigned by validators holding
/// more than two thirds of the power of the set that signed its last block, as a C2SP
/// signed note (`text/plain`).
pub async fn checkpoint(State(api): State<Api>) -> ApiResult {
    blocking(move || {
        let store = &api.node.store;
        let mut at = store.block_log_size().map_err(ApiError::internal)?;
        for _ in 0..CHECKPOINTS_SCANNED {
            let Some(size) = store.latest_cosigned(at).map_err(ApiError::internal)? else {
                break;
            };
            let set = validators_at(store.as_ref(), Height(size)).map_err(ApiError::internal)?;
            let cosignatures = store.cosignatures(size).map_err(ApiError::internal)?;
            let power: u64 = cosignatures
                .iter()
                .filter_map(|c| set.index_of(&c.key).and_then(|i| set.get(i)))
                .map(|v| v.power.0)
                .sum();
            if set.is_quorum(acta_ledger::VotingPower(power)) {
                let signed = SignedCheckpoint {
                    checkpoint: Checkpoint::of(store.as_ref(), &api.node.spec.chain_id, size)
                        .map_err(ApiError::internal)?,
                    cosignatures,
                };
                return Ok(super::text("text/plain; charset=utf-8", signed.note()));
            }
            if size == 0 {
                break;
            }
            at = size - 1;
        }
        Err(ApiError::not_found(
            "no checkpoint is cosigned by more than two thirds of the power yet",
        ))
    })
    .await
}

/// `?from=` and `?to=` of a consistency proof.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    pub from: u64,
    pub to: u64,
}

/// `GET /checkpoint/consistency?from=M&to=N`: the RFC 9162 proof that the block log of `M`
/// blocks is a prefix of the log of `N` blocks (two checkpoints of one chain).
pub async fn consistency(
    State(api): State<Api>,
    Query(params): Query<ConsistencyParams>,
) -> ApiResult {
    blocking(move || {
        let store = &api.node.store;
        let latest = store.block_log_size().map_err(ApiError::internal)?;
        if params.from > params.to || params.to > latest {
            return Err(ApiError::bad_request(format!(
                "from {} and to {} must satisfy from <= to <= {latest} (the blocks committed)",
                params.from, params.to
            )));
        }
        let proof = blocklog::consistency_proof(store.as_ref(), params.from, params.to)
            .map_err(ApiError::internal)?;
        ok(serde_json::to_value(proof).map_err(ApiError::internal)?)
    })
    .await
}
