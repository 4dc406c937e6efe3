//! The HTTP API against a running network of four `actad` processes: every route, with its
//! refusals; every JSON answer checked against the OpenAPI document's schema; the document
//! checked against the routes the server serves; and proof bundles from one node verified
//! offline against the genesis validator set (across a validator-set change), with any
//! tampering caught at the step it breaks.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::{
    cell::RefCell,
    collections::BTreeSet,
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use acta_contracts::{audit, tally};
use acta_ledger::{
    bundle::{ProofBundle, ReadingEntry, TrustAnchor, TrustPin},
    checkpoint::SignedCheckpoint,
    merkle,
    records::{
        BallotFormat, CredentialKind, DidDocument, GovAction, RoundSpec, Rule, RuleProfile,
        TieBreak, VerificationMethod,
    },
    testing,
    tx::{AttestationBatch, BudgetCall, CredentialCall, GovernanceCall, IdentityCall, SensorCall},
    types::Text,
    Call, ChainId, Did, Hash, Height, Keypair, Timestamp, Transaction, ValidatorSet,
};
use acta_node::{
    devnet::{http, http_with, HttpAnswer, Wallet},
    genesis::Genesis,
    rpc,
};
use common::Net;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

/// A client of one node that checks every JSON answer against the OpenAPI document and
/// remembers which routes it exercised.
struct Client {
    addr: String,
    doc: Value,
    hit: RefCell<BTreeSet<(String, String)>>,
}

impl Client {
    fn new(addr: &str) -> Client {
        Client {
            addr: addr.to_string(),
            doc: rpc::openapi::document(),
            hit: RefCell::new(BTreeSet::new()),
        }
    }

    /// `method path` (with `body`), checked against `template`'s documented answer.
    fn call(&self, method: &str, template: &str, path: &str, body: Option<&str>) -> HttpAnswer {
        self.call_with(method, template, path, &[], body)
    }

    /// As [`Api::call`], with request headers.
    fn call_with(
        &self,
        method: &str,
        template: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpAnswer {
        let a = http_with(
            &self.addr,
            method,
            path,
            headers,
            body.map(str::as_bytes),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        self.hit
            .borrow_mut()
            .insert((method.to_string(), template.to_string()));
        let op = &self.doc["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        let status = a.status.to_string();
        let response = &op["responses"][&status];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which {template} does not document: {}",
            a.text()
        );
        // The JSON media types documented; the answer must be one of them, and match its
        // schema.
        let documented: Vec<(&String, &Value)> = response["content"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(t, _)| {
                *t == "application/json"
                    || t.ends_with("+json")
                    || *t == "application/did-resolution"
            })
            .collect();
        if !documented.is_empty() {
            let media = a
                .header("content-type")
                .and_then(|c| c.split(';').next())
                .unwrap_or("")
                .trim()
                .to_string();
            let Some((_, content)) = documented.iter().find(|(t, _)| **t == media) else {
                panic!(
                    "{method} {path} answered {media:?}, not a documented type: {}",
                    a.head
                );
            };
            let schema = &content["schema"];
            let v = a.json();
            if let Err(e) = validate(&self.doc, schema, &v, "$") {
                panic!("{method} {path} ({status}) does not match its schema: {e}\n{v:#}");
            }
        }
        a
    }

    fn get(&self, template: &str, path: &str) -> (u16, Value) {
        let a = self.call("GET", template, path, None);
        (a.status, a.json())
    }

    /// A GET that must succeed.
    fn ok(&self, template: &str, path: &str) -> Value {
        let (status, v) = self.get(template, path);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// A GET that must fail with `status` and `code`.
    fn refused(&self, template: &str, path: &str, status: u16, code: &str) -> Value {
        let (s, v) = self.get(template, path);
        assert_eq!(
            (s, v["code"].as_str()),
            (status, Some(code)),
            "GET {path}: {v}"
        );
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        v
    }

    fn submit(&self, mode: &str, tx: &Transaction) -> (u16, Value) {
        let body = json!({ "tx": hex::encode(tx.encode()) }).to_string();
        let a = self.call("POST", "/txs", &format!("/txs?mode={mode}"), Some(&body));
        (a.status, a.json())
    }

    /// Submits with `mode=commit` and expects it accepted in a block.
    fn commit(&self, tx: &Transaction) -> Value {
        let (status, v) = self.submit("commit", tx);
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "committed", "{v}");
        v
    }
}

/// Checks `v` against a schema of the OpenAPI 3.1 document (JSON Schema 2020-12), whose
/// `$ref`s point into the document's components: the document is the root, and the schema
/// is its only assertion (the document's own fields are not keywords).
fn validate(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let mut root = doc.clone();
    root["allOf"] = json!([schema]);
    let validator = jsonschema::draft202012::new(&root).map_err(|e| format!("{at}: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{at}{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Every `$ref` resolves, every path's `{parameters}` are declared as path parameters and
/// the other way round, and every operation documents a 200 (or 202) answer.
fn check_document(doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        out.push(x.as_str().unwrap().to_string());
                    }
                    refs(x, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{r}");
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        for (method, op) in item.as_object().unwrap() {
            assert!(["get", "post"].contains(&method.as_str()), "{method}");
            // An operation without parameters leaves `parameters` out.
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let declared: BTreeSet<String> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(declared, in_path, "{method} {path}");
            for p in &params {
                assert!(
                    p["name"].is_string() && p["schema"].is_object(),
                    "{path}: {p}"
                );
                assert!(["path", "query"].contains(&p["in"].as_str().unwrap()));
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{method} {path}");
            for (code, r) in responses {
                assert!(code.parse::<u16>().is_ok(), "{code}");
                assert!(r["description"].is_string(), "{method} {path} {code}");
            }
        }
    }
}

/// The schemas refuse what the serializers never write: the checks of live answers below can
/// fail.
#[test]
fn the_schemas_refuse_answers_the_node_never_gives() {
    let doc = rpc::openapi::document();
    let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let hash = "ab".repeat(32);
    let nonce = json!({ "signer": hash, "height": 3, "committed": 1, "next": 2, "pending": 1 });
    validate(&doc, &schema("SignerNonce"), &nonce, "$").unwrap();
    let mut missing = nonce.clone();
    missing.as_object_mut().unwrap().remove("next");
    let mut negative = nonce.clone();
    negative["pending"] = json!(-1);
    let mut short_key = nonce.clone();
    short_key["signer"] = json!("abcd");
    for bad in [missing, negative, short_key] {
        assert!(
            validate(&doc, &schema("SignerNonce"), &bad, "$").is_err(),
            "{bad}"
        );
    }
    // A proven answer: the record's fields, the height, and a bundle if any.
    let proven = &doc["paths"]["/council"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    let council = json!({
        "council": { "members": [hash], "threshold": 1 },
        "proposals": 0,
        "height": 7,
    });
    validate(&doc, proven, &council, "$").unwrap();
    let mut no_height = council.clone();
    no_height.as_object_mut().unwrap().remove("height");
    assert!(validate(&doc, proven, &no_height, "$").is_err());
    // An error's named fields are typed: a hash is 64 hex digits, `oldest` a height.
    let error = json!({ "code": "pruned", "message": "pruned", "oldest": 3 });
    validate(&doc, &schema("ErrorBody"), &error, "$").unwrap();
    for (k, bad) in [
        ("hash", json!("zz")),
        ("oldest", json!("3")),
        ("height", json!(-1)),
    ] {
        let mut e = error.clone();
        e[k] = bad;
        assert!(
            validate(&doc, &schema("ErrorBody"), &e, "$").is_err(),
            "{e}"
        );
    }
    // Unsigned integers keep their usual format names.
    assert_eq!(
        doc["components"]["schemas"]["SignerNonce"]["properties"]["next"]["format"],
        "uint64"
    );
    let mut bad_round = json!({ "open": null });
    assert!(validate(&doc, &schema("RoundStatus"), &bad_round, "$").is_err());
    bad_round = json!({ "cancelled": { "at": 4 } });
    validate(&doc, &schema("RoundStatus"), &bad_round, "$").unwrap();
    // An event's attributes are (name, value) pairs: two strings, no more, no fewer.
    let event = json!({ "kind": "did_created", "attributes": [["did", "did:acta:x"]] });
    validate(&doc, &schema("Event"), &event, "$").unwrap();
    for bad in [
        json!([["did"]]),
        json!([["did", "x", "y"]]),
        json!([["did", 3]]),
    ] {
        let mut e = event.clone();
        e["attributes"] = bad;
        assert!(validate(&doc, &schema("Event"), &e, "$").is_err(), "{e}");
    }
}

#[test]
fn the_document_lists_exactly_the_routes_served() {
    let doc = rpc::openapi::document();
    check_document(&doc);
    let served: BTreeSet<(String, String)> = rpc::routes()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_lowercase(), p.to_string()))
        .collect();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(|m| (m.clone(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(served, documented);
}

fn text<const N: usize>(s: &str) -> Text<N> {
    Text::new(s).unwrap()
}

fn did(k: &Keypair) -> Did {
    Did::from_initial_key(&k.public())
}

fn create_did() -> Call {
    Call::Identity(IdentityCall::CreateDid {
        next_key_hash: None,
    })
}

/// Verifies the `proof` of an answer against the genesis, returning the bundle; then
/// checks that the audit covers every field the answer shows (see [`every_field_is_proven`]).
fn verified(answer: &Value, chain: &ChainId, genesis: &ValidatorSet) -> ProofBundle {
    let bundle: ProofBundle = serde_json::from_value(answer["proof"].clone())
        .unwrap_or_else(|e| panic!("no bundle in {answer}: {e}"));
    let v = bundle
        .verify(chain, genesis)
        .unwrap_or_else(|e| panic!("bundle does not verify: {e}"));
    assert_eq!(v.height.0, answer["height"].as_u64().unwrap_or(v.height.0));
    every_field_is_proven(
        answer,
        &TrustAnchor::genesis(chain.clone(), genesis.clone()),
    );
    bundle
}

/// A trust pin stands in for the genesis set: an answer verifies from a pinned set without
/// the changes below it, a header below the pin or off the pinned block is refused, a pin
/// naming the wrong set fails at the commit, and the pin's file round-trips and refuses
/// edits. `latest` is `/validators?prove=true` after one change of set, `b` its bundle.
fn trust_pins_replace_the_genesis_set(
    api: &Client,
    latest: &Value,
    b: &ProofBundle,
    chain: &ChainId,
    genesis: &ValidatorSet,
) {
    let step = |answer: &Value, anchor: &TrustAnchor| match audit::verify(answer, anchor) {
        Ok(_) => "verified".to_string(),
        Err(e) => e.step.to_string(),
    };
    let genesis_anchor = TrustAnchor::genesis(chain.clone(), genesis.clone());
    let changed_at = b.validator_changes[0].header.height;
    let now = audit::verify(latest, &genesis_anchor).unwrap().verified;
    let new_set = now.validators.clone().unwrap();
    let first = api.ok("/validators", "/validators?height=1&prove=true");
    let first_block = audit::verify(&first, &genesis_anchor)
        .unwrap()
        .verified
        .block_hash;
    let pinned = |height: Height, block: Hash, validators: &ValidatorSet| {
        let pin = TrustPin {
            height,
            block,
            validators: validators.clone(),
        };
        genesis_anchor
            .clone()
            .pinned_by_json(&pin.to_json(chain))
            .unwrap()
    };
    // Pinned at the latest height: the change below it is not followed.
    let at_latest = pinned(now.height, now.block_hash, &new_set);
    let audited = audit::verify(latest, &at_latest).unwrap();
    assert!(
        audited
            .steps()
            .iter()
            .any(|s| s.contains("below the pinned height not followed")),
        "{:?}",
        audited.steps()
    );
    // Pinned at height 1 with the genesis set: the change is followed from the pin.
    assert_eq!(
        step(latest, &pinned(Height(1), first_block, genesis)),
        "verified"
    );
    // Pinned at the height of the change itself (the genesis set signs it): the change is
    // followed from the pin; with another block there, the change is of another history.
    let change_block = b.validator_changes[0].header.hash();
    assert_eq!(
        step(latest, &pinned(changed_at, change_block, genesis)),
        "verified"
    );
    assert_eq!(
        step(
            latest,
            &pinned(changed_at, Hash::digest(b"elsewhere"), genesis)
        ),
        "trust"
    );
    // A header below the pin says nothing the pin vouches for.
    assert_eq!(step(&first, &at_latest), "trust");
    // Another block at the pinned height is another history.
    assert_eq!(
        step(
            latest,
            &pinned(now.height, Hash::digest(b"elsewhere"), &new_set)
        ),
        "trust"
    );
    // The genesis set pinned after it was replaced did not sign the header.
    assert_eq!(
        step(
            latest,
            &pinned(Height(changed_at.0 + 1), now.block_hash, genesis)
        ),
        "commit"
    );
    // The file: what it states is checked, and nothing else is read.
    let text = TrustPin {
        height: now.height,
        block: now.block_hash,
        validators: new_set.clone(),
    }
    .to_json(chain);
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(file["validators_hash"], json!(new_set.hash()));
    for (field, bad) in [
        ("validators_hash", json!(genesis.hash())),
        ("chain_id", json!("other-chain")),
        ("height", json!(0)),
        ("format", json!("acta-trust-pin/9")),
        ("extra", json!(1)),
    ] {
        let mut f = file.clone();
        f[field] = bad;
        let refused = genesis_anchor.clone().pinned_by_json(&f.to_string());
        assert!(refused.is_err(), "{field}: {f}");
    }
}

/// The audit of an answer passes as served, and fails, naming the field, when any one
/// value the answer shows is edited, when a field is added, and when a list gains an item.
fn every_field_is_proven(answer: &Value, anchor: &TrustAnchor) {
    let audited = audit::verify(answer, anchor)
        .unwrap_or_else(|e| panic!("the answer does not audit: {e}\n{answer}"));
    assert!(audited.query.is_some(), "{answer}");
    let shown = {
        let mut v = answer.clone();
        v.as_object_mut().unwrap().remove("proof");
        v
    };
    let mut edits = 0;
    fn walk(v: &Value, path: String, out: &mut Vec<(String, Vec<PathStep>)>, at: Vec<PathStep>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    let mut a = at.clone();
                    a.push(PathStep::Key(k.clone()));
                    walk(x, p, out, a);
                }
            }
            Value::Array(items) => {
                out.push((path.clone(), at.clone()));
                for (i, x) in items.iter().enumerate() {
                    let mut a = at.clone();
                    a.push(PathStep::Index(i));
                    walk(x, format!("{path}[{i}]"), out, a);
                }
            }
            _ => out.push((path, at)),
        }
    }
    let mut leaves = Vec::new();
    walk(&shown, String::new(), &mut leaves, Vec::new());
    for (path, at) in leaves {
        let mut edited = answer.clone();
        let mut target = &mut edited;
        for step in &at {
            target = match step {
                PathStep::Key(k) => &mut target[k.as_str()],
                PathStep::Index(i) => &mut target[*i],
            };
        }
        *target = match target.take() {
            Value::String(s) if s.is_empty() => json!("x"),
            Value::String(s) => {
                let mut c: Vec<char> = s.chars().collect();
                let last = c.pop();
                c.push(if last == Some('0') { '1' } else { '0' });
                json!(c.into_iter().collect::<String>())
            }
            Value::Number(n) => json!(n.as_u64().map_or(1, |n| n ^ 1)),
            Value::Bool(b) => json!(!b),
            Value::Null => json!(0),
            Value::Array(mut items) => {
                items.push(json!("added"));
                json!(items)
            }
            Value::Object(_) => unreachable!("objects are walked into"),
        };
        let err = audit::verify(&edited, anchor)
            .err()
            .unwrap_or_else(|| panic!("editing {path} still verifies: {edited}"));
        assert_eq!(err.step, "answer", "{path}: {err}");
        let name = if path.is_empty() {
            "the answer".to_string()
        } else {
            format!("field {path}")
        };
        assert!(
            err.message.contains(&name),
            "editing {path} fails without naming it: {err}"
        );
        edits += 1;
    }
    let mut added = answer.clone();
    added["note"] = json!("trust me");
    let err = audit::verify(&added, anchor).unwrap_err();
    assert!(
        err.message
            .contains("field note is not covered by the proof"),
        "{err}"
    );
    assert!(
        edits > 0 && edits >= audited.fields,
        "{edits} edits, {} fields",
        audited.fields
    );
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// Each kind of tampering breaks the step it should.
fn tampering_is_caught(bundle: &ProofBundle, chain: &ChainId, genesis: &ValidatorSet) {
    let step = |b: &ProofBundle| b.verify(chain, genesis).unwrap_err().step;
    let mut b = bundle.clone();
    if let Some(v) = b.state[0].value.as_mut() {
        v[0] ^= 1;
    } else {
        b.state[0].value = Some(vec![0]);
    }
    assert_eq!(step(&b), "state");
    let mut b = bundle.clone();
    b.state[0].key.push(0);
    assert_eq!(step(&b), "state");
    let mut b = bundle.clone();
    b.header.state_root.0[0] ^= 1;
    assert_eq!(
        step(&b),
        "commit",
        "a changed header is not what was signed"
    );
    let mut b = bundle.clone();
    b.header.time.0 += 1;
    assert_eq!(step(&b), "commit");
    let mut b = bundle.clone();
    let mut sig = b.commit.signatures[0].signature.0;
    sig[5] ^= 1;
    b.commit.signatures[0].signature = acta_ledger::Signature(sig);
    assert_eq!(step(&b), "commit");
    let mut b = bundle.clone();
    b.commit.signatures.truncate(1);
    assert_eq!(step(&b), "commit", "one signature is not a quorum");
    let mut b = bundle.clone();
    b.chain_id = ChainId::new("other-chain").unwrap();
    assert_eq!(step(&b), "chain");
    assert!(bundle
        .verify(&ChainId::new("other-chain").unwrap(), genesis)
        .is_err());
    if !bundle.validator_changes.is_empty() {
        let mut b = bundle.clone();
        b.validator_changes.clear();
        assert_eq!(step(&b), "commit", "a skipped validator-set change");
        let mut b = bundle.clone();
        b.validator_changes[0].header.time.0 += 1;
        assert_eq!(step(&b), "validator set");
    }
    // A different genesis set is not the one that signed.
    let (_, other) = testing::validators(4, &[10, 10, 10, 10]);
    assert!(bundle.verify(chain, &other).is_err());
}

/// Reads server-sent events from `path` until `needle` appears (or fails at the deadline).
fn sse_until(addr: &str, path: &str, needle: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if String::from_utf8_lossy(&seen).contains(needle) {
            return String::from_utf8_lossy(&seen).into_owned();
        }
    }
    panic!(
        "{path}: no {needle:?} within 30 s; got {}",
        String::from_utf8_lossy(&seen)
    );
}

#[test]
fn every_route_answers_as_documented_and_proofs_verify_offline() {
    let mut net = Net::new(4);
    // Node 3 allows one event subscription at a time, and one transaction a second from a
    // client (in bursts of a batch), to show the limits. The pools admit
    // calls the ledger refuses (`check_calls = false`), so that refusals are committed and
    // their receipts and proofs can be shown; node/tests/replay.rs runs with the check.
    for i in 0..4 {
        net.edit_config(i, |c| {
            c.mempool.check_calls = false;
            if i == 3 {
                c.rpc.max_subscriptions = 1;
                c.rpc.client_txs_per_second = 1;
            }
        })
        .unwrap();
    }
    net.start_all();
    net.wait_height(&[0, 1, 2, 3], 1, WAIT);
    let (_, spec) = Genesis::load(&net.nodes[0].home.join("genesis.json")).unwrap();
    let chain = spec.chain_id.clone();
    let genesis = spec.validators.clone();
    let api = Client::new(&net.nodes[0].rpc);
    let api2 = Client::new(&net.nodes[2].rpc);
    let mut w = Wallet::new(&net, chain.clone());

    // --- A small city, submitted with mode=commit.
    let council = testing::key(0xc5, 0);
    let agency = testing::key(0xd1, 0);
    let resident = testing::key(0xd2, 0);
    let office = testing::key(0xd3, 0);
    let operator = testing::key(0xd4, 0);
    let device = testing::key(0xd5, 0);
    for k in [&agency, &resident, &office, &operator, &device] {
        let tx = w.tx(k, create_did());
        api.commit(&tx);
    }
    let v = api.commit(&w.tx(
        &council,
        Call::Governance(GovernanceCall::Propose {
            action: GovAction::RegisterIssuer {
                did: did(&agency),
                kinds: vec![
                    CredentialKind::Resident,
                    CredentialKind::SensorOperator,
                    CredentialKind::BudgetOffice,
                ],
            },
        }),
    ));
    assert!(v["height"].as_u64().unwrap() >= 1);
    // The council changes a validator's power: bundles after it must carry the change.
    let first = genesis.validators()[0].public_key;
    api.commit(&w.tx(
        &council,
        Call::Governance(GovernanceCall::Propose {
            action: GovAction::SetPower {
                key: first,
                power: 25,
            },
        }),
    ));
    let issue = |subject: &Keypair, kind: CredentialKind, district: Option<&str>| {
        Call::Credential(CredentialCall::Issue {
            id: Hash::digest_parts(&[b"credential", &subject.public().0, &[kind as u8]]),
            issuer: did(&agency),
            subject: did(subject),
            kind,
            district: district.map(text::<32>),
            valid_from: Timestamp(0),
            valid_until: Timestamp(4_102_444_800_000),
        })
    };
    let resident_credential = Hash::digest_parts(&[
        b"credential",
        &resident.public().0,
        &[CredentialKind::Resident as u8],
    ]);
    for (k, kind, d) in [
        (&resident, CredentialKind::Resident, Some("old-town")),
        (&office, CredentialKind::BudgetOffice, None),
        (&operator, CredentialKind::SensorOperator, None),
    ] {
        let tx = w.tx(&agency, issue(k, kind, d));
        api.commit(&tx);
    }
    api.commit(&w.tx(
        &device,
        Call::Identity(IdentityCall::UpdateDocument {
            did: did(&device),
            document: DidDocument {
                verification_methods: vec![VerificationMethod {
                    id: text("key-1"),
                    key: device.public(),
                }],
                controllers: vec![did(&operator)],
                services: vec![],
            },
        }),
    ));
    api.commit(&w.tx(
        &operator,
        Call::Sensor(SensorCall::Register {
            operator: did(&operator),
            device: did(&device),
            kind: text("air.pm25"),
            unit: text("ug/m3"),
            location: text("u2yhvd"),
            stream: text("pm25"),
        }),
    ));
    let readings: Vec<Vec<u8>> = (0..10u32)
        .map(|i| format!("{{\"t\":{i},\"pm25\":{}}}", 10 + i).into_bytes())
        .collect();
    let batch = AttestationBatch {
        device: did(&device),
        stream: text("pm25"),
        sequence: 0,
        prev_batch_hash: Hash::ZERO,
        window_start: Timestamp(1_700_000_000_000),
        window_end: Timestamp(1_700_000_009_000),
        reading_count: 10,
        readings_root: merkle::root_of(&readings),
        raw_batch_hash: Hash::digest(&readings.concat()),
    };
    let attest = w.tx(&device, Call::Sensor(SensorCall::Attest(batch)));
    api.commit(&attest);
    let now = Timestamp::now();
    let spec_round = RoundSpec {
        title: text("Old Town"),
        district: text("old-town"),
        budget: 100,
        currency: text("PLN"),
        proposals_from: now.plus_ms(1_000),
        voting_from: now.plus_ms(2_500),
        closes_at: now.plus_ms(9_000),
        ballot: BallotFormat::Approval { min: 1, max: 2 },
        rule: RuleProfile {
            rule: Rule::Mes,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: acta_ledger::records::BallotSecrecy::Public,
    };
    api.commit(&w.tx(
        &office,
        Call::Budget(BudgetCall::OpenRound {
            office: did(&office),
            spec: spec_round.clone(),
        }),
    ));
    net.wait_time(spec_round.proposals_from, WAIT);
    let v = api.ok("/budget/rounds/{id}", "/budget/rounds/0");
    assert_eq!(v["phase"], "proposals", "{v}");
    assert_eq!(
        v["dates"]["voting_from"],
        spec_round.voting_from.rfc3339(),
        "{v}"
    );
    assert!(v["phase_left_ms"].as_u64().unwrap() <= 1_500, "{v}");
    for (title, cost) in [("Trees", 60u64), ("Benches", 30)] {
        let tx = w.tx(
            &resident,
            Call::Budget(BudgetCall::Propose {
                round: 0,
                proposer: did(&resident),
                title: text(title),
                cost,
            }),
        );
        api.commit(&tx);
    }
    net.wait_time(spec_round.voting_from, WAIT);
    let vote = w.tx(
        &resident,
        Call::Budget(BudgetCall::Vote {
            round: 0,
            voter: did(&resident),
            projects: vec![0, 1],
        }),
    );
    api.commit(&vote);
    let v = api.ok("/budget/rounds/{id}", "/budget/rounds/0");
    assert_eq!(v["phase"], "voting", "{v}");
    api.refused(
        "/budget/rounds/{id}/result",
        "/budget/rounds/0/result",
        404,
        "not_found",
    );
    secret_round(
        &api, &net, &mut w, &office, &agency, &resident, &chain, &genesis,
    );
    // The council cancels the secret round: its answers, proven or not, match the schema
    // of a cancelled round, and an auditor's recomputation agrees.
    api.commit(&w.tx(
        &council,
        Call::Governance(GovernanceCall::Propose {
            action: GovAction::CancelBudgetRound { round: 1 },
        }),
    ));
    let v = api.ok("/budget/rounds/{id}", "/budget/rounds/1?prove=true");
    verified(&v, &chain, &genesis);
    assert_eq!(v["phase"], "cancelled", "{v}");
    assert!(v["round"]["status"]["cancelled"]["at"].is_u64(), "{v}");
    assert_eq!(
        (v["phase_ends"].is_null(), v["phase_left_ms"].is_null()),
        (true, true),
        "{v}"
    );
    let v = api.ok("/budget/rounds", "/budget/rounds");
    assert_eq!(v["rounds"][1]["phase"], "cancelled", "{v}");

    // --- Submission modes and refusals.
    let (status, v) = api.submit("async", &w.tx(&agency, create_did_other()));
    assert_eq!((status, v["status"].as_str()), (202, Some("queued")), "{v}");
    let sync_tx = w.tx(
        &agency,
        Call::Identity(IdentityCall::Deactivate {
            did: did(&testing::key(0xee, 1)),
        }),
    );
    let (status, v) = api.submit("sync", &sync_tx);
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("pending")),
        "{v}"
    );
    // The signer's next nonce counts its transactions in the pool as well as those
    // committed: a wallet that does not wait signs its next one at `next`.
    let signer = agency.public().to_hex();
    let v = api.ok("/signers/{key}/nonce", &format!("/signers/{signer}/nonce"));
    assert_eq!(v["next"], json!(sync_tx.nonce + 1), "{v}");
    assert_eq!(v["signer"], json!(signer), "{v}");
    assert!(v["committed"].as_u64().unwrap() <= sync_tx.nonce + 1, "{v}");
    assert!(v["height"].as_u64().unwrap() >= 1, "{v}");
    api.refused(
        "/signers/{key}/nonce",
        "/signers/xyz/nonce",
        400,
        "bad_request",
    );
    let v = api.ok(
        "/signers/{key}/nonce",
        &format!("/signers/{}/nonce", testing::key(0xef, 7).public().to_hex()),
    );
    assert_eq!(
        (v["committed"].as_u64(), v["next"].as_u64()),
        (Some(0), Some(0)),
        "{v}"
    );
    // The ledger refuses what the mempool (not checking calls) accepted: the answer names
    // the ledger's reason.
    let stranger = testing::key(0xee, 0);
    let refused = Transaction::sign(
        &stranger,
        chain.clone(),
        0,
        acta_ledger::testing::valid_until_soon(),
        Call::Identity(IdentityCall::Deactivate { did: did(&agency) }),
    );
    let (status, v) = api.submit("commit", &refused);
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["hash"], json!(refused.id()));
    assert!(v["height"].as_u64().is_some(), "{v}");
    // A replay of an accepted transaction is refused by the mempool.
    let (status, v) = api.submit("sync", &attest);
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("stale_nonce")),
        "{v}"
    );
    assert_eq!(v["hash"], json!(attest.id()));
    // The stranger's refused transaction used up its nonce 0: a replay of it is stale too.
    let (status, v) = api.submit("sync", &refused);
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("stale_nonce")),
        "{v}"
    );
    let other_chain = Transaction::sign(
        &stranger,
        ChainId::new("other").unwrap(),
        1,
        acta_ledger::testing::valid_until_soon(),
        create_did(),
    );
    let (status, v) = api.submit("sync", &other_chain);
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("wrong_chain")),
        "{v}"
    );
    for (body, code) in [
        ("{\"tx\":\"zz\"}", "bad_request"),
        ("{\"tx\":\"00ff\"}", "bad_transaction"),
        ("{\"tx\":", "bad_request"),
        ("{\"tx\":5}", "bad_request"),
        ("{\"transaction\":\"00\"}", "bad_request"),
    ] {
        let a = api.call("POST", "/txs", "/txs", Some(body));
        assert_eq!(
            (a.status, a.json()["code"].as_str()),
            (400, Some(code)),
            "{body}: {}",
            a.text()
        );
    }
    // A batch: each transaction gets its own verdict, in order, and one refusal does not
    // stop the others.
    let fresh = testing::key(0xef, 0);
    let admitted = Transaction::sign(
        &fresh,
        chain.clone(),
        0,
        acta_ledger::testing::valid_until_soon(),
        create_did(),
    );
    let batch = json!({ "txs": [
        hex::encode(admitted.encode()),
        hex::encode(attest.encode()),
        hex::encode(other_chain.encode()),
        "zz",
        // The same transaction twice: the copy is pending too (a retry is safe).
        hex::encode(admitted.encode()),
    ]})
    .to_string();
    let a = api.call("POST", "/txs/batch", "/txs/batch", Some(&batch));
    assert_eq!(a.status, 200, "{}", a.text());
    let v = a.json();
    assert_eq!(v["accepted"], 2, "{v}");
    assert_eq!(v["results"][0]["hash"], json!(admitted.id()), "{v}");
    assert_eq!(v["results"][4]["hash"], json!(admitted.id()), "{v}");
    let verdicts: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().or(r["status"].as_str()).unwrap())
        .collect();
    assert_eq!(
        verdicts,
        [
            "pending",
            "stale_nonce",
            "wrong_chain",
            "bad_transaction",
            "pending"
        ]
    );
    // Sent again on its own while pending: `pending` again, not an error. (Unless its
    // block came in between: then its nonce is used, and the block holds it.)
    let (status, v) = api.submit("sync", &admitted);
    if status != 200 {
        assert_eq!(v["code"], "stale_nonce", "{v}");
        let (s, found) = api.get("/txs/{hash}", &format!("/txs/{}", admitted.id()));
        assert_eq!((s, &found["status"]), (200, &json!("committed")), "{found}");
    } else {
        assert_eq!(
            (&v["status"], &v["hash"]),
            (&json!("pending"), &json!(admitted.id()))
        );
    }
    let many = json!({ "txs": vec!["00"; 1025] }).to_string();
    for body in [many.as_str(), "{\"tx\":\"00\"}", "{\"txs\":"] {
        let a = api.call("POST", "/txs/batch", "/txs/batch", Some(body));
        assert_eq!(a.status, 400, "{}", a.text());
    }
    let a = api.call("POST", "/txs", "/txs?mode=later", Some("{\"tx\":\"00\"}"));
    assert_eq!(a.status, 400, "{}", a.text());
    let big = format!("{{\"tx\":\"{}\"}}", "00".repeat(140_000));
    let a = api.call("POST", "/txs", "/txs", Some(&big));
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (413, Some("body_too_large")),
        "{}",
        a.text()
    );
    // The refusal waits for the body the client sends (up to four times the limit), so a
    // client that writes all of it before reading reads the 413, not a reset: after the
    // head and more of the body than the limit (but not all of it), no answer yet; after
    // the rest, the 413. (Answered as soon as the limit was passed, the connection could
    // close with the rest unread, and the client meet a broken pipe.)
    let mut raw = TcpStream::connect(&api.addr).unwrap();
    write!(
        raw,
        "POST /txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        big.len()
    )
    .unwrap();
    let part = 256 * 1024 + 1024;
    assert!(part < big.len());
    raw.write_all(&big.as_bytes()[..part]).unwrap();
    raw.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut first = [0u8; 1];
    let early = raw.read(&mut first);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "answered before the body was sent: {early:?}"
    );
    raw.write_all(&big.as_bytes()[part..]).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("body_too_large") {
        let n = raw.read(&mut buf).expect("the 413 after the body");
        assert!(
            n > 0,
            "closed without the 413: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // The body was read whole, so the connection goes on: it answers the next request.
    write!(raw, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut next = Vec::new();
    while !String::from_utf8_lossy(&next).contains("HTTP/1.1 200") {
        let n = raw.read(&mut buf).expect("an answer to the next request");
        assert!(n > 0, "the connection closed after the 413");
        next.extend_from_slice(&buf[..n]);
    }

    // --- Transactions by hash, with a proof of inclusion and of the result.
    let v = api.ok("/txs/{hash}", &format!("/txs/{}?prove=true", attest.id()));
    assert_eq!(v["status"], "committed");
    assert_eq!(v["result"]["status"], "accepted");
    let b = verified(&v, &chain, &genesis);
    let entry = b.tx.as_ref().unwrap();
    assert_eq!(entry.tx, attest.encode());
    let mut t = b.clone();
    t.tx.as_mut().unwrap().result[0] ^= 1;
    assert_eq!(t.verify(&chain, &genesis).unwrap_err().step, "transaction");
    let mut t = b.clone();
    t.tx.as_mut().unwrap().tx_proof.leaf_index += 1;
    assert!(t.verify(&chain, &genesis).is_err());
    let v = api.ok("/txs/{hash}", &format!("/txs/{}", refused.id()));
    assert_eq!(v["result"]["status"], "refused", "{v}");
    assert!(v["result"]["message"].is_string(), "{v}");
    // The refusal's words are not in the block's results: a proven answer leaves them out.
    let v = api.ok("/txs/{hash}", &format!("/txs/{}?prove=true", refused.id()));
    assert!(v["result"].get("message").is_none(), "{v}");
    assert!(v.get("index").is_none(), "a position is not proven: {v}");
    verified(&v, &chain, &genesis);
    // A request written otherwise than the node writes it is refused.
    let mut upper = v.clone();
    upper["proof"]["query"] = json!(format!("/txs/{}", refused.id().to_hex().to_uppercase()));
    let anchor = TrustAnchor::genesis(chain.clone(), genesis.clone());
    assert!(audit::verify(&upper, &anchor).is_err());
    api.refused(
        "/txs/{hash}",
        &format!("/txs/{}", Hash::digest(b"nothing")),
        404,
        "not_found",
    );
    api.refused("/txs/{hash}", "/txs/xyz", 400, "bad_request");
    api.refused(
        "/txs/{hash}",
        &format!("/txs/{}?height=3", attest.id()),
        400,
        "bad_request",
    );

    // --- Status, blocks, results, validators, metrics.
    let v = api.ok("/status", "/status");
    assert_eq!(
        (v["role"].as_str(), v["chain_id"].as_str()),
        (Some("validator"), Some(chain.as_str()))
    );
    assert_eq!(v["genesis_hash"], json!(spec.hash));
    assert!(v["stalled"].is_null(), "{v}");
    assert_eq!(v["validators"][0]["connected"], true, "{v}");
    let v = api.ok("/health", "/health");
    assert_eq!(
        (v["live"].as_bool(), v["reasons"].as_array().map(Vec::len)),
        (Some(true), Some(0)),
        "{v}"
    );
    let v = api.ok("/ready", "/ready");
    assert_eq!(v["ready"], true, "{v}");
    let metrics = api.call("GET", "/metrics", "/metrics", None).text();
    for family in [
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds_total ",
        "acta_store_bytes ",
        "acta_wal_bytes ",
        "acta_consensus_stalled 0",
        "acta_validator_connected{",
        "acta_store_memory_bytes{part=\"block_cache\"} ",
        "acta_store_memory_bytes{part=\"memtables\"} ",
        "acta_store_memory_bytes{part=\"table_readers\"} ",
        "acta_store_hot_keys ",
        "acta_store_level0_files ",
        "acta_store_pending_compaction_bytes ",
        "acta_store_write_stalled 0",
    ] {
        assert!(metrics.contains(family), "{family} is not in:\n{metrics}");
    }
    // The state tree's nodes of the blocks so far are in its cache.
    let tree_bytes: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("acta_store_memory_bytes{part=\"tree_nodes\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(tree_bytes > 0, "{metrics}");
    let latest = api.ok("/blocks/latest", "/blocks/latest");
    let lh = latest["block"]["header"]["height"].as_u64().unwrap();
    assert!(lh >= 1 && latest["commit"]["height"].as_u64() == Some(lh));
    let tx_height = api.ok("/txs/{hash}", &format!("/txs/{}", attest.id()))["height"]
        .as_u64()
        .unwrap();
    let v = api.ok("/blocks/{height}", &format!("/blocks/{tx_height}"));
    assert!(v["block"]["txs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["signer"] == json!(device.public())));
    let v = api.ok(
        "/blocks/{height}/results",
        &format!("/blocks/{tx_height}/results"),
    );
    assert!(v["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["tx"] == json!(attest.id())));
    api.refused("/blocks/{height}", "/blocks/99999999", 404, "not_found");
    api.refused("/blocks/{height}", "/blocks/ten", 400, "bad_request");
    api.refused(
        "/blocks/{height}/results",
        "/blocks/99999999/results",
        404,
        "not_found",
    );
    let v = api.ok("/validators", "/validators?prove=true");
    assert_eq!(
        v["total_power"], 55,
        "the council's power change is in force: {v}"
    );
    let b = verified(&v, &chain, &genesis);
    assert_eq!(b.validator_changes.len(), 1, "one change since the genesis");
    assert_eq!(
        b.header.validators_hash,
        Hash::from_hex(v["hash"].as_str().unwrap()).unwrap()
    );
    trust_pins_replace_the_genesis_set(&api, &v, &b, &chain, &genesis);
    let v = api.ok("/validators", "/validators?height=1");
    assert_eq!(v["total_power"], 40);
    api.refused(
        "/validators",
        "/validators?height=0&prove=true",
        400,
        "bad_request",
    );
    api.refused(
        "/validators",
        "/validators?checkpoint=10",
        400,
        "bad_request",
    );
    api.refused(
        "/validators",
        "/validators?height=99999999",
        404,
        "not_found",
    );
    let m = api.call("GET", "/metrics", "/metrics", None);
    assert_eq!(m.status, 200);
    let metrics = m.text();
    for needle in [
        "acta_height ",
        "acta_blocks_total ",
        "acta_consensus_rounds_total ",
        "acta_block_interval_seconds_bucket",
        "acta_block_commit_seconds_count",
        "acta_mempool_txs ",
        "acta_peers 3",
        "acta_last_block_time_seconds 1",
        "acta_missed_signatures_total ",
        "acta_mempool_accepted_total ",
        "acta_mempool_refused_total{reason=\"stale_nonce\"}",
        "acta_txs_committed_total{result=\"refused\"}",
        "acta_ledger_refused_total{reason=",
        "acta_rpc_requests_total{route=\"/txs/{hash}\",status=\"200\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }

    // --- Identity: DIDs (W3C), credentials, issuers.
    let resident_did = did(&resident).to_string();
    let v = api.ok("/dids/{did}", &format!("/dids/{resident_did}?prove=true"));
    assert_eq!(v["didDocument"]["id"], json!(resident_did));
    let method = &v["didDocument"]["verificationMethod"][0];
    assert_eq!(method["type"], "Ed25519VerificationKey2020");
    assert!(method["publicKeyMultibase"]
        .as_str()
        .unwrap()
        .starts_with("z6Mk"));
    assert_eq!(v["didDocumentMetadata"]["deactivated"], false);
    let b = verified(&v, &chain, &genesis);
    tampering_is_caught(&b, &chain, &genesis);
    let created = v["didDocumentMetadata"]["createdHeight"].as_u64().unwrap();
    let before = api.get(
        "/dids/{did}",
        &format!("/dids/{resident_did}?height={}", created - 1),
    );
    assert_eq!(before.0, 404, "the DID did not exist before: {}", before.1);
    let v = api.ok("/dids/{did}", &format!("/dids/{}", did(&device)));
    assert_eq!(
        v["didDocument"]["controller"][1],
        json!(did(&operator).to_string())
    );
    // A past version names the next one.
    let created = v["didDocumentMetadata"]["createdHeight"].as_u64().unwrap();
    let v = api.ok(
        "/dids/{did}",
        &format!("/dids/{}?height={created}", did(&device)),
    );
    assert!(v["didDocument"].get("controller").is_none(), "{v}");
    assert!(v["didDocumentMetadata"]["nextVersionId"].is_string(), "{v}");
    // W3C DID Resolution: every outcome is a resolution result.
    let v = api.refused(
        "/dids/{did}",
        "/dids/did:web:example.org",
        400,
        "invalid_did",
    );
    assert_eq!(v["didResolutionMetadata"]["error"], "invalidDid", "{v}");
    assert!(
        v["didDocument"].is_null() && v["didDocumentMetadata"] == json!({}),
        "{v}"
    );
    let v = api.refused(
        "/dids/{did}",
        &format!("/dids/{}", did(&testing::key(0xee, 9))),
        404,
        "not_found",
    );
    assert_eq!(v["didResolutionMetadata"]["error"], "notFound", "{v}");
    assert!(v["didDocument"].is_null(), "{v}");
    // versionId names a version (the height that made it); versionTime the one in force.
    let device_did = did(&device).to_string();
    let latest = api.ok("/dids/{did}", &format!("/dids/{device_did}"));
    let first = api.ok(
        "/dids/{did}",
        &format!("/dids/{device_did}?versionId={created}"),
    );
    assert_eq!(
        first["didDocumentMetadata"]["versionId"],
        json!(created.to_string())
    );
    assert!(first["didDocument"].get("controller").is_none(), "{first}");
    let next = first["didDocumentMetadata"]["nextVersionId"]
        .as_str()
        .unwrap()
        .to_string();
    let second = api.ok(
        "/dids/{did}",
        &format!("/dids/{device_did}?versionId={next}"),
    );
    assert!(second["didDocument"]["controller"].is_array(), "{second}");
    let v = api.refused(
        "/dids/{did}",
        &format!("/dids/{device_did}?versionId={}", created + 1),
        404,
        "not_found",
    );
    assert_eq!(v["didResolutionMetadata"]["error"], "notFound", "{v}");
    api.refused(
        "/dids/{did}",
        &format!("/dids/{device_did}?versionId=first"),
        400,
        "bad_request",
    );
    api.refused(
        "/dids/{did}",
        &format!("/dids/{device_did}?versionId={created}&height={created}"),
        400,
        "bad_request",
    );
    // The time of the block that made the first version, to the millisecond.
    let block = api.ok("/blocks/{height}", &format!("/blocks/{created}"));
    let ms = block["block"]["header"]["time"].as_u64().unwrap();
    let at = Timestamp(ms).rfc3339_ms();
    let v = api.ok(
        "/dids/{did}",
        &format!("/dids/{device_did}?versionTime={at}"),
    );
    assert_eq!(
        v["didDocumentMetadata"]["versionId"],
        json!(created.to_string()),
        "{v}"
    );
    let before = Timestamp(ms - 1).rfc3339_ms();
    api.refused(
        "/dids/{did}",
        &format!("/dids/{device_did}?versionTime={before}"),
        404,
        "not_found",
    );
    let v = api.ok(
        "/dids/{did}",
        &format!("/dids/{device_did}?versionTime=2999-01-01T00:00:00Z"),
    );
    assert_eq!(v["didDocument"], latest["didDocument"]);
    api.refused(
        "/dids/{did}",
        &format!("/dids/{device_did}?versionTime=yesterday"),
        400,
        "bad_request",
    );
    // Media types: the resolution result by default, the document alone on request.
    let a = api.call("GET", "/dids/{did}", &format!("/dids/{device_did}"), None);
    assert_eq!(a.header("content-type"), Some("application/did-resolution"));
    for media in ["application/did+ld+json", "application/did+json"] {
        let a = api.call_with(
            "GET",
            "/dids/{did}",
            &format!("/dids/{device_did}"),
            &[("Accept", media)],
            None,
        );
        assert_eq!(a.header("content-type"), Some(media));
        assert_eq!(a.json(), latest["didDocument"]);
    }
    api.refused(
        "/dids/{did}",
        &format!("/dids/{resident_did}?height=0&prove=true"),
        400,
        "bad_request",
    );
    api.refused(
        "/dids/{did}",
        &format!("/dids/{resident_did}?height=abc"),
        400,
        "bad_request",
    );
    api.refused(
        "/dids/{did}",
        &format!("/dids/{resident_did}?colour=red"),
        400,
        "bad_request",
    );
    let v = api.ok(
        "/dids/{did}/credentials",
        &format!("/dids/{resident_did}/credentials"),
    );
    assert_eq!(v["credentials"][0]["status"], "valid", "{v}");
    let v = api.ok(
        "/dids/{did}/credentials",
        &format!("/dids/{resident_did}/credentials?prove=true"),
    );
    verified(&v, &chain, &genesis);
    let v = api.ok(
        "/credentials/{id}",
        &format!("/credentials/{resident_credential}?prove=true"),
    );
    assert_eq!(
        (v["status"].as_str(), v["issuer_registered"].as_bool()),
        (Some("valid"), Some(true))
    );
    let b = verified(&v, &chain, &genesis);
    // The credential, its issuer's registration, and the DID records of its subject and
    // issuer (a deactivated DID ends the credential's worth, so the status rests on them).
    assert_eq!(b.state.len(), 4, "the credential, its issuer and both DIDs");
    api.refused(
        "/credentials/{id}",
        &format!("/credentials/{}", Hash::digest(b"none")),
        404,
        "not_found",
    );
    api.refused("/credentials/{id}", "/credentials/12", 400, "bad_request");
    let v = api.ok(
        "/issuers/{did}",
        &format!("/issuers/{}?prove=true", did(&agency)),
    );
    verified(&v, &chain, &genesis);
    api.refused(
        "/issuers/{did}",
        &format!("/issuers/{resident_did}"),
        404,
        "not_found",
    );

    // --- Council.
    let v = api.ok("/council", "/council?prove=true");
    // The issuer, the power, and the secret round's cancellation.
    assert_eq!(v["proposals"], 3);
    verified(&v, &chain, &genesis);
    let v = api.ok("/council/proposals", "/council/proposals?limit=1&from=1");
    assert_eq!(v["proposals"].as_array().unwrap().len(), 1);
    assert_eq!(v["proposals"][0]["id"], 1);
    let v = api.ok("/council/proposals", "/council/proposals?prove=true");
    let b = verified(&v, &chain, &genesis);
    assert_eq!(b.state.len(), 4, "the count and the three proposals");
    api.refused(
        "/council/proposals",
        "/council/proposals?limit=1000",
        400,
        "bad_request",
    );
    let v = api.ok("/council/proposals/{id}", "/council/proposals/0?prove=true");
    assert!(v["proposal"]["executed"].is_u64(), "{v}");
    verified(&v, &chain, &genesis);
    api.refused(
        "/council/proposals/{id}",
        "/council/proposals/7",
        404,
        "not_found",
    );
    // The parameter registry: every parameter with its value, and the values proven.
    let v = api.ok("/params", "/params?prove=true");
    let names: Vec<&str> = v["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "evidence_max_age",
            "proposal_lifetime_s",
            "slash_fraction_bps",
            "tally_delay"
        ],
        "{v}"
    );
    assert_eq!(v["params"][1]["value"], 2_592_000, "the default: {v}");
    assert_eq!(v["params"][1]["unit"], "seconds", "{v}");
    assert_eq!(v["params"][2]["value"], 500, "the default: {v}");
    assert_eq!(v["params"][2]["set_at"], Value::Null, "{v}");
    // A local network's genesis sets the tally delay.
    assert_eq!(
        v["params"][3]["value"],
        acta_node::devnet::LOCAL_TALLY_DELAY,
        "{v}"
    );
    assert_eq!(v["params"][3]["set_at"], 0, "{v}");
    assert_eq!(verified(&v, &chain, &genesis).state.len(), 4);

    // --- Sensors, and a reading proven from its bytes to the genesis.
    let device_did = did(&device).to_string();
    let v = api.ok(
        "/devices/{did}",
        &format!("/devices/{device_did}?prove=true"),
    );
    assert_eq!(v["device"]["next_sequence"], 1);
    verified(&v, &chain, &genesis);
    let v = api.ok(
        "/devices/{did}/attestations",
        &format!("/devices/{device_did}/attestations"),
    );
    assert_eq!(v["attestations"].as_array().unwrap().len(), 1);
    let v = api.ok(
        "/devices/{did}/attestations",
        &format!("/devices/{device_did}/attestations?prove=true&limit=5"),
    );
    verified(&v, &chain, &genesis);
    let v = api2.ok(
        "/devices/{did}/attestations/{sequence}",
        &format!("/devices/{device_did}/attestations/0?prove=true"),
    );
    let mut b = verified(&v, &chain, &genesis);
    let leaves: Vec<Hash> = readings.iter().map(|r| merkle::leaf_hash(r)).collect();
    // The whole batch in one bundle, each reading with its own proof...
    let proofs = merkle::inclusion_proofs(&leaves);
    b.readings = readings
        .iter()
        .zip(proofs)
        .map(|(r, proof)| ReadingEntry {
            reading: r.clone(),
            proof,
        })
        .collect();
    let report = b.verify(&chain, &genesis).unwrap();
    assert_eq!(report.readings.len(), readings.len());
    assert!(report
        .readings
        .iter()
        .zip(&readings)
        .all(|(p, r)| p.bytes == *r && p.device == did(&device)));
    // ...and any subset of it still verifies: reading 3 alone.
    b.readings.retain(|r| r.proof.leaf_index == 3);
    let report = b.verify(&chain, &genesis).unwrap();
    let proven = &report.readings[0];
    assert_eq!(
        (proven.device, proven.sequence, proven.index),
        (did(&device), 0, 3)
    );
    assert!(
        report.steps.last().unwrap().contains("reading is number 3"),
        "{:?}",
        report.steps
    );
    let mut twice = b.clone();
    twice.readings.push(twice.readings[0].clone());
    let e = twice.verify(&chain, &genesis).unwrap_err();
    assert!(e.message.contains("given twice"), "{e}");
    b.readings[0].reading[2] ^= 1;
    assert_eq!(b.verify(&chain, &genesis).unwrap_err().step, "reading");
    api.refused(
        "/devices/{did}/attestations/{sequence}",
        &format!("/devices/{device_did}/attestations/5"),
        404,
        "not_found",
    );
    api.refused(
        "/devices/{did}",
        &format!("/devices/{resident_did}"),
        404,
        "not_found",
    );
    api.refused(
        "/devices/{did}/attestations",
        &format!("/devices/{resident_did}/attestations"),
        404,
        "not_found",
    );

    // --- The budget round closes, is tallied off the consensus path, and its result
    // lands LOCAL_TALLY_DELAY heights later; its export replays to the stored result.
    net.wait_time(spec_round.closes_at, WAIT);
    let deadline = std::time::Instant::now() + WAIT;
    let due = loop {
        let v = api.ok("/budget/rounds/{id}", "/budget/rounds/0");
        if let Some(h) = v["result"]["height"].as_u64() {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "no tally: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let closed = due - acta_node::devnet::LOCAL_TALLY_DELAY;
    // The block that closed the round is the first whose time reached closes_at.
    let v = api.ok("/blocks/{height}", &format!("/blocks/{closed}"));
    assert!(
        v["block"]["header"]["time"].as_u64().unwrap() >= spec_round.closes_at.0,
        "{v}"
    );
    let v = api.ok("/blocks/{height}", &format!("/blocks/{}", closed - 1));
    assert!(
        v["block"]["header"]["time"].as_u64().unwrap() < spec_round.closes_at.0,
        "{v}"
    );
    let v = api.ok(
        "/budget/rounds/{id}",
        &format!("/budget/rounds/0?height={closed}"),
    );
    assert_eq!(v["phase"], "tallying", "{v}");
    assert_eq!(v["round"]["status"]["tallying"]["closed"], closed, "{v}");
    assert_eq!(v["round"]["status"]["tallying"]["due"], due, "{v}");
    assert!(v.get("result").is_none_or(Value::is_null), "{v}");
    let v = api.ok("/budget/rounds", "/budget/rounds");
    assert_eq!(v["rounds"][0]["phase"], "closed", "{v}");
    assert_eq!(v["rounds"][0]["round"]["status"], "tallied", "{v}");
    verified(
        &api.ok("/budget/rounds", "/budget/rounds?prove=true"),
        &chain,
        &genesis,
    );
    verified(
        &api.ok(
            "/budget/rounds/{id}/proposals",
            "/budget/rounds/0/proposals?prove=true",
        ),
        &chain,
        &genesis,
    );
    let v = api.ok("/budget/rounds/{id}", "/budget/rounds/0?prove=true");
    assert!(v["result"].is_object(), "{v}");
    verified(&v, &chain, &genesis);
    let v = api.ok(
        "/budget/rounds/{id}/proposals",
        "/budget/rounds/0/proposals",
    );
    assert_eq!(v["projects"].as_array().unwrap().len(), 2);
    let result = api.ok(
        "/budget/rounds/{id}/result",
        "/budget/rounds/0/result?prove=true",
    );
    verified(&result, &chain, &genesis);
    let pb = api.call(
        "GET",
        "/budget/rounds/{id}/ballots.pb",
        "/budget/rounds/0/ballots.pb",
        None,
    );
    assert_eq!(pb.status, 200);
    let election = tally::pb::parse(&pb.body).unwrap();
    let replay = tally::tally(
        &election,
        RuleProfile {
            rule: Rule::Mes,
            tie_break: TieBreak::VotesThenCost,
        },
    )
    .unwrap();
    let stored: Vec<u64> = result["result"]["selected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    let replayed: Vec<u64> = replay
        .selected
        .iter()
        .map(|p| election.projects[*p as usize].id.parse::<u64>().unwrap())
        .collect();
    assert_eq!(replayed, stored, "the export replays to the stored result");
    // The tallied ballots, proven against the result's ballots root: all of them...
    let v = api.ok(
        "/budget/rounds/{id}/ballots",
        "/budget/rounds/0/ballots?prove=true",
    );
    assert_eq!(v["ballots"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["ballots"][0]["voter"], json!(did(&resident)), "{v}");
    let b = verified(&v, &chain, &genesis);
    assert_eq!(b.all_ballots.len(), 1);
    let step = |b: &ProofBundle| b.verify(&chain, &genesis).unwrap_err();
    // ...and an added, dropped, edited or moved ballot is caught.
    let mut t = b.clone();
    t.all_ballots.push(t.all_ballots[0].clone());
    assert!(step(&t).message.contains("gives 2 ballots"), "{}", step(&t));
    let mut t = b.clone();
    t.all_ballots.clear();
    let mut answer = v.clone();
    answer["proof"] = serde_json::to_value(&t).unwrap();
    let err = audit::verify(
        &answer,
        &TrustAnchor::genesis(chain.clone(), genesis.clone()),
    )
    .unwrap_err();
    assert!(
        err.message.contains("budget_ballot"),
        "a dropped ballot is not covered: {err}"
    );
    let mut t = b.clone();
    let last = t.all_ballots[0].len() - 9;
    t.all_ballots[0][last] ^= 1;
    let e = step(&t);
    assert_eq!(e.step, "ballots");
    assert!(e.message.contains("added, dropped, edited or moved"), "{e}");
    // A resident's receipt: their ballot's inclusion under the root.
    let v = api.ok(
        "/budget/rounds/{id}/ballots/{did}",
        &format!("/budget/rounds/0/ballots/{}?prove=true", did(&resident)),
    );
    assert_eq!(v["ballot"]["projects"], json!([0, 1]), "{v}");
    let b = verified(&v, &chain, &genesis);
    let report = b.verify(&chain, &genesis).unwrap();
    assert_eq!(report.ballots.len(), 1);
    let mut t = b.clone();
    t.ballots[0].ballot[20] ^= 1;
    let e = step(&t);
    assert!(e.message.contains("not among those round 0 tallied"), "{e}");
    let mut t = b.clone();
    t.ballots.push(t.ballots[0].clone());
    assert!(step(&t).message.contains("given twice"), "{}", step(&t));
    let mut t = b.clone();
    t.all_ballots = vec![t.ballots[0].ballot.clone()];
    assert!(
        step(&t).message.contains("one or the other"),
        "{}",
        step(&t)
    );
    let mut t = b.clone();
    t.state.push(t.state[0].clone());
    assert!(step(&t).message.contains("given twice"), "{}", step(&t));
    let mut t = b.clone();
    t.state[0].namespace = "budget_tally\nok  forged".into();
    assert_eq!(step(&t).step, "state");
    api.refused(
        "/budget/rounds/{id}/ballots/{did}",
        &format!("/budget/rounds/0/ballots/{}", did(&agency)),
        404,
        "not_found",
    );
    api.refused(
        "/budget/rounds/{id}/ballots",
        "/budget/rounds/9/ballots",
        404,
        "not_found",
    );
    api.refused("/budget/rounds/{id}", "/budget/rounds/9", 404, "not_found");
    api.refused(
        "/budget/rounds/{id}/proposals",
        "/budget/rounds/9/proposals",
        404,
        "not_found",
    );
    api.refused(
        "/budget/rounds/{id}/ballots.pb",
        "/budget/rounds/9/ballots.pb",
        404,
        "not_found",
    );
    api.refused(
        "/budget/rounds/{id}/ballots.pb",
        "/budget/rounds/0/ballots.pb?prove=true",
        400,
        "bad_request",
    );

    // --- Raw state.
    let v = api.ok(
        "/state/{namespace}/{key}",
        &format!(
            "/state/nonce/{}?prove=true",
            hex::encode(resident.public().0)
        ),
    );
    assert!(v["value"].is_string());
    verified(&v, &chain, &genesis);
    let v = api.ok("/state/{namespace}/{key}", "/state/nonce/00?prove=true");
    assert!(v["value"].is_null());
    verified(&v, &chain, &genesis);
    api.refused(
        "/state/{namespace}/{key}",
        "/state/No-Such/00",
        400,
        "bad_request",
    );
    api.refused(
        "/state/{namespace}/{key}",
        "/state/nonce/xyz",
        400,
        "bad_request",
    );

    // --- Checkpoints: the block log's C2SP note, cosigned by more than two thirds of the
    // power, is a trust root for any proven answer; two checkpoints are consistent.
    let anchor = TrustAnchor::genesis(chain.clone(), genesis.clone());
    let origin = acta_ledger::checkpoint::origin(&chain);
    let latest_checkpoint = |after: u64| -> SignedCheckpoint {
        let deadline = Instant::now() + WAIT;
        loop {
            let a = api.call("GET", "/checkpoint", "/checkpoint", None);
            if a.status == 200 {
                let (signed, _) = SignedCheckpoint::open(&a.text(), &origin, &genesis)
                    .unwrap_or_else(|e| panic!("{e}: {}", a.text()));
                if signed.checkpoint.size > after {
                    return signed;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no checkpoint after {after}: {}",
                a.text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let first = latest_checkpoint(0);
    let size = first.checkpoint.size;
    assert_eq!(size % acta_ledger::checkpoint::CHECKPOINT_INTERVAL, 0);
    let v = api.ok(
        "/credentials/{id}",
        &format!("/credentials/{resident_credential}?prove=true&height={size}&checkpoint={size}"),
    );
    let audited = audit::verify_against(&v, &anchor, &first.checkpoint).unwrap();
    assert!(
        audited
            .verified
            .steps
            .iter()
            .any(|s| s.contains("of checkpoint")),
        "{:?}",
        audited.verified.steps
    );
    // The same bundle against another checkpoint, or with another header, fails.
    let mut other = first.checkpoint.clone();
    other.root = Hash::digest(b"another log");
    assert_eq!(
        audit::verify_against(&v, &anchor, &other).unwrap_err().step,
        "checkpoint"
    );
    let mut huge = v.clone();
    huge["proof"]["checkpoint"]["proof"]["leaf_index"] = json!(u64::MAX);
    assert_eq!(
        audit::verify_against(&huge, &anchor, &first.checkpoint)
            .unwrap_err()
            .step,
        "checkpoint"
    );
    let mut forged = v.clone();
    forged["proof"]["header"]["time"] = json!(1);
    assert_eq!(
        audit::verify_against(&forged, &anchor, &first.checkpoint)
            .unwrap_err()
            .step,
        "checkpoint"
    );
    api.refused(
        "/credentials/{id}",
        &format!("/credentials/{resident_credential}?checkpoint={size}"),
        400,
        "bad_request",
    );
    api.refused(
        "/credentials/{id}",
        &format!(
            "/credentials/{resident_credential}?prove=true&height={size}&checkpoint={}",
            size - 1
        ),
        400,
        "bad_request",
    );
    let second = latest_checkpoint(size);
    let proof = api.ok(
        "/checkpoint/consistency",
        &format!(
            "/checkpoint/consistency?from={size}&to={}",
            second.checkpoint.size
        ),
    );
    let proof: acta_ledger::merkle::ConsistencyProof = serde_json::from_value(proof).unwrap();
    second
        .checkpoint
        .verify_extends(&first.checkpoint, &proof)
        .unwrap();
    assert!(second.checkpoint.verify_extends(&other, &proof).is_err());
    api.refused(
        "/checkpoint/consistency",
        "/checkpoint/consistency?from=5&to=4",
        400,
        "bad_request",
    );

    // --- Events: blocks as they commit, and one transaction's outcome.
    let seen = sse_until(&net.nodes[1].rpc, "/events/blocks", "event: block");
    assert!(seen.contains("\"height\":"), "{seen}");
    let a = api.call(
        "GET",
        "/events/txs/{hash}",
        &format!("/events/txs/{}", attest.id()),
        None,
    );
    assert!(
        a.text().contains("event: tx") && a.text().contains(&attest.id().to_hex()),
        "{}",
        a.text()
    );
    let later = w.tx(
        &resident,
        Call::Identity(IdentityCall::Deactivate {
            did: did(&testing::key(0xee, 2)),
        }),
    );
    let addr = net.nodes[1].rpc.clone();
    let id = later.id();
    let waiter =
        std::thread::spawn(move || sse_until(&addr, &format!("/events/txs/{id}"), "event: tx"));
    std::thread::sleep(Duration::from_millis(200));
    api.submit("async", &later);
    let seen = waiter.join().unwrap();
    assert!(
        seen.contains(&id.to_hex()) && seen.contains("\"status\":\"refused\""),
        "{seen}"
    );
    // Node 3 allows one subscription: a second one is refused while the first is open.
    let limited = Client::new(&net.nodes[3].rpc);
    let mut open = TcpStream::connect(&net.nodes[3].rpc).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(open, "GET /events/blocks HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = [0u8; 15];
    open.read_exact(&mut head).unwrap();
    assert_eq!(
        &head, b"HTTP/1.1 200 OK",
        "the first subscription is served"
    );
    let v = limited.refused("/events/blocks", "/events/blocks", 503, "busy");
    assert!(
        v["message"].as_str().unwrap().contains("subscriptions"),
        "{v}"
    );
    drop(open);
    // Node 3 lets a client submit one transaction a second, in a burst of a batch: a
    // whole batch passes (each entry judged), a second at once is refused before
    // anything in it is read, saying when to try again; other nodes are not concerned.
    let junk = json!({ "txs": vec!["00"; 1024] }).to_string();
    let a = limited.call("POST", "/txs/batch", "/txs/batch", Some(&junk));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json()["results"][0]["code"], "bad_transaction");
    let a = limited.call("POST", "/txs/batch", "/txs/batch", Some(&junk));
    let v = a.json();
    assert_eq!(
        (a.status, v["code"].as_str()),
        (429, Some("rate_limited")),
        "{v}"
    );
    assert!(v["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{v}");
    assert!(
        a.header("retry-after")
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s >= 1),
        "{}",
        a.head
    );
    let (status, v) = api.submit("sync", &other_chain);
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("wrong_chain")),
        "{v}"
    );

    // --- Request targets too long: over 8 KiB the API's own 414; over hyper's 65,534
    // bytes, the guard's, on a kept-alive connection after a first request. Both JSON.
    let long = format!("/state/nonce/{}", "a".repeat(9_000));
    let a = http(&api.addr, "GET", &long, None, Duration::from_secs(10)).unwrap();
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (414, Some("uri_too_long")),
        "{}",
        a.text()
    );
    let mut conn = std::net::TcpStream::connect(&api.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let huge = format!("/state/nonce/{}", "a".repeat(65_536));
    write!(
        conn,
        "GET /status HTTP/1.1\r\nHost: x\r\n\r\nGET {huge} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    let mut answers = String::new();
    let _ = conn.read_to_string(&mut answers);
    assert!(answers.starts_with("HTTP/1.1 200 OK"), "{answers}");
    let refusal = answers
        .find("HTTP/1.1 414")
        .map(|at| &answers[at..])
        .unwrap_or_else(|| panic!("no 414 in {answers}"));
    let body = refusal.split("\r\n\r\n").nth(1).unwrap();
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["code"], "uri_too_long", "{v}");

    // --- Unknown routes, wrong methods, documents.
    let a = api.call("GET", "/status", "/nothing/here", None);
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (404, Some("unknown_route"))
    );
    let a = http(
        &api.addr,
        "POST",
        "/status",
        Some(b"{}"),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let a = http(&api.addr, "DELETE", "/txs", None, Duration::from_secs(10)).unwrap();
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let doc = api.ok("/openapi.json", "/openapi.json");
    assert_eq!(doc, rpc::openapi::document());
    // Answers are data: never sniffed as another type, never run or framed as a page.
    for path in ["/status", "/no-such-route"] {
        let a = http(&api.addr, "GET", path, None, Duration::from_secs(10)).unwrap();
        assert_eq!(
            a.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(
            a.header("content-security-policy")
                .is_some_and(|p| p.contains("default-src 'none'") && p.contains("sandbox")),
            "{path}"
        );
    }

    // The residents' page is served beside the API, each file with its type and a policy
    // that lets it load only its own files and ask only this node.
    for (name, media, body) in rpc::web::FILES {
        let a = http(
            &api.addr,
            "GET",
            &format!("/{name}"),
            None,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(a.status, 200, "/{name}");
        assert_eq!(a.header("content-type"), Some(media), "/{name}");
        assert_eq!(
            a.header("content-security-policy"),
            Some(rpc::web::CONTENT_SECURITY_POLICY)
        );
        assert_eq!(a.body, body, "/{name}");
    }
    // The verifier was built into this node (its module starts with "\0asm").
    let module = http(
        &api.addr,
        "GET",
        "/verifier.wasm",
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(
        module.body.starts_with(b"\0asm"),
        "the page's verifier is missing"
    );

    // Every route was exercised.
    let hit = api.hit.borrow().clone();
    let hit: BTreeSet<(String, String)> = hit
        .union(&api2.hit.borrow())
        .cloned()
        .chain(limited.hit.borrow().iter().cloned())
        .collect();
    for (m, p) in rpc::routes() {
        assert!(
            hit.contains(&(m.as_str().to_string(), p.to_string())),
            "{m} {p} was not exercised"
        );
    }
    for i in 0..4 {
        net.stop(i);
    }
}

/// Round 1, with secret ballots: a token request, its answer and a secret ballot, read
/// through the token routes, proven; a public round has no tokens.
#[allow(clippy::too_many_arguments)]
fn secret_round(
    api: &Client,
    net: &Net,
    w: &mut Wallet<'_>,
    office: &Keypair,
    registrar: &Keypair,
    resident: &Keypair,
    chain: &ChainId,
    genesis: &ValidatorSet,
) {
    use acta_ledger::{
        records::BallotSecrecy,
        token::{self, Registrar, RegistrarKey},
        types::Bytes,
    };
    let rsa = Registrar::generate(2048).unwrap();
    let der = rsa.public_der().unwrap();
    let key = RegistrarKey::from_der(&der).unwrap();
    let now = Timestamp::now();
    let spec = RoundSpec {
        title: text("Old Town, secret"),
        district: text("old-town"),
        budget: 100,
        currency: text("PLN"),
        proposals_from: now.plus_ms(500),
        voting_from: now.plus_ms(3_000),
        closes_at: now.plus_ms(86_400_000),
        ballot: BallotFormat::Approval { min: 1, max: 2 },
        rule: RuleProfile {
            rule: Rule::Mes,
            tie_break: TieBreak::VotesThenCost,
        },
        secrecy: BallotSecrecy::Secret {
            registrar: did(registrar),
            key: Bytes::new(der).unwrap(),
        },
    };
    api.commit(&w.tx(
        office,
        Call::Budget(BudgetCall::OpenRound {
            office: did(office),
            spec: spec.clone(),
        }),
    ));
    net.wait_time(spec.proposals_from, WAIT);
    api.commit(&w.tx(
        resident,
        Call::Budget(BudgetCall::Propose {
            round: 1,
            proposer: did(resident),
            title: text("Lights"),
            cost: 50,
        }),
    ));
    let ballot_key = testing::key(0xb7, 0);
    let blinded = token::blind(&key, chain, 1, &ballot_key.public()).unwrap();
    api.commit(&w.tx(
        resident,
        Call::Budget(BudgetCall::RequestToken {
            round: 1,
            voter: did(resident),
            blinded: Bytes::new(blinded.message.clone()).unwrap(),
        }),
    ));
    let v = api.ok(
        "/budget/rounds/{id}/tokens/{did}",
        &format!("/budget/rounds/1/tokens/{}?prove=true", did(resident)),
    );
    verified(&v, chain, genesis);
    assert!(v["request"]["blind_signature"].is_null(), "{v}");
    let signature = rsa.sign_blinded(&blinded.message).unwrap();
    api.commit(&w.tx(
        registrar,
        Call::Budget(BudgetCall::IssueToken {
            round: 1,
            request: v["request"]["index"].as_u64().unwrap(),
            blind_signature: Bytes::new(signature.clone()).unwrap(),
        }),
    ));
    let v = api.ok(
        "/budget/rounds/{id}/tokens",
        "/budget/rounds/1/tokens?limit=10&prove=true",
    );
    verified(&v, chain, genesis);
    assert_eq!(v["tokens"], json!({ "requested": 1, "issued": 1 }), "{v}");
    assert_eq!(
        v["requests"][0]["blind_signature"],
        json!(hex::encode(&signature)),
        "{v}"
    );
    let token =
        token::finalize(&key, &blinded, &signature, chain, 1, &ballot_key.public()).unwrap();
    net.wait_time(spec.voting_from, WAIT);
    api.commit(&w.tx(
        &ballot_key,
        Call::Budget(BudgetCall::VoteSecret {
            round: 1,
            token: Bytes::new(token.clone()).unwrap(),
            projects: vec![0],
        }),
    ));
    let v = api.ok(
        "/budget/rounds/{id}/ballot-tokens",
        "/budget/rounds/1/ballot-tokens?prove=true",
    );
    verified(&v, chain, genesis);
    assert_eq!(
        (v["ballots"].as_u64(), v["issued"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(v["tokens"][0]["voter"], json!(did(&ballot_key)), "{v}");
    assert_eq!(v["tokens"][0]["token"], json!(hex::encode(&token)), "{v}");
    let v = api.ok("/budget/rounds/{id}", "/budget/rounds/1");
    assert_eq!(v["tokens"]["issued"], 1, "{v}");
    // A public round has no tokens.
    for (template, path) in [
        (
            "/budget/rounds/{id}/tokens",
            "/budget/rounds/0/tokens".to_string(),
        ),
        (
            "/budget/rounds/{id}/tokens/{did}",
            format!("/budget/rounds/0/tokens/{}", did(resident)),
        ),
        (
            "/budget/rounds/{id}/ballot-tokens",
            "/budget/rounds/0/ballot-tokens".to_string(),
        ),
    ] {
        let v = api.refused(template, &path, 404, "not_found");
        assert!(
            v["message"].as_str().unwrap().contains("public ballots"),
            "{v}"
        );
    }
}

fn create_did_other() -> Call {
    Call::Identity(IdentityCall::Deactivate {
        did: did(&testing::key(0xee, 3)),
    })
}
