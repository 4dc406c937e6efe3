//! `acta attest submit`: a device's readings from a JSON Lines file become signed,
//! chained attestation batches; once each batch is committed, its proof bundle (with every
//! reading and its inclusion proof) is written for `acta audit verify` to check offline.

use std::{
    ops::Range,
    path::{Path, PathBuf},
};

use acta_ledger::{
    bundle::{ProofBundle, ReadingEntry},
    merkle,
    records::{AttestationRecord, DeviceRecord},
    tx::{AttestationBatch, SensorCall, READING_BYTES_MAX},
    Call, Did, Hash, Timestamp,
};
use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::{client::Node, records::KeyArg, wallet::Ctx};

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
    /// Interrupted (a timeout, a lost connection), it can be run again as it was: it finds
    /// the device's latest batches in the file by their Merkle roots, says which lines are
    /// committed, writes any bundle missing, and goes on from the ledger's next sequence.
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
    /// Write again the proof bundle of a committed batch, from the readings file it was
    /// attested from: the batch's readings are found in the file by their Merkle root, and
    /// the bundle is written to BUNDLES/<device id>/<batch>.json as `submit` writes it.
    ///
    /// Example: acta attest bundle sensor1 22 --file readings.jsonl --bundles proofs/
    Bundle {
        /// The device's DID (or keystore key name).
        device: String,
        /// The batch's sequence number.
        sequence: u64,
        /// The readings file the batch was attested from.
        #[arg(long)]
        file: PathBuf,
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

/// Where a batch's readings are in the file: the run of `reading_count` readings from one
/// whose time is the batch's `window_start` whose Merkle root and raw hash are the batch's.
fn locate(readings: &[Reading], batch: &AttestationBatch) -> Option<Range<usize>> {
    let n = usize::try_from(batch.reading_count).ok()?;
    let first = readings.partition_point(|r| r.t < batch.window_start.0);
    readings[first..]
        .iter()
        .take_while(|r| r.t == batch.window_start.0)
        .enumerate()
        .map(|(k, _)| first + k)
        .filter(|i| i + n <= readings.len() && n > 0)
        .find(|&i| {
            let run = &readings[i..i + n];
            if run[n - 1].t != batch.window_end.0 {
                return false;
            }
            let items: Vec<&[u8]> = run.iter().map(|r| r.bytes.as_slice()).collect();
            merkle::root_of(&items) == batch.readings_root
                && raw_hash(&items) == batch.raw_batch_hash
        })
        .map(|i| i..i + n)
}

/// SHA-256 of the readings, each followed by a newline.
fn raw_hash(items: &[&[u8]]) -> Hash {
    let mut raw = Vec::new();
    for item in items {
        raw.extend_from_slice(item);
        raw.push(b'\n');
    }
    Hash::digest(&raw)
}

/// Batch `sequence` of `did` as the ledger holds it.
fn batch_record(node: &Node, did: &Did, sequence: u64) -> Result<AttestationRecord> {
    let v = node.get(&format!("/devices/{did}/attestations/{sequence}"))?;
    serde_json::from_value(v["attestation"].clone())
        .map_err(|e| anyhow!("the node's record of batch {sequence} of {did}: {e}"))
}

/// The folder of a device's bundles.
fn bundle_dir(bundles: &Path, did: &Did) -> PathBuf {
    bundles.join(did.to_string().rsplit(':').next().unwrap_or("device"))
}

/// "lines 3..12" or "line 3".
fn line_span(readings: &[Reading], range: &Range<usize>) -> String {
    let (a, b) = (readings[range.start].line, readings[range.end - 1].line);
    if a == b {
        format!("line {a}")
    } else {
        format!("lines {a}..{b}")
    }
}

pub fn attest(ctx: &Ctx, command: AttestCommand) -> Result<()> {
    let (file, key, device, batch_size, bundles) = match command {
        AttestCommand::Submit {
            file,
            key,
            device,
            batch_size,
            bundles,
        } => (file, key, device, batch_size, bundles),
        AttestCommand::Bundle {
            device,
            sequence,
            file,
            bundles,
        } => return bundle(ctx, &device, sequence, &file, &bundles),
    };
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
    let all = read_readings(&file, 0, crate::wallet::now_ms())?;
    let dir = bundle_dir(&bundles, &did);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // The device's latest batches that came from this file (an earlier run of this
    // command), newest first: each sits in the file before the one after it.
    let mut done: Vec<(u64, Range<usize>)> = Vec::new();
    let mut before = all.len();
    let mut sequence = d.next_sequence;
    while sequence > 0 {
        let record = batch_record(&node, &did, sequence - 1)?;
        // The newest may be followed by new lines; each older one ends where the one after
        // it starts, so the lines found are one run.
        let fits = |r: &Range<usize>| {
            if done.is_empty() {
                r.end <= before
            } else {
                r.end == before
            }
        };
        match locate(&all, &record.batch) {
            Some(r) if fits(&r) => {
                before = r.start;
                sequence -= 1;
                done.push((sequence, r));
            }
            _ => break,
        }
    }
    let resume = done.first().map_or(0, |(_, r)| r.end);
    // The first line committed from this file (earlier ones are left out).
    let committed_from = done.last().map(|(_, r)| all[r.start].line);
    if let Some(late) = all[resume..].iter().find(|r| r.t < d.last_window_end.0) {
        return Err(anyhow!(
            "{} line {}: field \"t\" is {}, before the end of the device's last batch ({}), which is not in this file",
            file.display(),
            late.line,
            late.t,
            d.last_window_end.0
        ));
    }
    let mut regenerated = Vec::new();
    if let (Some((newest, last)), Some((oldest, first))) = (done.first(), done.last()) {
        let span = line_span(&all, &(first.start..last.end));
        eprintln!(
            "acta: {span} of {} are committed already, in batches {oldest}..={newest} of {did}; going on from the next",
            file.display()
        );
        if first.start > 0 {
            eprintln!(
                "acta: {}",
                format_args!(
                    "{} precede them and are not in a batch found in this file: left out",
                    line_span(&all, &(0..first.start))
                )
            );
        }
        for (seq, range) in done.iter().rev() {
            if !dir.join(format!("{seq}.json")).exists() {
                let items: Vec<&[u8]> = all[range.clone()]
                    .iter()
                    .map(|r| r.bytes.as_slice())
                    .collect();
                write_bundle(ctx, &did, *seq, &items, &dir)?;
                regenerated.push(*seq);
            }
        }
    }
    let readings = &all[resume..];
    if readings.is_empty() {
        ctx.output.print(
            Some(&format!(
                "every reading of {} is committed; bundles in {}{}",
                file.display(),
                dir.display(),
                if regenerated.is_empty() {
                    String::new()
                } else {
                    format!(" (written again: batches {regenerated:?})")
                }
            )),
            &json!({ "device": did, "bundles": dir.display().to_string(), "batches": [],
                     "already_committed": done.len(), "regenerated": regenerated }),
        );
        return Ok(());
    }
    let stream = d.stream;
    let first = d.next_sequence;
    let mut prev = d.last_batch;
    let signer = ctx.unlock(&key.key)?;

    let bar = ProgressBar::new(readings.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} readings attested {elapsed} {msg}")
    {
        bar.set_style(style);
    }
    let mut summary = Vec::new();
    for (sequence, chunk) in (first..).zip(readings.chunks(batch_size)) {
        let items: Vec<&[u8]> = chunk.iter().map(|r| r.bytes.as_slice()).collect();
        let batch = AttestationBatch {
            device: did,
            stream: stream.clone(),
            sequence,
            prev_batch_hash: prev,
            window_start: Timestamp(chunk.iter().map(|r| r.t).min().unwrap_or(0)),
            window_end: Timestamp(chunk.iter().map(|r| r.t).max().unwrap_or(0)),
            reading_count: u32::try_from(chunk.len())?,
            readings_root: merkle::root_of(&items),
            raw_batch_hash: raw_hash(&items),
        };
        prev = Hash::of(&batch);
        bar.set_message(format!("batch {sequence}: waiting for its block"));
        let done = summary.len();
        let lines = (chunk[0].line, chunk[chunk.len() - 1].line);
        let stopped = |e: anyhow::Error| {
            bar.abandon();
            let before = match (done, committed_from) {
                (0, None) => "no earlier line of this file is committed".to_string(),
                (_, from) => format!(
                    "lines {}..{} are committed, with their bundles in {}",
                    from.unwrap_or(all[0].line),
                    lines.0 - 1,
                    dir.display()
                ),
            };
            e.context(format!(
                "batch {sequence} (lines {}..{}) is not confirmed; {before}. It may still commit: run the same command again, which finds what the ledger holds and goes on from there",
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
            "{} readings of {did} attested in {} batches ({}); proof bundles in {}{}",
            readings.len(),
            summary.len(),
            line_span(&all, &(resume..all.len())),
            dir.display(),
            if regenerated.is_empty() {
                String::new()
            } else {
                format!("; written again: the bundles of batches {regenerated:?}")
            }
        )),
        &json!({ "device": did, "bundles": dir.display().to_string(), "batches": summary,
                 "already_committed": done.len(), "regenerated": regenerated }),
    );
    Ok(())
}

/// `acta attest bundle`: the bundle of a committed batch, written again from its file.
fn bundle(ctx: &Ctx, device: &str, sequence: u64, file: &Path, bundles: &Path) -> Result<()> {
    let did = ctx.did(device)?;
    let node = ctx.node()?;
    let record = batch_record(&node, &did, sequence)?;
    let readings = read_readings(file, 0, u64::MAX)?;
    let range = locate(&readings, &record.batch).ok_or_else(|| {
        anyhow!(
            "{} holds no run of {} readings from time {} whose Merkle root is batch {sequence}'s ({}): it is not the file the batch was attested from",
            file.display(),
            record.batch.reading_count,
            record.batch.window_start.0,
            record.batch.readings_root
        )
    })?;
    let dir = bundle_dir(bundles, &did);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let items: Vec<&[u8]> = readings[range.clone()]
        .iter()
        .map(|r| r.bytes.as_slice())
        .collect();
    let path = write_bundle(ctx, &did, sequence, &items, &dir)?;
    ctx.output.print(
        Some(&format!(
            "batch {sequence} of {did} is {} of {}; its bundle is in {}",
            line_span(&readings, &range),
            file.display(),
            path.display()
        )),
        &json!({ "device": did, "sequence": sequence, "bundle": path.display().to_string(),
                 "first_line": readings[range.start].line, "last_line": readings[range.end - 1].line }),
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
