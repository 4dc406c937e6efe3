//! The record commands: identities, credentials, devices, the council and budget rounds.
//! Each builds one call of a ledger module, signs it with a keystore key and submits it;
//! the read commands ask the node's API.

use std::path::PathBuf;

use acta_contracts::answer::{amount, decimal, money_in};
use acta_contracts::identity::NS_DID;
use acta_contracts::tally::{self, pb, RuleProfile};
use acta_ledger::{
    crypto::key_hash,
    records::{
        BallotFormat, BallotSecrecy, CredentialKind, DidDocument, DidRecord, GovAction, RoundSpec,
        Rule, TieBreak,
    },
    tx::{BudgetCall, CredentialCall, GovernanceCall, IdentityCall, SensorCall},
    types::{Bytes, Text},
    Call, Hash, PublicKey, Timestamp,
};
use anyhow::{anyhow, Context, Result};
use borsh::BorshDeserialize;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::output::Output;

use crate::{
    client::Node,
    wallet::{now_ms, parse_time, Ctx},
};

/// The signing key: a name in the keystore.
#[derive(Debug, Args)]
pub struct KeyArg {
    /// The keystore key that signs (see `acta keys list`).
    #[arg(long, short = 'k', value_name = "NAME")]
    pub key: String,
}

fn text<const N: usize>(what: &str, s: &str) -> Result<Text<N>> {
    Text::new(s).map_err(|e| anyhow!("{what} {s:?}: {e}"))
}

/// The value of attribute `name` of the first event of `kind` in a committed answer.
fn event_attribute(answer: &Value, kind: &str, name: &str) -> Option<String> {
    answer["events"]
        .as_array()?
        .iter()
        .find(|e| e["kind"] == kind)?["attributes"]
        .as_array()?
        .iter()
        .find(|a| a[0] == name)
        .and_then(|a| a[1].as_str())
        .map(str::to_string)
}

/// `part` as a percentage of `whole`, one decimal: `31.5%`.
fn percent(part: u128, whole: u128) -> String {
    if whole == 0 {
        return "-".into();
    }
    let tenths = part.saturating_mul(1000).saturating_add(whole / 2) / whole;
    format!("{}.{}%", tenths / 10, tenths % 10)
}

/// An amount in a round's currency as people write it: `PLN 12,000`.
fn money(spec: &Value, n: u128) -> String {
    match spec["currency"].as_str() {
        Some(c) => money_in(c, n),
        None => amount(n),
    }
}

/// A span of milliseconds in its two largest units: `13d 4h`, `2h 5m`, `40s`.
fn span(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A round's phase with what is left of it: `voting, 13d 4h left`, or `tallying, due at
/// height 71`.
fn phase_now(summary: &Value) -> String {
    let phase = summary["phase"].as_str().unwrap_or("?");
    if let Some(left) = summary["phase_left_ms"].as_u64() {
        return format!("{phase}, {} left", span(left));
    }
    if let Some(at) = summary["round"]["status"]["cancelled"]["at"].as_u64() {
        return format!("{phase} by the council at height {at}");
    }
    match summary["tally_due"].as_u64() {
        Some(due) => format!("{phase}, due at height {due}"),
        None => phase.to_string(),
    }
}

/// `budget show` as people read it: a title line, the round's phase, dates and figures,
/// and its projects.
fn readable_round(v: &Value) -> (String, Value, Vec<Value>) {
    let r = &v["round"];
    let spec = &r["spec"];
    let dates = &v["dates"];
    let title = format!(
        "round {} ({}) for {}: {}",
        r["id"],
        spec["title"].as_str().unwrap_or("?"),
        spec["district"].as_str().unwrap_or("?"),
        phase_now(v)
    );
    let row = round_row(v);
    let mut fields = json!({
        "budget": row["budget"],
        "ballot": row["ballot"],
        "ballot format": spec["ballot"],
        "rule": spec["rule"]["rule"],
        "proposals from": dates["proposals_from"],
        "voting from": dates["voting_from"],
        "voting until": dates["closes_at"],
        "ballots so far": r["voters"],
        "at height": v["height"],
        "block time": v["time"],
    });
    if let Some(due) = v["tally_due"].as_u64() {
        fields["tally due at height"] = json!(due);
    }
    if let Some(t) = v.get("result").filter(|t| !t.is_null()) {
        fields["result"] = json!(format!(
            "{} projects selected, {} spent; see acta budget results {}",
            t["selected"].as_array().map_or(0, Vec::len),
            money(spec, u128::from(t["total_cost"].as_u64().unwrap_or(0))),
            r["id"]
        ));
    }
    let projects = v["projects"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| {
                    json!({
                        "project": p["index"],
                        "title": p["title"],
                        "cost": money(spec, u128::from(p["cost"].as_u64().unwrap_or(0))),
                        "proposer": p["proposer"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    (title, fields, projects)
}

/// One line of `budget list`: a round's summary as the API gives it, flattened for a table.
fn round_row(summary: &Value) -> Value {
    let r = &summary["round"];
    let spec = &r["spec"];
    let dates = &summary["dates"];
    json!({
        "id": r["id"],
        "title": spec["title"],
        "district": spec["district"],
        "phase": phase_now(summary),
        "budget": spec["budget"].as_u64().map_or("-".into(), |b| money(spec, u128::from(b))),
        // A secret round: its ballots are one per token at most.
        "ballot": if spec["secrecy"].get("secret").is_some() {
            format!("secret, {} tokens", summary["tokens"]["issued"].as_u64().unwrap_or(0))
        } else {
            "public".to_string()
        },
        "ballots": r["voters"],
        "proposals_from": dates["proposals_from"],
        "voting_from": dates["voting_from"],
        "closes_at": dates["closes_at"],
    })
}

/// A stored result as people read it: a title line, then the selected projects with their
/// costs and shares of the budget, and the rule's figures in decimals. The exact rationals
/// stay in `--output json`.
fn readable_result(round: &Value, answer: &Value) -> (String, Value) {
    let t = &answer["result"];
    let budget = u128::from(round["spec"]["budget"].as_u64().unwrap_or(0));
    let total = u128::from(t["total_cost"].as_u64().unwrap_or(0));
    let approvals = t["approvals"].as_array().cloned().unwrap_or_default();
    let selected: Vec<Value> = answer["selected"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| {
                    let cost = u128::from(p["cost"].as_u64().unwrap_or(0));
                    let index = p["index"].as_u64().unwrap_or(0);
                    json!({
                        "project": index,
                        "title": p["title"],
                        "cost": money(&round["spec"], cost),
                        "share of budget": percent(cost, budget),
                        "approvals": usize::try_from(index).ok().and_then(|i| approvals.get(i)).cloned().unwrap_or(Value::Null),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let title = format!(
        "round {} ({}): {} selected, {} of {} spent ({}); {} voters",
        t["round"],
        round["spec"]["title"].as_str().unwrap_or("?"),
        match selected.len() {
            1 => "1 project".to_string(),
            n => format!("{n} projects"),
        },
        money(&round["spec"], total),
        money(&round["spec"], budget),
        percent(total, budget),
        t["voters"],
    );
    let mut figures = json!({
        "rule": t["rule"]["rule"],
        "tie break": t["rule"]["tie_break"],
        "tallied at height": t["height"],
    });
    if let Some([num, den]) = t["endowment"]
        .as_array()
        .and_then(|e| <[Value; 2]>::try_from(e.clone()).ok())
    {
        let shown = match (value_u128(&num), value_u128(&den)) {
            (Some(num), Some(den)) => match round["spec"]["currency"].as_str() {
                Some(c) => format!("{c} {}", decimal(num, den)),
                None => decimal(num, den),
            },
            _ => format!("{num}/{den}"),
        };
        figures["budget per voter at the end"] = json!(shown);
    }
    if let Some(steps) = t["add1_steps"].as_u64() {
        figures["add1 steps"] = json!(steps);
    }
    figures["selected"] = json!(selected);
    (title, figures)
}

/// A JSON number or decimal string as a u128 (the API writes u128s as numbers; one past
/// u64 may have been read as a float, and is then `None`).
fn value_u128(v: &Value) -> Option<u128> {
    match v {
        Value::Number(n) => n.as_u64().map(u128::from),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn hash_arg(what: &str, s: &str) -> Result<Hash> {
    Hash::from_hex(s).map_err(|e| anyhow!("{what} {s:?} is not a 64-digit hex hash: {e}"))
}

fn key_arg(what: &str, ctx: &Ctx, s: &str) -> Result<PublicKey> {
    if let Ok(k) = PublicKey::from_hex(s) {
        return Ok(k);
    }
    let info = ctx.keystore()?.info(s).map_err(|e| {
        anyhow!("{what} {s:?} is neither a 64-digit hex public key nor a keystore key: {e}")
    })?;
    Ok(info.public_key)
}

fn parse_kind(s: &str) -> Result<CredentialKind, String> {
    match s.replace('_', "-").as_str() {
        "resident" => Ok(CredentialKind::Resident),
        "sensor-operator" => Ok(CredentialKind::SensorOperator),
        "auditor" => Ok(CredentialKind::Auditor),
        "budget-office" => Ok(CredentialKind::BudgetOffice),
        _ => Err(format!(
            "unknown credential kind {s:?}; one of: resident, sensor-operator, auditor, budget-office"
        )),
    }
}

pub fn parse_rule(s: &str) -> Result<Rule, String> {
    Rule::parse(s).ok_or_else(|| {
        let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
        format!("unknown rule {s:?}; one of: {}", names.join(", "))
    })
}

pub fn parse_tie_break(s: &str) -> Result<TieBreak, String> {
    TieBreak::parse(s).ok_or_else(|| {
        let names: Vec<&str> = TieBreak::ALL.iter().map(|t| t.name()).collect();
        format!("unknown tie-break {s:?}; one of: {}", names.join(", "))
    })
}

fn parse_ballot(s: &str) -> Result<BallotFormat, String> {
    if s == "knapsack" {
        return Ok(BallotFormat::Knapsack);
    }
    let bad = || {
        format!("{s:?} is not a ballot format: approval:MIN:MAX (such as approval:1:3) or knapsack")
    };
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        ["approval", min, max] => Ok(BallotFormat::Approval {
            min: min.parse().map_err(|_| bad())?,
            max: max.parse().map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

// ---------------------------------------------------------------------------------------
// Identities

#[derive(Debug, Subcommand)]
pub enum DidCommand {
    /// Create the DID of a key (`did:acta:` and the key's id); its document lists the key
    /// as #key-1.
    ///
    /// Example: acta keys new alice && acta did create --key alice
    Create {
        #[command(flatten)]
        key: KeyArg,
        /// Pre-commit the key the first rotation must install (a keystore key or a hex
        /// public key): a stolen current key then cannot rotate the DID away.
        #[arg(long, value_name = "KEY")]
        next_key: Option<String>,
    },
    /// Resolve a DID (W3C DID Resolution): its DID document and metadata (versionId, the
    /// height of the block that made this version, and nextVersionId for a past one).
    ///
    /// Example: acta did resolve did:acta:3q7... --version-time 2027-01-31 (or the keystore
    /// name: acta did resolve alice; `did show` is the same command)
    #[command(visible_alias = "show")]
    Resolve {
        did: String,
        /// Read at this height instead of the latest.
        #[arg(long, conflicts_with_all = ["version_id", "version_time"])]
        height: Option<u64>,
        /// The version to resolve (its versionId: the height of the block that made it).
        #[arg(long, conflicts_with = "version_time")]
        version_id: Option<u64>,
        /// The version in force at this time (2027-01-31, 2027-01-31T12:00:00Z).
        #[arg(long)]
        version_time: Option<String>,
        /// Include a proof bundle (use with --output json, then `acta audit verify`).
        #[arg(long)]
        prove: bool,
    },
    /// Replace a DID's document with a JSON file: the W3C document `did resolve` prints (or
    /// its whole output), edited; or set its controllers (keeping its keys and services).
    ///
    /// Example: acta did resolve alice -o json > alice.json; (edit it); acta did update
    /// --key alice --document alice.json
    Update {
        #[command(flatten)]
        key: KeyArg,
        /// The DID to update (default: the signing key's own DID).
        #[arg(long)]
        did: Option<String>,
        /// The new document, as JSON.
        #[arg(long, conflicts_with = "controller")]
        document: Option<PathBuf>,
        /// A controller DID (or keystore key name); repeatable. Replaces the controllers.
        #[arg(long)]
        controller: Vec<String>,
    },
    /// Name a recovery controller: another resident's DID, a trusted agency's, or the DID
    /// of a key kept on a second device of yours. If you lose your key, it replaces your
    /// DID's keys with `acta did recover`. A controller can change your DID's document
    /// (keys included) and deactivate it at any time: choose one you trust. Keeps the DID's
    /// other controllers.
    ///
    /// Example: acta did add-recovery --key alice did:acta:Hc8... (or a keystore name)
    AddRecovery {
        #[command(flatten)]
        key: KeyArg,
        /// The DID to protect (default: the signing key's own DID).
        #[arg(long)]
        did: Option<String>,
        /// The recovery controller: a DID, or the name of a keystore key whose DID it is.
        recovery: String,
    },
    /// Recover a DID whose key is lost: signed by a key of one of its controllers (see
    /// add-recovery), replaces every key of the DID with NEW-KEY (as #key-1), keeping its
    /// controllers and services.
    ///
    /// Example: acta did recover --key alice-phone --did did:acta:3q7... --new-key alice-new
    Recover {
        #[command(flatten)]
        key: KeyArg,
        /// The DID to recover.
        #[arg(long)]
        did: String,
        /// The key to install (a keystore key or a hex public key).
        #[arg(long, value_name = "KEY")]
        new_key: String,
    },
    /// Replace the signing key of a DID with another keystore key (which must match the
    /// pre-committed one, if any).
    ///
    /// Example: acta did rotate --key alice --new-key alice2 --did alice
    Rotate {
        #[command(flatten)]
        key: KeyArg,
        /// The DID (default: the signing key's own DID).
        #[arg(long)]
        did: Option<String>,
        /// The key to install (a keystore key or a hex public key).
        #[arg(long, value_name = "KEY")]
        new_key: String,
        /// Pre-commit the key the next rotation must install.
        #[arg(long, value_name = "KEY")]
        next_key: Option<String>,
        /// Rotate without pre-committing a next key, dropping the DID's current
        /// pre-commitment.
        #[arg(long, conflicts_with = "next_key")]
        no_next_key: bool,
    },
    /// Deactivate a DID for good: no key can update it again, and credentials about it
    /// show `subject_deactivated`.
    ///
    /// Example: acta did deactivate --key alice --yes
    Deactivate {
        #[command(flatten)]
        key: KeyArg,
        /// The DID (default: the signing key's own DID).
        #[arg(long)]
        did: Option<String>,
        /// Confirm: this cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

/// The hash a DID pre-commits for its next key, from `--next-key`.
fn next_key_hash(ctx: &Ctx, next_key: Option<&str>) -> Result<Option<Hash>> {
    next_key
        .map(|k| key_arg("--next-key", ctx, k).map(|k| key_hash(&k)))
        .transpose()
}

/// Checks `document` for `target` and sends it as the DID's new document, signed by `key`.
fn send_document(
    ctx: &Ctx,
    key: &str,
    target: acta_ledger::Did,
    document: DidDocument,
) -> Result<()> {
    document
        .check(&target)
        .map_err(|e| anyhow!("the document is not valid: {e}"))?;
    ctx.sign_and_send(
        key,
        Call::Identity(IdentityCall::UpdateDocument {
            did: target,
            document,
        }),
    )?;
    Ok(())
}

/// How old the block of a proof the wallet edits and signs may be, in milliseconds.
const PROOF_AGE_MAX_MS: u64 = 5 * 60_000;

/// A DID's record as the ledger holds it (its raw state value), to edit and sign: decoded
/// from bytes proven against the genesis the wallet is set to (`acta config set genesis`),
/// or the node's word, said so, if it is set to none.
fn did_record(ctx: &Ctx, did: &acta_ledger::Did) -> Result<DidRecord> {
    let node = ctx.node()?;
    let path = format!("/state/{NS_DID}/{}", hex::encode(did.0));
    let bytes = match crate::config::genesis()? {
        Some((anchor, from)) => {
            let answer = node.get(&format!("{path}?prove=true"))?;
            let audited = acta_contracts::audit::verify(&answer, &anchor).map_err(|e| {
                anyhow!(
                    "the node's proof of {did}'s document does not verify against {from} at step \"{}\": {}: nothing was signed",
                    e.step,
                    e.message
                )
            })?;
            // A genuine proof of an old document would have the wallet sign it again, with
            // a key or controller removed since: the proof must be of a recent block (a
            // live chain makes one at least every 10 s by default).
            let age_ms = now_ms().saturating_sub(audited.verified.time.0);
            if age_ms > PROOF_AGE_MAX_MS {
                return Err(anyhow!(
                    "the node proved {did}'s document as of block {} ({}), more than {} minutes ago: a newer one may exist; nothing was signed (ask another node)",
                    audited.verified.height,
                    audited.verified.time.rfc3339(),
                    PROOF_AGE_MAX_MS / 60_000
                ));
            }
            let proven = audited
                .verified
                .state
                .into_iter()
                .find(|(ns, key, _)| ns == NS_DID && key[..] == did.0[..])
                .ok_or_else(|| anyhow!("the node's proof is not of {did}'s document"))?;
            proven
                .2
                .ok_or_else(|| anyhow!("{did} is not on the ledger (proven)"))?
        }
        None => {
            if ctx.output == Output::Text {
                eprintln!(
                    "acta: {did}'s document is read from the node without a proof; `acta config set genesis <file>` has it checked before you sign"
                );
            }
            let v = node.get(&path)?;
            let Some(h) = v["value"].as_str() else {
                return Err(anyhow!("{did} is not on the ledger"));
            };
            hex::decode(h).map_err(|e| anyhow!("the node's record of {did}: {e}"))?
        }
    };
    DidRecord::try_from_slice(&bytes).map_err(|e| anyhow!("the ledger's record of {did}: {e}"))
}

fn own_or(ctx: &Ctx, did: Option<&str>, key: &str) -> Result<acta_ledger::Did> {
    ctx.did(did.unwrap_or(key))
}

/// A read with `height` and `prove` query parameters.
pub fn read_path(path: &str, height: Option<u64>, prove: bool) -> String {
    let mut q = Vec::new();
    if let Some(h) = height {
        q.push(format!("height={h}"));
    }
    if prove {
        q.push("prove=true".into());
    }
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

pub fn did(ctx: &Ctx, command: DidCommand) -> Result<()> {
    match command {
        DidCommand::Create { key, next_key } => {
            let next_key_hash = next_key_hash(ctx, next_key.as_deref())?;
            let did = acta_ledger::Did::from_initial_key(&key_arg("--key", ctx, &key.key)?);
            ctx.sign_and_send(
                &key.key,
                Call::Identity(IdentityCall::CreateDid { next_key_hash }),
            )?;
            if ctx.output == crate::output::Output::Text {
                crate::outln!("DID {did}");
            }
            Ok(())
        }
        DidCommand::Resolve {
            did,
            height,
            version_id,
            version_time,
            prove,
        } => {
            let did = ctx.did(&did)?;
            let mut path = read_path(&format!("/dids/{did}"), height, prove);
            let mut version = Vec::new();
            if let Some(v) = version_id {
                version.push(format!("versionId={v}"));
            }
            if let Some(t) = version_time {
                let t = acta_ledger::Timestamp::parse(&t)
                    .map_err(|e| anyhow!("--version-time: {e}"))?;
                version.push(format!("versionTime={}", t.rfc3339_ms()));
            }
            if !version.is_empty() {
                path.push(if path.contains('?') { '&' } else { '?' });
                path.push_str(&version.join("&"));
            }
            let v = ctx.node()?.get(&path)?;
            ctx.output.print(None, &v);
            Ok(())
        }
        DidCommand::AddRecovery { key, did, recovery } => {
            let target = own_or(ctx, did.as_deref(), &key.key)?;
            let recovery = ctx.did(&recovery)?;
            if recovery == target {
                return Err(anyhow!("a DID cannot be its own recovery controller"));
            }
            let mut document = did_record(ctx, &target)?.document;
            if document.controllers.contains(&recovery) {
                return Err(anyhow!("{recovery} is already a controller of {target}"));
            }
            document.controllers.push(recovery);
            send_document(ctx, &key.key, target, document)?;
            if ctx.output == crate::output::Output::Text {
                crate::outln!(
                    "{recovery} can now recover {target}: acta did recover --key <its key> --did {target} --new-key <your new key>"
                );
            }
            Ok(())
        }
        DidCommand::Recover { key, did, new_key } => {
            let target = ctx.did(&did)?;
            let new_key = key_arg("--new-key", ctx, &new_key)?;
            let mut document = did_record(ctx, &target)?.document;
            document.verification_methods = vec![acta_ledger::records::VerificationMethod {
                id: text("key id", "key-1")?,
                key: new_key,
            }];
            send_document(ctx, &key.key, target, document)?;
            if ctx.output == crate::output::Output::Text {
                crate::outln!("{target} now has one key, #key-1: {new_key}");
            }
            Ok(())
        }
        DidCommand::Update {
            key,
            did,
            document,
            controller,
        } => {
            let target = own_or(ctx, did.as_deref(), &key.key)?;
            let document: DidDocument = match document {
                Some(path) => {
                    let text = crate::read_limited(&path)?;
                    let v: Value = serde_json::from_str(&text)
                        .map_err(|e| anyhow!("{}: not JSON: {e}", path.display()))?;
                    if v.get("verification_methods").is_some() {
                        // The ledger's own shape, as earlier versions took it.
                        serde_json::from_value(v)
                            .map_err(|e| anyhow!("{}: not a DID document: {e}", path.display()))?
                    } else {
                        acta_contracts::answer::did_document_from(&v, &target).map_err(|e| {
                            anyhow!("{}: not a DID document of {target}: {e}", path.display())
                        })?
                    }
                }
                None if controller.is_empty() => {
                    return Err(anyhow!(
                        "nothing to change: give --controller DID (repeatable) or --document FILE"
                    ))
                }
                // The document as it is, with these controllers instead of its own.
                None => {
                    let mut document = did_record(ctx, &target)?.document;
                    document.controllers = controller
                        .iter()
                        .map(|c| ctx.did(c))
                        .collect::<Result<_>>()?;
                    document
                }
            };
            send_document(ctx, &key.key, target, document)?;
            Ok(())
        }
        DidCommand::Rotate {
            key,
            did,
            new_key,
            next_key,
            no_next_key,
        } => {
            let target = own_or(ctx, did.as_deref(), &key.key)?;
            let new_key = key_arg("--new-key", ctx, &new_key)?;
            let next_key_hash = next_key_hash(ctx, next_key.as_deref())?;
            if next_key_hash.is_none()
                && !no_next_key
                && did_record(ctx, &target)?.next_key_hash.is_some()
            {
                return Err(anyhow!(
                    "{target} pre-commits its next key; keep that protection with --next-key KEY, or drop it with --no-next-key"
                ));
            }
            ctx.sign_and_send(
                &key.key,
                Call::Identity(IdentityCall::RotateKey {
                    did: target,
                    new_key,
                    next_key_hash,
                }),
            )?;
            Ok(())
        }
        DidCommand::Deactivate { key, did, yes } => {
            confirmed(yes, "deactivating a DID")?;
            let target = own_or(ctx, did.as_deref(), &key.key)?;
            ctx.sign_and_send(
                &key.key,
                Call::Identity(IdentityCall::Deactivate { did: target }),
            )?;
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Credentials

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Issue a credential: writes a W3C Verifiable Credential 2.0 document signed by the
    /// issuer's DID key with a Data Integrity proof (eddsa-jcs-2022), and anchors its id
    /// (the SHA-256 of its RFC 8785 canonical form without the proof) on the ledger. The
    /// issuer must be registered for the kind. Times are kept to the second.
    ///
    /// Example: acta credential issue --key agency --subject alice --kind resident
    /// --district old-town --out alice-resident.json
    Issue {
        #[command(flatten)]
        key: KeyArg,
        /// The issuing DID (default: the signing key's own DID).
        #[arg(long)]
        issuer: Option<String>,
        /// The subject's DID (or keystore key name).
        #[arg(long)]
        subject: String,
        /// resident, sensor-operator, auditor or budget-office.
        #[arg(long, value_parser = parse_kind)]
        kind: CredentialKind,
        /// The district (Resident credentials only).
        #[arg(long)]
        district: Option<String>,
        /// Valid from (Unix ms, 2027-01-31 or 2027-01-31T12:00:00Z; default: now).
        #[arg(long, value_parser = parse_time)]
        valid_from: Option<u64>,
        /// Valid until (default: one year after valid-from).
        #[arg(long, value_parser = parse_time)]
        valid_until: Option<u64>,
        /// Write the credential document here once issued (give it to the subject; default:
        /// credential-<id>.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Suspend a credential (it can be reinstated).
    ///
    /// Example: acta credential suspend --key agency 5f1c...
    Suspend {
        #[command(flatten)]
        key: KeyArg,
        id: String,
    },
    /// Reinstate a suspended credential.
    ///
    /// Example: acta credential reinstate --key agency 5f1c...
    Reinstate {
        #[command(flatten)]
        key: KeyArg,
        id: String,
    },
    /// Revoke a credential for good (suspend it to stop it for a while).
    ///
    /// Example: acta credential revoke --key agency 5f1c... --yes
    Revoke {
        #[command(flatten)]
        key: KeyArg,
        id: String,
        /// Confirm: this cannot be undone.
        #[arg(long)]
        yes: bool,
    },
    /// Show credentials to a verifier: a W3C Verifiable Presentation signed by the holder's
    /// DID key for the verifier's challenge (and, with --to, for that verifier only). It
    /// carries the ledger's proofs of each credential's status and of the keys that signed,
    /// so that the verifier needs no node: `acta credential verify vp.json --genesis
    /// genesis.json --challenge ...`.
    ///
    /// Example: acta credential present --key alice alice-resident.json --challenge 7f3a9c
    /// --to did:acta:Hc8... --out alice-vp.json
    Present {
        #[command(flatten)]
        key: KeyArg,
        /// The holder's DID, whose key --key is (default: the DID the key created; give it
        /// after a rotation or a recovery).
        #[arg(long)]
        did: Option<String>,
        /// Credential documents of the key's DID (as `credential issue` wrote them).
        #[arg(required = true)]
        credentials: Vec<PathBuf>,
        /// The verifier's challenge (a nonce it chose), so the presentation cannot be
        /// replayed to it.
        #[arg(long)]
        challenge: String,
        /// The verifier's DID or address: the presentation is for it alone (proof domain).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "presentation.json")]
        out: PathBuf,
        /// Leave the ledger's proofs out (the verifier then asks a node).
        #[arg(long)]
        no_proofs: bool,
    },
    /// Verify a credential document or a presentation: the document's id (the hash of its
    /// bytes) is anchored, each claim equals the anchored record, the issuer's proof verifies
    /// with the issuer DID's key as of the anchoring block, and the status is valid; for a
    /// presentation also the holder's proof, the challenge (and --domain), and that each
    /// credential is the holder's. With --genesis, every record read is proven against it;
    /// a presentation carrying the ledger's proofs is then checked offline. Exits 1 and says
    /// why if anything does not hold.
    ///
    /// Example: acta credential verify alice-vp.json --genesis genesis.json --challenge 7f3a9c
    Verify {
        file: PathBuf,
        /// The status as of this height or time (2027-03-01, 2027-03-01T09:00Z), read from
        /// the node (default: the latest).
        #[arg(long, value_name = "HEIGHT|TIME")]
        at: Option<String>,
        /// The chain's genesis.json: check the ledger's proofs against it.
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// With --genesis: check the proofs from the validator set pinned in this file
        /// (`acta audit pin`) instead of the genesis set.
        #[arg(long, value_name = "PIN", requires = "genesis")]
        trust: Option<PathBuf>,
        /// The challenge you gave the holder (presentations).
        #[arg(long)]
        challenge: Option<String>,
        /// Your DID or address, which the presentation must name (presentations).
        #[arg(long)]
        domain: Option<String>,
        /// Refuse a status older than this many minutes (a presentation's proofs are read
        /// when it is made: a credential revoked since would still show valid).
        #[arg(long, value_name = "MINUTES")]
        max_age: Option<u64>,
    },
    /// A credential's status (valid, suspended, revoked, expired, not_yet_valid,
    /// subject_deactivated, issuer_deactivated) and issuer.
    ///
    /// Example: acta credential status 5f1c... --prove --output json > proof.json
    Status {
        id: String,
        #[arg(long)]
        height: Option<u64>,
        #[arg(long)]
        prove: bool,
    },
}

pub fn credential(ctx: &Ctx, command: CredentialCommand) -> Result<()> {
    let status_call = |key: KeyArg, id: String, make: fn(Hash) -> CredentialCall| -> Result<()> {
        let id = hash_arg("credential id", &id)?;
        ctx.sign_and_send(&key.key, Call::Credential(make(id)))?;
        Ok(())
    };
    match command {
        CredentialCommand::Issue {
            key,
            issuer,
            subject,
            kind,
            district,
            valid_from,
            valid_until,
            out,
        } => {
            let issuer = own_or(ctx, issuer.as_deref(), &key.key)?;
            let subject = ctx.did(&subject)?;
            let district = district.map(|d| text::<32>("district", &d)).transpose()?;
            let valid_from = valid_from.unwrap_or_else(now_ms);
            let valid_until = match valid_until {
                Some(t) => t,
                None => valid_from.checked_add(365 * 86_400_000).ok_or_else(|| {
                    anyhow!("--valid-from is too far in the future; give --valid-until")
                })?,
            };
            crate::vc::issue(
                ctx,
                crate::vc::Issue {
                    key: key.key,
                    issuer,
                    subject,
                    kind,
                    district,
                    valid_from,
                    valid_until,
                    out,
                },
            )
        }
        CredentialCommand::Present {
            key,
            did,
            credentials,
            challenge,
            to,
            out,
            no_proofs,
        } => crate::vc::present(
            ctx,
            crate::vc::Present {
                holder: own_or(ctx, did.as_deref(), &key.key)?,
                key: key.key,
                credentials,
                challenge,
                domain: to,
                out,
                no_proofs,
            },
        ),
        CredentialCommand::Verify {
            file,
            at,
            genesis,
            trust,
            challenge,
            domain,
            max_age,
        } => crate::vc::verify(
            ctx,
            crate::vc::Verify {
                file,
                at,
                genesis,
                trust,
                challenge,
                domain,
                max_age,
            },
        ),
        CredentialCommand::Suspend { key, id } => {
            status_call(key, id, |id| CredentialCall::Suspend { id })
        }
        CredentialCommand::Reinstate { key, id } => {
            status_call(key, id, |id| CredentialCall::Reinstate { id })
        }
        CredentialCommand::Revoke { key, id, yes } => {
            confirmed(yes, "revoking a credential")?;
            status_call(key, id, |id| CredentialCall::Revoke { id })
        }
        CredentialCommand::Status { id, height, prove } => {
            let id = hash_arg("credential id", &id)?;
            let v = ctx
                .node()?
                .get(&read_path(&format!("/credentials/{id}"), height, prove))?;
            ctx.output.print(None, &v);
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Devices

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Register a sensor device under an operator holding a SensorOperator credential. The
    /// device's DID must first name the operator as a controller (its consent).
    ///
    /// Example: acta device register --key operator --device sensor1 --kind air.pm25
    /// --unit ug/m3 --location u2yhvd --stream pm25-1min
    Register {
        #[command(flatten)]
        key: KeyArg,
        /// The operator's DID (default: the signing key's own DID).
        #[arg(long)]
        operator: Option<String>,
        /// The device's DID (or keystore key name).
        #[arg(long)]
        device: String,
        /// What it measures, such as air.pm25.
        #[arg(long)]
        kind: String,
        /// The unit of its readings (UCUM), such as ug/m3.
        #[arg(long)]
        unit: String,
        /// Where it is: a geohash of at most 6 characters.
        #[arg(long)]
        location: String,
        /// The name of its data stream.
        #[arg(long)]
        stream: String,
    },
    /// Move a device.
    ///
    /// Example: acta device relocate --key operator --device sensor1 --location u2yhve
    Relocate {
        #[command(flatten)]
        key: KeyArg,
        #[arg(long)]
        device: String,
        #[arg(long)]
        location: String,
    },
    /// Hand a device to another operator, who holds a SensorOperator credential and whom
    /// the device's DID names as a controller (`acta did update --did <device> --controller
    /// ...`). The transfer also takes you out of the device DID's controllers.
    ///
    /// Example: acta device transfer --key operator --device sensor1 --to operator2
    Transfer {
        #[command(flatten)]
        key: KeyArg,
        #[arg(long)]
        device: String,
        /// The new operator's DID (or keystore key name).
        #[arg(long)]
        to: String,
    },
    /// Retire a device for good: it can attest no more batches.
    ///
    /// Example: acta device deactivate --key operator --device sensor1 --yes
    Deactivate {
        #[command(flatten)]
        key: KeyArg,
        #[arg(long)]
        device: String,
        /// Confirm: this cannot be undone.
        #[arg(long)]
        yes: bool,
    },
    /// A device's record: operator, kind, location, next batch sequence.
    ///
    /// Example: acta device show sensor1
    Show {
        device: String,
        #[arg(long)]
        height: Option<u64>,
        #[arg(long)]
        prove: bool,
    },
}

pub fn device(ctx: &Ctx, command: DeviceCommand) -> Result<()> {
    let send = |key: &KeyArg, call: SensorCall| -> Result<()> {
        ctx.sign_and_send(&key.key, Call::Sensor(call))?;
        Ok(())
    };
    match command {
        DeviceCommand::Register {
            key,
            operator,
            device,
            kind,
            unit,
            location,
            stream,
        } => {
            let call = SensorCall::Register {
                operator: own_or(ctx, operator.as_deref(), &key.key)?,
                device: ctx.did(&device)?,
                kind: text("--kind", &kind)?,
                unit: text("--unit", &unit)?,
                location: text("--location", &location)?,
                stream: text("--stream", &stream)?,
            };
            send(&key, call)
        }
        DeviceCommand::Relocate {
            key,
            device,
            location,
        } => {
            let call = SensorCall::Relocate {
                device: ctx.did(&device)?,
                location: text("--location", &location)?,
            };
            send(&key, call)
        }
        DeviceCommand::Transfer { key, device, to } => {
            let call = SensorCall::Transfer {
                device: ctx.did(&device)?,
                operator: ctx.did(&to)?,
            };
            send(&key, call)
        }
        DeviceCommand::Deactivate { key, device, yes } => {
            confirmed(yes, "deactivating a device")?;
            let call = SensorCall::Deactivate {
                device: ctx.did(&device)?,
            };
            send(&key, call)
        }
        DeviceCommand::Show {
            device,
            height,
            prove,
        } => {
            let did = ctx.did(&device)?;
            let v = ctx
                .node()?
                .get(&read_path(&format!("/devices/{did}"), height, prove))?;
            ctx.output.print(None, &v);
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// The council

#[derive(Debug, Subcommand)]
pub enum CouncilCommand {
    /// Propose an action as a council member; your approval is counted.
    ///
    /// Example: acta council propose --key member1 register-issuer agency --kinds
    /// resident,sensor-operator,budget-office
    Propose {
        #[command(flatten)]
        key: KeyArg,
        #[command(subcommand)]
        action: ActionCommand,
    },
    /// Approve a pending proposal; the approval that reaches the threshold carries it out.
    ///
    /// The approval names the hash of the proposal's action, so it counts only for that
    /// action. Pass --action-hash (as `council propose` printed it) to approve only the exact
    /// action you were told of; or read the action with `council list` and pass --yes to
    /// approve the one the proposal holds. The action is always hashed here, from the
    /// node's answer, and shown before signing.
    ///
    /// Example: acta council approve --key member2 0 --action-hash 4be1...
    Approve {
        #[command(flatten)]
        key: KeyArg,
        proposal: u64,
        /// The SHA-256 of the action you mean to approve (64 hex digits).
        #[arg(long, value_name = "HEX", required_unless_present = "yes")]
        action_hash: Option<String>,
        /// Approve whatever action the proposal holds (shown before signing).
        #[arg(long, conflicts_with = "action_hash")]
        yes: bool,
    },
    /// The council and its proposals, with their approvals.
    ///
    /// Example: acta council list
    List {
        /// The first proposal listed (default 0).
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ActionCommand {
    /// Let a DID issue credentials of the given kinds.
    ///
    /// Example: acta council propose --key member1 register-issuer agency --kinds resident
    RegisterIssuer {
        did: String,
        /// Comma-separated: resident, sensor-operator, auditor, budget-office.
        #[arg(long, value_delimiter = ',', value_parser = parse_kind, required = true)]
        kinds: Vec<CredentialKind>,
    },
    /// Stop a DID from issuing. Final: --yes is required.
    ///
    /// Example: acta council propose --key member1 revoke-issuer did:acta:PbPc6zBF... --yes
    RevokeIssuer {
        did: String,
        /// Confirm: once carried out it cannot be undone.
        #[arg(long)]
        yes: bool,
    },
    /// Set a chain parameter (see `acta chain params` for the names and ranges).
    ///
    /// Example: acta council propose --key member1 set-parameter slash_fraction_bps 100
    SetParameter { name: String, value: u64 },
    /// Add a validator with a voting power: its consensus key, peer id and address, from
    /// the agency's `actad show-node` (a file, or `-` for standard input). The validators
    /// admit and dial its node as soon as the proposal executes; its power counts two
    /// heights later.
    ///
    /// Example: acta council propose --key member1 add-validator --node water.json --address /dns4/acta.water.city/tcp/26656 10
    AddValidator {
        /// The JSON that `actad show-node` printed on the new validator's machine.
        #[arg(long, value_name = "FILE")]
        node: PathBuf,
        /// The address the other validators dial, a multiaddress without /p2p/ (default:
        /// the node's p2p_listen, which must then not be 0.0.0.0).
        #[arg(long)]
        address: Option<String>,
        power: u64,
    },
    /// Remove a validator.
    ///
    /// Example: acta council propose --key member1 remove-validator 3f9a...
    RemoveValidator { key: String },
    /// Change a validator's voting power.
    ///
    /// Example: acta council propose --key member1 set-power 3f9a... 20
    SetPower { key: String, power: u64 },
    /// Cancel an open budget round, whoever opened it: it takes no more proposals or
    /// ballots, is never tallied, and frees its place among the 64 rounds open at once.
    /// Final: --yes is required.
    ///
    /// Example: acta council propose --key member1 cancel-round 3 --yes
    CancelRound {
        round: u64,
        /// Confirm: once carried out it cannot be undone.
        #[arg(long)]
        yes: bool,
    },
    /// Revoke a credential, whoever issued it: for an issuer that is gone or was
    /// compromised. Final, as an issuer's revocation is: --yes is required.
    ///
    /// Example: acta council propose --key member1 revoke-credential 5f0c... --yes
    RevokeCredential {
        id: String,
        /// Confirm: once carried out it cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

pub fn council(ctx: &Ctx, command: CouncilCommand) -> Result<()> {
    match command {
        CouncilCommand::Propose { key, action } => {
            let action = match action {
                ActionCommand::RegisterIssuer { did, kinds } => GovAction::RegisterIssuer {
                    did: ctx.did(&did)?,
                    kinds,
                },
                ActionCommand::RevokeIssuer { did, yes } => {
                    final_proposal(yes, "revoking an issuer")?;
                    GovAction::RevokeIssuer {
                        did: ctx.did(&did)?,
                    }
                }
                ActionCommand::SetParameter { name, value } => GovAction::SetParameter {
                    name: text("parameter", &name)?,
                    value,
                },
                ActionCommand::AddValidator {
                    node,
                    address,
                    power,
                } => {
                    let text = if node.as_os_str() == "-" {
                        std::io::read_to_string(std::io::stdin())
                            .context("reading standard input")?
                    } else {
                        std::fs::read_to_string(&node)
                            .with_context(|| format!("reading {}", node.display()))?
                    };
                    let shown: Value = serde_json::from_str(&text).with_context(|| {
                        format!("{}: not the JSON of actad show-node", node.display())
                    })?;
                    let shown = acta_contracts::answer::shown_validator(&shown, address)
                        .map_err(|e| anyhow!("{}: {e}", node.display()))?;
                    GovAction::AddValidator {
                        key: shown.key,
                        power,
                        node: shown.node,
                    }
                }
                ActionCommand::RemoveValidator { key } => GovAction::RemoveValidator {
                    key: key_arg("validator key", ctx, &key)?,
                },
                ActionCommand::SetPower { key, power } => GovAction::SetPower {
                    key: key_arg("validator key", ctx, &key)?,
                    power,
                },
                ActionCommand::CancelRound { round, yes } => {
                    final_proposal(yes, "cancelling a budget round")?;
                    GovAction::CancelBudgetRound { round }
                }
                ActionCommand::RevokeCredential { id, yes } => {
                    final_proposal(yes, "revoking a credential")?;
                    GovAction::RevokeCredential {
                        id: hash_arg("credential id", &id)?,
                    }
                }
            };
            if let GovAction::SetParameter { name, value } = &action {
                acta_contracts::params::check(name.as_str(), *value)?;
            }
            let action_hash = action.hash();
            let answer = ctx.sign_and_send(
                &key.key,
                Call::Governance(GovernanceCall::Propose { action }),
            )?;
            if let Some(id) = event_attribute(&answer, "gov_proposed", "id") {
                eprintln!(
                    "proposal {id}, action hash {action_hash}; members approve it with: \
                     acta council approve {id} --action-hash {action_hash}"
                );
            }
            Ok(())
        }
        CouncilCommand::Approve {
            key,
            proposal,
            action_hash,
            yes: _,
        } => {
            let v = ctx.node()?.get(&format!("/council/proposals/{proposal}"))?;
            let shown = &v["proposal"]["action"];
            let action: GovAction = serde_json::from_value(shown.clone()).with_context(|| {
                format!("the node's proposal {proposal} holds no readable action")
            })?;
            let hash = action.hash();
            if let Some(expected) = action_hash {
                let expected = hash_arg("action hash", &expected)?;
                if expected != hash {
                    return Err(anyhow!(
                        "proposal {proposal} holds an action hashing to {hash}, not {expected}: \
                         not approved"
                    ));
                }
            }
            eprintln!("approving proposal {proposal}: {shown} (action hash {hash})");
            ctx.sign_and_send(
                &key.key,
                Call::Governance(GovernanceCall::Approve {
                    proposal,
                    action_hash: hash,
                }),
            )?;
            Ok(())
        }
        CouncilCommand::List { from, limit } => {
            let node = ctx.node()?;
            let council = node.get("/council")?;
            let proposals = node.get(&format!("/council/proposals?from={from}&limit={limit}"))?;
            let v = json!({
                "height": council["height"],
                "council": council["council"],
                "proposals": proposals["proposals"],
            });
            ctx.output.print(None, &v);
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Participatory budgets

/// A height given as a number, or `+N`: N blocks after the latest.
/// A phase's start or end: a time as [`Timestamp::parse`] reads it (`2027-03-01T09:00Z`),
/// or `+N` with a unit `s`, `m`, `h` or `d` after `now` (`+14d`).
fn time_arg(flag: &str, s: &str, now: Timestamp) -> Result<Timestamp> {
    if let Some(rel) = s.strip_prefix('+') {
        let bad = || {
            anyhow!("{flag} {s:?}: a time after now is +N with a unit s, m, h or d (+90s, +14d)")
        };
        let split = rel.len().saturating_sub(1);
        let (n, unit) = rel.split_at_checked(split).ok_or_else(bad)?;
        let n: u64 = n.parse().map_err(|_| bad())?;
        let unit_ms: u64 = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
        return Ok(now.plus_ms(ms));
    }
    Timestamp::parse(s).map_err(|e| anyhow!("{flag}: {e}"))
}

#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Open a round as a budget office (a holder of a BudgetOffice credential). Phases are
    /// times checked against block time: 2027-03-01T09:00Z, 2027-03-01T10:00+01:00,
    /// 2027-03-01 (midnight UTC), or +N with a unit s, m, h or d after now.
    ///
    /// Example: acta budget open --key office --title "Green budget" --district old-town
    /// --budget 100000 --currency PLN --proposals-from 2027-03-01T09:00Z
    /// --voting-from 2027-03-15T09:00Z --voting-until 2027-03-29T18:00Z
    /// --ballot approval:1:3 --rule mes-add1
    Open {
        #[command(flatten)]
        key: KeyArg,
        /// The office's DID (default: the signing key's own DID).
        #[arg(long)]
        office: Option<String>,
        #[arg(long)]
        title: String,
        /// The district whose residents propose and vote.
        #[arg(long)]
        district: String,
        /// In whole units of --currency.
        #[arg(long)]
        budget: u64,
        /// The budget's ISO 4217 currency code (PLN, EUR).
        #[arg(long)]
        currency: String,
        /// When residents may start proposing projects.
        #[arg(long)]
        proposals_from: String,
        /// When proposals end and voting starts.
        #[arg(long)]
        voting_from: String,
        /// When voting ends: the first block at or after it closes the round, and the
        /// tally is stored `tally_delay` blocks later.
        #[arg(long, visible_alias = "voting-until")]
        closes_at: String,
        /// approval:MIN:MAX or knapsack.
        #[arg(long, default_value = "approval:1:3", value_parser = parse_ballot)]
        ballot: BallotFormat,
        /// greedy, mes, mes-add1 or mes-add1-exhaustive.
        #[arg(long, default_value = "mes-add1", value_parser = parse_rule)]
        rule: Rule,
        #[arg(long, default_value = "votes-then-cost", value_parser = parse_tie_break)]
        tie_break: TieBreak,
        /// Secret ballots: residents vote from one-time ballot keys with tokens of
        /// --registrar, and no ballot names its voter (docs/adr/0018-secret-ballots.md).
        #[arg(long, requires_all = ["registrar", "registrar_key"])]
        secret: bool,
        /// The registrar's DID or keystore key name (a secret round's token issuer).
        #[arg(long, requires = "secret")]
        registrar: Option<String>,
        /// The registrar's RSA public key: a keystore registrar key name (`budget registrar
        /// new`) or a DER file (`budget registrar show NAME --out FILE`).
        #[arg(long, requires = "secret")]
        registrar_key: Option<String>,
    },
    /// A secret round's registrar key: make one, show its public part.
    ///
    /// Example: acta budget registrar new round-7
    Registrar {
        #[command(subcommand)]
        command: crate::ballot::RegistrarCommand,
    },
    /// A secret round's ballot tokens: a resident asks, the registrar answers.
    ///
    /// Example: acta budget token request 0 --key alice
    Token {
        #[command(subcommand)]
        command: crate::ballot::TokenCommand,
    },
    /// Propose a project in a round (as a resident of its district, while proposals are
    /// open).
    ///
    /// Example: acta budget propose 0 --key alice --title "Bike racks" --cost 8000
    Propose {
        round: u64,
        #[command(flatten)]
        key: KeyArg,
        /// The proposer's DID (default: the signing key's own DID).
        #[arg(long)]
        proposer: Option<String>,
        #[arg(long)]
        title: String,
        #[arg(long)]
        cost: u64,
    },
    /// Cast (or replace) your ballot: the projects you approve, by number. In a secret
    /// round, the ballot is signed by the one-time ballot key `budget token request` kept
    /// for --key, with the registrar's token, and names no resident.
    ///
    /// Example: acta budget vote 0 --key alice --projects 0,3
    Vote {
        round: u64,
        #[command(flatten)]
        key: KeyArg,
        /// The voter's DID (default: the signing key's own DID); public rounds only.
        #[arg(long)]
        voter: Option<String>,
        #[arg(long, value_delimiter = ',', required = true)]
        projects: Vec<u32>,
    },
    /// The budget rounds: district, phase, heights, budget and ballots so far.
    ///
    /// Example: acta budget list
    List {
        /// The first round to list.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// The most rounds to list (at most 100).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100))]
        limit: u64,
    },
    /// A round, its phase and its proposals.
    ///
    /// Example: acta budget show 0
    Show { round: u64 },
    /// A closed round's stored result.
    ///
    /// Example: acta budget results 0
    Results {
        round: u64,
        #[arg(long)]
        prove: bool,
    },
    /// Your receipt for a tallied round: your ballot, proven to be one of those the round
    /// tallied (its inclusion under the round's ballots root), checkable offline by anyone
    /// with `acta audit verify FILE --genesis genesis.json`.
    ///
    /// Example: acta budget receipt 0 --voter alice --out receipt.json
    Receipt {
        round: u64,
        /// The voter's DID or keystore key name.
        #[arg(long)]
        voter: String,
        /// Write the receipt here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Export a round's ballots as a Pabulib .pb file, to tally it offline.
    ///
    /// Example: acta budget export 0 --out round0.pb
    Export {
        round: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Tally a Pabulib .pb file exactly as the ledger tallies a round at close; with
    /// --round, also check the outcome against that round's stored result.
    ///
    /// Example: acta budget tally round0.pb --rule mes-add1 --round 0
    Tally {
        file: PathBuf,
        /// greedy, mes, mes-add1 or mes-add1-exhaustive (see docs/tally-rules.md).
        #[arg(long, value_parser = parse_rule)]
        rule: Rule,
        #[arg(long, default_value = "votes-then-cost", value_parser = parse_tie_break)]
        tie_break: TieBreak,
        /// Compare with this round's result on the node.
        #[arg(long)]
        round: Option<u64>,
    },
}

pub fn budget(ctx: &Ctx, command: BudgetCommand) -> Result<()> {
    match command {
        BudgetCommand::Open {
            key,
            office,
            title,
            district,
            budget,
            currency,
            proposals_from,
            voting_from,
            closes_at,
            ballot,
            rule,
            tie_break,
            secret,
            registrar,
            registrar_key,
        } => {
            let office = own_or(ctx, office.as_deref(), &key.key)?;
            let secrecy = match (secret, registrar, registrar_key) {
                (true, Some(registrar), Some(registrar_key)) => BallotSecrecy::Secret {
                    registrar: ctx.did(&registrar)?,
                    key: Bytes::new(crate::ballot::registrar_public(ctx, &registrar_key)?)?,
                },
                _ => BallotSecrecy::Public,
            };
            // Unlocked first: relative times count from when it is signed.
            let signer = ctx.unlock(&key.key)?;
            let node = ctx.node()?;
            let now = Timestamp::now();
            let spec = RoundSpec {
                title: text("--title", &title)?,
                district: text("--district", &district)?,
                budget,
                currency: text("--currency", &currency.to_ascii_uppercase())?,
                proposals_from: time_arg("--proposals-from", &proposals_from, now)?,
                voting_from: time_arg("--voting-from", &voting_from, now)?,
                closes_at: time_arg("--closes-at", &closes_at, now)?,
                ballot,
                rule: RuleProfile { rule, tie_break },
                secrecy,
            };
            let answer = ctx.submit(
                &node,
                &signer,
                Call::Budget(BudgetCall::OpenRound { office, spec }),
            )?;
            ctx.print_answer(&answer);
            if let Some(id) = event_attribute(&answer, "budget_round_opened", "round") {
                eprintln!("budget round {id}; follow it with: acta budget show {id}");
            }
            Ok(())
        }
        BudgetCommand::Propose {
            round,
            key,
            proposer,
            title,
            cost,
        } => {
            let call = BudgetCall::Propose {
                round,
                proposer: own_or(ctx, proposer.as_deref(), &key.key)?,
                title: text("--title", &title)?,
                cost,
            };
            let answer = ctx.sign_and_send(&key.key, Call::Budget(call))?;
            if let Some(p) = event_attribute(&answer, "budget_project_proposed", "project") {
                eprintln!("project {p} of round {round}; residents vote for it by that number");
            }
            Ok(())
        }
        BudgetCommand::Registrar { command } => crate::ballot::registrar(ctx, command),
        BudgetCommand::Token { command } => crate::ballot::token(ctx, command),
        BudgetCommand::Vote {
            round,
            key,
            voter,
            projects,
        } => {
            let node = ctx.node()?;
            let r = crate::ballot::round_record(&node, round)?;
            if r.spec.secrecy != BallotSecrecy::Public {
                if voter.is_some() {
                    return Err(anyhow!(
                        "round {round} has secret ballots: a ballot names no voter, so --voter does not apply"
                    ));
                }
                return crate::ballot::vote(ctx, &node, &r, &key.key, projects);
            }
            let call = BudgetCall::Vote {
                round,
                voter: own_or(ctx, voter.as_deref(), &key.key)?,
                projects,
            };
            ctx.sign_and_send(&key.key, Call::Budget(call))?;
            Ok(())
        }
        BudgetCommand::List { from, limit } => {
            let v = ctx
                .node()?
                .get(&format!("/budget/rounds?from={from}&limit={limit}"))?;
            match ctx.output {
                Output::Json => ctx.output.print(None, &v),
                Output::Text => {
                    let rows: Vec<Value> = v["rounds"]
                        .as_array()
                        .map(|rounds| rounds.iter().map(round_row).collect())
                        .unwrap_or_default();
                    crate::output::print_columns(
                        &format!("budget rounds at height {}", v["height"]),
                        &[
                            "id",
                            "title",
                            "district",
                            "phase",
                            "budget",
                            "ballot",
                            "ballots",
                            "proposals_from",
                            "voting_from",
                            "closes_at",
                        ],
                        &rows,
                    );
                }
            }
            Ok(())
        }
        BudgetCommand::Show { round } => {
            let node = ctx.node()?;
            let mut v = node.get(&format!("/budget/rounds/{round}"))?;
            // The projects at the same height as the round.
            let height = v["height"].as_u64().unwrap_or(0);
            let p = node.get(&format!("/budget/rounds/{round}/proposals?height={height}"))?;
            if let Some(map) = v.as_object_mut() {
                map.insert("projects".into(), p["projects"].clone());
            }
            match ctx.output {
                Output::Json => ctx.output.print(None, &v),
                Output::Text => {
                    let (title, fields, projects) = readable_round(&v);
                    ctx.output.print(Some(&title), &fields);
                    crate::output::print_columns(
                        "\nprojects:",
                        &["project", "title", "cost", "proposer"],
                        &projects,
                    );
                }
            }
            Ok(())
        }
        BudgetCommand::Results { round, prove } => {
            let node = ctx.node()?;
            let v = node.get(&read_path(
                &format!("/budget/rounds/{round}/result"),
                None,
                prove,
            ))?;
            match ctx.output {
                Output::Json => ctx.output.print(None, &v),
                Output::Text => {
                    let r = node.get(&format!("/budget/rounds/{round}"))?;
                    let (title, mut readable) = readable_result(&r["round"], &v);
                    let selected = readable
                        .as_object_mut()
                        .and_then(|m| m.remove("selected"))
                        .unwrap_or_default();
                    ctx.output.print(Some(&title), &readable);
                    crate::output::print_columns(
                        "\nselected, in the order the rule chose them:",
                        &["project", "title", "cost", "share of budget", "approvals"],
                        selected.as_array().map_or(&[], Vec::as_slice),
                    );
                }
            }
            Ok(())
        }
        BudgetCommand::Receipt { round, voter, out } => {
            let did = ctx.did(&voter)?;
            let v = ctx
                .node()?
                .get(&format!("/budget/rounds/{round}/ballots/{did}?prove=true"))?;
            match out {
                Some(path) => {
                    std::fs::write(&path, serde_json::to_vec_pretty(&v)?)
                        .with_context(|| format!("writing {}", path.display()))?;
                    let title = format!(
                        "ballot {} of round {round} ({did}): receipt in {}; check it with acta audit verify {} --genesis genesis.json",
                        v["ballot"]["index"],
                        path.display(),
                        path.display()
                    );
                    ctx.output.print(
                        Some(&title),
                        &json!({ "round": round, "voter": did, "file": path.display().to_string(), "ballot": v["ballot"] }),
                    );
                }
                None => ctx.output.print(None, &v),
            }
            Ok(())
        }
        BudgetCommand::Export { round, out } => {
            let (bytes, election) = export_ballots(ctx, &ctx.node()?, round)?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            let v = json!({
                "round": round,
                "file": out.display().to_string(),
                "bytes": bytes.len(),
                "voters": election.ballots.len(),
                "projects": election.projects.len(),
            });
            ctx.output
                .print(Some(&format!("wrote {}", out.display())), &v);
            Ok(())
        }
        BudgetCommand::Tally {
            file,
            rule,
            tie_break,
            round,
        } => {
            let bytes = crate::read_limited_bytes(&file)?;
            let profile = RuleProfile { rule, tie_break };
            let mut v =
                tally_value(&bytes, profile).map_err(|e| anyhow!("{}: {e}", file.display()))?;
            if let Some(round) = round {
                let stored = stored_result(&ctx.node()?, round)?;
                compare_with_stored(&v, &stored, profile)?;
                v["matches_round"] = json!(round);
            }
            print_tally(ctx, &v);
            Ok(())
        }
    }
}

/// A round's ballots as the node exports them (a Pabulib file), checked to parse.
pub fn export_ballots(ctx: &Ctx, node: &Node, round: u64) -> Result<(Vec<u8>, tally::Election)> {
    let bar = ctx.spinner(format!("exporting the ballots of round {round}"));
    let bytes = node.get_bytes(&format!("/budget/rounds/{round}/ballots.pb"));
    bar.finish_and_clear();
    let bytes = bytes?;
    let election = pb::parse(&bytes)
        .map_err(|e| anyhow!("the node's export of round {round} does not parse: {e}"))?;
    Ok((bytes, election))
}

/// A closed round's stored result (the `result` of `/budget/rounds/{id}/result`).
pub fn stored_result(node: &Node, round: u64) -> Result<Value> {
    let v = node.get(&format!("/budget/rounds/{round}/result"))?;
    match v.get("result") {
        Some(r) if r.is_object() => Ok(r.clone()),
        _ => Err(anyhow!("the node has no result for round {round}")),
    }
}

/// A tally of a `.pb` file as JSON: the selected project ids (in the file's numbering,
/// which for exports is the round's project numbers) and the rule's details.
pub fn tally_value(bytes: &[u8], profile: RuleProfile) -> Result<Value> {
    let election = pb::parse(bytes).map_err(|e| anyhow!("{e}"))?;
    let started = std::time::Instant::now();
    let result = tally::tally(&election, profile).map_err(|e| anyhow!("{e}"))?;
    let ids = |list: &[u32]| -> Vec<String> {
        list.iter()
            .map(|&i| election.projects[i as usize].id.clone())
            .collect()
    };
    Ok(json!({
        "rule": profile.rule.name(),
        "tie_break": profile.tie_break.name(),
        "budget": election.budget,
        "voters": election.ballots.len(),
        "projects": election.projects.len(),
        "selected": result.selected_ids_sorted(&election),
        "selection_order": ids(&result.selected),
        "effective_votes": result.effective_votes,
        "total_cost": result.total_cost,
        "endowment": result.endowment.map(|(n, d)| format!("{n}/{d}")),
        "add1_steps": result.add1_steps,
        "mes_runs": result.mes_runs,
        "approvals": election.projects.iter().zip(&result.approvals)
            .map(|(p, a)| (p.id.clone(), *a)).collect::<std::collections::BTreeMap<_, _>>(),
        "tally_ms": started.elapsed().as_secs_f64() * 1000.0,
    }))
}

/// Checks a replayed tally against a round's stored result: the same rule, the same
/// projects in the same order, the same total.
pub fn compare_with_stored(replayed: &Value, stored: &Value, profile: RuleProfile) -> Result<()> {
    let stored_profile: RuleProfile = serde_json::from_value(stored["rule"].clone())
        .map_err(|e| anyhow!("the node's stored result has no rule: {e}"))?;
    if stored_profile != profile {
        return Err(anyhow!(
            "the round was tallied with {} (ties: {}), not {} (ties: {})",
            stored_profile.rule.name(),
            stored_profile.tie_break.name(),
            profile.rule.name(),
            profile.tie_break.name()
        ));
    }
    let stored_order: Vec<String> = stored["selected"]
        .as_array()
        .ok_or_else(|| anyhow!("the node's stored result has no selection"))?
        .iter()
        .map(|x| x.to_string())
        .collect();
    let replayed_order: Vec<String> = replayed["selection_order"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if stored_order != replayed_order || stored["total_cost"] != replayed["total_cost"] {
        return Err(anyhow!(
            "the replayed tally selects [{}] costing {}, but the ledger stored [{}] costing {}",
            replayed_order.join(", "),
            replayed["total_cost"],
            stored_order.join(", "),
            stored["total_cost"]
        ));
    }
    Ok(())
}

fn print_tally(ctx: &Ctx, v: &Value) {
    if ctx.output == crate::output::Output::Json {
        ctx.output.print(None, v);
        return;
    }
    let list = |k: &str| -> String {
        v[k].as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    crate::outln!(
        "rule {} (ties: {}), budget {}, {} voters, {} projects",
        v["rule"].as_str().unwrap_or("?"),
        v["tie_break"].as_str().unwrap_or("?"),
        v["budget"],
        v["voters"],
        v["projects"]
    );
    let selected = v["selected"].as_array().map_or(0, Vec::len);
    crate::outln!(
        "selected {selected} projects costing {}: {}",
        v["total_cost"],
        list("selected")
    );
    crate::outln!("selection order: {}", list("selection_order"));
    if let Some(e) = v["endowment"].as_str() {
        crate::outln!("final endowment per voter: {e}");
    }
    if let Some(k) = v["add1_steps"].as_u64() {
        crate::outln!(
            "add1 steps: {k} (in {} MES runs: steps whose outcome cannot differ are skipped)",
            v["mes_runs"]
        );
    }
    if let Some(r) = v["matches_round"].as_u64() {
        crate::outln!("matches the result the ledger stored for round {r}");
    }
    crate::outln!("tallied in {:.1} ms", v["tally_ms"].as_f64().unwrap_or(0.0));
}

/// Refuses to propose an irreversible council action without `--yes`: a proposal counts its
/// proposer's approval, so with a threshold of one it is carried out at once.
fn final_proposal(yes: bool, what: &str) -> Result<()> {
    if yes {
        Ok(())
    } else {
        Err(anyhow!(
            "{what} cannot be undone: add --yes to propose it (your approval is counted, so \
             with a threshold of one it is carried out at once)"
        ))
    }
}

/// Refuses an irreversible action the user did not confirm with `--yes`: nothing is sent.
fn confirmed(yes: bool, what: &str) -> Result<()> {
    if yes {
        Ok(())
    } else {
        Err(anyhow!("{what} cannot be undone: add --yes to do it"))
    }
}

#[cfg(test)]
mod readable_tests {
    use super::*;

    #[test]
    fn amounts_and_shares_read_as_people_write_them() {
        assert_eq!(amount(0), "0");
        assert_eq!(amount(999), "999");
        assert_eq!(amount(12_000), "12,000");
        assert_eq!(amount(194_227), "194,227");
        assert_eq!(amount(1_000_000), "1,000,000");
        assert_eq!(decimal(18_497, 3), "6,165.67");
        assert_eq!(decimal(63, 2), "31.50");
        assert_eq!(decimal(1, 0), "-");
        assert_eq!(decimal(1999, 1000), "2.00");
        assert_eq!(decimal(u128::MAX, u128::MAX - 1), "1.00");
        assert_eq!(decimal(u128::MAX / 100, u128::MAX - 3), "0.01");
        assert_eq!(percent(315, 1000), "31.5%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(1, 1000), "0.1%");
        assert_eq!(percent(5, 0), "-");
        assert_eq!(money_in("PLN", 12_000), "PLN 12,000");
    }

    #[test]
    fn time_left_reads_in_its_two_largest_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(40_999), "40s");
        assert_eq!(span(61_000), "1m 1s");
        assert_eq!(span(3_700_000), "1h 1m");
        assert_eq!(span((13 * 24 + 4) * 3_600_000 + 59_000), "13d 4h");
    }

    #[test]
    fn phases_take_times_or_spans_after_now() {
        let now = Timestamp(1_800_000_000_000);
        assert_eq!(
            time_arg("--x", "+14d", now).unwrap(),
            Timestamp(now.0 + 14 * 86_400_000)
        );
        assert_eq!(
            time_arg("--x", "+90s", now).unwrap(),
            Timestamp(now.0 + 90_000)
        );
        assert_eq!(
            time_arg("--x", "2027-03-01T09:00Z", now).unwrap(),
            Timestamp(1_803_891_600_000)
        );
        for bad in [
            "+14",
            "+d",
            "+14w",
            "+-1s",
            "14d",
            "tomorrow",
            "+99999999999999999d",
        ] {
            let e = time_arg("--voting-from", bad, now).unwrap_err().to_string();
            assert!(e.contains("--voting-from"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_result_reads_with_titles_amounts_and_decimals_and_keeps_nothing_raw() {
        let round = json!({ "spec": { "title": "Green budget", "budget": 100_000 } });
        let answer = json!({
            "result": {
                "round": 0, "rule": { "rule": "mes-add1", "tie_break": "votes-then-cost" },
                "selected": [1], "total_cost": 31_500, "approvals": [3, 7], "voters": 9,
                "endowment": [18_497, 3], "add1_steps": 12, "height": 40,
            },
            "selected": [{ "index": 1, "title": "Trees", "cost": 31_500 }],
        });
        let (title, v) = readable_result(&round, &answer);
        assert_eq!(
            title,
            "round 0 (Green budget): 1 project selected, 31,500 of 100,000 spent (31.5%); 9 voters"
        );
        assert_eq!(v["budget per voter at the end"], "6,165.67");
        assert_eq!(v["selected"][0]["share of budget"], "31.5%");
        assert_eq!(v["selected"][0]["approvals"], 7);
        assert!(!v.to_string().contains("18497"), "{v}");
    }
}
