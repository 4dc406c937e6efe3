//! Governance: the council (m-of-n keys from genesis) proposes and approves actions. The
//! approval that reaches the threshold carries the action out in the same transaction.
//!
//! State: `council` (key `b"council"`) holds the [`Council`]; `gov_proposal` (key: the id,
//! u64 big-endian) each [`GovProposal`]; `gov_next` (key `b"next"`) the next id; `issuer`
//! (key: the DID's 16 bytes) each [`IssuerRecord`]; `param` (key: the name) each parameter
//! (see [`crate::params`]).
//!
//! An approval names the proposal's id and the hash of its action, and counts only if that
//! hash is the action's: a member's approval can never count for an action the member did
//! not see. (A transaction is final once in a block, so an approval refused because its
//! proposal did not exist yet can never be replayed either.)
//! Validator changes live in [`crate::staking`], budget rounds in [`crate::budget`].

use acta_ledger::{
    records::{Council, CredentialKind, GovAction, GovProposal, IssuerRecord, RoundOpener},
    tx::GovernanceCall,
    Height, PublicKey,
};

use crate::{
    budget, credential,
    error::{CallError, TxError},
    executor::{BlockContext, Event},
    identity, params, staking,
    view::StateView,
};

pub const NS_COUNCIL: &str = "council";
pub const NS_GOV_PROPOSAL: &str = "gov_proposal";
pub const NS_GOV_NEXT: &str = "gov_next";
pub const NS_ISSUER: &str = "issuer";

pub(crate) fn execute(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    signer: &PublicKey,
    call: &GovernanceCall,
) -> Result<Vec<Event>, CallError> {
    let council: Council = view.get(NS_COUNCIL, b"council")?.ok_or_else(|| {
        TxError::NotFound("the council (the chain has no genesis council)".into())
    })?;
    if !council.is_member(signer) {
        return Err(TxError::Unauthorized(format!("{signer} is not a council member")).into());
    }
    match call {
        GovernanceCall::Propose { action } => {
            check(view, ctx, action, ctx.height)?;
            let id: u64 = view.get(NS_GOV_NEXT, b"next")?.unwrap_or(0);
            let next = id
                .checked_add(1)
                .ok_or_else(|| TxError::Limit("proposal ids exhausted".into()))?;
            view.put(NS_GOV_NEXT, b"next", &next);
            let lifetime = params::get(view, &params::PROPOSAL_LIFETIME_S)?;
            let proposal = GovProposal {
                id,
                action: action.clone(),
                approvals: vec![*signer],
                created: ctx.height,
                executed: None,
                expires: ctx.time.plus_ms(lifetime.saturating_mul(1000)),
            };
            let mut events = vec![Event::new("gov_proposed", &[("id", id.to_string())])];
            settle(view, ctx, &council, proposal, &mut events)?;
            Ok(events)
        }
        GovernanceCall::Approve {
            proposal,
            action_hash,
        } => {
            let mut p: GovProposal = view
                .get(NS_GOV_PROPOSAL, &proposal.to_be_bytes())?
                .ok_or_else(|| TxError::NotFound(format!("proposal {proposal}")))?;
            let actual = p.action.hash();
            if *action_hash != actual {
                return Err(TxError::ActionMismatch(format!(
                    "proposal {proposal}'s action hashes to {actual}, the approval names {action_hash}"
                ))
                .into());
            }
            if p.executed.is_some() {
                return Err(TxError::Invalid(format!(
                    "proposal {proposal} was already carried out"
                ))
                .into());
            }
            // A proposal the council let lie is not carried out long after, in a world it
            // was not about: it must be made again.
            if ctx.time > p.expires {
                return Err(TxError::WrongPhase(format!(
                    "proposal {proposal} expired at {} (the block's time is {}): propose it again",
                    p.expires.rfc3339(),
                    ctx.time.rfc3339()
                ))
                .into());
            }
            if let Err(at) = p.approvals.binary_search(signer) {
                p.approvals.insert(at, *signer);
            } else {
                return Err(TxError::AlreadyExists(format!(
                    "{signer}'s approval of proposal {proposal}"
                ))
                .into());
            }
            let mut events = vec![Event::new("gov_approved", &[("id", proposal.to_string())])];
            settle(view, ctx, &council, p, &mut events)?;
            Ok(events)
        }
    }
}

/// Stores the proposal, carrying out its action first if it has enough approvals.
fn settle(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    council: &Council,
    mut p: GovProposal,
    events: &mut Vec<Event>,
) -> Result<(), CallError> {
    if p.approvals.len() >= usize::from(council.threshold) {
        // The world may have changed since the proposal: check again before acting.
        check(view, ctx, &p.action, p.created)?;
        let more = apply(view, ctx, p.id, &p.action)?;
        events.extend(more);
        p.executed = Some(ctx.height);
        events.push(Event::new("gov_executed", &[("id", p.id.to_string())]));
    }
    view.put(NS_GOV_PROPOSAL, &p.id.to_be_bytes(), &p);
    Ok(())
}

/// Whether `action`, proposed at height `created`, can be carried out now.
fn check(
    view: &StateView<'_>,
    ctx: &BlockContext,
    action: &GovAction,
    created: Height,
) -> Result<(), CallError> {
    match action {
        GovAction::RegisterIssuer { did, kinds } => {
            identity::live(view, did)?;
            // A registration proposed before the issuer was revoked was not about the
            // revocation: it cannot undo it, however late its approvals come.
            if let Some(i) = view.get::<IssuerRecord>(NS_ISSUER, &did.0)? {
                if let Some(revoked) = i.revoked.filter(|r| created <= *r) {
                    return Err(TxError::Invalid(format!(
                        "the registration of {did} was proposed at height {created}, not after its revocation at {revoked}: propose it again"
                    ))
                    .into());
                }
            }
            let mut sorted = kinds.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.is_empty() || sorted.len() != kinds.len() {
                return Err(TxError::Invalid(
                    "an issuer needs one or more distinct credential kinds".into(),
                )
                .into());
            }
        }
        GovAction::RevokeIssuer { did } => match view.get::<IssuerRecord>(NS_ISSUER, &did.0)? {
            None => return Err(TxError::NotFound(format!("issuer {did}")).into()),
            Some(i) if i.revoked.is_some() => {
                return Err(TxError::Invalid(format!("issuer {did} is already revoked")).into())
            }
            Some(_) => {}
        },
        GovAction::SetParameter { name, value } => {
            params::check(name.as_str(), *value)?;
        }
        GovAction::AddValidator { key, power, node } => {
            staking::check_change(view, key, Some(*power), true)?;
            staking::check_node(view, key, node)?;
        }
        GovAction::RemoveValidator { key } => staking::check_change(view, key, None, false)?,
        GovAction::SetPower { key, power } => {
            staking::check_change(view, key, Some(*power), false)?
        }
        GovAction::OpenBudgetRound(spec) => budget::check_spec(ctx, spec)?,
        GovAction::CancelBudgetRound { round } => {
            budget::check_cancel(view, ctx, *round)?;
        }
        GovAction::RevokeCredential { id } => {
            credential::check_council_revoke(view, id)?;
        }
    }
    Ok(())
}

fn apply(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    proposal: u64,
    action: &GovAction,
) -> Result<Vec<Event>, CallError> {
    match action {
        GovAction::RegisterIssuer { did, kinds } => {
            let mut kinds: Vec<CredentialKind> = kinds.clone();
            kinds.sort();
            view.put(
                NS_ISSUER,
                &did.0,
                &IssuerRecord {
                    did: *did,
                    kinds,
                    registered: ctx.height,
                    revoked: None,
                },
            );
        }
        GovAction::RevokeIssuer { did } => {
            let mut issuer: IssuerRecord =
                view.get(NS_ISSUER, &did.0)?.expect("checked just before");
            issuer.revoked = Some(ctx.height);
            view.put(NS_ISSUER, &did.0, &issuer);
        }
        GovAction::SetParameter { name, value } => {
            params::set(view, name.as_str(), *value, ctx.height);
            return Ok(vec![Event::new(
                "parameter_set",
                &[("name", name.to_string()), ("value", value.to_string())],
            )]);
        }
        GovAction::AddValidator { key, power, node } => {
            staking::set_node(view, key, Some(node));
            return staking::apply_change(view, key, Some(*power));
        }
        GovAction::SetPower { key, power } => {
            return staking::apply_change(view, key, Some(*power))
        }
        GovAction::RemoveValidator { key } => {
            staking::set_node(view, key, None);
            return staking::apply_change(view, key, None);
        }
        GovAction::OpenBudgetRound(spec) => {
            return budget::open_round(view, ctx, spec, RoundOpener::Council { proposal })
        }
        GovAction::CancelBudgetRound { round } => return budget::cancel_round(view, ctx, *round),
        GovAction::RevokeCredential { id } => return credential::council_revoke(view, ctx, id),
    }
    Ok(Vec::new())
}
