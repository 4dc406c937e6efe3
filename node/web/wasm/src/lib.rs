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
//!   its `height`, if it names one), or the verdict fails at step "request". With `"trust":
//!   TEXT`, a trust pin's file (`acta audit pin`, format `acta-trust-pin/1`, ADR 0028): the
//!   file is verified from the pinned set instead of the genesis set (a header below the
//!   pin fails at step "trust"). The report's `trusted` says which: `"genesis"`, or the
//!   pin's height, block and validators hash.
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
//! - `{"op": "ballot_make", "chain_id", "round", "registrar_key": HEX, "passphrase"}`: for
//!   a secret round, makes a one-time ballot key (or takes the one held for the round) and
//!   blinds its token message for the round's registrar key; answers the ballot secret
//!   sealed with the passphrase as the wallet's `ballots/` file (`file`: name and text), to
//!   save before asking, and what the page may know of it (`ballot`: the round, the
//!   resident, the ballot key's public half and the blinded message).
//! - `{"op": "ballot_request", "chain_id", "nonce", "valid_until", "round"}`: the
//!   `RequestToken` of the held secret, signed by the key held.
//! - `{"op": "ballot_open", "file": TEXT, "passphrase"}`: opens such a file and holds it.
//! - `{"op": "ballot_vote", "chain_id", "nonce", "valid_until", "round", "projects",
//!   "registrar_key", "blinded", "blind_signature", "resident"?}`: unblinds the token from
//!   the registrar's answer to the held request (refused if the ledger's request is not the
//!   one kept) and answers the `VoteSecret` transaction signed by the ballot key.
//!
//! The answer is `{"ok": true, "result": ...}` or `{"ok": false, "error": TEXT}`; a
//! verification that fails is a result (`verified: false`, with the step and why), not an
//! error.

use std::cell::RefCell;

use acta_contracts::{answer::Query, audit};
use acta_ledger::{
    bundle::{BundleError, TrustAnchor},
    keystore::{
        ballot_name, check_new_passphrase, seed_from_text, BallotSecret, Keystore, SecretKind,
    },
    token::RegistrarKey,
    tx::BudgetCall,
    types::Bytes,
    Call, ChainId, Did, Keypair, Timestamp, Transaction,
};
use serde_json::{json, Value};
use zeroize::Zeroizing;

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
            BALLOTS.with(|b| b.borrow_mut().clear());
            Ok(json!({}))
        }
        Some("vote") => vote(&request),
        Some("ballot_make") => ballot_make(&request),
        Some("ballot_request") => ballot_request(&request),
        Some("ballot_open") => ballot_open(&request),
        Some("ballot_vote") => ballot_vote(&request),
        Some(op) => Err(format!("unknown op {op:?}")),
        None => Err("the request names no op".into()),
    }
}

fn verify(request: &Value) -> Result<Value, String> {
    let genesis = text(request, "genesis")?;
    let mut anchor =
        TrustAnchor::from_genesis_json(genesis).map_err(|e| format!("the genesis file: {e}"))?;
    if let Some(pin) = request.get("trust").filter(|t| !t.is_null()) {
        let pin = pin
            .as_str()
            .ok_or("field trust: a trust pin's text is expected")?;
        anchor = anchor
            .pinned_by_json(pin)
            .map_err(|e| format!("the trust pin: {e}"))?;
    }
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
    let mut report = audited.report();
    report["trusted"] = anchor.trusted_json();
    Ok(report)
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

fn projects(request: &Value) -> Result<Vec<u32>, String> {
    request
        .get("projects")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()))
                .collect::<Option<Vec<u32>>>()
        })
        .ok_or_else(|| "field projects: a list of project numbers expected".into())
}

fn chain_id(request: &Value) -> Result<ChainId, String> {
    ChainId::new(text(request, "chain_id")?).map_err(|e| format!("field chain_id: {e}"))
}

/// `call` signed by `key` for the request's chain, at its nonce, valid until its time:
/// the transaction hex-encoded for `POST /txs`, with its id.
fn signed(key: &Keypair, request: &Value, call: Call) -> Result<Value, String> {
    let tx = Transaction::sign(
        key,
        chain_id(request)?,
        number(request, "nonce")?,
        Timestamp(number(request, "valid_until")?),
        call,
    );
    Ok(json!({ "tx": hex::encode(tx.encode()), "id": tx.id().to_hex() }))
}

/// Runs `f` with the resident's key, or says none is unlocked.
fn with_key<T>(f: impl FnOnce(&Keypair) -> Result<T, String>) -> Result<T, String> {
    KEY.with(|k| {
        let held = k.borrow();
        let key = held
            .as_ref()
            .ok_or("no key is unlocked: open your key file or recovery words first")?;
        f(key)
    })
}

fn vote(request: &Value) -> Result<Value, String> {
    let projects = projects(request)?;
    with_key(|key| {
        let voter = match request.get("voter").and_then(Value::as_str) {
            Some(d) => Did::parse(d).map_err(|e| format!("field voter: {e}"))?,
            None => Did::from_initial_key(&key.public()),
        };
        let call = Call::Budget(BudgetCall::Vote {
            round: number(request, "round")?,
            voter,
            projects,
        });
        signed(key, request, call)
    })
}

// --- Secret rounds ------------------------------------------------------------------------

thread_local! {
    /// The ballot secrets made or opened this visit (one per chain, round and resident):
    /// they stay in the module's memory, and leave it only sealed with a passphrase.
    static BALLOTS: RefCell<Vec<BallotSecret>> = const { RefCell::new(Vec::new()) };
}

fn hex_bytes(request: &Value, field: &str) -> Result<Vec<u8>, String> {
    hex::decode(text(request, field)?).map_err(|e| format!("field {field}: {e}"))
}

fn ballot_key(secret: &BallotSecret) -> Result<Keypair, String> {
    secret
        .ballot_key()
        .ok_or_else(|| "the ballot file holds no ballot key".into())
}

/// What the page may know of a ballot secret: its round and resident, and the ballot key's
/// public half (to read its nonce and receipts).
fn described(secret: &BallotSecret) -> Result<Value, String> {
    let public = ballot_key(secret)?.public();
    Ok(json!({
        "chain": secret.chain.as_str(),
        "round": secret.round,
        "resident": secret.resident.to_string(),
        "ballot_did": Did::from_initial_key(&public).to_string(),
        "ballot_public_key": hex::encode(public.0),
        "blinded": secret.blinded,
        "token": secret.token.is_some(),
    }))
}

/// Keeps `secret` in place of any other for its chain, round and resident.
fn hold_ballot(secret: BallotSecret) -> Result<Value, String> {
    let answer = described(&secret)?;
    BALLOTS.with(|b| {
        let mut held = b.borrow_mut();
        held.retain(|s| {
            (&s.chain, s.round, &s.resident) != (&secret.chain, secret.round, &secret.resident)
        });
        held.push(secret);
    });
    Ok(answer)
}

/// Runs `f` on the ballot secret held for the request's chain and round and the resident
/// `resident` (the key held, unless the request names one).
fn with_ballot<T>(
    request: &Value,
    f: impl FnOnce(&mut BallotSecret) -> Result<T, String>,
) -> Result<T, String> {
    let chain = chain_id(request)?;
    let round = number(request, "round")?;
    let resident = match request.get("resident").and_then(Value::as_str) {
        Some(d) => Did::parse(d).map_err(|e| format!("field resident: {e}"))?,
        None => with_key(|key| Ok(Did::from_initial_key(&key.public())))?,
    };
    BALLOTS.with(|b| {
        let mut held = b.borrow_mut();
        let secret = held
            .iter_mut()
            .find(|s| s.chain == chain && s.round == round && s.resident == resident)
            .ok_or_else(|| {
                format!("no ballot file of {resident} for round {round} is open: open the one you saved when you asked for your token")
            })?;
        f(secret)
    })
}

/// `ballot_make`: the ballot secret of a secret round for the resident's key, sealed with
/// the passphrase (the keystore's `ballots/` file) for the resident to save before asking:
/// the one held for the round if there is one (an earlier request may still be committed,
/// and only its secret will do), else a fresh one-time ballot key with its token message
/// blinded for the round's registrar key.
fn ballot_make(request: &Value) -> Result<Value, String> {
    let chain = chain_id(request)?;
    let round = number(request, "round")?;
    let passphrase = text(request, "passphrase")?;
    check_new_passphrase(passphrase)?;
    if with_ballot(request, |_| Ok(())).is_err() {
        let registrar_key = RegistrarKey::from_der(&hex_bytes(request, "registrar_key")?)
            .map_err(|e| format!("the round's registrar key: {e}"))?;
        let resident = with_key(|key| Ok(Did::from_initial_key(&key.public())))?;
        let secret =
            BallotSecret::new(&registrar_key, chain, round, resident).map_err(|e| e.to_string())?;
        hold_ballot(secret)?;
    }
    with_ballot(request, |s| {
        let bytes = Zeroizing::new(serde_json::to_vec(s).map_err(|e| e.to_string())?);
        let name = ballot_name(&s.chain, s.round, &s.resident);
        let file = Keystore::seal_secret_text(SecretKind::Ballot, &name, &[], &bytes, passphrase)
            .map_err(|e| e.to_string())?;
        Ok(json!({ "file": { "name": name, "text": file }, "ballot": described(s)? }))
    })
}

/// `ballot_request`: the token request of the ballot secret held for the round, signed by
/// the resident's key.
fn ballot_request(request: &Value) -> Result<Value, String> {
    let round = number(request, "round")?;
    let blinded = with_ballot(request, |s| {
        hex::decode(&s.blinded).map_err(|e| e.to_string())
    })?;
    with_key(|key| {
        let call = Call::Budget(BudgetCall::RequestToken {
            round,
            voter: Did::from_initial_key(&key.public()),
            blinded: Bytes::new(blinded).map_err(|e| e.to_string())?,
        });
        signed(key, request, call)
    })
}

/// `ballot_open`: opens a ballot file saved earlier (the page's or the CLI wallet's
/// `ballots/` file) and holds its secret.
fn ballot_open(request: &Value) -> Result<Value, String> {
    let (name, _, bytes) = Keystore::unlock_secret_text(
        SecretKind::Ballot,
        text(request, "file")?,
        text(request, "passphrase")?,
    )
    .map_err(|e| e.to_string())?;
    let secret: BallotSecret =
        serde_json::from_slice(&bytes).map_err(|e| format!("the ballot file: {e}"))?;
    if ballot_name(&secret.chain, secret.round, &secret.resident) != name {
        return Err("the ballot file's name is not its round's and resident's".into());
    }
    hold_ballot(secret)
}

/// `ballot_vote`: the ballot of a secret round, signed by the one-time ballot key held for
/// it, with the token unblinded from the registrar's answer (`blinded` and
/// `blind_signature` as the ledger recorded them, checked against what was kept).
fn ballot_vote(request: &Value) -> Result<Value, String> {
    let projects = projects(request)?;
    let round = number(request, "round")?;
    with_ballot(request, |secret| {
        let ballot = ballot_key(secret)?;
        let token = match &secret.token {
            Some(t) => hex::decode(t).map_err(|e| format!("the ballot file's token: {e}"))?,
            None => {
                let registrar_key = RegistrarKey::from_der(&hex_bytes(request, "registrar_key")?)
                    .map_err(|e| format!("the round's registrar key: {e}"))?;
                secret.unblind(
                    &registrar_key,
                    &hex_bytes(request, "blinded")?,
                    &hex_bytes(request, "blind_signature")?,
                )?
            }
        };
        let call = Call::Budget(BudgetCall::VoteSecret {
            round,
            token: Bytes::new(token).map_err(|e| e.to_string())?,
            projects,
        });
        let mut answer = signed(&ballot, request, call)?;
        answer["ballot_did"] = json!(Did::from_initial_key(&ballot.public()).to_string());
        Ok(answer)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use acta_ledger::token;

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
        // A trust pin that is not one is an error that names it, before any file is read.
        let genesis = json!({"chain_id": "acta-demo", "validators": [{
            "consensus_key": "5866666666666666666666666666666666666666666666666666666666666666",
            "power": 10,
        }]})
        .to_string();
        for trust in [
            json!("{}"),
            json!(5),
            json!(r#"{"format": "acta-trust-pin/9"}"#),
        ] {
            let a = ask(json!({"op": "verify", "genesis": genesis, "trust": trust, "file": "{}"}));
            let error = a["error"].as_str().unwrap_or_default();
            assert!(error.contains("trust"), "{a}");
        }
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

    #[test]
    fn a_secret_ballot_is_asked_for_kept_sealed_and_cast_from_its_ballot_key() {
        let registrar = token::Registrar::generate(2048).unwrap();
        let der = registrar.public_der().unwrap();
        let registrar_key = RegistrarKey::from_der(&der).unwrap();
        let words = acta_ledger::keystore::recovery_words(&[9; 32]);
        ask(json!({"op": "recover", "words": words.as_str()}));
        let resident = Did::from_initial_key(&Keypair::from_seed([9; 32]).public());
        let making = |pass: &str| {
            ask(
                json!({"op": "ballot_make", "chain_id": "acta-demo", "round": 3,
                "registrar_key": hex::encode(&der), "passphrase": pass}),
            )
        };
        let asking = || {
            ask(
                json!({"op": "ballot_request", "chain_id": "acta-demo", "nonce": 1,
                "valid_until": 99, "round": 3}),
            )
        };
        // Nothing held yet: no request can be signed.
        assert!(asking()["error"]
            .as_str()
            .unwrap()
            .contains("no ballot file"));
        assert!(making("short")["error"]
            .as_str()
            .unwrap()
            .contains("12 characters"));
        let a = making("a ballot for old town");
        let r = asking();
        let tx = Transaction::decode(&hex::decode(r["result"]["tx"].as_str().unwrap()).unwrap())
            .unwrap();
        let Call::Budget(BudgetCall::RequestToken {
            round: 3,
            voter,
            blinded,
        }) = &tx.call
        else {
            panic!("{:?}", tx.call)
        };
        assert_eq!(*voter, resident);
        let blinded = blinded.as_slice().to_vec();
        assert_eq!(a["result"]["ballot"]["blinded"], hex::encode(&blinded));
        // Made again, the same secret is sealed, and the same request goes out (the first
        // may still commit).
        let again = making("another passphrase, same ballot");
        assert_eq!(again["result"]["ballot"], a["result"]["ballot"]);
        let r2 = asking();
        let tx2 = Transaction::decode(&hex::decode(r2["result"]["tx"].as_str().unwrap()).unwrap())
            .unwrap();
        assert_eq!(tx2.call, tx.call);
        let file = a["result"]["file"]["text"].as_str().unwrap().to_string();
        assert_eq!(
            a["result"]["file"]["name"],
            ballot_name(&ChainId::new("acta-demo").unwrap(), 3, &resident)
        );
        // Nothing of the ballot key is in the sealed file's clear text.
        let ballot_public = a["result"]["ballot"]["ballot_public_key"].as_str().unwrap();
        assert!(!file.contains(ballot_public));
        // A new visit: nothing held; the file opens with its passphrase only.
        ask(json!({"op": "forget"}));
        let wrong =
            ask(json!({"op": "ballot_open", "file": file, "passphrase": "not the passphrase"}));
        assert!(
            wrong["error"]
                .as_str()
                .unwrap()
                .contains("wrong passphrase"),
            "{wrong}"
        );
        let opened =
            ask(json!({"op": "ballot_open", "file": file, "passphrase": "a ballot for old town"}));
        assert_eq!(opened["result"]["ballot_public_key"], ballot_public);
        let blind_signature = registrar.sign_blinded(&blinded).unwrap();
        let voting = |blinded: &[u8]| {
            ask(
                json!({"op": "ballot_vote", "chain_id": "acta-demo", "nonce": 0, "valid_until": 99,
                "round": 3, "projects": [1], "resident": resident.to_string(),
                "registrar_key": hex::encode(&der), "blinded": hex::encode(blinded),
                "blind_signature": hex::encode(&blind_signature)}),
            )
        };
        let other = voting(b"not the request kept");
        assert!(
            other["error"].as_str().unwrap().contains("not the one"),
            "{other}"
        );
        let v = voting(&blinded);
        let tx = Transaction::decode(&hex::decode(v["result"]["tx"].as_str().unwrap()).unwrap())
            .unwrap();
        assert_eq!(hex::encode(tx.signer.0), ballot_public);
        assert_eq!(v["result"]["ballot_did"], opened["result"]["ballot_did"]);
        let Call::Budget(BudgetCall::VoteSecret {
            round: 3,
            token,
            projects,
        }) = &tx.call
        else {
            panic!("{:?}", tx.call)
        };
        assert_eq!(projects, &vec![1]);
        let chain = ChainId::new("acta-demo").unwrap();
        token::verify_token(&registrar_key, &chain, 3, &tx.signer, token.as_slice()).unwrap();
        ask(json!({"op": "forget"}));
    }
}
