//! Auditing an answer of the node's API: its proof bundle is verified against the genesis,
//! then every field the answer shows is computed again from the proven values alone (with
//! [`crate::answer`], the code the node renders answers with) and compared. A field the
//! proof does not give fails the verdict, naming the field.

use std::collections::HashMap;

use acta_ledger::{
    bundle::{BundleError, ProofBundle, TrustAnchor, Verified},
    checkpoint::Checkpoint,
    Height, Receipt, Timestamp, Transaction,
};
use serde_json::Value;

use crate::{
    answer::{self, AnswerError, Query, Source},
    budget::{ballot_key, NS_BALLOT},
};

/// What an audit established.
#[derive(Clone, Debug)]
pub struct Audited {
    pub verified: Verified,
    /// The bundle verified.
    pub bundle: ProofBundle,
    /// The request the answer is to, if the file held an answer besides its bundle.
    pub query: Option<String>,
    /// How many values (leaves of the answer's JSON) were compared with proven ones.
    pub fields: usize,
}

impl Audited {
    /// The steps checked, in order, each in words: the bundle's, then the answer's.
    pub fn steps(&self) -> Vec<String> {
        let mut steps = self.verified.steps.clone();
        if let Some(q) = &self.query {
            steps.push(format!(
                "the answer to GET {q} at height {}: each of its {} values is computed again from the proven records and matches",
                self.verified.height, self.fields
            ));
        }
        steps
    }

    /// The verdict as JSON, as `acta audit verify --output json` prints it and the web
    /// page's verifier shows it: the chain, block and request verified, the readings
    /// proven (as text), and the steps.
    pub fn report(&self) -> Value {
        let v = &self.verified;
        serde_json::json!({
            "verified": true,
            "chain_id": v.chain_id,
            "height": v.height,
            "block": v.block_hash,
            "query": self.query,
            "fields": self.fields,
            "readings": v.readings.iter().map(|r| serde_json::json!({
                "device": r.device, "sequence": r.sequence, "index": r.index,
                "bytes": String::from_utf8_lossy(&r.bytes),
            })).collect::<Vec<_>>(),
            "steps": self.steps(),
        })
    }
}

/// A failed verdict as JSON: the step that failed and why.
pub fn failure_report(e: &BundleError) -> Value {
    serde_json::json!({ "verified": false, "step": e.step, "message": e.message })
}

/// Keeps, of a bundle's (or a proven answer's) readings, those at the batch indexes
/// `wanted`: a reading's proof is checked alone, so the rest can go. Fails naming an index
/// the file does not hold.
pub fn select_readings(file: &mut Value, wanted: &[u64]) -> Result<(), String> {
    let bundle = match file.get_mut("proof") {
        Some(p) => p,
        None => file,
    };
    let Some(Value::Array(readings)) = bundle.get_mut("readings") else {
        return Err("it holds no readings".into());
    };
    let index = |r: &Value| r["proof"]["leaf_index"].as_u64();
    if let Some(w) = wanted
        .iter()
        .find(|w| !readings.iter().any(|r| index(r) == Some(**w)))
    {
        return Err(format!(
            "it holds no reading {w} (it holds {} readings of its batch)",
            readings.len()
        ));
    }
    readings.retain(|r| index(r).is_some_and(|i| wanted.contains(&i)));
    Ok(())
}

fn fail<T>(message: impl Into<String>) -> Result<T, BundleError> {
    Err(BundleError {
        step: "answer",
        message: message.into(),
    })
}

/// Verifies a file's JSON: either a bare proof bundle, or an answer of the API read with
/// `prove=true`, whose `proof` field is the bundle and whose other fields are all checked.
/// The header is trusted through the chain of headers from the genesis, or from the
/// anchor's pinned set if it has one ([`TrustAnchor::pin`]).
pub fn verify(file: &Value, anchor: &TrustAnchor) -> Result<Audited, BundleError> {
    verify_with(file, anchor, None)
}

/// As [`verify`], with the header trusted as a block of `checkpoint` (whose cosignatures
/// the caller has opened) instead of through the chain of headers.
pub fn verify_against(
    file: &Value,
    anchor: &TrustAnchor,
    checkpoint: &Checkpoint,
) -> Result<Audited, BundleError> {
    verify_with(file, anchor, Some(checkpoint))
}

fn verify_with(
    file: &Value,
    anchor: &TrustAnchor,
    checkpoint: Option<&Checkpoint>,
) -> Result<Audited, BundleError> {
    let (bundle_json, shown) = match file.get("proof") {
        Some(p) => {
            let mut rest = file.clone();
            if let Value::Object(m) = &mut rest {
                m.remove("proof");
            }
            (p.clone(), Some(rest))
        }
        None => (file.clone(), None),
    };
    let bundle: ProofBundle = serde_json::from_value(bundle_json).map_err(|e| BundleError {
        step: "format",
        message: format!("not a proof bundle: {e}"),
    })?;
    let verified = match checkpoint {
        None => bundle.verify_trusting(anchor)?,
        Some(c) => bundle.verify_against(&anchor.chain_id, c)?,
    };
    let Some(shown) = shown else {
        return Ok(Audited {
            verified,
            bundle,
            query: None,
            fields: 0,
        });
    };
    let Some(target) = bundle.query.clone() else {
        return fail(
            "the bundle names no request, so the answer's fields are not covered by the proof",
        );
    };
    let proven = proven_answer(&bundle, &verified, &target)?;
    let mut fields = 0;
    compare(&shown, &proven, &mut String::new(), &mut fields)?;
    Ok(Audited {
        verified,
        bundle,
        query: Some(target),
        fields,
    })
}

/// The answer to `target` as the proven values give it.
fn proven_answer(
    bundle: &ProofBundle,
    verified: &Verified,
    target: &str,
) -> Result<Value, BundleError> {
    let height = verified.height;
    if let Some(id) = target.strip_prefix("/txs/") {
        let (Some(t), Some((proven_id, result))) = (&bundle.tx, &verified.tx) else {
            return fail(format!("the answer to {target} needs a proven transaction"));
        };
        if id != proven_id.to_hex() {
            return fail(format!(
                "the request names transaction {id}, the proof proves {proven_id}"
            ));
        }
        let tx = Transaction::decode(&t.tx).map_err(|e| BundleError {
            step: "answer",
            message: e.to_string(),
        })?;
        let receipt =
            Receipt::decode(result, acta_ledger::tx::TX_BYTES_MAX).map_err(|e| BundleError {
                step: "answer",
                message: format!("the proven result: {e}"),
            })?;
        // The header does not commit to the number of transactions, so a proof's position
        // is not proven: a proven answer leaves `index` out.
        return Ok(answer::tx_answer(&tx, height, None, &receipt.outcome, None));
    }
    if target == "/validators" {
        let Some(set) = &verified.validators else {
            return fail(
                "a checkpoint does not name validator sets: verify this answer against the genesis",
            );
        };
        return Ok(answer::validators_answer(
            height,
            set,
            bundle.header.next_validators_hash,
            None,
        ));
    }
    let query = Query::parse(target).map_err(|e| BundleError {
        step: "answer",
        message: format!("the bundle's request: {e}"),
    })?;
    if query.target() != target {
        return fail(format!(
            "the bundle's request {target:?} is not written as the node writes it ({:?})",
            query.target()
        ));
    }
    let mut values: HashMap<(String, Vec<u8>), Option<Vec<u8>>> = verified
        .state
        .iter()
        .map(|(ns, key, value)| ((ns.clone(), key.clone()), value.clone()))
        .collect();
    // Ballots proven by the tally's root stand for the state values they were read from;
    // then no ballot may come from a state proof as well.
    if !verified.ballots.is_empty() {
        if verified.state.iter().any(|(ns, _, _)| ns == NS_BALLOT) {
            return fail("ballots are proven both by state proofs and by the tally's root");
        }
        for b in &verified.ballots {
            values.insert(
                (NS_BALLOT.to_string(), ballot_key(b.round, b.index)),
                Some(b.bytes.clone()),
            );
        }
    }
    let mut source = Proven {
        height,
        time: verified.time,
        values,
    };
    let mut v = match answer::answer(&query, &mut source) {
        Ok(v) => v,
        Err(AnswerError::NotFound { message, .. }) => {
            return fail(format!("the proof shows no such record: {message}"))
        }
        Err(e) => return fail(e.to_string()),
    };
    if let Value::Object(m) = &mut v {
        m.insert("height".into(), Value::from(height.0));
    }
    Ok(v)
}

/// The state values a bundle proved.
struct Proven {
    height: Height,
    time: Timestamp,
    values: HashMap<(String, Vec<u8>), Option<Vec<u8>>>,
}

impl Source for Proven {
    fn height(&self) -> Height {
        self.height
    }

    fn time(&self) -> Timestamp {
        self.time
    }

    fn raw(&mut self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, AnswerError> {
        self.values
            .get(&(namespace.to_string(), key.to_vec()))
            .cloned()
            .ok_or_else(|| AnswerError::NotCovered {
                namespace: namespace.to_string(),
                key: key.to_vec(),
            })
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}...", s.chars().take(77).collect::<String>())
    } else {
        s
    }
}

/// Compares what the file shows with what the proof gives, naming the first field that
/// differs (`credential.status`, `didDocument.verificationMethod[0].publicKeyMultibase`).
fn compare(
    shown: &Value,
    proven: &Value,
    path: &mut String,
    fields: &mut usize,
) -> Result<(), BundleError> {
    let name = |path: &str| {
        if path.is_empty() {
            "the answer".to_string()
        } else {
            format!("field {path}")
        }
    };
    match (shown, proven) {
        (Value::Object(s), Value::Object(p)) => {
            for (k, v) in s {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match p.get(k) {
                    None => {
                        return fail(format!(
                            "field {path} is not covered by the proof (it shows {})",
                            short(v)
                        ))
                    }
                    Some(pv) => compare(v, pv, path, fields)?,
                }
                path.truncate(len);
            }
            if let Some((k, pv)) = p.iter().find(|(k, _)| !s.contains_key(*k)) {
                let sep = if path.is_empty() { "" } else { "." };
                return fail(format!(
                    "field {path}{sep}{k} is missing: the proof gives {}",
                    short(pv)
                ));
            }
            Ok(())
        }
        (Value::Array(s), Value::Array(p)) => {
            if s.len() != p.len() {
                return fail(format!(
                    "{} shows {} items, the proof gives {}",
                    name(path),
                    s.len(),
                    p.len()
                ));
            }
            for (i, (sv, pv)) in s.iter().zip(p).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                compare(sv, pv, path, fields)?;
                path.truncate(len);
            }
            Ok(())
        }
        (s, p) if s == p => {
            *fields += 1;
            Ok(())
        }
        (s, p) => fail(format!(
            "{} shows {}, the proof gives {}",
            name(path),
            short(s),
            short(p)
        )),
    }
}
