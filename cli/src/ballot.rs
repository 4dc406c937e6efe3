//! Secret budget rounds from the wallet (docs/adr/0018-secret-ballots.md): the registrar's
//! RSA key, a resident's token request and secret ballot, the registrar's answers.
//!
//! What links a resident to a secret ballot is the one-time ballot key and the blinding
//! secret of the token request; the wallet keeps both encrypted in the keystore
//! (`ballots/rROUND-HASH.json`) and sends neither. The node sees the blinded request under
//! the resident's DID and, later, a ballot signed by a key it has never seen, with a token
//! it cannot link to any request.

use std::path::{Path, PathBuf};

use acta_contracts::audit;

use acta_ledger::{
    records::{BallotSecrecy, BudgetRound},
    token::{Registrar, RegistrarKey},
    tx::BudgetCall,
    types::Bytes,
    Call, ChainId, Did, Hash, Keypair,
};
use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::{
    client::{ApiError, Node},
    keystore::{ballot_name, BallotSecret, KeystoreError, SecretKind},
    records::KeyArg,
    wallet::{Ctx, Refused},
};

/// The size of a new registrar key.
const REGISTRAR_BITS_DEFAULT: u64 = 3072;

#[derive(Debug, Subcommand)]
pub enum RegistrarCommand {
    /// Make a registrar's RSA key for one secret round, kept encrypted in the keystore
    /// (`registrars/NAME.json`). A round names its public key; each round needs a new one.
    ///
    /// Example: acta budget registrar new round-7
    New {
        /// The name to keep it under.
        name: String,
        /// Key size in bits (2048 to 4096).
        #[arg(long, default_value_t = REGISTRAR_BITS_DEFAULT, value_parser = clap::value_parser!(u64).range(2048..=4096))]
        bits: u64,
    },
    /// A registrar key's public part (what `budget open --registrar-key` puts in a round),
    /// optionally written to a file as DER for a budget office that opens the round.
    ///
    /// Example: acta budget registrar show round-7 --out round-7.der
    Show {
        name: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Ask for your ballot token of a secret round: makes a one-time ballot key, blinds its
    /// token message and sends the blinded message signed by your DID. The ballot key and
    /// the blinding secret stay in your keystore; `budget vote` uses them once the
    /// registrar has answered.
    ///
    /// Example: acta budget token request 0 --key alice
    Request {
        round: u64,
        #[command(flatten)]
        key: KeyArg,
        /// The resident's DID (default: the signing key's own DID).
        #[arg(long)]
        voter: Option<String>,
    },
    /// Answer a secret round's token requests as its registrar: blind-sign each request the
    /// ledger recorded and not yet answered (the ledger checked each requester's Resident
    /// credential and district, and took one request per DID). The requests are read with
    /// proofs and checked against the genesis (or a trust pin) first: a node cannot slip in
    /// a blinded message of its own for the registrar to sign.
    ///
    /// Example: acta budget token issue 0 --key registrar --registrar-key round-7 --genesis genesis.json
    Issue {
        round: u64,
        /// The registrar DID's signing key.
        #[command(flatten)]
        key: KeyArg,
        /// The keystore name of the round's registrar RSA key (`budget registrar new`).
        #[arg(long)]
        registrar_key: String,
        /// The chain's genesis file, which the proven requests are checked against.
        #[arg(long)]
        genesis: PathBuf,
        /// A trust pin (`acta audit pin`): check the requests from its validator set
        /// instead of the genesis set (ADR 0028).
        #[arg(long, value_name = "PIN")]
        trust: Option<PathBuf>,
    },
    /// Read the registrar's answer to your request, unblind the token and keep it in the
    /// wallet, so that `budget vote` asks the node nothing about you: fetch through one
    /// node, vote later through another (`--node`).
    ///
    /// Example: acta budget token fetch 0 --key alice
    Fetch {
        round: u64,
        #[command(flatten)]
        key: KeyArg,
    },
    /// A resident's token request and whether the registrar has answered it.
    ///
    /// Example: acta budget token show 0 --voter alice
    Show {
        round: u64,
        /// The resident's DID or keystore key name.
        #[arg(long)]
        voter: String,
    },
}

/// A round as the node shows it.
pub fn round_record(node: &Node, round: u64) -> Result<BudgetRound> {
    let v = node.get(&format!("/budget/rounds/{round}"))?;
    serde_json::from_value(v["round"].clone())
        .map_err(|e| anyhow!("the node's round {round} does not read as a round: {e}"))
}

/// A secret round's registrar, its key and the key's DER; a public round is refused.
fn registrar_of(r: &BudgetRound) -> Result<(Did, RegistrarKey, &[u8])> {
    match &r.spec.secrecy {
        BallotSecrecy::Secret { registrar, key } => Ok((
            *registrar,
            RegistrarKey::from_der(key.as_slice())
                .map_err(|e| anyhow!("round {}'s registrar key: {e}", r.id))?,
            key.as_slice(),
        )),
        BallotSecrecy::Public => Err(anyhow!(
            "round {} has public ballots: residents vote as themselves, with no token",
            r.id
        )),
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(|a| a.status == 404)
}

/// A resident's token request on the ledger, if any.
fn request_of(node: &Node, round: u64, resident: &Did) -> Result<Option<Value>> {
    match node.get(&format!("/budget/rounds/{round}/tokens/{resident}")) {
        Ok(v) => Ok(Some(v["request"].clone())),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn hex_field(v: &Value, field: &str) -> Result<Vec<u8>> {
    v[field]
        .as_str()
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(|| anyhow!("the node's token request has no {field}"))
}

/// The public key a round should name: a keystore registrar key, or a DER file.
pub fn registrar_public(ctx: &Ctx, name_or_file: &str) -> Result<Vec<u8>> {
    let der = if Path::new(name_or_file).is_file() {
        crate::read_limited_bytes(Path::new(name_or_file))?
    } else {
        ctx.keystore()?
            .secret_public(SecretKind::Registrar, name_or_file)
            .map_err(|e| {
                anyhow!("--registrar-key {name_or_file:?} is neither a DER file nor a registrar key in the keystore: {e}")
            })?
    };
    RegistrarKey::from_der(&der).map_err(|e| anyhow!("{name_or_file}: {e}"))?;
    Ok(der)
}

pub fn registrar(ctx: &Ctx, command: RegistrarCommand) -> Result<()> {
    match command {
        RegistrarCommand::New { name, bits } => {
            let store = ctx.keystore()?;
            if store.has_secret(SecretKind::Registrar, &name)? {
                return Err(anyhow!("a registrar key named {name:?} already exists"));
            }
            let pass = crate::passphrase(true)?;
            let bar = ctx.spinner(format!("making a {bits}-bit RSA key"));
            let made = usize::try_from(bits)
                .map_err(|_| anyhow!("{bits} bits"))
                .and_then(|b| Registrar::generate(b).map_err(Into::into));
            bar.finish_and_clear();
            let registrar = made?;
            let public = registrar.public_der()?;
            let secret = Zeroizing::new(registrar.to_der()?);
            store.add_secret(SecretKind::Registrar, &name, &public, &secret, &pass, false)?;
            let v = json!({
                "name": name,
                "bits": bits,
                "key_sha256": Hash::digest(&public),
            });
            ctx.output.print(
                Some(&format!(
                    "registrar key {name}: open a secret round with --registrar-key {name}, or give the office `acta budget registrar show {name} --out FILE`"
                )),
                &v,
            );
            Ok(())
        }
        RegistrarCommand::Show { name, out } => {
            let public = ctx
                .keystore()?
                .secret_public(SecretKind::Registrar, &name)?;
            let key = RegistrarKey::from_der(&public)?;
            if let Some(path) = &out {
                std::fs::write(path, &public)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let v = json!({
                "name": name,
                "bits": key.value_bytes() * 8,
                "key_sha256": Hash::digest(&public),
                "key": hex::encode(&public),
                "file": out.as_ref().map(|p| p.display().to_string()),
            });
            ctx.output.print(None, &v);
            Ok(())
        }
    }
}

pub fn token(ctx: &Ctx, command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Request { round, key, voter } => request(ctx, round, &key.key, voter),
        TokenCommand::Issue {
            round,
            key,
            registrar_key,
            genesis,
            trust,
        } => issue(
            ctx,
            round,
            &key.key,
            &registrar_key,
            &genesis,
            trust.as_deref(),
        ),
        TokenCommand::Fetch { round, key } => fetch(ctx, round, &key.key),
        TokenCommand::Show { round, voter } => {
            let did = ctx.did(&voter)?;
            let v = ctx
                .node()?
                .get(&format!("/budget/rounds/{round}/tokens/{did}"))?;
            ctx.output.print(None, &v);
            Ok(())
        }
    }
}

fn request(ctx: &Ctx, round: u64, key: &str, voter: Option<String>) -> Result<()> {
    let resident = ctx.did(voter.as_deref().unwrap_or(key))?;
    let node = ctx.node()?;
    let r = round_record(&node, round)?;
    let (_, registrar_key, _) = registrar_of(&r)?;
    let chain = node.chain_id()?;
    let store = ctx.keystore()?;
    let name = ballot_name(&chain, round, &resident);
    let kept = store.has_secret(SecretKind::Ballot, &name)?;
    if let Some(req) = request_of(&node, round, &resident)? {
        let kept = if kept {
            format!("this wallet keeps its ballot key: vote with `acta budget vote {round} --key {key}`")
        } else {
            "this wallet does not keep its ballot key".to_string()
        };
        return Err(anyhow!(
            "{resident} already asked for its token of round {round} (request {}): one token per resident; {kept}",
            req["index"]
        ));
    }
    let pass = crate::passphrase(false)?;
    let signer = store.unlock(key, &pass)?;
    let blinded = if kept {
        // This wallet asked before and the ledger does not show it yet: the earlier request
        // may still be committed, so the same one is sent again, never a new one.
        let (_, bytes) = store.unlock_secret(SecretKind::Ballot, &name, &pass)?;
        let earlier: BallotSecret =
            serde_json::from_slice(&bytes).map_err(|e| anyhow!("the ballot secret {name}: {e}"))?;
        hex::decode(&earlier.blinded).map_err(|e| anyhow!("the ballot secret {name}: {e}"))?
    } else {
        let secret = BallotSecret::new(&registrar_key, chain, round, resident)?;
        let blinded = hex::decode(&secret.blinded)?;
        let secret = Zeroizing::new(serde_json::to_vec(&secret)?);
        // Kept before it is sent: a request the ledger records is useless without it.
        // Nothing of it is readable without the passphrase: the ballot key would link the
        // resident to the ballot.
        store.add_secret(SecretKind::Ballot, &name, &[], &secret, &pass, false)?;
        blinded
    };
    let call = BudgetCall::RequestToken {
        round,
        voter: resident,
        blinded: Bytes::new(blinded)?,
    };
    let answer = match ctx.submit(&node, &signer, Call::Budget(call)) {
        Ok(answer) => answer,
        Err(e) => {
            // Refused outright, a request made now will never be on the ledger: its secret
            // is useless. Otherwise (no answer, a timeout, or a resent request) it may be,
            // and the secret is kept.
            if !kept && e.downcast_ref::<Refused>().is_some() {
                if let Err(d) = store.delete_secret(SecretKind::Ballot, &name) {
                    eprintln!("acta: could not remove the unused ballot secret {name}: {d}");
                }
            }
            return Err(e);
        }
    };
    ctx.print_answer(&answer);
    eprintln!(
        "token requested for {resident} in round {round}; once the registrar answers, keep it with `acta budget token fetch {round} --key {key}`, then vote (through any node) with `acta budget vote {round} --key {key} --projects ...`"
    );
    Ok(())
}

fn issue(
    ctx: &Ctx,
    round: u64,
    key: &str,
    registrar_key: &str,
    genesis: &Path,
    trust: Option<&Path>,
) -> Result<()> {
    if ctx.no_wait {
        return Err(anyhow!(
            "token issue sends one answer after another, each once the one before is committed: run it without --no-wait"
        ));
    }
    let anchor = crate::anchor(genesis, trust)?;
    let node = ctx.node()?;
    let r = round_record(&node, round)?;
    let (registrar_did, _, round_key) = registrar_of(&r)?;
    let store = ctx.keystore()?;
    let pass = crate::passphrase(false)?;
    let signer = store.unlock(key, &pass)?;
    let (public, secret) = match store.unlock_secret(SecretKind::Registrar, registrar_key, &pass) {
        Err(KeystoreError::WrongPassphrase(_)) if std::env::var_os("ACTA_PASSPHRASE").is_none() => {
            eprintln!("the registrar key {registrar_key} has another passphrase");
            let pass = crate::passphrase(false)?;
            store.unlock_secret(SecretKind::Registrar, registrar_key, &pass)?
        }
        other => other?,
    };
    if public.as_slice() != round_key {
        return Err(anyhow!(
            "registrar key {registrar_key:?} is not round {round}'s (its registrar is {registrar_did})"
        ));
    }
    let registrar = Registrar::from_der(&secret)?;
    let (mut from, mut issued, mut seen) = (0u64, 0u64, 0u64);
    loop {
        let asked = format!("/budget/rounds/{round}/tokens?from={from}&limit=100");
        let page = node.get(&format!("{asked}&prove=true"))?;
        let audited = audit::verify(&page, &anchor).map_err(|e| {
            anyhow!(
                "the node's token requests of round {round} from {from} do not verify at step \"{}\": {}; nothing was signed",
                e.step,
                e.message
            )
        })?;
        if audited.query.as_deref() != Some(asked.as_str()) {
            return Err(anyhow!(
                "the node answered {:?}, not {asked}; nothing was signed",
                audited.query
            ));
        }
        let requests = page["requests"].as_array().cloned().unwrap_or_default();
        for req in &requests {
            seen += 1;
            if !req["blind_signature"].is_null() {
                continue;
            }
            let index = req["index"]
                .as_u64()
                .ok_or_else(|| anyhow!("the node's token request has no index"))?;
            let blind_signature = registrar.sign_blinded(&hex_field(req, "blinded")?)?;
            let call = BudgetCall::IssueToken {
                round,
                request: index,
                blind_signature: Bytes::new(blind_signature)?,
            };
            ctx.submit(&node, &signer, Call::Budget(call))
                .with_context(|| format!("answering token request {index} of round {round}"))?;
            issued += 1;
        }
        let requested = page["tokens"]["requested"].as_u64().unwrap_or(0);
        from += requests.len() as u64;
        if requests.is_empty() || from >= requested {
            break;
        }
    }
    let v = json!({ "round": round, "requests": seen, "issued_now": issued });
    ctx.output.print(
        Some(&format!(
            "round {round}: answered {issued} of {seen} token requests (the others had their token)"
        )),
        &v,
    );
    Ok(())
}

/// A resident's ballot secret for `round`, unlocked and checked against the chain.
struct Kept {
    name: String,
    pass: Zeroizing<String>,
    secret: BallotSecret,
    ballot: Keypair,
}

fn unlock_ballot(ctx: &Ctx, chain: &ChainId, round: u64, key: &str) -> Result<Kept> {
    let store = ctx.keystore()?;
    let name = ballot_name(chain, round, &ctx.did(key)?);
    if !store.has_secret(SecretKind::Ballot, &name)? {
        return Err(anyhow!(
            "round {round} has secret ballots and this wallet holds no ballot key for {key} in it: ask for a token first with `acta budget token request {round} --key {key}`"
        ));
    }
    let pass = crate::passphrase(false)?;
    let (_, bytes) = store.unlock_secret(SecretKind::Ballot, &name, &pass)?;
    let secret: BallotSecret =
        serde_json::from_slice(&bytes).map_err(|e| anyhow!("the ballot secret {name}: {e}"))?;
    if secret.chain != *chain || secret.round != round {
        return Err(anyhow!(
            "the ballot secret {name} is for round {} of {}, not round {round} of {chain}",
            secret.round,
            secret.chain
        ));
    }
    let ballot = secret
        .ballot_key()
        .ok_or_else(|| anyhow!("the ballot secret {name} holds no ballot key"))?;
    Ok(Kept {
        name,
        pass,
        secret,
        ballot,
    })
}

/// Reads the registrar's answer to the kept request, unblinds and checks the token, and
/// keeps it in the ballot secret: a later vote needs nothing from the node about the
/// resident.
fn fetch_token(
    ctx: &Ctx,
    node: &Node,
    r: &BudgetRound,
    key: &str,
    kept: &mut Kept,
) -> Result<Vec<u8>> {
    let (_, registrar_key, _) = registrar_of(r)?;
    let round = r.id;
    let resident = kept.secret.resident;
    let req = request_of(node, round, &resident)?.ok_or_else(|| {
        anyhow!("the ledger holds no token request of {resident} in round {round}: ask again with `acta budget token request {round} --key {key}`")
    })?;
    let recorded = hex_field(&req, "blinded")?;
    if !kept.secret.made(&recorded) {
        return Err(anyhow!(
            "the ledger's token request of {resident} in round {round} is not the one this wallet kept"
        ));
    }
    if req["blind_signature"].is_null() {
        return Err(anyhow!(
            "the registrar has not yet answered token request {} of round {round}: try again later (acta budget token show {round} --voter {key})",
            req["index"]
        ));
    }
    let token = kept
        .secret
        .unblind(
            &registrar_key,
            &recorded,
            &hex_field(&req, "blind_signature")?,
        )
        .map_err(|e| anyhow!(e))?;
    let bytes = Zeroizing::new(serde_json::to_vec(&kept.secret)?);
    ctx.keystore()?.add_secret(
        SecretKind::Ballot,
        &kept.name,
        &[],
        &bytes,
        &kept.pass,
        true,
    )?;
    Ok(token)
}

/// `acta budget token fetch`: the token, unblinded and kept, without voting.
pub fn fetch(ctx: &Ctx, round: u64, key: &str) -> Result<()> {
    let node = ctx.node()?;
    let r = round_record(&node, round)?;
    let mut kept = unlock_ballot(ctx, &node.chain_id()?, round, key)?;
    if kept.secret.token.is_none() {
        fetch_token(ctx, &node, &r, key, &mut kept)?;
    }
    let v = json!({ "round": round, "key": key, "token": "kept" });
    ctx.output.print(
        Some(&format!(
            "your token of round {round} is kept in this wallet: vote later, through any node, with acta budget vote {round} --key {key} --projects ..."
        )),
        &v,
    );
    Ok(())
}

/// Casts (or replaces) a resident's ballot in a secret round, from the ballot key the
/// wallet kept when it asked for the token, with the token it kept (or reads now).
pub fn vote(ctx: &Ctx, node: &Node, r: &BudgetRound, key: &str, projects: Vec<u32>) -> Result<()> {
    let round = r.id;
    let mut kept = unlock_ballot(ctx, &node.chain_id()?, round, key)?;
    let token = match &kept.secret.token {
        Some(t) => hex::decode(t).map_err(|e| anyhow!("the ballot secret {}: {e}", kept.name))?,
        None => {
            eprintln!(
                "acta: reading your token and voting through the same node: its operator can pair your DID with your ballot key; `acta budget token fetch` first, then voting through another node, avoids that"
            );
            fetch_token(ctx, node, r, key, &mut kept)?
        }
    };
    let call = BudgetCall::VoteSecret {
        round,
        token: Bytes::new(token)?,
        projects,
    };
    let answer = ctx.submit(node, &kept.ballot, Call::Budget(call))?;
    ctx.print_answer(&answer);
    let ballot_did = Did::from_initial_key(&kept.ballot.public());
    eprintln!(
        "cast from ballot key {ballot_did} (its receipt: acta budget receipt {round} --voter {ballot_did}); the ledger does not link it to you"
    );
    Ok(())
}
