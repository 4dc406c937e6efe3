//! `acta attest submit`: a device's readings from a JSON Lines file become signed,
//! chained attestation batches; once each batch is committed, its proof bundle (with every
//! reading and its inclusion proof) is written for `acta audit verify` to check offline.

use std::path::{Path, PathBuf};

use acta_ledger::{
    bundle::{ProofBundle, ReadingEntry},
    merkle,
    records::DeviceRecord,
    tx::{AttestationBatch, SensorCall, READING_BYTES_MAX},
    Call, Hash, Timestamp,
};
use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::{records::KeyArg, wallet::Ctx};

/// Readings per batch at most (the ledger takes up to a million; a batch's bundle holds
/// every reading with its proof).
const BATCH_MAX: usize = 10_000;

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Attest a file of readings as the device: one JSON object per line, in time order,
    /// each with `t`, its time in Unix milliseconds (`{"t":1700000000000,"pm25":12}`), none
    /// in the future nor before the device's last batch. A reading is its line's bytes
    /// without the line ending; a batch's leaves are its readings (RFC 9162), and its raw
    /// hash is the SHA-256 of its readings, each followed by a newline. Batches are chained
    /// to the device's last one and submitted in order; after each commits, its proof bundle
    /// is written to BUNDLES/<device id>/<batch>.json: the batch's record proven against the
    /// chain, and every reading with its own inclusion proof (`acta audit verify FILE
    /// --reading INDEX` checks and shows one).
    ///
    /// Example: acta attest submit readings.jsonl --key sensor1 --bundles proofs/
    Submit {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        /// The device's DID (default: the signing key's own DID).
        #[arg(long)]
        device: Option<String>,
        /// Readings per batch.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// Where to write the proof bundles (one file per batch).
        #[arg(long, default_value = "bundles")]
        bundles: PathBuf,
    },
}

/// One reading: its bytes, time and line.
struct Reading {
    bytes: Vec<u8>,
    t: u64,
    line: usize,
}

/// Reads a JSON Lines file of readings; errors name the line and the field.
fn read_readings(path: &Path, not_before: u64, now: u64) -> Result<Vec<Reading>> {
    let text = crate::read_limited(path)?;
    let mut out: Vec<Reading> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), i + 1);
        if line.len() > READING_BYTES_MAX {
            return Err(anyhow!(
                "{}: the reading has {} bytes; a reading has at most {READING_BYTES_MAX}",
                at(),
                line.len()
            ));
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| anyhow!("{}: not JSON: {e}", at()))?;
        if !v.is_object() {
            return Err(anyhow!("{}: a reading is a JSON object", at()));
        }
        let t = match &v["t"] {
            Value::Null => return Err(anyhow!("{}: field \"t\" is missing", at())),
            t => t.as_u64().ok_or_else(|| {
                anyhow!(
                    "{}: field \"t\" is {t}, not a time in Unix milliseconds",
                    at()
                )
            })?,
        };
        if t < not_before {
            return Err(anyhow!(
                "{}: field \"t\" is {t}, before the end of the device's last batch ({not_before})",
                at()
            ));
        }
        if t > now {
            return Err(anyhow!("{}: field \"t\" is {t}, in the future", at()));
        }
        if let Some(prev) = out.last() {
            if t < prev.t {
                return Err(anyhow!(
                    "{}: field \"t\" is {t}, earlier than line {} ({}): readings go in time order",
                    at(),
                    prev.line,
                    prev.t
                ));
            }
        }
        out.push(Reading {
            bytes: line.as_bytes().to_vec(),
            t,
            line: i + 1,
        });
    }
    if out.is_empty() {
        return Err(anyhow!("{} holds no readings", path.display()));
    }
    Ok(out)
}

pub fn attest(ctx: &Ctx, command: AttestCommand) -> Result<()> {
    let AttestCommand::Submit {
        file,
        key,
        device,
        batch_size,
        bundles,
    } = command;
    if ctx.no_wait {
        return Err(anyhow!(
            "attest submit waits for each batch's block (its bundles need it): drop --no-wait"
        ));
    }
    if !(1..=BATCH_MAX).contains(&batch_size) {
        return Err(anyhow!(
            "--batch-size is 1 to {BATCH_MAX}, not {batch_size}"
        ));
    }
    let did = ctx.did(device.as_deref().unwrap_or(&key.key))?;
    let node = ctx.node()?;
    let record = node.get(&format!("/devices/{did}"))?;
    let d: DeviceRecord = serde_json::from_value(record["device"].clone())
        .map_err(|e| anyhow!("the node's record of device {did}: {e}"))?;
    if !d.active {
        return Err(anyhow!("{did} is deactivated; it cannot attest"));
    }
    let readings = read_readings(&file, d.last_window_end.0, crate::wallet::now_ms())?;
    let stream = d.stream;
    let first = d.next_sequence;
    let mut prev = d.last_batch;
    let signer = ctx.unlock(&key.key)?;
    let dir = bundles.join(did.to_string().rsplit(':').next().unwrap_or("device"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let bar = ProgressBar::new(readings.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} readings attested {elapsed} {msg}")
    {
        bar.set_style(style);
    }
    let mut summary = Vec::new();
    for (sequence, chunk) in (first..).zip(readings.chunks(batch_size)) {
        let items: Vec<&[u8]> = chunk.iter().map(|r| r.bytes.as_slice()).collect();
        let mut raw = Vec::new();
        for item in &items {
            raw.extend_from_slice(item);
            raw.push(b'\n');
        }
        let batch = AttestationBatch {
            device: did,
            stream: stream.clone(),
            sequence,
            prev_batch_hash: prev,
            window_start: Timestamp(chunk.iter().map(|r| r.t).min().unwrap_or(0)),
            window_end: Timestamp(chunk.iter().map(|r| r.t).max().unwrap_or(0)),
            reading_count: u32::try_from(chunk.len())?,
            readings_root: merkle::root_of(&items),
            raw_batch_hash: Hash::digest(&raw),
        };
        prev = Hash::of(&batch);
        bar.set_message(format!("batch {sequence}: waiting for its block"));
        let done = summary.len();
        let lines = (chunk[0].line, chunk[chunk.len() - 1].line);
        let stopped = |e: anyhow::Error| {
            bar.abandon();
            let before = if done == 0 {
                "nothing of this file was attested".to_string()
            } else {
                format!(
                    "batches {first}..{} are committed (to line {}) with their bundles in {}; attest the rest from line {} on",
                    sequence - 1,
                    lines.0 - 1,
                    dir.display(),
                    lines.0
                )
            };
            e.context(format!(
                "batch {sequence} (lines {}..{}) failed; {before}",
                lines.0, lines.1
            ))
        };
        let answer = ctx
            .submit(&node, &signer, Call::Sensor(SensorCall::Attest(batch)))
            .map_err(stopped)?;
        let written = write_bundle(ctx, &did, sequence, &items, &dir)
            .with_context(|| format!("batch {sequence} is committed, but its proof bundle"))?;
        bar.inc(chunk.len() as u64);
        summary.push(json!({
            "sequence": sequence,
            "readings": chunk.len(),
            "height": answer["height"],
            "tx": answer["hash"],
            "bundle": written.display().to_string(),
        }));
    }
    bar.finish_and_clear();
    ctx.output.print(
        Some(&format!(
            "{} readings of {did} attested in {} batches; proof bundles in {}",
            readings.len(),
            summary.len(),
            dir.display()
        )),
        &json!({ "device": did, "bundles": dir.display().to_string(), "batches": summary }),
    );
    Ok(())
}

/// Writes `DIR/<sequence>.json` for a committed batch: the node's proven answer for the
/// batch (its record and the device's), with every reading and its own inclusion proof in
/// the bundle. Any subset of the readings still verifies, so a reading can be shared with
/// its proof alone (`acta audit verify FILE --reading INDEX`).
fn write_bundle(
    ctx: &Ctx,
    did: &acta_ledger::Did,
    sequence: u64,
    items: &[&[u8]],
    dir: &Path,
) -> Result<PathBuf> {
    let mut answer = ctx.node()?.get(&format!(
        "/devices/{did}/attestations/{sequence}?prove=true"
    ))?;
    let mut bundle: ProofBundle = serde_json::from_value(answer["proof"].clone())
        .map_err(|e| anyhow!("the node's proof bundle: {e}"))?;
    let leaves: Vec<Hash> = items.iter().map(|r| merkle::leaf_hash(r)).collect();
    bundle.readings = items
        .iter()
        .zip(merkle::inclusion_proofs(&leaves))
        .map(|(item, proof)| ReadingEntry {
            reading: item.to_vec(),
            proof,
        })
        .collect();
    answer["proof"] = serde_json::to_value(&bundle)?;
    let path = dir.join(format!("{sequence}.json"));
    std::fs::write(&path, serde_json::to_vec(&answer)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    //! The readings file is outside bytes: any content is refused with a message naming the
    //! line, or read as readings that are exactly its non-blank lines, in time order.

    use proptest::prelude::*;

    use super::*;

    fn lines() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            (0u64..2_000).prop_map(|t| format!("{{\"t\":{t},\"pm25\":12}}")),
            "[ -~]{0,40}",
            Just(String::new()),
            Just("{\"t\":-1}".to_string()),
            Just("{\"t\":1e3}".to_string()),
            Just("{\"pm25\":3}".to_string()),
            Just("[1,2]".to_string()),
        ];
        prop::collection::vec(line, 0..12).prop_map(|l| l.join("\n"))
    }

    proptest! {
        #[test]
        fn a_readings_file_is_refused_or_read_line_for_line(text in lines(), raw in any::<bool>(), bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("readings.jsonl");
            let content = if raw { bytes } else { text.into_bytes() };
            std::fs::write(&path, &content).unwrap();
            if let Ok(readings) = read_readings(&path, 100, 1_500) {
                let text = String::from_utf8(content).unwrap();
                let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                prop_assert_eq!(readings.len(), lines.len());
                for (r, l) in readings.iter().zip(&lines) {
                    prop_assert_eq!(r.bytes.as_slice(), l.as_bytes());
                    prop_assert!((100..=1_500).contains(&r.t));
                }
                prop_assert!(readings.windows(2).all(|w| w[0].t <= w[1].t));
            }
        }
    }

    #[test]
    fn a_reading_over_the_cap_is_refused_before_signing_naming_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("readings.jsonl");
        let big = format!(
            "{{\"t\":200,\"pm25\":12}}\n{{\"t\":300,\"note\":\"{}\"}}\n",
            "x".repeat(READING_BYTES_MAX)
        );
        std::fs::write(&path, big).unwrap();
        let err = read_readings(&path, 100, 1_500).err().unwrap().to_string();
        assert!(
            err.contains("line 2") && err.contains("at most 65536"),
            "{err}"
        );
        let fits = format!("{{\"t\":300,\"note\":\"{}\"}}\n", "x".repeat(1000));
        std::fs::write(&path, fits).unwrap();
        assert_eq!(read_readings(&path, 100, 1_500).unwrap().len(), 1);
    }
}
