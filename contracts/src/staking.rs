//! Validators and their voting power: council changes that take effect two heights later,
//! and slashing and jailing on verified equivocation evidence.
//!
//! State: `validators` (key `b"set"`) holds the latest [`ValidatorSet`]. A change made in
//! block `h` writes it at `h`, and the set that signs block `h + 2` is the one the state held
//! after block `h` ([`validators_at`]); the header of block `h + 1` commits to it as
//! `next_validators_hash`. `jailed` (key: the public key) holds a [`JailRecord`] for each
//! validator removed for equivocating, `slashed` (key: public key and offence height) marks
//! an offence already punished, so the same misbehaviour is never punished twice.
//! `validator_nodes` (key: the public key) holds each validator's [`ValidatorNode`], its
//! peer id and address: written by the genesis and by `AddValidator`, deleted by
//! `RemoveValidator`. Nodes admit and dial the nodes of the latest set ([`nodes`]), so a
//! validator added by the council is let in as soon as the action executes.

use acta_ledger::{
    records::{JailRecord, ValidatorNode},
    state::AuthenticatedState,
    validator::{SetHistory, Validator, ValidatorSet, SET_HISTORY_KEY},
    vote::Evidence,
    Height, PublicKey, VotingPower,
};

use crate::{
    error::{CallError, ExecError, TxError},
    executor::{BlockContext, Event},
    params,
    view::StateView,
};

pub const NS_VALIDATORS: &str = acta_ledger::validator::NS_VALIDATORS;
pub const NS_JAILED: &str = "jailed";
pub const NS_SLASHED: &str = "slashed";
pub const NS_VALIDATOR_NODES: &str = "validator_nodes";
/// The key of the validator set in [`NS_VALIDATORS`].
pub const SET_KEY: &[u8] = acta_ledger::validator::SET_KEY;

/// The validator set that signs block `height`: the set in the state after block
/// `height - 2`, or the genesis set for heights 1 and 2.
pub fn validators_at(
    state: &dyn AuthenticatedState,
    height: Height,
) -> Result<ValidatorSet, ExecError> {
    let base = Height(height.0.saturating_sub(2));
    StateView::new(state, base)
        .get(NS_VALIDATORS, SET_KEY)?
        .ok_or(ExecError::Corrupt {
            what: NS_VALIDATORS,
            reason: format!("no validator set at height {base}"),
        })
}

/// The validators of the latest set at `height` (which includes those added and leaves out
/// those removed by the council at `height` or in the two heights before, whose change
/// takes effect later), each with its node if the state holds one.
pub fn nodes(
    state: &dyn AuthenticatedState,
    height: Height,
) -> Result<Vec<(Validator, Option<ValidatorNode>)>, ExecError> {
    let view = StateView::new(state, height);
    let set = current(&view)?;
    let mut out = Vec::with_capacity(set.len());
    for v in set.validators() {
        out.push((*v, view.get(NS_VALIDATOR_NODES, &v.public_key.0)?));
    }
    Ok(out)
}

/// Checks a node for `key`: well formed, and its peer id not another validator's.
pub(crate) fn check_node(
    view: &StateView<'_>,
    key: &PublicKey,
    node: &ValidatorNode,
) -> Result<(), CallError> {
    node.check().map_err(|e| TxError::Invalid(e.to_string()))?;
    for v in current(view)?.validators() {
        if v.public_key == *key {
            continue;
        }
        if let Some(other) = view.get::<ValidatorNode>(NS_VALIDATOR_NODES, &v.public_key.0)? {
            if other.peer_id == node.peer_id {
                return Err(TxError::AlreadyExists(format!(
                    "peer id {} is the node of validator {}",
                    node.peer_id, v.public_key
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// Records the node of `key` (`Some`), or forgets it (`None`).
pub(crate) fn set_node(view: &mut StateView<'_>, key: &PublicKey, node: Option<&ValidatorNode>) {
    match node {
        Some(node) => view.put(NS_VALIDATOR_NODES, &key.0, node),
        None => view.delete(NS_VALIDATOR_NODES, &key.0),
    }
}

/// At the end of block `height`, executed on the state after `base`: if the block changed
/// the set (its value now is not its value after `base`), appends the change to the set's
/// history (format version 14), so that a snapshot's list of changes can be held complete.
/// A block that wrote the set back as it was changed nothing, and appends nothing.
pub(crate) fn record_history(
    view: &mut StateView<'_>,
    state: &dyn AuthenticatedState,
    base: Height,
    height: Height,
) -> Result<(), ExecError> {
    if !view.written(NS_VALIDATORS, SET_KEY) {
        return Ok(());
    }
    let key = acta_ledger::state::state_key(NS_VALIDATORS, SET_KEY);
    if view.get_raw(&key)? == StateView::new(state, base).get_raw(&key)? {
        return Ok(());
    }
    let set = current(view)?;
    let history: SetHistory = view
        .get(NS_VALIDATORS, SET_HISTORY_KEY)?
        .unwrap_or_default();
    view.put(
        NS_VALIDATORS,
        SET_HISTORY_KEY,
        &history.then(height, &set.hash()),
    );
    Ok(())
}

/// The latest set, with this block's changes so far.
fn current(view: &StateView<'_>) -> Result<ValidatorSet, ExecError> {
    view.get(NS_VALIDATORS, SET_KEY)?.ok_or(ExecError::Corrupt {
        what: NS_VALIDATORS,
        reason: "no validator set".into(),
    })
}

fn store(view: &mut StateView<'_>, validators: Vec<Validator>) -> Result<ValidatorSet, TxError> {
    let set = ValidatorSet::new(validators).map_err(|e| TxError::Invalid(e.to_string()))?;
    view.put(NS_VALIDATORS, SET_KEY, &set);
    Ok(set)
}

/// Checks a council change against the current set without applying it.
pub(crate) fn check_change(
    view: &StateView<'_>,
    key: &PublicKey,
    power: Option<u64>,
    adding: bool,
) -> Result<(), CallError> {
    let set = current(view)?;
    let present = set.index_of(key).is_some();
    match (adding, power) {
        (true, _) if present => {
            return Err(TxError::AlreadyExists(format!("validator {key}")).into())
        }
        (true, _) => key
            .validate()
            .map_err(|e| TxError::Invalid(format!("validator key: {e}")))?,
        (false, _) if !present => return Err(TxError::NotFound(format!("validator {key}")).into()),
        (false, None) if set.len() == 1 => {
            return Err(TxError::Invalid("the last validator cannot be removed".into()).into())
        }
        _ => {}
    }
    if power == Some(0) {
        return Err(TxError::Invalid(
            "voting power must be more than zero (remove the validator instead)".into(),
        )
        .into());
    }
    // The set it would make must be valid (size and total power).
    ValidatorSet::new(changed(&set, key, power)).map_err(|e| TxError::Invalid(e.to_string()))?;
    Ok(())
}

/// `set` with `key` given `power`, or removed if `None`.
fn changed(set: &ValidatorSet, key: &PublicKey, power: Option<u64>) -> Vec<Validator> {
    let mut validators: Vec<Validator> = set
        .validators()
        .iter()
        .filter(|v| v.public_key != *key)
        .copied()
        .collect();
    if let Some(power) = power {
        validators.push(Validator {
            public_key: *key,
            power: VotingPower(power),
        });
    }
    validators
}

/// Adds, re-powers (`power: Some`) or removes (`None`) a validator from two heights on.
pub(crate) fn apply_change(
    view: &mut StateView<'_>,
    key: &PublicKey,
    power: Option<u64>,
) -> Result<Vec<Event>, CallError> {
    let validators = changed(&current(view)?, key, power);
    if power.is_some() {
        view.delete(NS_JAILED, &key.0);
    }
    let set = store(view, validators)?;
    Ok(vec![Event::new(
        "validators_changed",
        &[
            ("key", key.to_hex()),
            ("power", power.unwrap_or(0).to_string()),
            ("total_power", set.total_power().0.to_string()),
        ],
    )])
}

/// Punishes each verified equivocation in a block's evidence: the offender loses
/// `slash_fraction_bps` of its power (rounded up) and leaves the set (from two heights on) unless it is
/// the last validator. Evidence that does not verify, is too old, names a key that was not a
/// validator at the offence's height, or was already punished changes nothing; the block
/// events say why.
/// Whether evidence of an offence by `offender` at `offence` would still be punished by a
/// block after `latest` (whose state `view` reads): within the evidence's age, and not
/// punished already. Nodes ask before they keep and forward evidence, so that old or spent
/// evidence (a retired key can sign any amount of it) fills no pool and no block.
pub fn evidence_still_due(
    view: &StateView<'_>,
    latest: Height,
    offender: &PublicKey,
    offence: Height,
) -> Result<bool, ExecError> {
    let max_age = params::get(view, &params::EVIDENCE_MAX_AGE)?;
    let next = latest.0.saturating_add(1);
    if offence.0 == 0 || offence.0 >= next || next - offence.0 > max_age {
        return Ok(false);
    }
    Ok(view
        .get::<Height>(NS_SLASHED, &slashed_mark(offender, offence))?
        .is_none())
}

/// The key under which an offence once punished is marked.
fn slashed_mark(offender: &PublicKey, offence: Height) -> Vec<u8> {
    let mut mark = offender.0.to_vec();
    mark.extend_from_slice(&offence.0.to_be_bytes());
    mark
}

pub(crate) fn punish(
    view: &mut StateView<'_>,
    state: &dyn AuthenticatedState,
    ctx: &BlockContext,
    evidence: &[Evidence],
    events: &mut Vec<Event>,
) -> Result<(), ExecError> {
    let max_age = params::get(view, &params::EVIDENCE_MAX_AGE)?;
    let bps = params::get(view, &params::SLASH_FRACTION_BPS)?.min(10_000);
    for ev in evidence {
        let offence = ev.height();
        let ignore = |why: String| Event::new("evidence_ignored", &[("reason", why)]);
        if offence >= ctx.height || ctx.height.0 - offence.0 > max_age || offence.0 == 0 {
            events.push(ignore(format!(
                "offence at height {offence} is not within the last {max_age} heights"
            )));
            continue;
        }
        let offender = match ev.verify(&ctx.chain_id) {
            Ok(key) => key,
            Err(e) => {
                events.push(ignore(e.to_string()));
                continue;
            }
        };
        if validators_at(state, offence)?.index_of(&offender).is_none() {
            events.push(ignore(format!(
                "{offender} was not a validator at height {offence}"
            )));
            continue;
        }
        let mark = slashed_mark(&offender, offence);
        if view.get::<Height>(NS_SLASHED, &mark)?.is_some() {
            events.push(ignore(format!(
                "{offender} was already punished for height {offence}"
            )));
            continue;
        }
        view.put(NS_SLASHED, &mark, &ctx.height);
        // Rounded up: an offence costs at least one unit of power while any is left.
        let slash = |power: u64| -> u64 {
            let cut = (u128::from(power) * u128::from(bps)).div_ceil(10_000);
            // cut ≤ power, so the difference fits.
            power - u64::try_from(cut).unwrap_or(power)
        };
        let set = current(view)?;
        let (before, after) = if let Some(i) = set.index_of(&offender) {
            let power = set.validators()[usize::from(i.0)].power.0;
            let after = slash(power);
            let rest: Vec<Validator> = set
                .validators()
                .iter()
                .filter(|v| v.public_key != offender)
                .copied()
                .collect();
            if rest.is_empty() {
                // The last validator stays (a chain without validators cannot go on), with
                // its slashed power.
                let kept = vec![Validator {
                    public_key: offender,
                    power: VotingPower(after.max(1)),
                }];
                store_unchecked(view, kept)?;
            } else {
                store_unchecked(view, rest)?;
                view.put(
                    NS_JAILED,
                    &offender.0,
                    &JailRecord {
                        key: offender,
                        slashed_power: after,
                        jailed: ctx.height,
                        offence,
                    },
                );
            }
            (power, after)
        } else if let Some(mut record) = view.get::<JailRecord>(NS_JAILED, &offender.0)? {
            let before = record.slashed_power;
            record.slashed_power = slash(before);
            let after = record.slashed_power;
            view.put(NS_JAILED, &offender.0, &record);
            (before, after)
        } else {
            // Removed by the council since; nothing left to slash.
            (0, 0)
        };
        events.push(Event::new(
            "validator_slashed",
            &[
                ("key", offender.to_hex()),
                ("offence_height", offence.to_string()),
                ("power_before", before.to_string()),
                ("power_after", after.to_string()),
            ],
        ));
    }
    Ok(())
}

/// Stores a set built from a valid one by removing or lowering validators, which cannot fail
/// the set's checks; if it somehow does, the state is corrupt.
fn store_unchecked(view: &mut StateView<'_>, validators: Vec<Validator>) -> Result<(), ExecError> {
    store(view, validators)
        .map(|_| ())
        .map_err(|e| ExecError::Corrupt {
            what: NS_VALIDATORS,
            reason: e.to_string(),
        })
}
