//! The consensus write-ahead log.
//!
//! Every message the consensus core asks to persist (`Output::Persist`: this validator's own
//! proposals and votes, and the prevotes that justify its lock) is appended here and made
//! durable before anything that depends on it happens. After a restart the log is replayed
//! into `Input::StartHeight`, so the validator never signs a message that conflicts with
//! one it signed before the crash. Every record names its height, and the node replays only
//! those of the height it starts at: records of decided heights are dead weight. Once a
//! height is decided and its block is stored, the log [forgets](Wal::forget_decided) them
//! by cutting the file, but only once it holds [`KEEP_BYTES_MAX`] bytes: a cut is a
//! truncation and a sync of the file's size, which cost a journal commit per height when
//! the log was cut after every block.
//!
//! # Format
//!
//! The file is a sequence of records, each
//!
//! ```text
//! u32 LE payload length | first 4 bytes of SHA-256(payload) | payload
//! ```
//!
//! where the payload is the borsh encoding of `(height: u64, tag: u8, message)`, with tag 0
//! for a `SignedProposal` and 1 for a `SignedVote`, followed by that signed message in borsh;
//! or, for several messages made durable together ([`Wal::append_all`]), `(height: u64, 2u8,
//! count: u32)` followed by `count` times `(tag: u8, message)` with tags 0 and 1. A batch is
//! one record, so a crash leaves all of it or none. A payload is at most [`PAYLOAD_MAX`]
//! bytes.
//!
//! # Recovery
//!
//! [`Wal::open`] reads records from the start and stops at the first one that is incomplete,
//! longer than [`PAYLOAD_MAX`], has a wrong checksum, or does not decode exactly. A crash in
//! the middle of an append damages only the last record, so if no intact record starts
//! anywhere after that point, it is a torn tail: the file is truncated to the end of the
//! last intact record and the truncation is synced, so later appends follow intact
//! records. If an intact record does start after it, the log is damaged in the middle (a
//! disk error, not a crash): cutting it would silently forget messages this validator
//! signed, the very case the log exists for, so `open` fails with
//! [`io::ErrorKind::InvalidData`], names both offsets and the height of the intact record,
//! and changes nothing. The node opens the log with [`Wal::open_at`] and its start height:
//! damage followed by a record of an earlier, decided height lies among records no restart
//! needs, and that part of the log is cut away instead. Any file content
//! is handled without panicking, and a length prefix is checked against the bound and the
//! file's size before anything is read for it.

use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use acta_consensus::Message;
use acta_ledger::{Hash, Height, SignedProposal, SignedVote};
use borsh::{BorshDeserialize, BorshSerialize};

/// The most bytes a record's payload may have. Real payloads are a few hundred bytes; a
/// longer length prefix is corruption.
pub const PAYLOAD_MAX: usize = 1024 * 1024;

/// The size past which [`Wal::forget_decided`] cuts the log: thousands of heights (a
/// height writes this validator's proposal and votes, with the prevotes that justify a
/// lock: from a few hundred bytes to a few KiB, more with more validators), read once at
/// start.
pub const KEEP_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Bytes before a record's payload: its length and its checksum.
const HEADER_LEN: usize = 8;

const TAG_PROPOSAL: u8 = 0;
const TAG_VOTE: u8 = 1;
const TAG_BATCH: u8 = 2;

/// The consensus write-ahead log: an append-only file of checksummed records.
#[derive(Debug)]
pub struct Wal {
    file: File,
    path: PathBuf,
    /// The length of the intact records in the file, where the next record goes.
    len: u64,
    /// An append failed and its partial record could not be cut off: later appends would
    /// land after torn bytes, so they are refused (the next open cuts the tail).
    failed: bool,
}

impl Wal {
    /// Opens (creating if missing) the WAL at `path` and returns it with every intact record,
    /// in order. A torn tail (a crash mid-append) is cut off: the file is truncated to the
    /// end of the last intact record, and that truncation is synced. A log damaged in the
    /// middle is an [`io::ErrorKind::InvalidData`] error, and the file is left as it was.
    /// Never panics on any file content.
    pub fn open(path: &Path) -> io::Result<(Wal, Vec<(Height, Message)>)> {
        // No record is of a height below 0: damage in the middle is always refused.
        Self::open_at(path, Height(0))
    }

    /// [`Wal::open`] for a node that starts at height `start`, and replays only the records
    /// of `start`. The log keeps the records of decided heights until it is cut
    /// ([`Wal::forget_decided`]), and records go in in height order: damage in the middle
    /// that an intact record of a height below `start` follows lies in records of decided
    /// heights, which no restart needs. The log is then rewritten from that record on (a new
    /// file, synced, renamed over the old one), past as many such damages as there are.
    /// Damage that a record of `start` or later follows is refused, as by `open`.
    pub fn open_at(path: &Path, start: Height) -> io::Result<(Wal, Vec<(Height, Message)>)> {
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        if !existed {
            sync_parent_dir(path)?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut from = 0;
        let (records, intact) = loop {
            match read_records(&bytes[from..]) {
                Ok(read) => break read,
                Err(Bad::Damaged(Damaged { at, next })) => {
                    let (at, next) = (from + at, from + next);
                    match first_height(&bytes[next..]) {
                        Some(h) if h < start => from = next,
                        h => return Err(refuse_damaged(path, at, next, h, bytes.len())),
                    }
                }
                Err(Bad::Unreadable { at }) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the consensus WAL {} ends with a whole record at byte {} whose \
                             checksum holds but which this actad cannot read (written by \
                             another version?): it is not a torn append, and cutting it could \
                             forget a message this validator signed; the file is left as it \
                             was (start the version that wrote it)",
                            path.display(),
                            from + at
                        ),
                    ))
                }
            }
        };
        if from > 0 {
            tracing::warn!(
                path = %path.display(),
                "the consensus WAL was damaged before byte {from}, in records of heights \
                 decided before {start}: rewritten without them"
            );
            replace(path, &bytes[from..from + intact])?;
            file = OpenOptions::new().read(true).append(true).open(path)?;
        } else if intact < bytes.len() {
            file.set_len(intact as u64)?;
            file.sync_all()?;
        }
        let wal = Wal {
            file,
            path: path.to_path_buf(),
            len: intact as u64,
            failed: false,
        };
        Ok((wal, records))
    }

    /// Appends one record and makes it durable (write, then `File::sync_data`) before
    /// returning. If the write fails, the partial record is cut off again where possible.
    pub fn append(&mut self, height: Height, message: &Message) -> io::Result<()> {
        self.append_all(height, std::slice::from_ref(message))
    }

    /// Appends `messages` as one record (one write and one `sync_data` for all of them),
    /// durable before returning; nothing for none. A crash leaves all of them or none.
    pub fn append_all(&mut self, height: Height, messages: &[Message]) -> io::Result<()> {
        let record = match messages {
            [] => return Ok(()),
            [one] => encode_record(height, one)?,
            many => encode_batch(height, many)?,
        };
        let record_len = u64::try_from(record.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record too long"))?;
        if self.failed {
            return Err(io::Error::other(
                "an earlier append to the consensus WAL failed and left a torn record: reopen it",
            ));
        }
        let written = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Do not leave a torn record in front of the next append; if this fails too,
            // refuse every later append (the next open cuts the tail).
            if self.file.set_len(self.len).is_ok() {
                let _ = self.file.sync_all();
            } else {
                self.failed = true;
            }
            return Err(e);
        }
        self.len += record_len;
        Ok(())
    }

    /// Called once a height is decided and its block is stored, when every record in the
    /// log is of that height or an earlier one: drops them all ([`Wal::reset`]) if the log
    /// holds [`KEEP_BYTES_MAX`] bytes or more, else keeps them, since a restart replays only
    /// the records of the height it starts at. Returns whether it cut the log.
    pub fn forget_decided(&mut self) -> io::Result<bool> {
        self.forget_decided_past(KEEP_BYTES_MAX)
    }

    fn forget_decided_past(&mut self, bound: u64) -> io::Result<bool> {
        if self.len < bound {
            return Ok(false);
        }
        self.reset()?;
        Ok(true)
    }

    /// Drops every record: truncates the file to 0 bytes and syncs it.
    pub fn reset(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.len = 0;
        Ok(())
    }

    /// The file this log lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Encodes one record: header and payload.
fn encode_record(height: Height, message: &Message) -> io::Result<Vec<u8>> {
    let mut payload = Vec::with_capacity(256);
    height.0.serialize(&mut payload)?;
    encode_message(message, &mut payload)?;
    frame(payload)
}

/// Encodes several messages as one record.
fn encode_batch(height: Height, messages: &[Message]) -> io::Result<Vec<u8>> {
    let count = u32::try_from(messages.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many WAL messages"))?;
    let mut payload = Vec::with_capacity(256 * messages.len());
    height.0.serialize(&mut payload)?;
    TAG_BATCH.serialize(&mut payload)?;
    count.serialize(&mut payload)?;
    for message in messages {
        encode_message(message, &mut payload)?;
    }
    frame(payload)
}

/// A message's tag and borsh encoding.
fn encode_message(message: &Message, out: &mut Vec<u8>) -> io::Result<()> {
    match message {
        Message::Proposal(p) => {
            TAG_PROPOSAL.serialize(out)?;
            p.serialize(out)
        }
        Message::Vote(v) => {
            TAG_VOTE.serialize(out)?;
            v.serialize(out)
        }
    }
}

/// The header in front of a payload.
fn frame(payload: Vec<u8>) -> io::Result<Vec<u8>> {
    if payload.len() > PAYLOAD_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "WAL record of {} bytes is longer than the maximum {PAYLOAD_MAX}",
                payload.len()
            ),
        ));
    }
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "WAL record too long"))?;
    let mut record = Vec::with_capacity(HEADER_LEN + payload.len());
    record.extend_from_slice(&len.to_le_bytes());
    record.extend_from_slice(&checksum(&payload));
    record.extend_from_slice(&payload);
    Ok(record)
}

fn checksum(payload: &[u8]) -> [u8; 4] {
    let digest = Hash::digest(payload);
    [digest.0[0], digest.0[1], digest.0[2], digest.0[3]]
}

/// Decodes a payload that passed its checksum; `None` if it is not exactly one record (of
/// one message, or a batch of at least two).
fn decode_payload(payload: &[u8]) -> Option<Vec<(Height, Message)>> {
    let mut reader = payload;
    let height = Height(u64::deserialize_reader(&mut reader).ok()?);
    let tag = u8::deserialize_reader(&mut reader).ok()?;
    let messages = if tag == TAG_BATCH {
        let count = u32::deserialize_reader(&mut reader).ok()?;
        if count < 2 {
            return None;
        }
        // Each message takes well over one byte: a count beyond the bytes left is false.
        if usize::try_from(count).ok()? > reader.len() {
            return None;
        }
        let mut messages = Vec::new();
        for _ in 0..count {
            let tag = u8::deserialize_reader(&mut reader).ok()?;
            messages.push((height, decode_message(tag, &mut reader)?));
        }
        messages
    } else {
        vec![(height, decode_message(tag, &mut reader)?)]
    };
    if !reader.is_empty() {
        return None;
    }
    Some(messages)
}

/// The message after a tag of 0 or 1.
fn decode_message(tag: u8, reader: &mut &[u8]) -> Option<Message> {
    match tag {
        TAG_PROPOSAL => Some(Message::Proposal(
            SignedProposal::deserialize_reader(reader).ok()?,
        )),
        TAG_VOTE => Some(Message::Vote(SignedVote::deserialize_reader(reader).ok()?)),
        _ => None,
    }
}

/// A log damaged in the middle: the first bad record, and a later intact one.
struct Damaged {
    at: usize,
    next: usize,
}

/// What stops a log from being read to its end, other than a torn tail.
enum Bad {
    /// A bad record with an intact one after it.
    Damaged(Damaged),
    /// A last record that is whole and matches its checksum, but does not decode: not what
    /// a crash leaves (a torn append fails its checksum), but another version's record or
    /// a bug.
    Unreadable { at: usize },
}

/// The intact records at the start of `bytes` and the offset where they end, if what
/// follows is a torn tail; [`Bad`] if an intact record starts anywhere after the first
/// bad one, or if the bad one is whole and only fails to decode.
fn read_records(bytes: &[u8]) -> Result<(Vec<(Height, Message)>, usize), Bad> {
    let mut records = Vec::new();
    let mut offset = 0;
    while let Some((record, len)) = bytes.get(offset..).and_then(parse_record) {
        records.extend(record);
        offset += len;
    }
    // A torn append leaves a prefix of one record (or zeros where it was to go): nothing
    // in it parses as a whole record with its checksum.
    if let Some(next) = (offset + 1..bytes.len()).find(|&p| parse_record(&bytes[p..]).is_some()) {
        return Err(Bad::Damaged(Damaged { at: offset, next }));
    }
    if whole_payload(&bytes[offset..]).is_some() {
        return Err(Bad::Unreadable { at: offset });
    }
    Ok((records, offset))
}

/// The payload of the record at the start of `bytes`, if it is whole, within
/// [`PAYLOAD_MAX`] and matches its checksum.
fn whole_payload(bytes: &[u8]) -> Option<&[u8]> {
    let header = bytes.get(..HEADER_LEN)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let len = usize::try_from(len).ok().filter(|l| *l <= PAYLOAD_MAX)?;
    let payload = bytes.get(HEADER_LEN..HEADER_LEN + len)?;
    (checksum(payload) == header[4..8]).then_some(payload)
}

/// The record at the start of `bytes` and its length, if it is whole, within
/// [`PAYLOAD_MAX`], matches its checksum and decodes exactly.
fn parse_record(bytes: &[u8]) -> Option<(Vec<(Height, Message)>, usize)> {
    let payload = whole_payload(bytes)?;
    Some((decode_payload(payload)?, HEADER_LEN + payload.len()))
}

/// The error for a log damaged at byte `at` of `len`, with an intact record of `height`
/// at byte `next`.
fn refuse_damaged(
    path: &Path,
    at: usize,
    next: usize,
    height: Option<Height>,
    len: usize,
) -> io::Error {
    let height = height.map_or(0, |h| h.0);
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the consensus WAL {} is damaged at byte {at} of {len}, and an intact record of \
             height {height} starts after it at byte {next}: this is not a crash during a \
             write, and cutting the log would forget messages this validator signed. Nothing \
             was changed. Keep a copy of the file; move it aside only if this validator stays \
             out of height {height} and those after it in the file, or it may sign a vote \
             that conflicts with one it already sent",
            path.display(),
        ),
    )
}

/// The height of the intact record at the start of `bytes`.
fn first_height(bytes: &[u8]) -> Option<Height> {
    parse_record(bytes).and_then(|(messages, _)| messages.first().map(|(h, _)| *h))
}

/// Replaces the file at `path` with `bytes`, durably: written to `<path>.tmp` (this
/// user's only, mode 0600), synced, renamed over it, and the rename made durable. Also the
/// signing record's first write ([`crate::signed`]).
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    let tmp = PathBuf::from(name);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_parent_dir(path)
}

/// Makes a newly created file's directory entry durable.
#[cfg(unix)]
fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => File::open(".")?.sync_all(),
    }
}

#[cfg(not(unix))]
fn sync_parent_dir(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use acta_ledger::{testing, Proposal, Round, Vote, VoteKind};
    use rand::{Rng, SeedableRng};

    fn vote(height: u64, round: u32, kind: VoteKind, block: Option<u8>) -> Message {
        let v = Vote {
            kind,
            height: Height(height),
            round: Round(round),
            block: block.map(|b| Hash([b; 32])),
        };
        Message::Vote(v.sign(&testing::key(0xa0, 1), &testing::chain_id()))
    }

    fn proposal(height: u64, round: u32, block: u8, pol_round: Option<u32>) -> Message {
        let p = Proposal {
            height: Height(height),
            round: Round(round),
            block: Hash([block; 32]),
            pol_round: pol_round.map(Round),
        };
        Message::Proposal(p.sign(&testing::key(0xa0, 2), &testing::chain_id()))
    }

    fn sample() -> Vec<(Height, Message)> {
        vec![
            (Height(7), proposal(7, 0, 1, None)),
            (Height(7), vote(7, 0, VoteKind::Prevote, Some(1))),
            (Height(7), vote(7, 0, VoteKind::Precommit, None)),
            (Height(7), proposal(7, 1, 2, Some(0))),
            (Height(7), vote(7, 1, VoteKind::Prevote, Some(2))),
            (Height(8), vote(8, 3, VoteKind::Precommit, Some(9))),
        ]
    }

    /// Writes `records` to a fresh WAL at `path` and returns the file's length after each.
    fn write(path: &Path, records: &[(Height, Message)]) -> Vec<u64> {
        let (mut wal, existing) = Wal::open(path).unwrap();
        assert!(existing.is_empty());
        records
            .iter()
            .map(|(h, m)| {
                wal.append(*h, m).unwrap();
                std::fs::metadata(path).unwrap().len()
            })
            .collect()
    }

    fn reopen(path: &Path) -> Vec<(Height, Message)> {
        Wal::open(path).unwrap().1
    }

    #[test]
    fn records_round_trip_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        let records = sample();
        write(&path, &records[..4]);
        assert_eq!(reopen(&path), records[..4]);

        let (mut wal, got) = Wal::open(&path).unwrap();
        assert_eq!(got, records[..4]);
        assert_eq!(wal.path(), path.as_path());
        for (h, m) in &records[4..] {
            wal.append(*h, m).unwrap();
        }
        drop(wal);
        assert_eq!(reopen(&path), records);
        // Opening does not change an intact log.
        assert_eq!(reopen(&path), records);
    }

    #[test]
    fn open_creates_a_missing_file_and_an_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consensus.wal");
        assert!(!path.exists());
        let (_wal, records) = Wal::open(&path).unwrap();
        assert!(records.is_empty());
        assert!(path.exists());
        assert!(reopen(&path).is_empty());
    }

    #[test]
    fn reset_empties_the_log_and_appends_continue_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        let records = sample();
        let (mut wal, _) = Wal::open(&path).unwrap();
        for (h, m) in &records {
            wal.append(*h, m).unwrap();
        }
        wal.reset().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert!(reopen(&path).is_empty());
        wal.append(records[2].0, &records[2].1).unwrap();
        drop(wal);
        assert_eq!(reopen(&path), records[2..3]);
    }

    /// Records of decided heights stay until the log reaches its bound, then go at once.
    #[test]
    fn decided_heights_are_forgotten_once_the_log_reaches_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal");
        let records = sample();
        let (mut wal, _) = Wal::open(&path).unwrap();
        for (h, m) in &records {
            wal.append(*h, m).unwrap();
        }
        assert!(!wal.forget_decided().unwrap(), "a small log is kept");
        assert_eq!(reopen(&path), records);
        let bound = wal.len + 1;
        assert!(!wal.forget_decided_past(bound).unwrap());
        wal.append(records[0].0, &records[0].1).unwrap();
        assert_eq!(reopen(&path).len(), records.len() + 1);
        assert!(
            wal.forget_decided_past(bound).unwrap(),
            "a log at its bound is cut"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        wal.append(records[1].0, &records[1].1).unwrap();
        drop(wal);
        assert_eq!(reopen(&path), records[1..2]);
    }

    #[test]
    fn a_torn_last_record_is_cut_at_every_byte_and_appends_follow() {
        let dir = tempfile::tempdir().unwrap();
        let full_path = dir.path().join("full");
        let records = sample();
        let ends = write(&full_path, &records);
        let bytes = std::fs::read(&full_path).unwrap();
        let n = records.len();
        let start = ends[n - 2] as usize;
        let end = ends[n - 1] as usize;
        assert_eq!(end, bytes.len());
        let extra = (Height(9), vote(9, 0, VoteKind::Prevote, None));
        for cut in start..end {
            let path = dir.path().join(format!("cut-{cut}"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let (mut wal, got) = Wal::open(&path).unwrap();
            assert_eq!(got, records[..n - 1], "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), start as u64);
            wal.append(extra.0, &extra.1).unwrap();
            drop(wal);
            let mut want = records[..n - 1].to_vec();
            want.push(extra.clone());
            assert_eq!(reopen(&path), want, "cut at {cut}");
        }
    }

    #[test]
    fn garbage_after_the_log_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for case in 0..200 {
            let path = dir.path().join(format!("garbage-{case}"));
            let ends = write(&path, &records);
            let len = rng.gen_range(1..600);
            let mut garbage: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if case % 4 == 0 {
                // A plausible length prefix in front of the garbage.
                let l = rng.gen_range(0..700u32);
                garbage.splice(0..0, l.to_le_bytes());
            }
            let mut file = OpenOptions::new().append(true).open(&path).unwrap();
            file.write_all(&garbage).unwrap();
            drop(file);
            let (mut wal, got) = Wal::open(&path).unwrap();
            assert_eq!(got, records, "case {case}");
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                ends[ends.len() - 1]
            );
            wal.append(records[0].0, &records[0].1).unwrap();
            drop(wal);
            assert_eq!(reopen(&path).len(), records.len() + 1);
        }
    }

    /// Opens `path` expecting a damaged log: the error names it, and the file is as it was.
    fn assert_refused(path: &Path, what: &str) {
        let before = std::fs::read(path).unwrap();
        let err = Wal::open(path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{what}");
        assert!(err.to_string().contains("damaged at byte"), "{what}: {err}");
        assert_eq!(std::fs::read(path).unwrap(), before, "{what}");
    }

    #[test]
    fn a_damaged_record_before_intact_ones_is_refused_and_the_file_kept() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        let full = dir.path().join("full");
        let ends = write(&full, &records);
        let bytes = std::fs::read(&full).unwrap();
        // Damage every byte of the third record, one at a time, with several patterns.
        let (start, end) = (ends[1] as usize, ends[2] as usize);
        for pos in start..end {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[pos] ^= flip;
                let path = dir.path().join("damaged");
                std::fs::write(&path, &damaged).unwrap();
                assert_refused(&path, &format!("byte {pos} ^ {flip:#x}"));
            }
        }
    }

    /// Damage that records of decided heights follow is cut when the node starts above
    /// them; damage that a record of the start height follows is refused, naming it.
    #[test]
    fn damage_among_decided_heights_is_cut_at_a_later_start() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        let full = dir.path().join("full");
        let ends = write(&full, &records);
        let mut bytes = std::fs::read(&full).unwrap();
        // The third record (height 7) damaged; records of 7, 7 and 8 follow.
        bytes[ends[1] as usize + HEADER_LEN + 3] ^= 0x80;
        let path = dir.path().join("wal");
        std::fs::write(&path, &bytes).unwrap();

        let before = bytes.clone();
        let err = Wal::open_at(&path, Height(7)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("record of height 7"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "refused: left as it was"
        );

        let (mut wal, got) = Wal::open_at(&path, Height(8)).unwrap();
        assert_eq!(got, records[3..], "the records after the damage");
        assert_eq!(std::fs::read(&path).unwrap(), bytes[ends[2] as usize..]);
        wal.append(records[5].0, &records[5].1).unwrap();
        drop(wal);
        assert_eq!(reopen(&path).len(), 4, "an intact log, appended to");
        assert!(!dir.path().join("wal.tmp").exists());
    }

    #[test]
    fn a_damaged_last_record_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        let full = dir.path().join("full");
        let ends = write(&full, &records);
        let bytes = std::fs::read(&full).unwrap();
        let n = records.len();
        let start = ends[n - 2] as usize;
        for pos in start..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 0x80;
            let path = dir.path().join("damaged");
            std::fs::write(&path, &damaged).unwrap();
            assert_eq!(reopen(&path), records[..n - 1], "byte {pos}");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), start as u64);
        }
        // Zeros where the last record was to go (a file grown before its data was written).
        let mut zeroed = bytes.clone();
        zeroed[start..].fill(0);
        let path = dir.path().join("zeroed");
        std::fs::write(&path, &zeroed).unwrap();
        assert_eq!(reopen(&path), records[..n - 1]);
    }

    #[test]
    fn a_whole_last_record_that_does_not_decode_is_refused_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        let path = dir.path().join("unknown-tag");
        write(&path, &records[..2]);
        // A record of a tag this version does not know (another version's), checksum good.
        let mut payload = Vec::new();
        records[0].0 .0.serialize(&mut payload).unwrap();
        9u8.serialize(&mut payload).unwrap();
        payload.extend_from_slice(&[1; 40]);
        let record = frame(payload).unwrap();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&record).unwrap();
        drop(file);
        let before = std::fs::read(&path).unwrap();
        let err = Wal::open(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("cannot read"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file is left as it was"
        );
    }

    #[test]
    fn an_intact_record_after_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let tail = encode_record(records[0].0, &records[0].1).unwrap();
        for case in 0..50 {
            let path = dir.path().join(format!("hidden-{case}"));
            write(&path, &records[..2]);
            let garbage: Vec<u8> = (0..rng.gen_range(1..300)).map(|_| rng.gen()).collect();
            let mut file = OpenOptions::new().append(true).open(&path).unwrap();
            file.write_all(&garbage).unwrap();
            file.write_all(&tail).unwrap();
            drop(file);
            assert_refused(&path, &format!("case {case}"));
        }
    }

    #[test]
    fn random_files_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random");
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..300 {
            let len = rng.gen_range(0..400);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            std::fs::write(&path, &bytes).unwrap();
            let (_wal, got) = Wal::open(&path).unwrap();
            assert!(got.is_empty());
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        }
    }

    #[test]
    fn a_huge_length_prefix_at_the_end_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        for len in [u32::MAX, (PAYLOAD_MAX + 1) as u32, 1 << 30] {
            let path = dir.path().join(format!("huge-{len}"));
            let ends = write(&path, &records[..2]);
            let mut file = OpenOptions::new().append(true).open(&path).unwrap();
            file.write_all(&len.to_le_bytes()).unwrap();
            file.write_all(&[0xab; 4]).unwrap();
            file.write_all(&[0x11; 64]).unwrap();
            drop(file);
            let got = reopen(&path);
            assert_eq!(got, records[..2]);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[1]);
        }
    }

    #[test]
    fn a_length_beyond_the_end_of_the_file_is_a_torn_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short");
        let mut bytes = 1000u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&[0; 100]);
        std::fs::write(&path, &bytes).unwrap();
        assert!(reopen(&path).is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_checksummed_payload_that_does_not_decode_before_an_intact_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        let good = encode_record(records[0].0, &records[0].1).unwrap();
        let good_payload = good[HEADER_LEN..].to_vec();
        let mut bad_tag = good_payload.clone();
        bad_tag[8] = 7;
        let mut trailing = good_payload.clone();
        trailing.push(0);
        let short = good_payload[..good_payload.len() - 1].to_vec();
        for (i, payload) in [bad_tag, trailing, short, Vec::new()]
            .into_iter()
            .enumerate()
        {
            let path = dir.path().join(format!("undecodable-{i}"));
            let mut bytes = good.clone();
            bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&checksum(&payload));
            bytes.extend_from_slice(&payload);
            bytes.extend_from_slice(&good);
            std::fs::write(&path, &bytes).unwrap();
            assert_refused(&path, &format!("case {i}"));
        }
    }

    #[test]
    fn a_batch_is_one_record_kept_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let records = sample();
        let path = dir.path().join("wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        wal.append(records[0].0, &records[0].1).unwrap();
        let before = std::fs::metadata(&path).unwrap().len() as usize;
        let batch: Vec<Message> = records[1..5].iter().map(|(_, m)| m.clone()).collect();
        wal.append_all(Height(7), &batch).unwrap();
        wal.append_all(Height(7), &[]).unwrap();
        drop(wal);
        let bytes = std::fs::read(&path).unwrap();
        let want: Vec<(Height, Message)> = records[..5].to_vec();
        assert_eq!(reopen(&path), want);
        // The batch's four messages are one record: a header, then the batch tag and count.
        let payload = &bytes[before + HEADER_LEN..];
        assert_eq!(
            &bytes[before..before + 4],
            &(payload.len() as u32).to_le_bytes()
        );
        assert_eq!(&payload[..8], &7u64.to_le_bytes());
        assert_eq!(payload[8], TAG_BATCH);
        assert_eq!(&payload[9..13], &4u32.to_le_bytes());
        // Cut anywhere inside the batch: none of it is kept, the record before is.
        for cut in before..bytes.len() {
            let torn = dir.path().join("torn");
            std::fs::write(&torn, &bytes[..cut]).unwrap();
            assert_eq!(reopen(&torn), records[..1], "cut at {cut}");
        }
    }

    #[test]
    fn a_batch_of_fewer_than_two_or_with_a_false_count_is_corruption() {
        let records = sample();
        for count in [0u32, 1, 3, u32::MAX] {
            let mut payload = 7u64.to_le_bytes().to_vec();
            payload.push(TAG_BATCH);
            payload.extend_from_slice(&count.to_le_bytes());
            for (_, m) in &records[..2] {
                encode_message(m, &mut payload).unwrap();
            }
            assert_eq!(decode_payload(&payload), None, "count {count}");
        }
    }

    #[test]
    fn the_record_format_is_as_documented() {
        let (height, message) = (Height(7), vote(7, 0, VoteKind::Prevote, Some(1)));
        let record = encode_record(height, &message).unwrap();
        let Message::Vote(signed) = &message else {
            unreachable!()
        };
        let payload = borsh::to_vec(&(7u64, 1u8, signed)).unwrap();
        assert_eq!(&record[..4], &(payload.len() as u32).to_le_bytes());
        assert_eq!(&record[4..8], &Hash::digest(&payload).0[..4]);
        assert_eq!(&record[8..], payload.as_slice());
    }
}
