//! Sensors: an operator holding a SensorOperator credential registers a device (a DID of
//! its own, whose document names the operator as a controller: the device's consent) with what it measures, the unit (a UCUM code), a coarse location (a geohash of at
//! most six characters) and its data stream; it can relocate, transfer and deactivate it.
//! The device attests batches of readings with its own key. Each batch names the hash of the
//! one before and carries the next sequence number, so a device's batches form one chain:
//! a gap (a sequence number too far ahead), a replay or a fork (one already used, or the
//! wrong predecessor) is refused.
//!
//! State: `device` (key: the device DID's 16 bytes) holds the [`DeviceRecord`];
//! `attestation` (key: device DID and sequence number, u64 big-endian) each
//! [`AttestationRecord`].

use acta_ledger::{
    records::{AttestationRecord, CredentialKind, DeviceRecord, GEOHASH_CHARS_MAX},
    tx::{AttestationBatch, SensorCall},
    Did, Hash, PublicKey, Timestamp,
};

use crate::{
    credential::require,
    error::{CallError, TxError},
    executor::{BlockContext, Event},
    identity::{self, live, signed_by},
    view::StateView,
};

pub const NS_DEVICE: &str = "device";
pub const NS_ATTESTATION: &str = "attestation";
/// The most readings one batch may count.
pub const BATCH_READINGS_MAX: u32 = 1_000_000;

/// The state key of a device's attestation with `sequence`.
pub fn attestation_key(device: &Did, sequence: u64) -> Vec<u8> {
    let mut k = device.0.to_vec();
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

pub(crate) fn execute(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    signer: &PublicKey,
    call: &SensorCall,
) -> Result<Vec<Event>, CallError> {
    match call {
        SensorCall::Register {
            operator,
            device,
            kind,
            unit,
            location,
            stream,
        } => {
            signed_by(view, operator, signer)?;
            require(
                view,
                operator,
                CredentialKind::SensorOperator,
                None,
                ctx.time,
            )?;
            consents(view, device, operator)?;
            if device == operator {
                return Err(TxError::Invalid(
                    "a device needs a DID of its own, not its operator's".into(),
                )
                .into());
            }
            if view.get::<DeviceRecord>(NS_DEVICE, &device.0)?.is_some() {
                return Err(TxError::AlreadyExists(format!("device {device}")).into());
            }
            check_name("kind", kind.as_str())?;
            check_name("stream", stream.as_str())?;
            check_ucum(unit.as_str())?;
            check_geohash(location.as_str())?;
            let record = DeviceRecord {
                device: *device,
                operator: *operator,
                kind: kind.clone(),
                unit: unit.clone(),
                location: location.clone(),
                stream: stream.clone(),
                registered: ctx.height,
                updated: ctx.height,
                active: true,
                next_sequence: 0,
                last_batch: Hash::ZERO,
                last_window_end: Timestamp(0),
            };
            view.put(NS_DEVICE, &device.0, &record);
            Ok(vec![Event::new(
                "device_registered",
                &[
                    ("device", device.to_string()),
                    ("operator", operator.to_string()),
                ],
            )])
        }
        SensorCall::Relocate { device, location } => {
            let mut record = managed(view, device, signer)?;
            check_geohash(location.as_str())?;
            record.location = location.clone();
            record.updated = ctx.height;
            view.put(NS_DEVICE, &device.0, &record);
            Ok(vec![Event::new(
                "device_relocated",
                &[
                    ("device", device.to_string()),
                    ("location", location.to_string()),
                ],
            )])
        }
        SensorCall::Transfer { device, operator } => {
            let mut record = managed(view, device, signer)?;
            if *operator == record.operator {
                return Err(
                    TxError::Invalid(format!("{operator} already operates {device}")).into(),
                );
            }
            live(view, operator)?;
            require(
                view,
                operator,
                CredentialKind::SensorOperator,
                None,
                ctx.time,
            )?;
            consents(view, device, operator)?;
            // The old operator stops controlling the device's DID: it could otherwise put
            // its own key in the device's document and attest in its name, or deactivate it.
            let mut device_did = live(view, device)?;
            let old = record.operator;
            let mut events = vec![Event::new(
                "device_transferred",
                &[
                    ("device", device.to_string()),
                    ("operator", operator.to_string()),
                ],
            )];
            if device_did.document.controllers.contains(&old) {
                device_did.document.controllers.retain(|c| *c != old);
                identity::save(view, ctx, &device_did)?;
                events.push(Event::new("did_updated", &[("did", device.to_string())]));
            }
            record.operator = *operator;
            record.updated = ctx.height;
            view.put(NS_DEVICE, &device.0, &record);
            Ok(events)
        }
        SensorCall::Deactivate { device } => {
            let mut record = managed(view, device, signer)?;
            record.active = false;
            record.updated = ctx.height;
            view.put(NS_DEVICE, &device.0, &record);
            Ok(vec![Event::new(
                "device_deactivated",
                &[("device", device.to_string())],
            )])
        }
        SensorCall::Attest(batch) => attest(view, ctx, signer, batch),
    }
}

fn attest(
    view: &mut StateView<'_>,
    ctx: &BlockContext,
    signer: &PublicKey,
    batch: &AttestationBatch,
) -> Result<Vec<Event>, CallError> {
    let device = &batch.device;
    let mut record: DeviceRecord = view
        .get(NS_DEVICE, &device.0)?
        .ok_or_else(|| TxError::NotFound(format!("device {device}")))?;
    if !record.active {
        return Err(TxError::Invalid(format!("device {device} is deactivated")).into());
    }
    // The device's own DID signs; a rotated device key keeps attesting.
    signed_by(view, device, signer)?;
    if batch.stream != record.stream {
        return Err(TxError::Invalid(format!(
            "device {device} attests stream {:?}, not {:?}",
            record.stream.as_str(),
            batch.stream.as_str()
        ))
        .into());
    }
    if batch.sequence > record.next_sequence {
        return Err(TxError::SequenceGap {
            expected: record.next_sequence,
            got: batch.sequence,
        }
        .into());
    }
    if batch.sequence < record.next_sequence || batch.prev_batch_hash != record.last_batch {
        return Err(TxError::Fork(format!(
            "batch {} of {device} names predecessor {}, but the chain's batch {} is {}",
            batch.sequence,
            batch.prev_batch_hash,
            record.next_sequence.saturating_sub(1),
            record.last_batch
        ))
        .into());
    }
    if batch.window_start > batch.window_end
        || batch.window_start < record.last_window_end
        || batch.window_end > ctx.time
    {
        return Err(TxError::Invalid(format!(
            "the window {}..{} must start at or after the previous batch's end {} and end by \
             the block time {}",
            batch.window_start, batch.window_end, record.last_window_end, ctx.time
        ))
        .into());
    }
    if batch.reading_count == 0 || batch.reading_count > BATCH_READINGS_MAX {
        return Err(TxError::Invalid(format!(
            "a batch holds 1 to {BATCH_READINGS_MAX} readings, not {}",
            batch.reading_count
        ))
        .into());
    }
    let hash = Hash::of(batch);
    view.put(
        NS_ATTESTATION,
        &attestation_key(device, batch.sequence),
        &AttestationRecord {
            batch: batch.clone(),
            hash,
            height: ctx.height,
        },
    );
    record.next_sequence = batch
        .sequence
        .checked_add(1)
        .ok_or_else(|| TxError::Limit("sequence numbers exhausted".into()))?;
    record.last_batch = hash;
    record.last_window_end = batch.window_end;
    view.put(NS_DEVICE, &device.0, &record);
    Ok(vec![Event::new(
        "batch_attested",
        &[
            ("device", device.to_string()),
            ("sequence", batch.sequence.to_string()),
            ("hash", hash.to_hex()),
        ],
    )])
}

/// Refuses unless the live `device` DID names `operator` among its controllers: that is how
/// a device (or whoever holds its key) agrees to be operated, so no operator can claim a DID
/// that is not its device.
fn consents(view: &StateView<'_>, device: &Did, operator: &Did) -> Result<(), CallError> {
    if !live(view, device)?.document.controllers.contains(operator) {
        return Err(TxError::Unauthorized(format!(
            "{device} does not name {operator} as a controller, so it is not its device"
        ))
        .into());
    }
    Ok(())
}

/// The record of an active device whose operator's key signed.
fn managed(
    view: &StateView<'_>,
    device: &Did,
    signer: &PublicKey,
) -> Result<DeviceRecord, CallError> {
    let record: DeviceRecord = view
        .get(NS_DEVICE, &device.0)?
        .ok_or_else(|| TxError::NotFound(format!("device {device}")))?;
    if !record.active {
        return Err(TxError::Invalid(format!("device {device} is deactivated")).into());
    }
    signed_by(view, &record.operator, signer)?;
    Ok(record)
}

fn check_name(what: &str, s: &str) -> Result<(), CallError> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'/'));
    if !ok {
        return Err(TxError::Invalid(format!(
            "{what} {s:?} must be non-empty ASCII letters, digits and . - _ /"
        ))
        .into());
    }
    Ok(())
}

/// A UCUM code as case-sensitive printable ASCII without spaces (`Cel`, `ug/m3`, `dB[A]`,
/// `%`). The grammar's unit atoms are not checked against the UCUM tables.
fn check_ucum(s: &str) -> Result<(), CallError> {
    let ok = !s.is_empty() && s.bytes().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(TxError::Invalid(format!(
            "unit {s:?} must be a UCUM code: printable ASCII without spaces"
        ))
        .into());
    }
    Ok(())
}

/// A geohash of 1 to [`GEOHASH_CHARS_MAX`] characters of its base-32 alphabet.
fn check_geohash(s: &str) -> Result<(), CallError> {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let ok =
        !s.is_empty() && s.len() <= GEOHASH_CHARS_MAX && s.bytes().all(|c| ALPHABET.contains(&c));
    if !ok {
        return Err(TxError::Invalid(format!(
            "location {s:?} must be a geohash of 1 to {GEOHASH_CHARS_MAX} characters"
        ))
        .into());
    }
    Ok(())
}
