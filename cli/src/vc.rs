//! W3C verifiable credentials and presentations in the wallet: issuing a signed credential
//! document whose hash the ledger anchors, presenting credentials to a verifier with the
//! ledger's proofs, and verifying either against a node or, offline, against the genesis.
//!
//! A verdict is built from proven (or node-given) records only: the document's id is
//! computed from its bytes, its record is read under that id, and every claim is compared
//! with the record (`acta_contracts::vc::compare`).

use std::path::{Path, PathBuf};

use acta_contracts::{
    audit,
    vc::{self, Claims, ProofOptions},
};
use acta_ledger::{
    bundle::TrustAnchor, records::CredentialRecord, tx::CredentialCall, types::Text, Call, ChainId,
    Did, Hash, Keypair, Timestamp,
};
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

use crate::{
    client::{ApiError, Node},
    output::Output,
    wallet::{Ctx, NotRecorded, Refused},
};

/// What a credential document and its anchor say, once every check passed.
#[derive(Debug)]
struct CheckedCredential {
    id: Hash,
    claims: Claims,
    status: String,
    issued: u64,
    height: u64,
    checked_at: String,
    /// The block time of the answer (milliseconds).
    time: u64,
}

/// An answer of the ledger: the answer, the height it was read at and that block's time.
type Read = (Value, u64, u64);

/// Where the ledger's answers come from: a node (trusted, or audited against a genesis), or
/// the proofs a presentation carries (always audited).
enum Ledger<'a> {
    Node {
        node: Node,
        height: Option<u64>,
        anchor: Option<&'a TrustAnchor>,
    },
    Proofs {
        proofs: &'a Value,
        anchor: &'a TrustAnchor,
    },
}

impl Ledger<'_> {
    /// The chain the records are of: the genesis's when there is one (the records are
    /// proven against it), else the node's.
    fn chain(&self) -> Result<ChainId> {
        match self {
            Ledger::Node {
                anchor: Some(a), ..
            }
            | Ledger::Proofs { anchor: a, .. } => Ok(a.chain_id.clone()),
            Ledger::Node { node, .. } => node.chain_id(),
        }
    }

    /// Audits an answer read with its proof, which must answer `path` (the request asked,
    /// without its query); the answer without the proof, its height and its block time.
    fn audited(answer: &Value, anchor: &TrustAnchor, path: &str, what: &str) -> Result<Read> {
        let audited = audit::verify(answer, anchor).map_err(|e| {
            anyhow!(
                "the proof of {what} does not verify at step \"{}\": {}",
                e.step,
                e.message
            )
        })?;
        let answered = audited
            .query
            .as_deref()
            .map(|q| q.split('?').next().unwrap_or(q));
        if answered != Some(path) {
            return Err(anyhow!(
                "the proof of {what} answers {answered:?}, not {path}"
            ));
        }
        let mut bare = answer.clone();
        if let Some(m) = bare.as_object_mut() {
            m.remove("proof");
        }
        Ok((bare, audited.verified.height.0, audited.verified.time.0))
    }

    /// A read of the node at `height` (the ledger's `--at`, if none), audited if a genesis
    /// was given (then at exactly the height asked); `None` if the node has no such record.
    fn read(&self, path: &str, height: Option<u64>, what: &str) -> Result<Option<Read>> {
        let Ledger::Node {
            node,
            height: at,
            anchor,
        } = self
        else {
            return Ok(None);
        };
        let mut query = vec![];
        if let Some(h) = height.or(*at) {
            query.push(format!("height={h}"));
        }
        if anchor.is_some() {
            query.push("prove=true".into());
        }
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{}", query.join("&"))
        };
        let answer = match node.get(&target) {
            Ok(a) => a,
            Err(e) => {
                return match e.downcast_ref::<ApiError>() {
                    Some(api) if api.status == 404 => Ok(None),
                    _ => Err(e),
                }
            }
        };
        let asked = height.or(*at);
        match anchor {
            Some(anchor) => {
                let read = Self::audited(&answer, anchor, path, what)?;
                if let Some(h) = asked {
                    if read.1 != h {
                        return Err(anyhow!(
                            "the node proved {what} at height {}, not at height {h} as asked",
                            read.1
                        ));
                    }
                }
                Ok(Some(read))
            }
            None => {
                let height = answer["height"].as_u64().unwrap_or(0);
                let time = match &answer["checked_at"] {
                    Value::String(t) => Timestamp::parse(t).map_or(0, |t| t.0),
                    _ => 0,
                };
                Ok(Some((answer, height, time)))
            }
        }
    }

    /// The credential answer of `id`.
    fn credential(&self, id: &Hash) -> Result<Option<Read>> {
        let what = format!("credential {id}");
        let path = format!("/credentials/{id}");
        if let Ledger::Proofs { proofs, anchor } = self {
            let found = proofs["credentials"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["credential"]["id"] == json!(id));
            return found
                .map(|a| Self::audited(a, anchor, &path, &what))
                .transpose();
        }
        self.read(&path, None, &what)
    }

    /// The DID resolution answer of `did` as it was after `height` (the latest the proofs
    /// or the node give if `None`): an answer at a later height serves if the DID did not
    /// change in between.
    fn did(&self, did: &Did, height: Option<u64>) -> Result<Option<Read>> {
        let what = format!("the DID document of {did}");
        let path = format!("/dids/{did}");
        let serves = |(answer, at, _): &Read| {
            answer["didDocument"]["id"] == json!(did.to_string())
                && match height {
                    None => true,
                    Some(h) => {
                        let updated = answer["didDocumentMetadata"]["updatedHeight"].as_u64();
                        updated.is_some_and(|u| u <= h) && h <= *at
                    }
                }
        };
        if let Ledger::Proofs { proofs, anchor } = self {
            let mut best: Option<Read> = None;
            for a in proofs["dids"].as_array().into_iter().flatten() {
                if a["didDocument"]["id"] != json!(did.to_string()) {
                    continue;
                }
                let checked = Self::audited(a, anchor, &path, &what)?;
                // The latest document proven that serves.
                if serves(&checked) && best.as_ref().is_none_or(|b| checked.1 > b.1) {
                    best = Some(checked);
                }
            }
            return Ok(best);
        }
        let read = match self.read(&path, height, &what) {
            // A pruned node keeps no state that old: the latest serves if the DID did not
            // change since.
            Err(e) if height.is_some() && is_gone(&e) => self.read(&path, None, &what)?,
            other => other?,
        };
        Ok(read.filter(serves))
    }
}

fn is_gone(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(|a| a.status == 410)
}

/// Checks a credential document: its claims, its anchor under the hash of its bytes, each
/// claim against the anchor, its proof against the issuer's DID document as of the block
/// that anchored it, and its status.
fn check_credential(doc: &Value, ledger: &Ledger<'_>) -> Result<CheckedCredential> {
    let claims = vc::claims(doc).map_err(|e| anyhow!("not an Acta credential: {e}"))?;
    let id = vc::document_hash(doc)?;
    let (answer, height, time) = ledger.credential(&id)?.ok_or_else(|| {
        anyhow!(
            "credential {id} is not on the ledger: this document was changed after it was issued, or never issued"
        )
    })?;
    let record: CredentialRecord = serde_json::from_value(answer["credential"].clone())
        .map_err(|e| anyhow!("the ledger's record of credential {id}: {e}"))?;
    if record.id != id {
        return Err(anyhow!("the ledger answered another credential than {id}"));
    }
    vc::compare(&claims, &record, &ledger.chain()?)
        .map_err(|e| anyhow!("the document does not match its record on the ledger: {e}"))?;
    let (issuer, _, _) = ledger.did(&claims.issuer, Some(record.issued.0))?.ok_or_else(|| {
        anyhow!(
            "the DID document of the issuer {} as of block {} (which anchored the credential) is not available",
            claims.issuer,
            record.issued.0
        )
    })?;
    let prefix = format!("{}#", claims.issuer);
    let proof = vc::verify(doc, |method| {
        if !method.starts_with(&prefix) {
            return Err(vc::VcError {
                field: "proof.verificationMethod".into(),
                message: format!("{method} is not a key of the issuer {}", claims.issuer),
            });
        }
        vc::key_in(&issuer["didDocument"], method, "assertionMethod")
    })
    .map_err(|e| anyhow!("the issuer's proof does not hold: {e}"))?;
    if proof.purpose != "assertionMethod" {
        return Err(anyhow!(
            "the issuer's proof is for {:?}, not assertionMethod",
            proof.purpose
        ));
    }
    Ok(CheckedCredential {
        id,
        claims,
        status: answer["status"].as_str().unwrap_or("unknown").to_string(),
        issued: record.issued.0,
        height,
        checked_at: answer["checked_at"].as_str().unwrap_or("").to_string(),
        time,
    })
}

fn read_json(path: &Path) -> Result<Value> {
    let text = crate::read_limited(path)?;
    serde_json::from_str(&text).map_err(|e| anyhow!("{}: not JSON: {e}", path.display()))
}

fn is_presentation(doc: &Value) -> bool {
    doc["type"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "VerifiablePresentation"))
}

/// The verification method of `did`'s document whose key is `key`'s.
fn method_of(node: &Node, did: &Did, key: &Keypair) -> Result<String> {
    let resolved = node.get(&format!("/dids/{did}"))?;
    let ours = acta_contracts::answer::multibase(&key.public());
    resolved["didDocument"]["verificationMethod"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["publicKeyMultibase"] == json!(ours))
        .and_then(|m| m["id"].as_str().map(str::to_string))
        .ok_or_else(|| anyhow!("the signing key is not a key of {did} on the ledger"))
}

/// The parameters of `acta credential issue`.
#[derive(Debug)]
pub struct Issue {
    pub key: String,
    pub issuer: Did,
    pub subject: Did,
    pub kind: acta_ledger::records::CredentialKind,
    pub district: Option<Text<32>>,
    pub valid_from: u64,
    pub valid_until: u64,
    pub out: Option<PathBuf>,
}

/// Writes and signs the credential document, anchors its hash, and saves it once the ledger
/// took it.
pub fn issue(ctx: &Ctx, p: Issue) -> Result<()> {
    let node = ctx.node()?;
    let signer = ctx.unlock(&p.key)?;
    // Times to the second, as the document writes them.
    let (from, until) = (p.valid_from / 1000 * 1000, p.valid_until / 1000 * 1000);
    if until <= from {
        return Err(anyhow!(
            "--valid-until must be at least a second after --valid-from"
        ));
    }
    let claims = Claims {
        issuer: p.issuer,
        subject: p.subject,
        kind: p.kind,
        district: p.district.as_ref().map(|d| d.as_str().to_string()),
        valid_from: Timestamp(from),
        valid_until: Timestamp(until),
        chain: node.chain_id()?.to_string(),
    };
    let urn = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let options = ProofOptions {
        verification_method: method_of(&node, &p.issuer, &signer)?,
        purpose: "assertionMethod".into(),
        created: Timestamp::now(),
        challenge: None,
        domain: None,
    };
    let document = vc::sign(&vc::credential(&claims, &urn), &options, &signer)?;
    let id = vc::document_hash(&document)?;
    let out = p
        .out
        .unwrap_or_else(|| PathBuf::from(format!("credential-{id}.json")));
    let call = CredentialCall::Issue {
        id,
        issuer: p.issuer,
        subject: p.subject,
        kind: p.kind,
        district: p.district,
        valid_from: Timestamp(from),
        valid_until: Timestamp(until),
    };
    // Written (and synced) before it is sent: a credential the ledger records is useless
    // without its document, which is what the subject presents. A file already there is
    // not replaced.
    let text = serde_json::to_string_pretty(&document)? + "\n";
    write_new(&out, text.as_bytes())
        .with_context(|| format!("writing {}: nothing was sent", out.display()))?;
    let answer = match ctx.submit(&node, &signer, Call::Credential(call)) {
        Ok(answer) => answer,
        Err(e) => {
            // Not on the ledger for sure, the credential never will be: its document goes.
            // Otherwise (no answer, a timeout) it may be, and the document stays.
            if e.downcast_ref::<Refused>().is_some() || e.downcast_ref::<NotRecorded>().is_some() {
                let _ = std::fs::remove_file(&out);
            } else {
                eprintln!(
                    "acta: credential {id} may still be recorded; its document stays in {}",
                    out.display()
                );
            }
            return Err(e);
        }
    };
    ctx.print_answer(&answer);
    if ctx.output == Output::Text {
        crate::outln!(
            "credential {id} ({urn}), a W3C verifiable credential signed by {}, in {}",
            options.verification_method,
            out.display()
        );
    }
    Ok(())
}

/// How old the latest block a node shows may be when a verdict rests on it being the last
/// before a time (`--at`), in minutes.
const LATEST_AGE_MAX_MINUTES: u64 = 5;

/// Writes a new file (never over one) and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The parameters of `acta credential present`.
#[derive(Debug)]
pub struct Present {
    pub holder: Did,
    pub key: String,
    pub credentials: Vec<PathBuf>,
    pub challenge: String,
    pub domain: Option<String>,
    pub out: PathBuf,
    pub no_proofs: bool,
}

/// A verifiable presentation of the holder's credentials, signed by the holder for one
/// verifier's challenge, carrying the ledger's proofs unless told not to.
pub fn present(ctx: &Ctx, p: Present) -> Result<()> {
    if p.challenge.trim().is_empty() {
        return Err(anyhow!(
            "--challenge is empty: use the one the verifier gave"
        ));
    }
    let node = ctx.node()?;
    let holder = p.holder;
    let signer = ctx.unlock(&p.key)?;
    let mut credentials = Vec::new();
    let mut status_proofs = Vec::new();
    let mut did_proofs = Vec::new();
    for path in &p.credentials {
        let doc = read_json(path)?;
        let claims = vc::claims(&doc)
            .map_err(|e| anyhow!("{}: not an Acta credential: {e}", path.display()))?;
        if claims.subject != holder {
            return Err(anyhow!(
                "{} is about {}, not about {holder} who presents it",
                path.display(),
                claims.subject
            ));
        }
        if !p.no_proofs {
            let id = vc::document_hash(&doc)?;
            let status = node
                .get(&format!("/credentials/{id}?prove=true"))
                .with_context(|| format!("{}: reading credential {id}", path.display()))?;
            let issued = status["credential"]["issued"].as_u64().unwrap_or(0);
            let issuer = format!("/dids/{}", claims.issuer);
            let at_issue = match node.get(&format!("{issuer}?height={issued}&prove=true")) {
                Err(e) if is_gone(&e) => node.get(&format!("{issuer}?prove=true"))?,
                other => other?,
            };
            status_proofs.push(status);
            did_proofs.push(at_issue);
        }
        credentials.push(doc);
    }
    // The holder's document last: a verifier takes it as of a block no older than the
    // statuses it carries.
    if !p.no_proofs {
        did_proofs.push(node.get(&format!("/dids/{holder}?prove=true"))?);
    }
    let ledger = if p.no_proofs {
        Value::Null
    } else {
        json!({ "credentials": status_proofs, "dids": did_proofs })
    };
    let options = ProofOptions {
        verification_method: method_of(&node, &holder, &signer)?,
        purpose: "authentication".into(),
        created: Timestamp::now(),
        challenge: Some(p.challenge),
        domain: p.domain,
    };
    let mut unsigned = vc::presentation(&holder, credentials, ledger);
    if p.no_proofs {
        if let Some(m) = unsigned.as_object_mut() {
            m.remove("actaLedgerProofs");
        }
    }
    let vp = vc::sign(&unsigned, &options, &signer)?;
    let text = serde_json::to_string_pretty(&vp)?;
    std::fs::write(&p.out, text + "\n").with_context(|| format!("writing {}", p.out.display()))?;
    let v = json!({
        "presentation": p.out.display().to_string(),
        "holder": holder.to_string(),
        "credentials": p.credentials.len(),
        "ledger_proofs": !p.no_proofs,
    });
    ctx.output.print(
        Some(&format!(
            "presentation of {} credential(s) by {holder} in {}{}",
            p.credentials.len(),
            p.out.display(),
            if p.no_proofs {
                ""
            } else {
                ", with the ledger's proofs: it verifies without a node"
            }
        )),
        &v,
    );
    Ok(())
}

/// The parameters of `acta credential verify`.
#[derive(Debug)]
pub struct Verify {
    pub file: PathBuf,
    pub at: Option<String>,
    pub genesis: Option<PathBuf>,
    pub trust: Option<PathBuf>,
    pub challenge: Option<String>,
    pub domain: Option<String>,
    pub max_age: Option<u64>,
}

/// Whether a block time (ms) is more than `minutes` ago.
fn older_than(time: u64, minutes: u64) -> bool {
    time < Timestamp::now()
        .0
        .saturating_sub(minutes.saturating_mul(60_000))
}

/// The height of the last block at or before `time`, found by bisecting block headers.
fn height_at(node: &Node, time: Timestamp) -> Result<u64> {
    let latest = node.get("/blocks/latest")?;
    let time_of = |b: &Value| b["block"]["header"]["time"].as_u64().unwrap_or(0);
    let mut hi = latest["block"]["header"]["height"].as_u64().unwrap_or(0);
    if hi == 0 {
        return Err(anyhow!("the node has decided no block yet"));
    }
    if time_of(&latest) <= time.0 {
        return Ok(hi);
    }
    let mut lo = 1;
    let first = node.get("/blocks/1")?;
    if time_of(&first) > time.0 {
        return Err(anyhow!(
            "{} is before the chain's first block",
            time.rfc3339()
        ));
    }
    // time(lo) <= time < time(hi)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if time_of(&node.get(&format!("/blocks/{mid}"))?) <= time.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

pub fn verify(ctx: &Ctx, p: Verify) -> Result<()> {
    let doc = read_json(&p.file)?;
    let anchor = p
        .genesis
        .as_deref()
        .map(|g| crate::anchor(g, p.trust.as_deref()))
        .transpose()?;
    let carried = doc.get("actaLedgerProofs").filter(|v| !v.is_null());
    // `--at TIME`: the time the verdict is about.
    let mut at_time: Option<Timestamp> = None;
    let ledger = match (carried, &anchor, &p.at) {
        (Some(proofs), Some(anchor), None) => Ledger::Proofs { proofs, anchor },
        _ => {
            let node = ctx.node()?;
            let height = match p.at.as_deref() {
                None => None,
                Some(s) if s.bytes().all(|b| b.is_ascii_digit()) && s.len() < 13 => Some(
                    s.parse()
                        .map_err(|_| anyhow!("--at {s:?} is not a height"))?,
                ),
                Some(s) => {
                    let t = Timestamp::parse(s).map_err(|e| anyhow!("--at: {e}"))?;
                    at_time = Some(t);
                    Some(height_at(&node, t)?)
                }
            };
            Ledger::Node {
                node,
                height,
                anchor: anchor.as_ref(),
            }
        }
    };
    let basis = match (&ledger, &p.genesis) {
        (Ledger::Proofs { .. }, Some(g)) => {
            format!(
                "offline, with the proofs it carries, against the genesis {}",
                g.display()
            )
        }
        (Ledger::Node { .. }, Some(g)) => format!(
            "with proofs read from {}, against the genesis {}",
            ctx.node_url,
            g.display()
        ),
        _ => format!(
            "as the node {} answers (add --genesis to check its proofs)",
            ctx.node_url
        ),
    };
    let mut holder = None;
    let mut holder_read: Option<(u64, u64)> = None;
    let credentials: Vec<Value> = if is_presentation(&doc) {
        let h = Did::parse(doc["holder"].as_str().unwrap_or_default())
            .map_err(|e| anyhow!("holder: not an Acta DID: {e}"))?;
        let (resolved, holder_height, holder_time) = ledger
            .did(&h, None)?
            .ok_or_else(|| anyhow!("the holder {h} is not on the ledger"))?;
        holder_read = Some((holder_height, holder_time));
        if resolved["didDocumentMetadata"]["deactivated"] == json!(true) {
            return Err(anyhow!("the holder {h} is deactivated"));
        }
        let prefix = format!("{h}#");
        let proof = vc::verify(&doc, |method| {
            if !method.starts_with(&prefix) {
                return Err(vc::VcError {
                    field: "proof.verificationMethod".into(),
                    message: format!("{method} is not a key of the holder {h}"),
                });
            }
            vc::key_in(&resolved["didDocument"], method, "authentication")
        })
        .map_err(|e| anyhow!("the holder's proof does not hold: {e}"))?;
        if proof.purpose != "authentication" {
            return Err(anyhow!(
                "the holder's proof is for {:?}, not authentication",
                proof.purpose
            ));
        }
        match (&p.challenge, &proof.challenge) {
            (None, _) => {
                return Err(anyhow!(
                "a presentation answers a challenge: give the one you asked for with --challenge"
            ))
            }
            (Some(ours), theirs) if theirs.as_ref() != Some(ours) => {
                return Err(anyhow!(
                    "the presentation answers {}, not the challenge {ours:?}: it may be a replay",
                    theirs
                        .as_ref()
                        .map_or("no challenge".to_string(), |t| format!(
                            "the challenge {t:?}"
                        ))
                ))
            }
            _ => {}
        }
        if let Some(domain) = &p.domain {
            if proof.domain.as_ref() != Some(domain) {
                return Err(anyhow!(
                    "the presentation is meant for {}, not {domain:?}",
                    proof
                        .domain
                        .as_ref()
                        .map_or("any verifier".to_string(), |d| format!("{d:?}"))
                ));
            }
        }
        holder = Some((h, proof));
        doc["verifiableCredential"]
            .as_array()
            .cloned()
            .ok_or_else(|| anyhow!("verifiableCredential: not a list"))?
    } else {
        vec![doc.clone()]
    };
    if credentials.is_empty() {
        return Err(anyhow!("the presentation holds no credential"));
    }
    let mut shown = Vec::new();
    let mut lines = Vec::new();
    let mut statuses = Vec::new();
    let mut failed = None;
    if let (Some(minutes), Some((_, time))) = (p.max_age, holder_read) {
        if older_than(time, minutes) {
            failed = Some(format!(
                "the holder's DID document was read at {}, more than {minutes} minutes ago: ask for a new presentation",
                Timestamp(time).rfc3339()
            ));
        }
    }
    for (i, c) in credentials.iter().enumerate() {
        let checked = check_credential(c, &ledger).map_err(|e| {
            if credentials.len() > 1 {
                anyhow!("credential {i}: {e}")
            } else {
                e
            }
        })?;
        if let Some((h, _)) = &holder {
            if checked.claims.subject != *h {
                return Err(anyhow!(
                    "credential {} is about {}, not about the holder {h}",
                    checked.id,
                    checked.claims.subject
                ));
            }
        }
        let c = &checked.claims;
        lines.push(format!(
            "{} credential {} of {} issued by {} at block {}: {} at block {} ({}), valid {} to {}{}",
            vc::kind_name(c.kind),
            checked.id,
            c.subject,
            c.issuer,
            checked.issued,
            checked.status,
            checked.height,
            checked.checked_at,
            c.valid_from.rfc3339(),
            c.valid_until.rfc3339(),
            c.district
                .as_ref()
                .map(|d| format!(", district {d}"))
                .unwrap_or_default()
        ));
        let mut why = None;
        if checked.status != "valid" {
            why = Some(format!("credential {} is {}", checked.id, checked.status));
        }
        // The validity window against the time the verdict is about: the status is as of
        // the block read, which may be older.
        let about = at_time.unwrap_or_else(Timestamp::now);
        if why.is_none() && (about < c.valid_from || about >= c.valid_until) {
            why = Some(format!(
                "credential {} is valid from {} until {}, not at {}",
                checked.id,
                c.valid_from.rfc3339(),
                c.valid_until.rfc3339(),
                about.rfc3339()
            ));
        }
        if let (Some(minutes), None) = (p.max_age, &why) {
            if older_than(checked.time, minutes) {
                why = Some(format!(
                    "the status of credential {} was read at {}, more than {minutes} minutes ago: ask for a new presentation",
                    checked.id, checked.checked_at
                ));
            }
        }
        if let (Some(t), None) = (at_time, &why) {
            // A proven answer must be of the last block at or before the time asked about:
            // at or before it, and the next block (proven too) after it. The node picked
            // the height from block times it did not prove.
            if p.genesis.is_some() && checked.time > t.0 {
                why = Some(format!(
                    "the node proved credential {} as of {}, after --at {}",
                    checked.id,
                    Timestamp(checked.time).rfc3339(),
                    t.rfc3339()
                ));
            } else if p.genesis.is_some() {
                let next = checked.height + 1;
                let what = format!("credential {} at the next block", checked.id);
                match ledger.read(&format!("/credentials/{}", checked.id), Some(next), &what)? {
                    Some((_, _, time)) if time <= t.0 => {
                        why = Some(format!(
                            "the node read credential {} at block {}, but block {next} ({}) is also at or before --at {}: its status then is not shown (if a block was just made, run it again)",
                            checked.id,
                            checked.height,
                            Timestamp(time).rfc3339(),
                            t.rfc3339()
                        ));
                    }
                    Some(_) => {}
                    // No next block: the one read is the node's latest. A live chain makes
                    // one at least every `consensus.empty_block_interval_ms` (10 s by
                    // default), so a latest block much older than now means a node behind,
                    // or one hiding the blocks after it.
                    None if older_than(checked.time, LATEST_AGE_MAX_MINUTES) => {
                        why = Some(format!(
                            "the node's latest block, {} ({}), is more than {LATEST_AGE_MAX_MINUTES} minutes old: a later block may change the status of credential {}; ask another node",
                            checked.height,
                            Timestamp(checked.time).rfc3339(),
                            checked.id
                        ));
                    }
                    None => {
                        if let Some(line) = lines.last_mut() {
                            line.push_str(" (the latest block the node has)");
                        }
                    }
                }
            }
        }
        if let (Some((hh, _)), Ledger::Proofs { .. }, None) = (holder_read, &ledger, &why) {
            // The holder's document must be no older than the statuses it goes with: an old
            // one may list a key taken away since.
            if hh < checked.height {
                why = Some(format!(
                    "the holder's DID document is proven as of block {hh}, before the status of credential {} (block {}): a key it lists may have been replaced since",
                    checked.id, checked.height
                ));
            }
        }
        statuses.push(if why.is_some() { "FAIL" } else { "ok" });
        if failed.is_none() {
            failed = why;
        }
        shown.push(json!({
            "id": checked.id,
            "kind": vc::kind_name(c.kind),
            "issuer": c.issuer.to_string(),
            "subject": c.subject.to_string(),
            "district": c.district,
            "valid_from": c.valid_from.rfc3339(),
            "valid_until": c.valid_until.rfc3339(),
            "issued_height": checked.issued,
            "status": checked.status,
            "height": checked.height,
            "checked_at": checked.checked_at,
        }));
    }
    let verified = failed.is_none();
    let mut v = json!({ "verified": verified, "basis": basis, "credentials": shown });
    if let Some((h, proof)) = &holder {
        v["holder"] = json!(h.to_string());
        v["challenge"] = json!(proof.challenge);
        v["domain"] = json!(proof.domain);
    }
    if ctx.output == Output::Json {
        ctx.output.print(None, &v);
    } else {
        if let Some((h, proof)) = &holder {
            crate::outln!(
                "ok  presented by {h}, signed with {} for challenge {:?}{}",
                proof.verification_method,
                proof.challenge.as_deref().unwrap_or(""),
                proof
                    .domain
                    .as_ref()
                    .map(|d| format!(" and verifier {d}"))
                    .unwrap_or_default()
            );
        }
        for (line, status) in lines.iter().zip(&statuses) {
            crate::outln!("{status:<4}{line}");
        }
        if verified {
            crate::outln!("verified: {} ({basis})", p.file.display());
        }
    }
    match failed {
        Some(why) => Err(anyhow!("{}: not valid: {why} ({basis})", p.file.display())),
        None => Ok(()),
    }
}
