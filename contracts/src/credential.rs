//! Credentials: registered issuers anchor credentials (a hash, the subject, the kind, a
//! district for residents, a validity window) and suspend, reinstate or revoke them. No
//! personal data is stored. Reading a credential at a past height gives its status then.
//!
//! State: `credential` (key: the credential's hash) holds its [`CredentialRecord`];
//! `credentials_of` (key: subject DID's 16 bytes and the kind's byte) the ids issued to it.
//!
//! A credential's status follows the identities it binds ([`status`]): once its subject's or
//! its issuer's DID is deactivated, the credential reads `subject_deactivated` or
//! `issuer_deactivated` at that height and every later one, whatever its own record says
//! (deactivation is final, so the state at a height tells). Revocation comes first: a
//! revoked credential reads `revoked` for ever.

use acta_ledger::{
    records::{CredentialKind, CredentialRecord, CredentialStatus, DidRecord, IssuerRecord},
    tx::CredentialCall,
    Did, Hash, PublicKey, Timestamp,
};

use crate::{
    error::{CallError, ExecError, TxError},
    executor::{BlockContext, Event},
    governance::NS_ISSUER,
    identity::{live, signed_by, NS_DID},
    view::StateView,
};

/// What a credential is worth at a height and time, as every reader shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Standing {
    Valid,
    Suspended,
    Revoked,
    Expired,
    NotYetValid,
    /// The subject's DID is deactivated.
    SubjectDeactivated,
    /// The issuer's DID is deactivated.
    IssuerDeactivated,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Valid => "valid",
            Standing::Suspended => "suspended",
            Standing::Revoked => "revoked",
            Standing::Expired => "expired",
            Standing::NotYetValid => "not_yet_valid",
            Standing::SubjectDeactivated => "subject_deactivated",
            Standing::IssuerDeactivated => "issuer_deactivated",
        }
    }
}

/// The standing of credential `c` at `time`, given the DID records of its subject and issuer
/// at the same height (`None` if a DID does not exist there). In order: revoked; subject
/// deactivated; issuer deactivated; suspended; outside the validity window; valid.
pub fn status(
    c: &CredentialRecord,
    subject: Option<&DidRecord>,
    issuer: Option<&DidRecord>,
    time: Timestamp,
) -> Standing {
    let gone = |r: Option<&DidRecord>| r.is_none_or(|r| r.deactivated);
    match c.status {
        CredentialStatus::Revoked => Standing::Revoked,
        _ if gone(subject) => Standing::SubjectDeactivated,
        _ if gone(issuer) => Standing::IssuerDeactivated,
        CredentialStatus::Suspended => Standing::Suspended,
        CredentialStatus::Active if time < c.valid_from => Standing::NotYetValid,
        CredentialStatus::Active if time >= c.valid_until => Standing::Expired,
        CredentialStatus::Active => Standing::Valid,
    }
}

/// [`status`] of `c` in `view`, reading its subject's and issuer's DID records.
pub fn status_in(
    view: &StateView<'_>,
    c: &CredentialRecord,
    time: Timestamp,
) -> Result<Standing, ExecError> {
    let subject = view.get_shared::<DidRecord>(NS_DID, &c.subject.0)?;
    let issuer = view.get_shared::<DidRecord>(NS_DID, &c.issuer.0)?;
    Ok(status(c, subject.as_deref(), issuer.as_deref(), time))
}

pub const NS_CREDENTIAL: &str = "credential";
pub const NS_CREDENTIALS_OF: &str = "credentials_of";
/// The most credentials of one kind a subject's list holds (revoked ones included, until
/// a new one needs their place).
pub const CREDENTIALS_PER_KIND_MAX: usize = 64;
/// The most credentials of one kind that one issuer may have vouching for one subject at
/// once (neither revoked nor expired): no one issuer can fill a subject's list and keep
/// the other issuers out.
pub const CREDENTIALS_PER_ISSUER_MAX: usize = 8;

/// The key under [`NS_CREDENTIALS_OF`] of `subject`'s credentials of `kind`.
pub fn index_key(subject: &Did, kind: CredentialKind) -> Vec<u8> {
    let mut k = subject.0.to_vec();
    k.push(kind as u8);
    k
}

pub(crate) fn execute(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    signer: &PublicKey,
    call: &CredentialCall,
) -> Result<Vec<Event>, CallError> {
    match call {
        CredentialCall::Issue {
            id,
            issuer,
            subject,
            kind,
            district,
            valid_from,
            valid_until,
        } => {
            signed_by(view, issuer, signer)?;
            let registration: IssuerRecord = view.get(NS_ISSUER, &issuer.0)?.ok_or_else(|| {
                TxError::Unauthorized(format!("{issuer} is not a registered issuer"))
            })?;
            if registration.revoked.is_some() {
                return Err(
                    TxError::Unauthorized(format!("{issuer} is no longer an issuer")).into(),
                );
            }
            if !registration.kinds.contains(kind) {
                return Err(TxError::Unauthorized(format!(
                    "{issuer} may not issue {kind:?} credentials"
                ))
                .into());
            }
            live(view, subject)?;
            let needs_district = *kind == CredentialKind::Resident;
            if needs_district && district.as_ref().is_none_or(|d| d.as_str().is_empty()) {
                return Err(
                    TxError::Invalid("a Resident credential names its district".into()).into(),
                );
            }
            if valid_from >= valid_until {
                return Err(TxError::Invalid("the validity window is empty".into()).into());
            }
            if view
                .get::<CredentialRecord>(NS_CREDENTIAL, &id.0)?
                .is_some()
            {
                return Err(TxError::AlreadyExists(format!("credential {id}")).into());
            }
            let key = index_key(subject, *kind);
            let mut ids: Vec<Hash> = view.get(NS_CREDENTIALS_OF, &key)?.unwrap_or_default();
            // Which of the subject's credentials still vouch (neither revoked nor expired),
            // and whose: at most 64 reads.
            let mut vouching = Vec::with_capacity(ids.len());
            for old in &ids {
                let record: Option<CredentialRecord> = view.get(NS_CREDENTIAL, &old.0)?;
                vouching.push(
                    record.filter(|r| {
                        r.status != CredentialStatus::Revoked && ctx.time < r.valid_until
                    }),
                );
            }
            let by_issuer = vouching
                .iter()
                .flatten()
                .filter(|r| r.issuer == *issuer)
                .count();
            if by_issuer >= CREDENTIALS_PER_ISSUER_MAX {
                return Err(TxError::Limit(format!(
                    "{issuer} already vouches for {subject} with {by_issuer} {kind:?} credentials"
                ))
                .into());
            }
            if ids.len() >= CREDENTIALS_PER_KIND_MAX {
                // Full: the oldest that no longer vouches leaves the list (its record
                // stays, and so does the list's history at earlier heights).
                let Some(gone) = vouching.iter().position(Option::is_none) else {
                    return Err(TxError::Limit(format!(
                        "{subject} holds {CREDENTIALS_PER_KIND_MAX} {kind:?} credentials that are neither revoked nor expired"
                    ))
                    .into());
                };
                ids.remove(gone);
            }
            ids.push(*id);
            view.put(NS_CREDENTIALS_OF, &key, &ids);
            let record = CredentialRecord {
                id: *id,
                issuer: *issuer,
                subject: *subject,
                kind: *kind,
                district: district.clone(),
                valid_from: *valid_from,
                valid_until: *valid_until,
                status: CredentialStatus::Active,
                issued: ctx.height,
                updated: ctx.height,
            };
            view.put(NS_CREDENTIAL, &id.0, &record);
            Ok(vec![Event::new(
                "credential_issued",
                &[("id", id.to_hex()), ("subject", subject.to_string())],
            )])
        }
        CredentialCall::Suspend { id } => {
            transition(view, ctx, signer, id, CredentialStatus::Suspended)
        }
        CredentialCall::Reinstate { id } => {
            transition(view, ctx, signer, id, CredentialStatus::Active)
        }
        CredentialCall::Revoke { id } => {
            transition(view, ctx, signer, id, CredentialStatus::Revoked)
        }
    }
}

fn transition(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    signer: &PublicKey,
    id: &Hash,
    to: CredentialStatus,
) -> Result<Vec<Event>, CallError> {
    let record: CredentialRecord = view
        .get(NS_CREDENTIAL, &id.0)?
        .ok_or_else(|| TxError::NotFound(format!("credential {id}")))?;
    signed_by(view, &record.issuer, signer)?;
    change_status(view, ctx, record, to)
}

/// Credential `id` if the council can revoke it: it exists and is not revoked yet.
pub(crate) fn check_council_revoke(
    view: &StateView<'_>,
    id: &Hash,
) -> Result<CredentialRecord, CallError> {
    let record: CredentialRecord = view
        .get(NS_CREDENTIAL, &id.0)?
        .ok_or_else(|| TxError::NotFound(format!("credential {id}")))?;
    if record.status == CredentialStatus::Revoked {
        return Err(TxError::Invalid(format!("credential {id} is already revoked")).into());
    }
    Ok(record)
}

/// The council's revocation of credential `id` (`GovAction::RevokeCredential`), whoever
/// issued it.
pub(crate) fn council_revoke(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    id: &Hash,
) -> Result<Vec<Event>, CallError> {
    let record = check_council_revoke(view, id)?;
    change_status(view, ctx, record, CredentialStatus::Revoked)
}

/// Moves `record` to status `to` if the rules allow it (an issuer no longer registered
/// cannot reinstate), and stores it.
fn change_status(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    mut record: CredentialRecord,
    to: CredentialStatus,
) -> Result<Vec<Event>, CallError> {
    let id = record.id;
    use CredentialStatus::*;
    // An issuer the council revoked may still suspend or revoke what it issued, but no
    // longer vouch for it again.
    if to == Active {
        let registration: Option<IssuerRecord> = view.get(NS_ISSUER, &record.issuer.0)?;
        if registration.is_none_or(|r| r.revoked.is_some()) {
            return Err(TxError::Unauthorized(format!(
                "{} is no longer an issuer and cannot reinstate credentials",
                record.issuer
            ))
            .into());
        }
    }
    let allowed = matches!(
        (record.status, to),
        (Active, Suspended) | (Suspended, Active) | (Active | Suspended, Revoked)
    );
    if !allowed {
        return Err(TxError::Invalid(format!(
            "credential {id} is {:?}; it cannot become {to:?}",
            record.status
        ))
        .into());
    }
    record.status = to;
    record.updated = ctx.height;
    view.put(NS_CREDENTIAL, &id.0, &record);
    let kind = match to {
        Active => "credential_reinstated",
        Suspended => "credential_suspended",
        Revoked => "credential_revoked",
    };
    Ok(vec![Event::new(kind, &[("id", id.to_hex())])])
}

/// Refuses unless `subject` holds a valid credential of `kind` (for `district`, if given)
/// at `time`.
pub(crate) fn require(
    view: &StateView<'_>,
    subject: &Did,
    kind: CredentialKind,
    district: Option<&str>,
    time: Timestamp,
) -> Result<(), CallError> {
    if holds_valid(view, subject, kind, district, time)? {
        return Ok(());
    }
    let scope = district.map_or(String::new(), |d| format!(" for district {d}"));
    Err(TxError::Unauthorized(format!(
        "{subject} holds no valid {kind:?} credential{scope}"
    ))
    .into())
}

/// Whether `subject` holds a credential of `kind` (for `district`, if given) that is valid at
/// `time`: its [`status`] is `valid`.
pub fn holds_valid(
    view: &StateView<'_>,
    subject: &Did,
    kind: CredentialKind,
    district: Option<&str>,
    time: Timestamp,
) -> Result<bool, ExecError> {
    let Some(ids) = view.get_shared::<Vec<Hash>>(NS_CREDENTIALS_OF, &index_key(subject, kind))?
    else {
        return Ok(false);
    };
    for id in ids.iter() {
        let Some(record) = view.get_shared::<CredentialRecord>(NS_CREDENTIAL, &id.0)? else {
            continue;
        };
        let district_ok =
            district.is_none_or(|d| record.district.as_ref().is_some_and(|r| r.as_str() == d));
        if district_ok && status_in(view, &record, time)? == Standing::Valid {
            return Ok(true);
        }
    }
    Ok(false)
}
