//! The web page's verifier: the checks of `acta audit verify`, compiled to WebAssembly.
//!
//! One implementation, two targets: [`call`] runs [`acta_contracts::audit`], the code the
//! CLI verifies bundles, receipts and readings with, and answers with the same JSON report
//! `acta audit verify --output json` prints. The page (`node/web/app.js`) loads the module
//! built for `wasm32-unknown-unknown` by the node's build script and calls it through the
//! exports of [`ffi`]; the tests call [`call`] natively.
//!
//! A request is one JSON object with an `op`:
//! - `{"op": "verify", "genesis": TEXT, "file": TEXT, "readings": [INDEX...], "asked":
//!   PATH}`: the verdict on `file` (a proof bundle, or an answer read with `prove=true`, as
//!   JSON text) against the genesis file's text; `readings`, when given, keeps only those
//!   readings of a batch; `asked`, when given, is the API request the file must answer (at
//!   its `height`, if it names one), or the verdict fails at step "request".
//!
//! - `{"op": "unlock", "keystore": TEXT, "passphrase": TEXT}`: decrypts a key file of the
//!   wallet's keystore (`acta keys ...`) and holds the key in the module's memory; answers
//!   its name, DID and public key. The key never returns to JavaScript.
//! - `{"op": "recover", "words": TEXT}`: holds the key of 24 recovery words (or a hex seed),
//!   as `acta keys import` reads them.
//! - `{"op": "forget"}`: drops the key held.
//! - `{"op": "vote", "chain_id": ID, "nonce": N, "valid_until": MS, "round": R,
//!   "projects": [P...], "voter": DID?}`: a transaction casting the ballot, signed by the key
//!   held at that nonce, hex-encoded for `POST /txs`, with its id. The voter is the key's
//!   own DID unless named.
//!
//! The answer is `{"ok": true, "result": ...}` or `{"ok": false, "error": TEXT}`; a
//! verification that fails is a result (`verified: false`, with the step and why), not an
//! error.

use std::cell::RefCell;

use acta_contracts::{answer::Query, audit};
use acta_ledger::{
    bundle::{BundleError, TrustAnchor},
    keystore::{seed_from_text, Keystore},
    tx::BudgetCall,
    Call, ChainId, Did, Keypair, Timestamp, Transaction,
};
use serde_json::{json, Value};

mod ffi;

/// A request is refused beyond this size (a bundle of a full batch is well under it).
pub const REQUEST_BYTES_MAX: usize = 32 << 20;

/// Answers one request (JSON bytes) with JSON bytes; never panics on any input.
pub fn call(request: &[u8]) -> Vec<u8> {
    let answer = match answer(request) {
        Ok(result) => json!({ "ok": true, "result": result }),
        Err(error) => json!({ "ok": false, "error": error }),
    };
    answer.to_string().into_bytes()
}

fn answer(request: &[u8]) -> Result<Value, String> {
    if request.len() > REQUEST_BYTES_MAX {
        return Err(format!(
            "the request is {} bytes, more than the {REQUEST_BYTES_MAX} allowed",
            request.len()
        ));
    }
    let request: Value =
        serde_json::from_slice(request).map_err(|e| format!("the request is not JSON: {e}"))?;
    match request.get("op").and_then(Value::as_str) {
        Some("verify") => verify(&request),
        Some("unlock") => unlock(&request),
        Some("recover") => recover(&request),
        Some("forget") => {
            KEY.with(|k| *k.borrow_mut() = None);
            Ok(json!({}))
        }
        Some("vote") => vote(&request),
        Some(op) => Err(format!("unknown op {op:?}")),
        None => Err("the request names no op".into()),
    }
}

fn verify(request: &Value) -> Result<Value, String> {
    let genesis = text(request, "genesis")?;
    let anchor =
        TrustAnchor::from_genesis_json(genesis).map_err(|e| format!("the genesis file: {e}"))?;
    // The file's text is parsed here, not in JavaScript, whose numbers would round
    // integers past 2^53 before the comparison.
    let mut file: Value = serde_json::from_str(text(request, "file")?)
        .map_err(|e| format!("the file is not JSON: {e}"))?;
    if let Some(wanted) = request.get("readings").filter(|r| !r.is_null()) {
        let wanted = wanted
            .as_array()
            .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
            .ok_or("field readings: a list of reading indexes is expected")?;
        if !wanted.is_empty() {
            audit::select_readings(&mut file, &wanted).map_err(|e| format!("the file: {e}"))?;
        }
    }
    if file.get("proof").is_none() && file.get("header").is_none() {
        return Err(
            "the file holds no proof: save the record read with ?prove=true (acta ... --prove --output json)"
                .into(),
        );
    }
    let asked = match request.get("asked").and_then(Value::as_str) {
        Some(path) => Some(asked(path)?),
        None => None,
    };
    let audited = match audit::verify(&file, &anchor) {
        Ok(audited) => audited,
        Err(e) => return Ok(audit::failure_report(&e)),
    };
    // A proof of another record, or of the same one at another height, does not answer the
    // request made: the verdict covers what was asked, or fails.
    if let Some((target, height)) = asked {
        if audited.query.as_deref() != Some(target.as_str()) {
            return Ok(audit::failure_report(&BundleError {
                step: "request",
                message: format!(
                    "the proof answers {}, not the request {target}",
                    audited.query.as_deref().unwrap_or("no request")
                ),
            }));
        }
        if let Some(h) = height.filter(|h| *h != audited.verified.height.0) {
            return Ok(audit::failure_report(&BundleError {
                step: "request",
                message: format!(
                    "the proof is of height {}, not the height {h} asked",
                    audited.verified.height.0
                ),
            }));
        }
    }
    Ok(audited.report())
}

/// The request an API path asks, as a proof names it (`prove`, `height` and `checkpoint`
/// choose how it is answered, not what), and the height it asks for, if any.
fn asked(path: &str) -> Result<(String, Option<u64>), String> {
    let (route, params) = path.split_once('?').unwrap_or((path, ""));
    let mut height = None;
    let mut kept = Vec::new();
    for pair in params.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("height", h)) => {
                height = Some(
                    h.parse()
                        .map_err(|_| format!("height {h:?} is not a number"))?,
                )
            }
            Some(("prove" | "checkpoint", _)) => {}
            _ => kept.push(pair),
        }
    }
    let target = if kept.is_empty() {
        route.to_string()
    } else {
        format!("{route}?{}", kept.join("&"))
    };
    // A transaction and the validator set are answered beside the record queries.
    if target.starts_with("/txs/") || target == "/validators" {
        return Ok((target, height));
    }
    let query = Query::parse(&target).map_err(|e| format!("the request {path}: {e}"))?;
    Ok((query.target(), height))
}
thread_local! {
    /// The resident's key, once unlocked: it stays in the module's memory.
    static KEY: RefCell<Option<Keypair>> = const { RefCell::new(None) };
}

fn text<'a>(request: &'a Value, field: &str) -> Result<&'a str, String> {
    request
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("field {field}: text expected"))
}

fn number(request: &Value, field: &str) -> Result<u64, String> {
    request
        .get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("field {field}: a whole number expected"))
}

fn hold(key: Keypair, name: Option<String>) -> Value {
    let public = key.public();
    KEY.with(|k| *k.borrow_mut() = Some(key));
    json!({
        "name": name,
        "did": Did::from_initial_key(&public).to_string(),
        "public_key": hex::encode(public.0),
    })
}

fn unlock(request: &Value) -> Result<Value, String> {
    let (name, key) =
        Keystore::unlock_text(text(request, "keystore")?, text(request, "passphrase")?)
            .map_err(|e| e.to_string())?;
    Ok(hold(key, Some(name)))
}

fn recover(request: &Value) -> Result<Value, String> {
    let seed = zeroize::Zeroizing::new(seed_from_text(text(request, "words")?)?);
    Ok(hold(Keypair::from_seed(*seed), None))
}

fn vote(request: &Value) -> Result<Value, String> {
    let chain_id =
        ChainId::new(text(request, "chain_id")?).map_err(|e| format!("field chain_id: {e}"))?;
    let projects = request
        .get("projects")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()))
                .collect::<Option<Vec<u32>>>()
        })
        .ok_or("field projects: a list of project numbers expected")?;
    KEY.with(|k| {
        let held = k.borrow();
        let key = held
            .as_ref()
            .ok_or("no key is unlocked: open your key file or recovery words first")?;
        let voter = match request.get("voter").and_then(Value::as_str) {
            Some(d) => Did::parse(d).map_err(|e| format!("field voter: {e}"))?,
            None => Did::from_initial_key(&key.public()),
        };
        let call = Call::Budget(BudgetCall::Vote {
            round: number(request, "round")?,
            voter,
            projects,
        });
        let tx = Transaction::sign(
            key,
            chain_id,
            number(request, "nonce")?,
            Timestamp(number(request, "valid_until")?),
            call,
        );
        Ok(json!({ "tx": hex::encode(tx.encode()), "id": tx.id().to_hex() }))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ask(request: Value) -> Value {
        serde_json::from_slice(&call(request.to_string().as_bytes())).unwrap()
    }

    #[test]
    fn bad_requests_are_answered_with_errors() {
        for bad in [
            &b"not json"[..],
            b"{}",
            br#"{"op":"launch"}"#,
            br#"{"op":"verify"}"#,
        ] {
            let a: Value = serde_json::from_slice(&call(bad)).unwrap();
            assert_eq!(a["ok"], false, "{a}");
            assert!(!a["error"].as_str().unwrap().is_empty());
        }
        let a = ask(
            json!({"op": "vote", "chain_id": "c", "nonce": 0, "valid_until": 1, "round": 0, "projects": [0]}),
        );
        assert!(a["error"].as_str().unwrap().contains("no key"), "{a}");
    }

    #[test]
    fn the_request_asked_is_written_as_proofs_name_it() {
        assert_eq!(
            asked("/budget/rounds/0?prove=true&height=5").unwrap(),
            ("/budget/rounds/0".to_string(), Some(5))
        );
        assert_eq!(
            asked("/council/proposals?prove=true").unwrap(),
            ("/council/proposals?from=0&limit=20".to_string(), None)
        );
        assert_eq!(asked("/txs/ab12").unwrap(), ("/txs/ab12".to_string(), None));
        assert!(asked("/budget/rounds/0?height=x").is_err());
        assert!(asked("/nowhere").is_err());
    }

    #[test]
    fn recovered_keys_sign_votes_the_ledger_decodes() {
        let words = acta_ledger::keystore::recovery_words(&[7; 32]);
        let who = ask(json!({"op": "recover", "words": words.as_str()}));
        let key = Keypair::from_seed([7; 32]);
        assert_eq!(
            who["result"]["did"],
            Did::from_initial_key(&key.public()).to_string()
        );
        let a = ask(
            json!({"op": "vote", "chain_id": "acta-demo", "nonce": 3, "valid_until": 99, "round": 2, "projects": [1, 0]}),
        );
        let bytes = hex::decode(a["result"]["tx"].as_str().unwrap()).unwrap();
        let tx = Transaction::decode(&bytes).unwrap();
        assert_eq!(
            (tx.signer, tx.nonce, tx.valid_until),
            (key.public(), 3, Timestamp(99))
        );
        assert_eq!(tx.id().to_hex(), a["result"]["id"]);
        assert_eq!(
            tx.call,
            Call::Budget(BudgetCall::Vote {
                round: 2,
                voter: Did::from_initial_key(&key.public()),
                projects: vec![1, 0]
            })
        );
        let expected = Transaction::sign(
            &key,
            ChainId::new("acta-demo").unwrap(),
            3,
            Timestamp(99),
            tx.call.clone(),
        );
        assert_eq!(tx.signature, expected.signature);
        ask(json!({"op": "forget"}));
        let a = ask(
            json!({"op": "vote", "chain_id": "acta-demo", "nonce": 4, "valid_until": 99, "round": 2, "projects": [1]}),
        );
        assert_eq!(a["ok"], false);
    }
}
