//! The web page's verifier: the checks of `acta audit verify`, compiled to WebAssembly.
//!
//! One implementation, two targets: [`call`] runs [`acta_contracts::audit`], the code the
//! CLI verifies bundles, receipts and readings with, and answers with the same JSON report
//! `acta audit verify --output json` prints. The page (`node/web/app.js`) loads the module
//! built for `wasm32-unknown-unknown` by the node's build script and calls it through the
//! exports of [`ffi`]; the tests call [`call`] natively.
//!
//! A request is one JSON object with an `op`:
//! - `{"op": "verify", "genesis": TEXT, "file": JSON, "readings": [INDEX...]}`: the verdict
//!   on `file` (a proof bundle, or an answer read with `prove=true`) against the genesis
//!   file's text; `readings`, when given, keeps only those readings of a batch.
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

use acta_contracts::audit;
use acta_ledger::{
    bundle::TrustAnchor,
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
    let genesis = request
        .get("genesis")
        .and_then(Value::as_str)
        .ok_or("field genesis: the genesis file's text is missing")?;
    let anchor =
        TrustAnchor::from_genesis_json(genesis).map_err(|e| format!("the genesis file: {e}"))?;
    let mut file = request
        .get("file")
        .cloned()
        .ok_or("field file: the file to verify is missing")?;
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
    Ok(match audit::verify(&file, &anchor) {
        Ok(audited) => audited.report(),
        Err(e) => audit::failure_report(&e),
    })
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
