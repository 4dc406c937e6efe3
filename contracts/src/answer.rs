//! The answers of the node's record reads, as pure functions of the state values they read.
//!
//! The node renders `GET /dids/{did}`, `GET /credentials/{id}` and the other record reads
//! with [`answer`] over its store. An auditor renders the same [`Query`] with the same
//! function over the values a proof bundle proved, and compares the two answers field by
//! field ([`crate::audit`]): a verdict covers every field an answer shows, because every
//! field is computed again from proven bytes. Nothing here reads anything but the state at
//! one height, that height and its block's time.

use acta_ledger::{
    codec,
    records::{
        AttestationRecord, BallotSecrecy, BallotToken, BudgetBallot, BudgetProject, BudgetRound,
        Council, CredentialKind, CredentialRecord, DeviceRecord, DidRecord, GovProposal,
        IssuerRecord, RoundStatus, TallyRecord, TokenCount, TokenRequest,
    },
    state::{AuthenticatedState, STATE_VALUE_BYTES_MAX},
    Did, Hash, Height, Outcome, Timestamp, Transaction, ValidatorSet,
};
use borsh::BorshDeserialize;
use serde::Serialize;
use serde_json::{json, Value};

pub mod shape;
pub use shape::*;

use crate::{
    budget::{
        ballot_key, project_key, sub_key, voter_key, NS_BALLOT, NS_BALLOT_TOKEN, NS_NEXT,
        NS_PROJECT, NS_ROUND, NS_TALLY, NS_TOKENS, NS_TOKEN_OF, NS_TOKEN_REQUEST, NS_VOTER,
        NS_VOTERS,
    },
    credential::{self, NS_CREDENTIAL, NS_CREDENTIALS_OF},
    governance::{NS_COUNCIL, NS_GOV_NEXT, NS_GOV_PROPOSAL, NS_ISSUER},
    identity::NS_DID,
    params::{ParamRecord, NS_PARAM, REGISTRY},
    sensor::{attestation_key, NS_ATTESTATION, NS_DEVICE},
};

/// The most items one list answer holds.
pub const PAGE_MAX: u64 = 100;
/// The items a list answer holds when `limit` is not given.
pub const PAGE_DEFAULT: u64 = 20;
/// The longest namespace name a raw state read accepts.
pub const NAMESPACE_MAX: usize = 64;

/// A record read: what was asked, without the height (which a bundle's header gives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    Did(Did),
    DidCredentials(Did),
    Credential(Hash),
    Issuer(Did),
    Council,
    CouncilProposals {
        from: u64,
        limit: u64,
    },
    CouncilProposal(u64),
    Params,
    Device(Did),
    /// `from`: the first sequence number; `None` for the latest `limit` batches.
    Attestations {
        device: Did,
        from: Option<u64>,
        limit: u64,
    },
    Attestation {
        device: Did,
        sequence: u64,
    },
    Rounds {
        from: u64,
        limit: u64,
    },
    Round(u64),
    Proposals(u64),
    Result(u64),
    /// A tallied round's ballots, all of them (proven by the tally's ballots root).
    Ballots(u64),
    /// One voter's tallied ballot (a receipt, proven by inclusion under the root).
    Receipt {
        round: u64,
        voter: Did,
    },
    /// A secret round's token requests, by request index.
    TokenRequests {
        round: u64,
        from: u64,
        limit: u64,
    },
    /// A resident's token request of a secret round.
    TokenRequest {
        round: u64,
        voter: Did,
    },
    /// The tokens of a secret round's ballots, by ballot index.
    BallotTokens {
        round: u64,
        from: u64,
        limit: u64,
    },
    State {
        namespace: String,
        key: Vec<u8>,
    },
}

/// Why a query has no answer.
#[derive(Clone, Debug, PartialEq)]
pub enum AnswerError {
    /// The record is not in the state at the height; `extra` is a field the error answer
    /// carries besides its message (a DID resolution's metadata).
    NotFound {
        message: String,
        extra: Option<(&'static str, Value)>,
    },
    /// The query itself is malformed.
    BadRequest(String),
    /// The answer depends on a state value the source does not hold (a proof bundle that
    /// proves too little).
    NotCovered { namespace: String, key: Vec<u8> },
    /// A stored value does not decode, or the state breaks an invariant.
    Internal(String),
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerError::NotFound { message, .. }
            | AnswerError::BadRequest(message)
            | AnswerError::Internal(message) => f.write_str(message),
            AnswerError::NotCovered { namespace, key } => write!(
                f,
                "the answer depends on {namespace}/{}, which the proof does not cover",
                hex::encode(key)
            ),
        }
    }
}

impl std::error::Error for AnswerError {}

fn not_found(message: String) -> AnswerError {
    AnswerError::NotFound {
        message,
        extra: None,
    }
}

/// The state at one height, as an answer reads it.
pub trait Source {
    /// The height read.
    fn height(&self) -> Height;
    /// The time of the block at that height.
    fn time(&self) -> Timestamp;
    /// The raw value of `key` in `namespace` (`None`: it holds nothing).
    fn raw(&mut self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, AnswerError>;
}

/// The state of an [`AuthenticatedState`] after one height, as a [`Source`].
pub struct StateAt<'a> {
    state: &'a dyn AuthenticatedState,
    height: Height,
    time: Timestamp,
}

impl std::fmt::Debug for StateAt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateAt")
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl<'a> StateAt<'a> {
    /// The state after `height`, whose block has time `time`.
    pub fn new(state: &'a dyn AuthenticatedState, height: Height, time: Timestamp) -> Self {
        StateAt {
            state,
            height,
            time,
        }
    }
}

impl Source for StateAt<'_> {
    fn height(&self) -> Height {
        self.height
    }

    fn time(&self) -> Timestamp {
        self.time
    }

    fn raw(&mut self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, AnswerError> {
        self.state
            .get(&acta_ledger::state::state_key(namespace, key), self.height)
            .map_err(|e| AnswerError::Internal(e.to_string()))
    }
}

fn get<T: BorshDeserialize>(
    src: &mut dyn Source,
    namespace: &str,
    key: &[u8],
) -> Result<Option<T>, AnswerError> {
    src.raw(namespace, key)?
        .map(|bytes| {
            codec::decode("state value", &bytes, STATE_VALUE_BYTES_MAX)
                .map_err(|e| AnswerError::Internal(format!("{namespace}: {e}")))
        })
        .transpose()
}

fn parse_did(s: &str) -> Result<Did, AnswerError> {
    Did::parse(s).map_err(|e| AnswerError::BadRequest(e.to_string()))
}

fn parse_u64(what: &str, s: &str) -> Result<u64, AnswerError> {
    s.parse()
        .map_err(|_| AnswerError::BadRequest(format!("{what} {s:?} is not a whole number")))
}

/// Checks a page's `limit` (default [`PAGE_DEFAULT`], at most [`PAGE_MAX`]).
pub fn page_limit(limit: Option<u64>) -> Result<u64, AnswerError> {
    match limit {
        None => Ok(PAGE_DEFAULT),
        Some(l) if (1..=PAGE_MAX).contains(&l) => Ok(l),
        Some(l) => Err(AnswerError::BadRequest(format!(
            "limit {l} is not between 1 and {PAGE_MAX}"
        ))),
    }
}

/// Checks a raw state read's namespace: 1 to [`NAMESPACE_MAX`] characters of `a-z 0-9 _`.
pub fn check_namespace(namespace: &str) -> Result<(), AnswerError> {
    if namespace.is_empty()
        || namespace.len() > NAMESPACE_MAX
        || !namespace
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        return Err(AnswerError::BadRequest(format!(
            "namespace {namespace:?} is not 1 to {NAMESPACE_MAX} characters of a-z 0-9 _"
        )));
    }
    Ok(())
}

impl Query {
    /// The request target that asks this query (`from` and `limit` always written).
    pub fn target(&self) -> String {
        match self {
            Query::Did(d) => format!("/dids/{d}"),
            Query::DidCredentials(d) => format!("/dids/{d}/credentials"),
            Query::Credential(id) => format!("/credentials/{id}"),
            Query::Issuer(d) => format!("/issuers/{d}"),
            Query::Council => "/council".into(),
            Query::CouncilProposals { from, limit } => {
                format!("/council/proposals?from={from}&limit={limit}")
            }
            Query::CouncilProposal(id) => format!("/council/proposals/{id}"),
            Query::Params => "/params".into(),
            Query::Device(d) => format!("/devices/{d}"),
            Query::Attestations {
                device,
                from,
                limit,
            } => match from {
                Some(f) => format!("/devices/{device}/attestations?from={f}&limit={limit}"),
                None => format!("/devices/{device}/attestations?limit={limit}"),
            },
            Query::Attestation { device, sequence } => {
                format!("/devices/{device}/attestations/{sequence}")
            }
            Query::Rounds { from, limit } => format!("/budget/rounds?from={from}&limit={limit}"),
            Query::Round(id) => format!("/budget/rounds/{id}"),
            Query::Proposals(id) => format!("/budget/rounds/{id}/proposals"),
            Query::Result(id) => format!("/budget/rounds/{id}/result"),
            Query::Ballots(id) => format!("/budget/rounds/{id}/ballots"),
            Query::Receipt { round, voter } => format!("/budget/rounds/{round}/ballots/{voter}"),
            Query::TokenRequests { round, from, limit } => {
                format!("/budget/rounds/{round}/tokens?from={from}&limit={limit}")
            }
            Query::TokenRequest { round, voter } => {
                format!("/budget/rounds/{round}/tokens/{voter}")
            }
            Query::BallotTokens { round, from, limit } => {
                format!("/budget/rounds/{round}/ballot-tokens?from={from}&limit={limit}")
            }
            Query::State { namespace, key } => format!("/state/{namespace}/{}", hex::encode(key)),
        }
    }

    /// Parses a request target as [`Query::target`] writes it (a missing `from` or `limit`
    /// takes its default).
    pub fn parse(target: &str) -> Result<Query, AnswerError> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut from = None;
        let mut limit = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("from", v)) if from.is_none() => from = Some(parse_u64("from", v)?),
                Some(("limit", v)) if limit.is_none() => limit = Some(parse_u64("limit", v)?),
                _ => {
                    return Err(AnswerError::BadRequest(format!(
                        "{target:?}: unexpected query parameter {pair:?}"
                    )))
                }
            }
        }
        let page = |from: Option<u64>, limit| -> Result<(u64, u64), AnswerError> {
            Ok((from.unwrap_or(0), page_limit(limit)?))
        };
        let segments: Vec<&str> = path.strip_prefix('/').unwrap_or("").split('/').collect();
        let no_page = || -> Result<(), AnswerError> {
            if from.is_some() || limit.is_some() {
                return Err(AnswerError::BadRequest(format!(
                    "{target:?} is not a list: it takes no from or limit"
                )));
            }
            Ok(())
        };
        let q = match segments.as_slice() {
            ["council", "proposals"] => {
                let (from, limit) = page(from, limit)?;
                return Ok(Query::CouncilProposals { from, limit });
            }
            ["budget", "rounds"] => {
                let (from, limit) = page(from, limit)?;
                return Ok(Query::Rounds { from, limit });
            }
            ["budget", "rounds", id, "tokens"] => {
                let (from, limit) = page(from, limit)?;
                return Ok(Query::TokenRequests {
                    round: parse_u64("round", id)?,
                    from,
                    limit,
                });
            }
            ["budget", "rounds", id, "ballot-tokens"] => {
                let (from, limit) = page(from, limit)?;
                return Ok(Query::BallotTokens {
                    round: parse_u64("round", id)?,
                    from,
                    limit,
                });
            }
            ["devices", d, "attestations"] => {
                return Ok(Query::Attestations {
                    device: parse_did(d)?,
                    from,
                    limit: page_limit(limit)?,
                })
            }
            ["dids", d] => Query::Did(parse_did(d)?),
            ["dids", d, "credentials"] => Query::DidCredentials(parse_did(d)?),
            ["credentials", id] => Query::Credential(Hash::from_hex(id).map_err(|e| {
                AnswerError::BadRequest(format!("{id:?} is not a credential id: {e}"))
            })?),
            ["issuers", d] => Query::Issuer(parse_did(d)?),
            ["council"] => Query::Council,
            ["council", "proposals", id] => Query::CouncilProposal(parse_u64("proposal", id)?),
            ["params"] => Query::Params,
            ["devices", d] => Query::Device(parse_did(d)?),
            ["devices", d, "attestations", s] => Query::Attestation {
                device: parse_did(d)?,
                sequence: parse_u64("sequence", s)?,
            },
            ["budget", "rounds", id] => Query::Round(parse_u64("round", id)?),
            ["budget", "rounds", id, "proposals"] => Query::Proposals(parse_u64("round", id)?),
            ["budget", "rounds", id, "result"] => Query::Result(parse_u64("round", id)?),
            ["budget", "rounds", id, "ballots"] => Query::Ballots(parse_u64("round", id)?),
            ["budget", "rounds", id, "ballots", voter] => Query::Receipt {
                round: parse_u64("round", id)?,
                voter: parse_did(voter)?,
            },
            ["budget", "rounds", id, "tokens", voter] => Query::TokenRequest {
                round: parse_u64("round", id)?,
                voter: parse_did(voter)?,
            },
            ["state", ns, key] => {
                check_namespace(ns)?;
                Query::State {
                    namespace: (*ns).to_string(),
                    key: hex::decode(key)
                        .map_err(|e| AnswerError::BadRequest(format!("key is not hex: {e}")))?,
                }
            }
            _ => {
                return Err(AnswerError::BadRequest(format!(
                    "{target:?} is not a record read"
                )))
            }
        };
        no_page()?;
        Ok(q)
    }
}

/// The answer to `query` from the state `src` shows (without its `height` field, which the
/// reader adds).
pub fn answer(query: &Query, src: &mut dyn Source) -> Result<Value, AnswerError> {
    let height = src.height();
    match query {
        Query::Did(did) => did_resolution(src, did),
        Query::DidCredentials(did) => {
            let mut out = Vec::new();
            for kind in CredentialKind::ALL {
                let ids: Vec<Hash> =
                    get(src, NS_CREDENTIALS_OF, &credential::index_key(did, kind))?
                        .unwrap_or_default();
                for id in ids {
                    if let Some(c) = get::<CredentialRecord>(src, NS_CREDENTIAL, &id.0)? {
                        let status = credential_status(src, &c)?;
                        out.push(CredentialEntry {
                            credential: c,
                            status,
                        });
                    }
                }
            }
            to_json(CredentialList {
                did: *did,
                credentials: out,
            })
        }
        Query::Credential(id) => {
            let c: CredentialRecord = get(src, NS_CREDENTIAL, &id.0)?
                .ok_or_else(|| not_found(format!("no credential {id} at height {height}")))?;
            let issuer: Option<IssuerRecord> = get(src, NS_ISSUER, &c.issuer.0)?;
            let issuer_ok = issuer
                .as_ref()
                .is_some_and(|i| i.revoked.is_none() && i.kinds.contains(&c.kind));
            to_json(CredentialAnswer {
                status: credential_status(src, &c)?,
                credential: c,
                issuer,
                issuer_registered: issuer_ok,
                checked_at: rfc3339(src.time()),
            })
        }
        Query::Issuer(did) => {
            let i: IssuerRecord = get(src, NS_ISSUER, &did.0)?
                .ok_or_else(|| not_found(format!("{did} is not an issuer at height {height}")))?;
            to_json(IssuerAnswer { issuer: i })
        }
        Query::Council => {
            let c: Council = get(src, NS_COUNCIL, b"council")?
                .ok_or_else(|| AnswerError::Internal("no council in the state".into()))?;
            let proposals: u64 = get(src, NS_GOV_NEXT, b"next")?.unwrap_or(0);
            to_json(CouncilAnswer {
                council: c,
                proposals,
            })
        }
        Query::CouncilProposals { from, limit } => {
            let next: u64 = get(src, NS_GOV_NEXT, b"next")?.unwrap_or(0);
            let mut out = Vec::new();
            for id in *from..from.saturating_add(*limit).min(next) {
                if let Some(p) = get::<GovProposal>(src, NS_GOV_PROPOSAL, &id.to_be_bytes())? {
                    out.push(proposal_shown(p));
                }
            }
            to_json(ProposalList {
                proposals: out,
                next,
            })
        }
        Query::CouncilProposal(id) => {
            let p: GovProposal = get(src, NS_GOV_PROPOSAL, &id.to_be_bytes())?
                .ok_or_else(|| not_found(format!("no council proposal {id} at height {height}")))?;
            to_json(ProposalAnswer {
                proposal: proposal_shown(p),
            })
        }
        Query::Params => {
            let mut out = Vec::new();
            for spec in REGISTRY {
                let record: Option<ParamRecord> = get(src, NS_PARAM, spec.name.as_bytes())?;
                out.push(ParamShown {
                    name: spec.name,
                    value: record.map_or(spec.default, |p| p.value),
                    set_at: record.map(|p| p.set_at),
                    unit: spec.unit,
                    min: spec.min,
                    max: spec.max,
                    default: spec.default,
                    meaning: spec.meaning,
                });
            }
            to_json(ParamsAnswer { params: out })
        }
        Query::Device(did) => to_json(DeviceAnswer {
            device: device(src, did)?,
        }),
        Query::Attestations {
            device: did,
            from,
            limit,
        } => {
            let d = device(src, did)?;
            let start = from.unwrap_or(d.next_sequence.saturating_sub(*limit));
            let mut out = Vec::new();
            for seq in start..start.saturating_add(*limit).min(d.next_sequence) {
                if let Some(a) =
                    get::<AttestationRecord>(src, NS_ATTESTATION, &attestation_key(did, seq))?
                {
                    out.push(a);
                }
            }
            to_json(AttestationList {
                device: *did,
                next_sequence: d.next_sequence,
                attestations: out,
            })
        }
        Query::Attestation {
            device: did,
            sequence,
        } => {
            let a: AttestationRecord = get(src, NS_ATTESTATION, &attestation_key(did, *sequence))?
                .ok_or_else(|| {
                    not_found(format!("no batch {sequence} of {did} at height {height}"))
                })?;
            let d: Option<DeviceRecord> = get(src, NS_DEVICE, &did.0)?;
            to_json(AttestationAnswer {
                attestation: a,
                device: d,
            })
        }
        Query::Rounds { from, limit } => {
            let next: u64 = get(src, NS_NEXT, b"next")?.unwrap_or(0);
            let mut out = Vec::new();
            for id in *from..from.saturating_add(*limit).min(next) {
                if let Some(round) = get::<BudgetRound>(src, NS_ROUND, &id.to_be_bytes())? {
                    out.push(round_summary(src, round)?);
                }
            }
            to_json(RoundList { rounds: out, next })
        }
        Query::Round(id) => {
            let round = get_round(src, *id)?;
            let tallied = round.status == RoundStatus::Tallied;
            let mut answer = round_summary(src, round)?;
            if tallied {
                answer.result = get(src, NS_TALLY, &id.to_be_bytes())?;
            }
            to_json(answer)
        }
        Query::Proposals(id) => {
            let round = get_round(src, *id)?;
            let list = projects(src, &round)?;
            to_json(ProjectList {
                round: *id,
                projects: list,
            })
        }
        Query::Result(id) => {
            let round = get_round(src, *id)?;
            let time = src.time();
            let t: TallyRecord = get(src, NS_TALLY, &id.to_be_bytes())?
                .ok_or_else(|| not_found(no_result_yet(&round, height, time, "no result yet")))?;
            let list = projects(src, &round)?;
            let selected = t
                .selected
                .iter()
                .filter_map(|i| list.get(*i as usize))
                .map(|p| SelectedProject {
                    index: p.index,
                    title: p.title.as_str().to_string(),
                    cost: p.cost,
                })
                .collect();
            to_json(ResultAnswer {
                result: t,
                selected,
            })
        }
        Query::Ballots(id) => {
            let round = get_round(src, *id)?;
            let tally = tallied(src, &round, height)?;
            let list = projects(src, &round)?;
            let mut ballots = Vec::new();
            for i in 0..tally.voters {
                let b: BudgetBallot =
                    get(src, NS_BALLOT, &ballot_key(*id, i))?.ok_or_else(|| {
                        AnswerError::Internal(format!(
                            "round {id} counts ballot {i} but it is missing"
                        ))
                    })?;
                ballots.push(ballot_shown(i, b));
            }
            // Tallied: no ballot comes after the count the tally holds.
            to_json(BallotsAnswer {
                round: RoundShown {
                    round,
                    voters: tally.voters,
                },
                projects: list,
                result: tally,
                ballots,
            })
        }
        Query::Receipt { round: id, voter } => {
            let round = get_round(src, *id)?;
            let tally = tallied(src, &round, height)?;
            let index: u64 = get(src, NS_VOTER, &voter_key(*id, voter))?
                .ok_or_else(|| not_found(format!("{voter} cast no ballot in round {id}")))?;
            let b: BudgetBallot =
                get(src, NS_BALLOT, &ballot_key(*id, index))?.ok_or_else(|| {
                    AnswerError::Internal(format!(
                        "round {id} counts ballot {index} but it is missing"
                    ))
                })?;
            to_json(ReceiptAnswer {
                round: *id,
                ballot: ballot_shown(index, b),
                ballots: tally.voters,
                ballots_root: tally.ballots_root,
                tallied_at: tally.height,
            })
        }
        Query::TokenRequests {
            round: id,
            from,
            limit,
        } => {
            secret_round(src, *id)?;
            let count: TokenCount = get(src, NS_TOKENS, &id.to_be_bytes())?.unwrap_or_default();
            let out = (*from..from.saturating_add(*limit).min(count.requested))
                .map(|i| token_request(src, *id, i))
                .collect::<Result<Vec<_>, _>>()?;
            to_json(TokenRequestList {
                round: *id,
                tokens: count,
                requests: out,
            })
        }
        Query::TokenRequest { round: id, voter } => {
            secret_round(src, *id)?;
            let index: u64 = get(src, NS_TOKEN_OF, &sub_key(*id, &voter.0))?.ok_or_else(|| {
                not_found(format!(
                    "{voter} has asked for no token of round {id} at height {height}"
                ))
            })?;
            to_json(TokenRequestAnswer {
                round: *id,
                request: token_request(src, *id, index)?,
            })
        }
        Query::BallotTokens {
            round: id,
            from,
            limit,
        } => {
            secret_round(src, *id)?;
            let voters: u64 = get(src, NS_VOTERS, &id.to_be_bytes())?.unwrap_or(0);
            let mut out = Vec::new();
            for i in *from..from.saturating_add(*limit).min(voters) {
                let t: BallotToken =
                    get(src, NS_BALLOT_TOKEN, &ballot_key(*id, i))?.ok_or_else(|| {
                        AnswerError::Internal(format!(
                            "round {id} counts ballot {i} but its token is missing"
                        ))
                    })?;
                out.push(BallotTokenShown {
                    index: i,
                    voter: Did::from_initial_key(&t.key),
                    key: t.key,
                    token: hex::encode(t.token.as_slice()),
                });
            }
            let count: TokenCount = get(src, NS_TOKENS, &id.to_be_bytes())?.unwrap_or_default();
            to_json(BallotTokenList {
                round: *id,
                ballots: voters,
                issued: count.issued,
                tokens: out,
            })
        }
        Query::State { namespace, key } => {
            let value = src.raw(namespace, key)?;
            to_json(StateValue {
                namespace: namespace.clone(),
                key: hex::encode(key),
                value: value.map(hex::encode),
            })
        }
    }
}

/// The tally of a round that has closed, or why there is none.
fn tallied(
    src: &mut dyn Source,
    round: &BudgetRound,
    height: Height,
) -> Result<TallyRecord, AnswerError> {
    let time = src.time();
    get(src, NS_TALLY, &round.id.to_be_bytes())?.ok_or_else(|| {
        not_found(no_result_yet(
            round,
            height,
            time,
            "its ballots are proven once it is tallied",
        ))
    })
}

/// Why a round has no result at `height` (whose block's time is `time`), and when it
/// will.
fn no_result_yet(round: &BudgetRound, height: Height, time: Timestamp, what: &str) -> String {
    let when = match round.status {
        RoundStatus::Tallying { due, .. } => format!("its tally is due at height {due}"),
        RoundStatus::Cancelled { at } => {
            format!("the council cancelled it at height {at}: it is never tallied")
        }
        _ => format!("it closes at {}", round.spec.closes_at.rfc3339()),
    };
    format!(
        "round {} is {} at height {height}: {what} ({when})",
        round.id,
        phase(round, time).name()
    )
}

/// A ballot with its position among the round's ballots.
fn ballot_shown(index: u64, b: BudgetBallot) -> BallotShown {
    BallotShown {
        index,
        voter: b.voter,
        projects: b.projects,
        cast: b.cast,
    }
}

/// An answer as JSON.
fn to_json(answer: impl Serialize) -> Result<Value, AnswerError> {
    serde_json::to_value(answer).map_err(|e| AnswerError::Internal(e.to_string()))
}

/// `GET /txs/{hash}` for a committed transaction: `index` is its position in the block and
/// `message` the refusal's explanation; a proven answer leaves both out (the header does
/// not commit to the number of transactions, and messages are not in the block's results).
pub fn tx_answer(
    tx: &Transaction,
    height: Height,
    index: Option<u64>,
    outcome: &Outcome,
    message: Option<&str>,
) -> Value {
    json!(TxAnswer {
        hash: tx.id(),
        status: TxStatus::Committed,
        height: Some(height),
        index,
        tx: Some(tx.clone()),
        result: Some(tx_result(outcome, message)),
    })
}

/// A transaction's outcome as the API shows it, with the refusal's message if known.
pub fn result_json(outcome: &Outcome, message: Option<&str>) -> Value {
    json!(tx_result(outcome, message))
}

fn tx_result(outcome: &Outcome, message: Option<&str>) -> TxResult {
    TxResult {
        outcome: outcome.clone(),
        message: match outcome {
            Outcome::Refused { .. } => message.map(str::to_string),
            Outcome::Accepted { .. } => None,
        },
    }
}

/// `GET /validators`: the set that signs block `height` and the hash of the set that signs
/// the next one. `names` gives validators' names from the genesis file (a proven answer
/// leaves names out: the chain does not hold them).
pub fn validators_answer(
    height: Height,
    set: &ValidatorSet,
    next_hash: Hash,
    names: Option<&std::collections::BTreeMap<acta_ledger::PublicKey, String>>,
) -> Value {
    let validators = set
        .validators()
        .iter()
        .enumerate()
        .map(|(index, v)| ValidatorShown {
            index,
            public_key: v.public_key,
            power: v.power.0,
            name: names.map(|names| names.get(&v.public_key).cloned()),
        })
        .collect();
    json!(ValidatorSetAnswer {
        height,
        hash: set.hash(),
        total_power: set.total_power().0,
        validators,
        next_hash,
    })
}

/// A DID resolution result (W3C DID Resolution) without `nextVersionId`, which a later
/// state gives (the node adds it when it does not prove the answer).
fn did_resolution(src: &mut dyn Source, did: &Did) -> Result<Value, AnswerError> {
    let height = src.height();
    let record: DidRecord = get(src, NS_DID, &did.0)?.ok_or_else(|| AnswerError::NotFound {
        message: format!("{did} is not on the ledger at height {height}"),
        extra: Some(("didResolutionMetadata", json!({ "error": "notFound" }))),
    })?;
    to_json(DidResolution {
        context: "https://w3id.org/did-resolution/v1",
        did_document: w3c_document(&record),
        did_resolution_metadata: ResolutionMetadata {
            content_type: "application/did+ld+json",
        },
        did_document_metadata: DidDocumentMetadata {
            created: rfc3339(record.created_time),
            updated: rfc3339(record.updated_time),
            version_id: record.updated.0.to_string(),
            next_version_id: None,
            deactivated: record.deactivated,
            created_height: record.created,
            updated_height: record.updated,
            next_key_hash: record.next_key_hash,
        },
    })
}

/// A credential's standing at the source's height and time: reads the DID records of its
/// subject and issuer as well, since a deactivated DID ends the credential's worth.
fn credential_status(
    src: &mut dyn Source,
    c: &CredentialRecord,
) -> Result<credential::Standing, AnswerError> {
    let subject: Option<DidRecord> = get(src, NS_DID, &c.subject.0)?;
    let issuer: Option<DidRecord> = get(src, NS_DID, &c.issuer.0)?;
    Ok(credential::status(
        c,
        subject.as_ref(),
        issuer.as_ref(),
        src.time(),
    ))
}

/// A council proposal with the hash of its action, which an approval must name.
fn proposal_shown(proposal: GovProposal) -> ProposalShown {
    ProposalShown {
        action_hash: proposal.action.hash(),
        proposal,
    }
}

fn device(src: &mut dyn Source, did: &Did) -> Result<DeviceRecord, AnswerError> {
    let height = src.height();
    get(src, NS_DEVICE, &did.0)?.ok_or_else(|| {
        not_found(format!(
            "{did} is not a registered device at height {height}"
        ))
    })
}

fn get_round(src: &mut dyn Source, id: u64) -> Result<BudgetRound, AnswerError> {
    let height = src.height();
    get(src, NS_ROUND, &id.to_be_bytes())?
        .ok_or_else(|| not_found(format!("no budget round {id} at height {height}")))
}

fn projects(src: &mut dyn Source, round: &BudgetRound) -> Result<Vec<BudgetProject>, AnswerError> {
    let mut out = Vec::new();
    for i in 0..round.projects {
        if let Some(p) = get(src, NS_PROJECT, &project_key(round.id, i))? {
            out.push(p);
        }
    }
    Ok(out)
}

/// Where a round stands at a time, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Opened; proposals from `proposals_from`.
    Announced,
    Proposals,
    Voting,
    /// `closes_at` has passed; the tally is due (its height once the round is closed).
    Tallying,
    /// The tally is stored.
    Closed,
    /// The council cancelled it while it was open: never tallied.
    Cancelled,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Announced => "announced",
            Phase::Proposals => "proposals",
            Phase::Voting => "voting",
            Phase::Tallying => "tallying",
            Phase::Closed => "closed",
            Phase::Cancelled => "cancelled",
        }
    }

    /// When this phase of `round` ends, if by a time.
    pub fn ends(self, round: &BudgetRound) -> Option<Timestamp> {
        match self {
            Phase::Announced => Some(round.spec.proposals_from),
            Phase::Proposals => Some(round.spec.voting_from),
            Phase::Voting => Some(round.spec.closes_at),
            Phase::Tallying | Phase::Closed | Phase::Cancelled => None,
        }
    }
}

/// The phase of a round in the block after one whose time is `time` (a block's time is
/// later than its parent's).
pub fn phase(round: &BudgetRound, time: Timestamp) -> Phase {
    let s = &round.spec;
    match round.status {
        RoundStatus::Tallied => Phase::Closed,
        RoundStatus::Cancelled { .. } => Phase::Cancelled,
        RoundStatus::Tallying { .. } => Phase::Tallying,
        // The next block closes it.
        RoundStatus::Open if time >= s.closes_at => Phase::Tallying,
        RoundStatus::Open if time < s.proposals_from => Phase::Announced,
        RoundStatus::Open if time < s.voting_from => Phase::Proposals,
        RoundStatus::Open => Phase::Voting,
    }
}

/// A round with its count of voters (kept apart, under `budget_voters`) and its phase.
fn round_summary(src: &mut dyn Source, r: BudgetRound) -> Result<RoundSummary, AnswerError> {
    let voters: u64 = get(src, NS_VOTERS, &r.id.to_be_bytes())?.unwrap_or(0);
    let time = src.time();
    let now = phase(&r, time);
    let tokens = match r.spec.secrecy {
        BallotSecrecy::Public => None,
        BallotSecrecy::Secret { .. } => {
            Some(get(src, NS_TOKENS, &r.id.to_be_bytes())?.unwrap_or_default())
        }
    };
    Ok(RoundSummary {
        phase: now,
        // The phases as dates, and how long the one under way has left at the block's time.
        dates: RoundDates {
            proposals_from: r.spec.proposals_from.rfc3339(),
            voting_from: r.spec.voting_from.rfc3339(),
            closes_at: r.spec.closes_at.rfc3339(),
        },
        phase_ends: now.ends(&r).map(Timestamp::rfc3339),
        phase_left_ms: now.ends(&r).map(|end| end.0.saturating_sub(time.0)),
        time: time.rfc3339(),
        tally_due: match r.status {
            RoundStatus::Tallying { due, .. } => Some(due),
            _ => None,
        },
        tokens,
        result: None,
        round: RoundShown { round: r, voters },
    })
}

/// A round with secret ballots; a token query about a public round finds nothing.
fn secret_round(src: &mut dyn Source, id: u64) -> Result<BudgetRound, AnswerError> {
    let r = get_round(src, id)?;
    if r.spec.secrecy == BallotSecrecy::Public {
        return Err(not_found(format!(
            "round {id} has public ballots: it has no tokens"
        )));
    }
    Ok(r)
}

/// Token request `index` of round `id`, which the round counts.
fn token_request(src: &mut dyn Source, id: u64, index: u64) -> Result<TokenRequest, AnswerError> {
    get(src, NS_TOKEN_REQUEST, &sub_key(id, &index.to_be_bytes()))?.ok_or_else(|| {
        AnswerError::Internal(format!(
            "round {id} counts token request {index} but it is missing"
        ))
    })
}

/// A whole amount with thousands separators: `194,227`.
pub fn amount(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `num / den` rounded to two decimals, with thousands separators: `6,165.67`.
pub fn decimal(num: u128, den: u128) -> String {
    if den == 0 {
        return "-".into();
    }
    // The whole part, then the remainder's hundredths, rounded half up.
    let (mut whole, rest) = (num / den, num % den);
    let mut hundredths = match rest.checked_mul(100).and_then(|r| r.checked_add(den / 2)) {
        Some(r) => r / den,
        // Only for denominators near u128::MAX: truncated instead.
        None => rest / (den / 100),
    };
    if hundredths >= 100 {
        whole += 1;
        hundredths = 0;
    }
    format!("{}.{hundredths:02}", amount(whole))
}

/// An amount in `currency` as people write it: `PLN 12,000`.
pub fn money_in(currency: &str, n: u128) -> String {
    format!("{currency} {}", amount(n))
}

/// Milliseconds since 1970 as an RFC 3339 UTC time (`2026-11-21T08:53:22Z`).
pub fn rfc3339(t: Timestamp) -> String {
    t.rfc3339()
}

/// An Ed25519 public key as a multibase (`z`, base58btc) multicodec (`0xed01`) string.
pub fn multibase(key: &acta_ledger::PublicKey) -> String {
    let mut bytes = vec![0xed, 0x01];
    bytes.extend_from_slice(&key.0);
    format!("z{}", bs58::encode(bytes).into_string())
}

/// The W3C DID document of a record.
pub fn did_document(r: &DidRecord) -> Value {
    json!(w3c_document(r))
}

fn w3c_document(r: &DidRecord) -> W3cDidDocument {
    let did = r.did.to_string();
    let methods = r
        .document
        .verification_methods
        .iter()
        .map(|m| W3cMethod {
            id: format!("{did}#{}", m.id),
            kind: "Ed25519VerificationKey2020",
            controller: did.clone(),
            public_key_multibase: multibase(&m.key),
        })
        .collect();
    let refs: Vec<String> = r
        .document
        .verification_methods
        .iter()
        .map(|m| format!("{did}#{}", m.id))
        .collect();
    let controller = (!r.document.controllers.is_empty()).then(|| {
        let mut controllers = vec![did.clone()];
        controllers.extend(r.document.controllers.iter().map(ToString::to_string));
        controllers
    });
    let service = (!r.document.services.is_empty()).then(|| {
        r.document
            .services
            .iter()
            .map(|s| W3cService {
                id: format!("{did}#{}", s.id),
                kind: s.kind.as_str().to_string(),
                service_endpoint: s.endpoint.as_str().to_string(),
            })
            .collect()
    });
    W3cDidDocument {
        context: vec![
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/ed25519-2020/v1",
        ],
        id: did,
        controller,
        verification_method: methods,
        authentication: refs.clone(),
        assertion_method: refs.clone(),
        capability_invocation: refs,
        service,
    }
}

/// The DID document a W3C document (as [`did_document`] writes it, or a resolution result
/// holding one) describes, for `did`: keys as multikeys under fragments, controllers other
/// than the DID itself, services. The verification relationships may be listed, but only with
/// keys of the document (every key of an Acta DID has every relationship). Anything else is
/// refused, naming it.
pub fn did_document_from(
    v: &Value,
    did: &Did,
) -> Result<acta_ledger::records::DidDocument, String> {
    use acta_ledger::records::{DidDocument, Service, VerificationMethod};
    use acta_ledger::types::Text;
    let doc = v.get("didDocument").unwrap_or(v);
    let Value::Object(fields) = doc else {
        return Err("not a JSON object".into());
    };
    let me = did.to_string();
    if let Some(id) = doc.get("id") {
        if id.as_str() != Some(me.as_str()) {
            return Err(format!("id is {id}, not {me}"));
        }
    }
    let known = [
        "@context",
        "id",
        "verificationMethod",
        "authentication",
        "assertionMethod",
        "capabilityInvocation",
        "controller",
        "service",
    ];
    if let Some(other) = fields.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("an Acta DID document holds no {other:?}"));
    }
    // A fragment from `did#frag` or `#frag`.
    let fragment = |field: &str, id: &Value| -> Result<String, String> {
        let id = id
            .as_str()
            .ok_or_else(|| format!("{field}: not a string"))?;
        let frag = id
            .strip_prefix(me.as_str())
            .unwrap_or(id)
            .strip_prefix('#')
            .ok_or_else(|| format!("{field}: {id:?} is not {me}#fragment or #fragment"))?;
        Ok(frag.to_string())
    };
    let list = |name: &str| -> Vec<Value> {
        match doc.get(name) {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a.clone(),
            Some(one) => vec![one.clone()],
        }
    };
    let mut verification_methods = Vec::new();
    for (i, m) in list("verificationMethod").iter().enumerate() {
        let field = format!("verificationMethod[{i}]");
        let id = fragment(&format!("{field}.id"), &m["id"])?;
        match m["type"].as_str() {
            Some("Ed25519VerificationKey2020" | "Multikey") | None => {}
            Some(t) => return Err(format!("{field}.type: {t:?} is not an Ed25519 key type")),
        }
        if let Some(c) = m.get("controller") {
            if c.as_str() != Some(me.as_str()) {
                return Err(format!(
                    "{field}.controller: a key of {me} is controlled by {me}"
                ));
            }
        }
        let key = m["publicKeyMultibase"]
            .as_str()
            .and_then(crate::vc::multikey)
            .ok_or_else(|| {
                format!("{field}.publicKeyMultibase: not an Ed25519 multikey (z6Mk...)")
            })?;
        verification_methods.push(VerificationMethod {
            id: Text::new(id).map_err(|e| format!("{field}.id: {e}"))?,
            key,
        });
    }
    for relationship in ["authentication", "assertionMethod", "capabilityInvocation"] {
        for (i, r) in list(relationship).iter().enumerate() {
            let field = format!("{relationship}[{i}]");
            let frag = fragment(&field, r)?;
            if !verification_methods.iter().any(|m| m.id.as_str() == frag) {
                return Err(format!("{field}: #{frag} is not a key of the document"));
            }
        }
    }
    let mut controllers = Vec::new();
    for (i, c) in list("controller").iter().enumerate() {
        let c = c
            .as_str()
            .ok_or_else(|| format!("controller[{i}]: not a string"))?;
        if c == me {
            continue;
        }
        controllers.push(Did::parse(c).map_err(|e| format!("controller[{i}]: {c:?}: {e}"))?);
    }
    let mut services = Vec::new();
    for (i, sv) in list("service").iter().enumerate() {
        let field = format!("service[{i}]");
        let text = |name: &str| {
            sv[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{field}.{name}: not a string"))
        };
        services.push(Service {
            id: Text::new(fragment(&format!("{field}.id"), &sv["id"])?)
                .map_err(|e| format!("{field}.id: {e}"))?,
            kind: Text::new(text("type")?).map_err(|e| format!("{field}.type: {e}"))?,
            endpoint: Text::new(text("serviceEndpoint")?)
                .map_err(|e| format!("{field}.serviceEndpoint: {e}"))?,
        });
    }
    Ok(DidDocument {
        verification_methods,
        controllers,
        services,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_resolved_document_reads_back_as_the_document() {
        use acta_ledger::records::{DidDocument, Service, VerificationMethod};
        use acta_ledger::types::Text;
        let did = Did([4; 16]);
        let record = DidRecord {
            did,
            document: DidDocument {
                verification_methods: vec![
                    VerificationMethod {
                        id: Text::new("key-1").unwrap(),
                        key: acta_ledger::crypto::Keypair::from_seed([1; 32]).public(),
                    },
                    VerificationMethod {
                        id: Text::new("phone").unwrap(),
                        key: acta_ledger::crypto::Keypair::from_seed([2; 32]).public(),
                    },
                ],
                controllers: vec![Did([5; 16])],
                services: vec![Service {
                    id: Text::new("home").unwrap(),
                    kind: Text::new("LinkedDomains").unwrap(),
                    endpoint: Text::new("https://example.org").unwrap(),
                }],
            },
            next_key_hash: None,
            created: Height(1),
            created_time: Timestamp(0),
            updated: Height(1),
            updated_time: Timestamp(0),
            deactivated: false,
        };
        let shown = did_document(&record);
        assert_eq!(did_document_from(&shown, &did).unwrap(), record.document);
        let resolution = json!({ "didDocument": shown.clone() });
        assert_eq!(
            did_document_from(&resolution, &did).unwrap(),
            record.document
        );
        // Edits a person makes, and what is refused.
        let mut edited = shown.clone();
        edited["verificationMethod"][1]["id"] = json!("#laptop");
        edited["authentication"] = json!(["#key-1"]);
        edited["assertionMethod"] = json!(["#key-1", "#laptop"]);
        edited
            .as_object_mut()
            .unwrap()
            .remove("capabilityInvocation");
        let doc = did_document_from(&edited, &did).unwrap();
        assert_eq!(doc.verification_methods[1].id.as_str(), "laptop");
        for (pointer, value, says) in [
            ("/id", json!("did:acta:other"), "id is"),
            (
                "/verificationMethod/0/publicKeyMultibase",
                json!("zQ3s"),
                "publicKeyMultibase",
            ),
            (
                "/verificationMethod/0/type",
                json!("JsonWebKey2020"),
                "type",
            ),
            ("/assertionMethod/0", json!("#nope"), "assertionMethod[0]"),
            ("/controller/1", json!("did:web:x"), "controller[1]"),
        ] {
            let mut bad = shown.clone();
            *bad.pointer_mut(pointer).unwrap() = value;
            let e = did_document_from(&bad, &did).unwrap_err();
            assert!(e.contains(says), "{pointer}: {e}");
        }
        let mut bad = shown.clone();
        bad["keyAgreement"] = json!([]);
        assert!(did_document_from(&bad, &did)
            .unwrap_err()
            .contains("keyAgreement"));
    }

    use super::*;

    #[test]
    fn times_are_rfc3339() {
        assert_eq!(rfc3339(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(Timestamp(951_782_400_000)), "2000-02-29T00:00:00Z");
        assert_eq!(
            rfc3339(Timestamp(1_795_251_202_999)),
            "2026-11-21T08:53:22Z"
        );
    }

    #[test]
    fn keys_are_multibase_ed25519() {
        // The did:key test vector of the W3C CCG: 32 bytes of a known key.
        let key = acta_ledger::PublicKey(
            hex::decode("2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6")
                .unwrap()
                .try_into()
                .unwrap(),
        );
        assert_eq!(
            multibase(&key),
            "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
        );
    }

    #[test]
    fn targets_parse_back_to_their_query() {
        let did = Did([7; 16]);
        let queries = [
            Query::Did(did),
            Query::DidCredentials(did),
            Query::Credential(Hash::digest(b"c")),
            Query::Issuer(did),
            Query::Council,
            Query::CouncilProposals { from: 3, limit: 7 },
            Query::CouncilProposal(2),
            Query::Params,
            Query::Device(did),
            Query::Attestations {
                device: did,
                from: None,
                limit: 20,
            },
            Query::Attestations {
                device: did,
                from: Some(4),
                limit: 100,
            },
            Query::Attestation {
                device: did,
                sequence: 9,
            },
            Query::Rounds { from: 0, limit: 1 },
            Query::Round(1),
            Query::Proposals(1),
            Query::Result(1),
            Query::Ballots(2),
            Query::Receipt {
                round: 2,
                voter: did,
            },
            Query::State {
                namespace: "nonce".into(),
                key: vec![1, 2],
            },
        ];
        for q in queries {
            assert_eq!(Query::parse(&q.target()), Ok(q.clone()), "{}", q.target());
        }
        for bad in [
            "/dids/x",
            "/council?limit=3",
            "/budget/rounds?limit=0",
            "/budget/rounds?limit=101",
            "/budget/rounds?from=1&from=2",
            "/state/Bad/00",
            "/txs/00",
            "",
        ] {
            assert!(
                matches!(Query::parse(bad), Err(AnswerError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}

/// A validator as `actad show-node` describes it (the JSON an agency sends for the genesis
/// file or a council's `AddValidator`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShownValidator {
    pub moniker: String,
    pub key: acta_ledger::PublicKey,
    pub node: acta_ledger::records::ValidatorNode,
}

/// Reads what `actad show-node` printed, with `address` as the address others dial (`""`:
/// none, the node only dials out). Without `address`, the node's `p2p_listen` is used,
/// unless it is a wildcard (0.0.0.0 or ::) that nobody else can dial.
pub fn shown_validator(shown: &Value, address: Option<String>) -> Result<ShownValidator, String> {
    let field = |name: &str| -> Result<&str, String> {
        shown[name]
            .as_str()
            .ok_or_else(|| format!("no field {name}: not the JSON of actad show-node"))
    };
    let address = match address {
        Some(a) => a,
        None => {
            let listen = field("p2p_listen")?;
            if listen.contains("/0.0.0.0/") || listen.contains("/::/") {
                return Err(format!(
                    "the node listens on {listen}, which others cannot dial: give --address with its public address (or --address '' if it only dials out)"
                ));
            }
            listen.to_string()
        }
    };
    let key = acta_ledger::PublicKey::from_hex(field("consensus_key")?)
        .and_then(|k| k.validate().map(|()| k))
        .map_err(|e| format!("field consensus_key: {e}"))?;
    let node = acta_ledger::records::ValidatorNode {
        peer_id: acta_ledger::types::Text::new(field("peer_id")?)
            .map_err(|e| format!("field peer_id: {e}"))?,
        address: acta_ledger::types::Text::new(address).map_err(|e| format!("address: {e}"))?,
    };
    node.check().map_err(|e| e.to_string())?;
    Ok(ShownValidator {
        moniker: field("moniker")?.to_string(),
        key,
        node,
    })
}
