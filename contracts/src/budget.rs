//! Participatory budgets. A BudgetOffice credential holder (or the council) opens a round
//! for a district with a budget in a currency, phases by date, a ballot format, a rule
//! profile and its ballots' secrecy. Residents of the district propose projects while
//! proposals are open and vote while voting is open, both judged by block time; a later
//! ballot replaces the earlier one. In a secret round a resident asks for a token (signed
//! by its DID), the registrar answers with a blind signature, and the resident votes from
//! a one-time ballot key with the unblinded token: no ballot names a resident. The first
//! block whose time reaches `closes_at` closes the round (its ballots are frozen, the
//! round is `tallying`); the tally (exact arithmetic, [`crate::tally`]) runs off the
//! consensus path ([`crate::tallying`]) and the block `tally_delay` heights later stores it
//! with the approvals of every project. A round exports to a Pabulib `.pb` file that
//! replays to the same outcome.
//!
//! State (round ids are u64 big-endian, project indices u32 big-endian):
//! - `budget_round` (id): the [`BudgetRound`]; `budget_next` (`b"next"`): the next id;
//! - `budget_project` (id, index): each [`BudgetProject`]; `budget_proposals_of` (id, DID):
//!   how many projects a resident proposed;
//! - `budget_ballot` (id, index): each [`BudgetBallot`]; `budget_voter` (id, DID): the index
//!   of a voter's ballot; `budget_voters` (id): how many distinct voters the round has
//!   (`u64`, absent for none), whose ballots are numbered 0 to that count - 1;
//! - `budget_closing` (`b"closing"`): the open rounds as (`closes_at`, id), in that order
//!   (`Vec<(Timestamp, u64)>`, absent for none); `budget_pending`
//!   (`b"pending"`): how many rounds are open or tallying (`u64`, absent for none, at most
//!   [`ROUNDS_PENDING_MAX`]), which tells a node to keep making blocks at its normal pace
//!   so that phases begin on time and tallies come due (`node::Node`, no empty blocks
//!   otherwise);
//!   `budget_tallying` (`b"tallying"`): the rounds tallying, each with the height whose
//!   block stores its tally (`Vec<(Height, u64)>`, absent for none);
//! - `budget_tally` (id): the [`TallyRecord`], which commits to the tallied ballots by
//!   their RFC 9162 root;
//! - secret rounds (docs/adr/0018-secret-ballots.md): `budget_token_request` (id, request
//!   index u64): each [`TokenRequest`], with the registrar's blind signature once given;
//!   `budget_token_of` (id, DID): the index of a resident's request; `budget_tokens` (id):
//!   the [`TokenCount`] of requests and issued tokens. A secret ballot is stored like a
//!   public one, under the DID form of its ballot key (`budget_voter`), so one token gives
//!   one ballot, which the same ballot key may replace; `budget_registrar_key` (SHA-256 of
//!   a registrar key's DER): the one round that key serves.

use std::sync::Arc;

use acta_ledger::{
    records::{
        ballots_root, BallotFormat, BallotSecrecy, BallotToken, BudgetBallot, BudgetProject,
        BudgetRound, CredentialKind, RoundOpener, RoundSpec, RoundStatus, TallyRecord, TokenCount,
        TokenRequest, ROUND_PROJECTS_MAX, ROUND_VOTERS_MAX,
    },
    state::AuthenticatedState,
    token::{
        check_blind_signature, check_blinded, registrar_key_of, verify_token_once, RegistrarKey,
    },
    tx::BudgetCall,
    Call, ChainId, Did, Hash, Height, PublicKey, Timestamp, Transaction,
};

use crate::{
    credential::require,
    error::{CallError, ExecError, TxError},
    executor::{BlockContext, Event},
    identity::signed_by,
    params,
    tally::{self, Ballot, Election, Project},
    view::StateView,
};

pub const NS_ROUND: &str = "budget_round";
pub const NS_NEXT: &str = "budget_next";
pub const NS_PROJECT: &str = "budget_project";
pub const NS_PROPOSALS_OF: &str = "budget_proposals_of";
pub const NS_BALLOT: &str = "budget_ballot";
pub const NS_VOTER: &str = "budget_voter";
pub const NS_VOTERS: &str = "budget_voters";
/// The open rounds (`b"closing"`): a list of (`closes_at`, round id) in that order.
pub const NS_CLOSING: &str = "budget_closing";
/// The rounds tallying (`b"tallying"`): a list of (height due, round id).
pub const NS_TALLYING: &str = "budget_tallying";
pub const NS_PENDING: &str = "budget_pending";
pub const NS_TALLY: &str = "budget_tally";
pub const NS_TOKEN_REQUEST: &str = "budget_token_request";
pub const NS_TOKEN_OF: &str = "budget_token_of";
pub const NS_TOKENS: &str = "budget_tokens";
pub const NS_REGISTRAR_KEY: &str = "budget_registrar_key";
/// A secret round's ballot's token, at the ballot's index ([`ballot_key`]).
pub const NS_BALLOT_TOKEN: &str = "budget_ballot_token";

/// The most projects one resident may propose in a round.
pub const PROPOSALS_PER_RESIDENT_MAX: u32 = 5;
/// The most rounds one block closes (and so the most tallies due at one height); rounds
/// due beyond it close in the blocks after.
pub const CLOSES_PER_BLOCK_MAX: usize = 4;
/// The longest a round may run from its opening to its close: two years.
pub const ROUND_SPAN_MAX_MS: u64 = 731 * 86_400_000;
/// The most rounds open or tallying at once: every block reads the list of those
/// tallying, so its length is bounded by this, not by the chain's history.
pub const ROUNDS_PENDING_MAX: u64 = 64;

fn round_key(round: u64) -> [u8; 8] {
    round.to_be_bytes()
}

/// The key under [`NS_PROJECT`] of project `index` of `round`.
pub fn project_key(round: u64, index: u32) -> Vec<u8> {
    sub_key(round, &index.to_be_bytes())
}

pub fn sub_key(round: u64, sub: &[u8]) -> Vec<u8> {
    let mut k = round.to_be_bytes().to_vec();
    k.extend_from_slice(sub);
    k
}

pub(crate) fn execute(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    signer: &PublicKey,
    call: &BudgetCall,
) -> Result<Vec<Event>, CallError> {
    match call {
        BudgetCall::OpenRound { office, spec } => {
            signed_by(view, office, signer)?;
            require(view, office, CredentialKind::BudgetOffice, None, ctx.time)?;
            check_spec(ctx, spec)?;
            open_round(view, ctx, spec, RoundOpener::Office(*office))
        }
        BudgetCall::Propose {
            round,
            proposer,
            title,
            cost,
        } => {
            let mut r = Arc::unwrap_or_clone(load(view, *round)?);
            let spec = &r.spec;
            phase(
                ctx,
                "proposals",
                spec.proposals_from,
                spec.voting_from,
                *round,
            )?;
            signed_by(view, proposer, signer)?;
            resident(view, ctx, proposer, &r)?;
            if title.as_str().trim().is_empty() {
                return Err(TxError::Invalid("a project needs a title".into()).into());
            }
            if *cost == 0 || *cost > spec.budget {
                return Err(TxError::Invalid(format!(
                    "a project costs 1 to {} (the round's budget), not {cost}",
                    spec.budget
                ))
                .into());
            }
            if r.projects as usize >= ROUND_PROJECTS_MAX {
                return Err(TxError::Limit(format!(
                    "round {round} has {ROUND_PROJECTS_MAX} projects"
                ))
                .into());
            }
            let count_key = sub_key(*round, &proposer.0);
            let proposed: u32 = view.get(NS_PROPOSALS_OF, &count_key)?.unwrap_or(0);
            if proposed >= PROPOSALS_PER_RESIDENT_MAX {
                return Err(TxError::Limit(format!(
                    "{proposer} already proposed {PROPOSALS_PER_RESIDENT_MAX} projects in round {round}"
                ))
                .into());
            }
            view.put(NS_PROPOSALS_OF, &count_key, &(proposed + 1));
            let index = r.projects;
            let project = BudgetProject {
                round: *round,
                index,
                proposer: *proposer,
                title: title.clone(),
                cost: *cost,
                proposed: ctx.height,
            };
            view.put(NS_PROJECT, &project_key(*round, index), &project);
            r.projects += 1;
            view.put(NS_ROUND, &round_key(*round), &r);
            Ok(vec![Event::new(
                "budget_project_proposed",
                &[("round", round.to_string()), ("project", index.to_string())],
            )])
        }
        BudgetCall::Vote {
            round,
            voter,
            projects,
        } => {
            let r = load(view, *round)?;
            phase(ctx, "voting", r.spec.voting_from, r.spec.closes_at, *round)?;
            if r.spec.secrecy != BallotSecrecy::Public {
                return Err(TxError::Invalid(format!(
                    "round {round} has secret ballots: vote from a ballot key with a token"
                ))
                .into());
            }
            signed_by(view, voter, signer)?;
            resident(view, ctx, voter, &r)?;
            Ok(cast(view, ctx, &r, voter, projects)?.1)
        }
        BudgetCall::RequestToken {
            round,
            voter,
            blinded,
        } => {
            let r = load(view, *round)?;
            before_close(ctx, &r)?;
            let key = registrar_key(&r)?;
            signed_by(view, voter, signer)?;
            resident(view, ctx, voter, &r)?;
            check_blinded(&key, blinded.as_slice()).map_err(|e| TxError::Invalid(e.to_string()))?;
            let of_key = sub_key(*round, &voter.0);
            if let Some(index) = view.get::<u64>(NS_TOKEN_OF, &of_key)? {
                return Err(TxError::AlreadyExists(format!(
                    "{voter}'s token request of round {round} (request {index})"
                ))
                .into());
            }
            let mut count: TokenCount =
                view.get(NS_TOKENS, &round_key(*round))?.unwrap_or_default();
            let index = count.requested;
            if index >= ROUND_VOTERS_MAX {
                return Err(TxError::Limit(format!(
                    "round {round} has {ROUND_VOTERS_MAX} token requests"
                ))
                .into());
            }
            count.requested += 1;
            view.put(NS_TOKENS, &round_key(*round), &count);
            view.put(NS_TOKEN_OF, &of_key, &index);
            view.put(
                NS_TOKEN_REQUEST,
                &sub_key(*round, &index.to_be_bytes()),
                &TokenRequest {
                    round: *round,
                    index,
                    voter: *voter,
                    blinded: blinded.clone(),
                    requested: ctx.height,
                    blind_signature: None,
                    issued: None,
                },
            );
            Ok(vec![Event::new(
                "budget_token_requested",
                &[("round", round.to_string()), ("request", index.to_string())],
            )])
        }
        BudgetCall::IssueToken {
            round,
            request,
            blind_signature,
        } => {
            let r = load(view, *round)?;
            before_close(ctx, &r)?;
            let key = registrar_key(&r)?;
            if let BallotSecrecy::Secret { registrar, .. } = &r.spec.secrecy {
                signed_by(view, registrar, signer)?;
            }
            let request_key = sub_key(*round, &request.to_be_bytes());
            let mut req: TokenRequest =
                view.get(NS_TOKEN_REQUEST, &request_key)?.ok_or_else(|| {
                    TxError::NotFound(format!("token request {request} of round {round}"))
                })?;
            if req.blind_signature.is_some() {
                return Err(TxError::AlreadyExists(format!(
                    "the token of request {request} of round {round}"
                ))
                .into());
            }
            check_blind_signature(&key, req.blinded.as_slice(), blind_signature.as_slice())
                .map_err(|e| TxError::Invalid(e.to_string()))?;
            req.blind_signature = Some(blind_signature.clone());
            req.issued = Some(ctx.height);
            view.put(NS_TOKEN_REQUEST, &request_key, &req);
            let mut count: TokenCount =
                view.get(NS_TOKENS, &round_key(*round))?.unwrap_or_default();
            count.issued += 1;
            view.put(NS_TOKENS, &round_key(*round), &count);
            Ok(vec![Event::new(
                "budget_token_issued",
                &[
                    ("round", round.to_string()),
                    ("request", request.to_string()),
                ],
            )])
        }
        BudgetCall::VoteSecret {
            round,
            token,
            projects,
        } => {
            let r = load(view, *round)?;
            phase(ctx, "voting", r.spec.voting_from, r.spec.closes_at, *round)?;
            let key = registrar_der(&r)?;
            let voter = Did::from_initial_key(signer);
            // Ballots never outnumber the tokens issued against recorded requests: a token
            // made with the registrar's key outside the ledger can take at most the place of
            // a resident who got a token and has not voted.
            let first = view
                .get::<u64>(NS_VOTER, &voter_key(*round, &voter))?
                .is_none();
            let issued = view
                .get::<TokenCount>(NS_TOKENS, &round_key(*round))?
                .unwrap_or_default()
                .issued;
            if first && voters(view, *round)? >= issued {
                return Err(TxError::Limit(format!(
                    "round {round} already has a ballot for each of its {issued} issued tokens"
                ))
                .into());
            }
            // The costly check last (an RSA verification, once per process for each ballot:
            // the mempool's verdict is remembered for the block).
            verify_token_once(key, &ctx.chain_id, *round, signer, token.as_slice())
                .map_err(|e| TxError::Unauthorized(e.to_string()))?;
            let (index, events) = cast(view, ctx, &r, &voter, projects)?;
            if first {
                // A revote comes from the same ballot key, so with the same token.
                view.put(
                    NS_BALLOT_TOKEN,
                    &ballot_key(*round, index),
                    &BallotToken {
                        key: *signer,
                        token: token.clone(),
                    },
                );
            }
            Ok(events)
        }
    }
}

/// Whether the token of a secret ballot (`VoteSecret`) is one the round's registrar
/// signed for the transaction's signer, judged against `view` ahead of the mempool and the
/// executor, whose checks then find the verdict remembered ([`verify_token_once`]): a
/// node runs this off its consensus loop, where it verifies signatures. A token's
/// validity depends only on the round's registrar key, the chain, the round, the ballot
/// key and the token, so `Some(false)` is proof of a forgery whatever the state.
/// `None`: `tx` is no secret ballot, or `view` holds no secret round by that id.
pub fn token_verdict(view: &StateView<'_>, chain: &ChainId, tx: &Transaction) -> Option<bool> {
    let Call::Budget(BudgetCall::VoteSecret { round, token, .. }) = &tx.call else {
        return None;
    };
    let r: BudgetRound = view.get(NS_ROUND, &round_key(*round)).ok()??;
    let BallotSecrecy::Secret { key, .. } = &r.spec.secrecy else {
        return None;
    };
    Some(verify_token_once(key.as_slice(), chain, *round, &tx.signer, token.as_slice()).is_ok())
}

/// Refuses unless the round is still open (not yet at `closes_at`).
fn before_close(ctx: &BlockContext, r: &BudgetRound) -> Result<(), CallError> {
    if ctx.time >= r.spec.closes_at {
        return Err(TxError::WrongPhase(format!(
            "round {} closed at {}",
            r.id,
            r.spec.closes_at.rfc3339()
        ))
        .into());
    }
    Ok(())
}

/// The DER of a secret round's registrar key; a public round has none.
fn registrar_der(r: &BudgetRound) -> Result<&[u8], CallError> {
    match &r.spec.secrecy {
        BallotSecrecy::Secret { key, .. } => Ok(key.as_slice()),
        BallotSecrecy::Public => Err(TxError::Invalid(format!(
            "round {} has public ballots: residents vote as themselves, with no token",
            r.id
        ))
        .into()),
    }
}

/// The registrar key of a secret round (parsed once per process).
fn registrar_key(r: &BudgetRound) -> Result<RegistrarKey, CallError> {
    registrar_key_of(registrar_der(r)?).map_err(|e| {
        // Checked when the round opened.
        ExecError::Corrupt {
            what: NS_ROUND,
            reason: e.to_string(),
        }
        .into()
    })
}

/// Stores (or replaces) the ballot of `voter` (a resident's DID, or a ballot key's DID form
/// in a secret round), checked against the round's format; the ballot's index.
fn cast(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    r: &BudgetRound,
    voter: &Did,
    projects: &[u32],
) -> Result<(u64, Vec<Event>), CallError> {
    let round = &r.id;
    let ballot = check_ballot(view, r, projects)?;
    let voter_key = voter_key(*round, voter);
    let (index, replaced) = match view.get::<u64>(NS_VOTER, &voter_key)? {
        Some(index) => (index, true),
        None => {
            let index = voters(view, *round)?;
            if index >= ROUND_VOTERS_MAX {
                return Err(
                    TxError::Limit(format!("round {round} has {ROUND_VOTERS_MAX} voters")).into(),
                );
            }
            view.put(NS_VOTERS, &round_key(*round), &(index + 1));
            view.put(NS_VOTER, &voter_key, &index);
            (index, false)
        }
    };
    view.put(
        NS_BALLOT,
        &ballot_key(*round, index),
        &BudgetBallot {
            voter: *voter,
            projects: ballot,
            cast: ctx.height,
        },
    );
    Ok((
        index,
        vec![Event::new(
            "budget_ballot_cast",
            &[
                ("round", round.to_string()),
                ("replaced", replaced.to_string()),
            ],
        )],
    ))
}

/// Checks that a round can be opened now with `spec`.
pub(crate) fn check_spec(ctx: &BlockContext, spec: &RoundSpec) -> Result<(), CallError> {
    let bad = |m: String| Err(TxError::Invalid(m).into());
    if spec.title.as_str().trim().is_empty() || spec.district.as_str().trim().is_empty() {
        return bad("a round needs a title and a district".into());
    }
    if spec.budget == 0 {
        return bad("a round needs a budget".into());
    }
    let currency = spec.currency.as_str();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return bad(format!(
            "a round's currency is an ISO 4217 code of three capital letters (PLN), not {currency:?}"
        ));
    }
    if !(ctx.time < spec.voting_from
        && spec.proposals_from < spec.voting_from
        && spec.voting_from < spec.closes_at)
    {
        return bad(format!(
            "phases must satisfy proposals_from < voting_from < closes_at with voting still to \
             come at the block's time {}, got {}, {} and {}",
            ctx.time.rfc3339(),
            spec.proposals_from.rfc3339(),
            spec.voting_from.rfc3339(),
            spec.closes_at.rfc3339()
        ));
    }
    if spec.closes_at.0.saturating_sub(ctx.time.0) > ROUND_SPAN_MAX_MS {
        return bad(format!(
            "a round closes within {} days of its opening, not at {}",
            ROUND_SPAN_MAX_MS / 86_400_000,
            spec.closes_at.rfc3339()
        ));
    }
    if let BallotSecrecy::Secret { key, .. } = &spec.secrecy {
        if let Err(e) = RegistrarKey::from_der(key.as_slice()) {
            return bad(format!("a secret round needs its registrar's RSA key: {e}"));
        }
    }
    if let BallotFormat::Approval { min, max } = spec.ballot {
        if min == 0 || min > max || usize::from(max) > ROUND_PROJECTS_MAX {
            return bad(format!(
                "an approval ballot needs 1 ≤ min ≤ max ≤ {ROUND_PROJECTS_MAX}, got {min} and {max}"
            ));
        }
    }
    Ok(())
}

/// Stores a new round and schedules its tally.
pub(crate) fn open_round(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    spec: &RoundSpec,
    opener: RoundOpener,
) -> Result<Vec<Event>, CallError> {
    if rounds_pending(view)? >= ROUNDS_PENDING_MAX {
        return Err(TxError::Limit(format!(
            "{ROUNDS_PENDING_MAX} rounds are already open or tallying"
        ))
        .into());
    }
    let id: u64 = view.get(NS_NEXT, b"next")?.unwrap_or(0);
    if let BallotSecrecy::Secret { key, .. } = &spec.secrecy {
        // A blinded request names no round: with a key shared by two rounds, a request in
        // one could be answered with a token for the other. One key, one round.
        let key_hash = Hash::digest(key.as_slice());
        if let Some(other) = view.get::<u64>(NS_REGISTRAR_KEY, &key_hash.0)? {
            return Err(TxError::AlreadyExists(format!(
                "registrar key {key_hash} is round {other}'s: each secret round needs a fresh key"
            ))
            .into());
        }
        view.put(NS_REGISTRAR_KEY, &key_hash.0, &id);
    }
    let next = id
        .checked_add(1)
        .ok_or_else(|| TxError::Limit("round ids exhausted".into()))?;
    view.put(NS_NEXT, b"next", &next);
    let mut closing = closing(view)?;
    let at = closing.partition_point(|&entry| entry < (spec.closes_at, id));
    closing.insert(at, (spec.closes_at, id));
    view.put(NS_CLOSING, b"closing", &closing);
    let round = BudgetRound {
        id,
        spec: spec.clone(),
        opener,
        opened: ctx.height,
        projects: 0,
        status: RoundStatus::Open,
    };
    view.put(NS_ROUND, &round_key(id), &round);
    let pending = rounds_pending(view)?;
    view.put(NS_PENDING, b"pending", &pending.saturating_add(1));
    Ok(vec![Event::new(
        "budget_round_opened",
        &[
            ("round", id.to_string()),
            ("district", spec.district.to_string()),
        ],
    )])
}

/// The round `round`, shared (see [`StateView::get_shared`]): a block's ballots all read it.
/// Refused for a round the council cancelled: it takes no proposal, token or ballot.
fn load(view: &StateView<'_>, round: u64) -> Result<Arc<BudgetRound>, CallError> {
    let r: Arc<BudgetRound> = view
        .get_shared(NS_ROUND, &round_key(round))?
        .ok_or_else(|| TxError::NotFound(format!("budget round {round}")))?;
    if let RoundStatus::Cancelled { at } = r.status {
        return Err(TxError::WrongPhase(format!(
            "round {round} was cancelled by the council at height {at}"
        ))
        .into());
    }
    Ok(r)
}

/// Round `round` if the council can cancel it in a block at `ctx`'s time: only while it
/// takes ballots or is yet to (once its `closes_at` has passed its ballots are final, and
/// a block closes it for its tally, at most four a block).
pub(crate) fn check_cancel(
    view: &StateView<'_>,
    ctx: &BlockContext,
    round: u64,
) -> Result<BudgetRound, CallError> {
    let r: BudgetRound = view
        .get(NS_ROUND, &round_key(round))?
        .ok_or_else(|| TxError::NotFound(format!("budget round {round}")))?;
    match r.status {
        RoundStatus::Open if ctx.time >= r.spec.closes_at => Err(TxError::Invalid(format!(
            "round {round}'s voting ended at {}: it is tallied, not cancelled",
            r.spec.closes_at.rfc3339()
        ))
        .into()),
        RoundStatus::Open => Ok(r),
        RoundStatus::Tallying { due, .. } => Err(TxError::Invalid(format!(
            "round {round} has closed and its tally is due at height {due}: a closed round is not cancelled"
        ))
        .into()),
        RoundStatus::Tallied => {
            Err(TxError::Invalid(format!("round {round} is tallied")).into())
        }
        RoundStatus::Cancelled { at } => Err(TxError::Invalid(format!(
            "round {round} was already cancelled at height {at}"
        ))
        .into()),
    }
}

/// Cancels open round `round` (checked by [`check_cancel`]): it leaves the list of open
/// rounds, so it never closes and is never tallied, and frees its place among the
/// [`ROUNDS_PENDING_MAX`].
pub(crate) fn cancel_round(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    round: u64,
) -> Result<Vec<Event>, CallError> {
    let mut r = check_cancel(view, ctx, round)?;
    let mut open = closing(view)?;
    let before = open.len();
    open.retain(|&(_, id)| id != round);
    if open.len() + 1 != before {
        return Err(ExecError::Corrupt {
            what: NS_CLOSING,
            reason: format!("round {round} is open but not listed to close"),
        }
        .into());
    }
    put_list(view, NS_CLOSING, b"closing", &open);
    let pending = rounds_pending(view)?
        .checked_sub(1)
        .ok_or_else(|| ExecError::Corrupt {
            what: NS_PENDING,
            reason: format!("round {round} is open but no round is counted pending"),
        })?;
    if pending == 0 {
        view.delete(NS_PENDING, b"pending");
    } else {
        view.put(NS_PENDING, b"pending", &pending);
    }
    r.status = RoundStatus::Cancelled { at: ctx.height };
    view.put(NS_ROUND, &round_key(round), &r);
    Ok(vec![Event::new(
        "budget_round_cancelled",
        &[("round", round.to_string())],
    )])
}

fn phase(
    ctx: &BlockContext,
    name: &str,
    from: Timestamp,
    until: Timestamp,
    round: u64,
) -> Result<(), CallError> {
    if ctx.time < from || ctx.time >= until {
        return Err(TxError::WrongPhase(format!(
            "{name} of round {round} are open from {} until {}, not at {} (the block's time)",
            from.rfc3339(),
            until.rfc3339(),
            ctx.time.rfc3339()
        ))
        .into());
    }
    Ok(())
}

/// Refuses unless `did` is a resident of the round's district at the block's time.
fn resident(
    view: &StateView<'_>,
    ctx: &BlockContext,
    did: &Did,
    round: &BudgetRound,
) -> Result<(), CallError> {
    let district = round.spec.district.as_str();
    require(
        view,
        did,
        CredentialKind::Resident,
        Some(district),
        ctx.time,
    )
}

/// Checks a ballot against the round's format and returns it sorted.
fn check_ballot(
    view: &StateView<'_>,
    round: &BudgetRound,
    projects: &[u32],
) -> Result<Vec<u32>, CallError> {
    let mut sorted = projects.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != projects.len() {
        return Err(TxError::Invalid("a ballot names a project twice".into()).into());
    }
    if let Some(&p) = sorted.iter().find(|&&p| p >= round.projects) {
        return Err(TxError::NotFound(format!("project {p} of round {}", round.id)).into());
    }
    match round.spec.ballot {
        BallotFormat::Approval { min, max } => {
            let n = sorted.len();
            if n < usize::from(min) || n > usize::from(max) {
                return Err(TxError::Invalid(format!(
                    "an approval ballot of this round names {min} to {max} projects, not {n}"
                ))
                .into());
            }
        }
        BallotFormat::Knapsack => {
            if sorted.is_empty() {
                return Err(TxError::Invalid("a ballot names at least one project".into()).into());
            }
            let mut total: u128 = 0;
            for &p in &sorted {
                total += u128::from(project(view, round.id, p)?.cost);
            }
            if total > u128::from(round.spec.budget) {
                return Err(TxError::Invalid(format!(
                    "the ballot's projects cost {total}, more than the budget {}",
                    round.spec.budget
                ))
                .into());
            }
        }
    }
    Ok(sorted)
}

fn project(view: &StateView<'_>, round: u64, index: u32) -> Result<BudgetProject, ExecError> {
    view.get(NS_PROJECT, &project_key(round, index))?
        .ok_or_else(|| ExecError::Corrupt {
            what: NS_PROJECT,
            reason: format!("round {round} counts project {index} but it is missing"),
        })
}

/// At the start of a block: stores the tallies due at its height, then closes the rounds
/// whose `closes_at` its time has reached (docs/adr/0019-tally-after-the-closing-block.md). A closing only
/// freezes the round; its tally runs off the consensus path ([`crate::tallying`]) and the
/// block `tally_delay` heights later stores it.
pub(crate) fn close_due(
    view: &mut StateView<'_>,
    state: &dyn AuthenticatedState,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    store_due_tallies(view, ctx, events)?;
    close_rounds(view, state, ctx, events)
}

/// The open rounds, each with its `closes_at`, in the order they close.
pub fn closing(view: &StateView<'_>) -> Result<Vec<(Timestamp, u64)>, ExecError> {
    Ok(view.get(NS_CLOSING, b"closing")?.unwrap_or_default())
}

/// The rounds tallying, each with the height whose block stores its tally.
pub fn tallying(view: &StateView<'_>) -> Result<Vec<(Height, u64)>, ExecError> {
    Ok(view.get(NS_TALLYING, b"tallying")?.unwrap_or_default())
}

/// Stores a schedule list under `key`, or deletes it when empty (absent means none).
fn put_list<T: borsh::BorshSerialize>(
    view: &mut StateView<'_>,
    namespace: &'static str,
    key: &[u8],
    list: &[T],
) {
    if list.is_empty() {
        view.delete(namespace, key);
    } else {
        view.put(namespace, key, &list);
    }
}

/// The stored round `id`, which a schedule names.
pub(crate) fn round_at(view: &StateView<'_>, id: u64) -> Result<BudgetRound, ExecError> {
    view.get(NS_ROUND, &round_key(id))?
        .ok_or_else(|| ExecError::Corrupt {
            what: NS_ROUND,
            reason: format!("round {id} is scheduled but missing"),
        })
}

/// Freezes the rounds whose `closes_at` is this block's time or earlier: from now on they
/// are `tallying`, their ballots those of the state after the previous block.
fn close_rounds(
    view: &mut StateView<'_>,
    state: &dyn AuthenticatedState,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let mut open = closing(view)?;
    // At most CLOSES_PER_BLOCK_MAX a block, so that as many tallies at most come due at one
    // height; the others close in the next blocks (their ballots are refused by time
    // already, so their frozen ballots are the same).
    let due = open
        .partition_point(|(at, _)| *at <= ctx.time)
        .min(CLOSES_PER_BLOCK_MAX);
    if due == 0 {
        return Ok(());
    }
    let closing: Vec<(Timestamp, u64)> = open.drain(..due).collect();
    put_list(view, NS_CLOSING, b"closing", &open);
    let delay = params::get(view, &params::TALLY_DELAY)?;
    let due = Height(ctx.height.0.saturating_add(delay));
    let base = Height(ctx.height.0.saturating_sub(1));
    let ballots_at = state.state_root(base).map_err(|source| ExecError::State {
        height: base,
        source,
    })?;
    let mut list = tallying(view)?;
    for (_, id) in closing {
        let mut round = round_at(view, id)?;
        round.status = RoundStatus::Tallying {
            closed: ctx.height,
            due,
            ballots_at,
        };
        view.put(NS_ROUND, &round_key(id), &round);
        list.push((due, id));
        events.push(Event::new(
            "budget_closed",
            &[("round", id.to_string()), ("tally_due", due.to_string())],
        ));
    }
    put_list(view, NS_TALLYING, b"tallying", &list);
    Ok(())
}

/// Stores the tallies due at this block's height: the worker's result if it ran, else
/// the same tally computed here (a pure function of the frozen ballots either way).
fn store_due_tallies(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let list = tallying(view)?;
    if list.is_empty() {
        return Ok(());
    }
    let (mut due, mut later): (Vec<_>, Vec<_>) =
        list.into_iter().partition(|(d, _)| *d <= ctx.height);
    if due.is_empty() {
        return Ok(());
    }
    // At most CLOSES_PER_BLOCK_MAX a block, the earliest due first (then by id): a change
    // of `tally_delay` between closes can make more come due at one height, and the others
    // are stored by the next blocks.
    due.sort();
    if due.len() > CLOSES_PER_BLOCK_MAX {
        later.extend(due.drain(CLOSES_PER_BLOCK_MAX..));
    }
    put_list(view, NS_TALLYING, b"tallying", &later);
    let pending = rounds_pending(view)?
        .checked_sub(due.len() as u64)
        .ok_or_else(|| ExecError::Corrupt {
            what: NS_PENDING,
            reason: format!("fewer rounds pending than the {} tallied", due.len()),
        })?;
    if pending == 0 {
        view.delete(NS_PENDING, b"pending");
    } else {
        view.put(NS_PENDING, b"pending", &pending);
    }
    for (_, id) in due {
        let mut round = round_at(view, id)?;
        let RoundStatus::Tallying { ballots_at, .. } = round.status else {
            return Err(ExecError::Corrupt {
                what: NS_ROUND,
                reason: format!("round {id} is due a tally but is not tallying"),
            });
        };
        let mut record = crate::tallying::result(ballots_at, id, || compute_tally(view, &round))?;
        record.height = ctx.height;
        events.push(Event::new(
            "budget_tallied",
            &[
                ("round", id.to_string()),
                ("selected", record.selected.len().to_string()),
                ("total_cost", record.total_cost.to_string()),
            ],
        ));
        view.put(NS_TALLY, &round_key(id), &record);
        round.status = RoundStatus::Tallied;
        view.put(NS_ROUND, &round_key(id), &round);
    }
    Ok(())
}

/// The tally of `round` over the projects and ballots `view` holds, with height 0 (the
/// block that stores it sets its own).
pub(crate) fn compute_tally(
    view: &StateView<'_>,
    round: &BudgetRound,
) -> Result<TallyRecord, ExecError> {
    let (projects, ballots) = contents_of(view, round)?;
    let election = election(round, &projects, &ballots);
    let ballots_root = ballots_root(&ballots);
    let voters = ballots.len() as u64;
    Ok(match tally::tally(&election, round.spec.rule) {
        Ok(result) => TallyRecord {
            round: round.id,
            rule: round.spec.rule,
            selected: result.selected,
            total_cost: result.total_cost,
            approvals: result.approvals,
            voters,
            endowment: result.endowment,
            add1_steps: result.add1_steps,
            height: Height(0),
            ballots_root,
        },
        // No ballots or no projects: nothing is selected.
        Err(_) => TallyRecord {
            round: round.id,
            rule: round.spec.rule,
            selected: Vec::new(),
            total_cost: 0,
            approvals: election.approval_counts(),
            voters,
            endowment: None,
            add1_steps: None,
            height: Height(0),
            ballots_root,
        },
    })
}

/// The round's projects and ballots, read from the state.
fn contents_of(
    view: &StateView<'_>,
    round: &BudgetRound,
) -> Result<(Vec<BudgetProject>, Vec<BudgetBallot>), ExecError> {
    let mut projects = Vec::with_capacity(round.projects as usize);
    for i in 0..round.projects {
        projects.push(project(view, round.id, i)?);
    }
    let mut ballots = Vec::new();
    for i in 0..voters(view, round.id)? {
        let b: BudgetBallot = view
            .get(NS_BALLOT, &ballot_key(round.id, i))?
            .ok_or_else(|| ExecError::Corrupt {
                what: NS_BALLOT,
                reason: format!("round {} counts ballot {i} but it is missing", round.id),
            })?;
        ballots.push(b);
    }
    Ok((projects, ballots))
}

/// How many rounds are open or tallying: while there are any, blocks must keep coming for
/// their phases to begin on time and their tallies to come due.
pub fn rounds_pending(view: &StateView<'_>) -> Result<u64, ExecError> {
    Ok(view.get(NS_PENDING, b"pending")?.unwrap_or(0))
}

/// How many distinct voters `round` has (their ballots are numbered from 0).
pub fn voters(view: &StateView<'_>, round: u64) -> Result<u64, ExecError> {
    Ok(view.get(NS_VOTERS, &round_key(round))?.unwrap_or(0))
}

/// The key under [`NS_BALLOT`] of ballot `index` of `round`.
pub fn ballot_key(round: u64, index: u64) -> Vec<u8> {
    sub_key(round, &index.to_be_bytes())
}

/// The key under [`NS_VOTER`] of a voter's ballot index in `round`.
pub fn voter_key(round: u64, voter: &Did) -> Vec<u8> {
    sub_key(round, &voter.0)
}

/// A round's projects (in index order) and ballots as an election: project ids are the
/// projects' indices, voters their DIDs. The ledger tallies this at the round's close, and
/// an auditor builds it again from proven records to replay the tally.
pub fn election(
    round: &BudgetRound,
    projects: &[BudgetProject],
    ballots: &[BudgetBallot],
) -> Election {
    let projects = projects
        .iter()
        .map(|p| Project {
            id: p.index.to_string(),
            cost: p.cost,
            name: p.title.to_string(),
        })
        .collect();
    // A secret round's file names its ballots by number: a ballot key's DID names nobody,
    // but a file of DIDs would look like one of residents.
    let secret = round.spec.secrecy != BallotSecrecy::Public;
    let ballots = ballots
        .iter()
        .enumerate()
        .map(|(i, b)| Ballot {
            voter: if secret {
                format!("ballot-{i}")
            } else {
                b.voter.to_string()
            },
            approvals: b.projects.clone(),
        })
        .collect();
    let spec = &round.spec;
    let meta = vec![
        ("description".to_string(), spec.title.to_string()),
        ("unit".to_string(), spec.district.to_string()),
        ("instance".to_string(), format!("acta round {}", round.id)),
        ("rule".to_string(), spec.rule.rule.name().to_string()),
        (
            "tie_break".to_string(),
            spec.rule.tie_break.name().to_string(),
        ),
    ]
    .into_iter()
    .chain(match spec.ballot {
        BallotFormat::Approval { min, max } => vec![
            ("min_length".to_string(), min.to_string()),
            ("max_length".to_string(), max.to_string()),
        ],
        BallotFormat::Knapsack => vec![("max_sum_cost".to_string(), spec.budget.to_string())],
    })
    .collect();
    Election {
        budget: spec.budget,
        projects,
        ballots,
        meta,
    }
}

/// The ballots of a round as they stood after `height`, in index order (`None`: no such
/// round).
pub fn ballots_at(
    state: &dyn AuthenticatedState,
    round: u64,
    height: Height,
) -> Result<Option<Vec<BudgetBallot>>, ExecError> {
    let view = StateView::new(state, height);
    let Some(r) = view.get::<BudgetRound>(NS_ROUND, &round_key(round))? else {
        return Ok(None);
    };
    Ok(Some(contents_of(&view, &r)?.1))
}

/// A round as it stood after `height`, with its projects and ballots as an election (for
/// `.pb` export with [`tally::pb::write`]) and its stored tally if it has closed.
pub fn read_round(
    state: &dyn AuthenticatedState,
    round: u64,
    height: Height,
) -> Result<Option<(BudgetRound, Election, Option<TallyRecord>)>, ExecError> {
    let view = StateView::new(state, height);
    let Some(r) = view.get::<BudgetRound>(NS_ROUND, &round_key(round))? else {
        return Ok(None);
    };
    let (projects, ballots) = contents_of(&view, &r)?;
    let election = election(&r, &projects, &ballots);
    let record = view.get(NS_TALLY, &round_key(round))?;
    Ok(Some((r, election, record)))
}
