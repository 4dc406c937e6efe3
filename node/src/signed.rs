//! The last consensus message the validator's key signed, kept beside the key
//! (`HOME/keys/signed_state.json`, as CometBFT's `priv_validator_state.json`): the node
//! refuses to sign at or below it, so a key moved to another machine, or run twice, cannot
//! double-sign. The WAL protects a node from its own crash; this file travels with the key.
//!
//! Messages are ordered by (height, round, step), with step 0 a proposal, 1 a prevote and 2
//! a precommit. A message above the last is recorded durably before it is sent; the last
//! message itself may be sent again (the same signature: Ed25519 signs deterministically,
//! so it is the same message), which a node restarted from its WAL does; anything else at
//! or below the last is refused.
//!
//! The file is one disk sector: the JSON padded with spaces to [`RECORD_BYTES`], with a
//! `check` field (SHA-256 of the others). The first write after the node opens it
//! replaces the file whole (a new file written and synced, renamed over it, the folder
//! synced), so it is this node's, mode 0600, and one sector long; later writes rewrite it
//! in place and sync it (one `fdatasync`), as PostgreSQL writes `pg_control`. Disks are
//! expected to write one aligned sector whole or not at all; one that tears it anyway
//! leaves a record whose check fails, and the node refuses to start rather than read an
//! older record into it. A record without `check` (written by hand, or by a version
//! before 2026-12-05) is read as it is.

use std::{
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use acta_consensus::Message;
use acta_ledger::VoteKind;
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

/// What the file records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedState {
    pub height: u64,
    pub round: u32,
    /// 0 proposal, 1 prevote, 2 precommit.
    pub step: u8,
    /// The signature of that message, hex.
    pub signature: String,
}

impl SignedState {
    fn of(m: &Message) -> SignedState {
        let (round, step, signature) = match m {
            Message::Proposal(p) => (p.proposal.round, 0, p.signature),
            Message::Vote(v) => (
                v.vote.round,
                match v.vote.kind {
                    VoteKind::Prevote => 1,
                    VoteKind::Precommit => 2,
                },
                v.signature,
            ),
        };
        SignedState {
            height: m.height().0,
            round: round.0,
            step,
            signature: hex::encode(signature.0),
        }
    }

    fn place(&self) -> (u64, u32, u8) {
        (self.height, self.round, self.step)
    }

    /// The SHA-256 of the fields, hex: what the file's `check` holds.
    fn check(&self) -> String {
        let text = format!(
            "acta signed state 1:{}:{}:{}:{}",
            self.height, self.round, self.step, self.signature
        );
        acta_ledger::Hash::digest(text.as_bytes()).to_hex()
    }
}

/// The file: the record and its check.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    height: u64,
    round: u32,
    step: u8,
    signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<String>,
}

impl OnDisk {
    fn of(state: &SignedState) -> OnDisk {
        OnDisk {
            height: state.height,
            round: state.round,
            step: state.step,
            signature: state.signature.clone(),
            check: Some(state.check()),
        }
    }

    /// The record, if its check (when it has one) holds.
    fn state(self) -> std::result::Result<SignedState, String> {
        let state = SignedState {
            height: self.height,
            round: self.round,
            step: self.step,
            signature: self.signature,
        };
        match self.check {
            Some(check) if check != state.check() => {
                Err("its check does not match its fields (a torn write?)".into())
            }
            _ => Ok(state),
        }
    }
}

/// The size of the file: one sector, so that rewriting it in place is atomic.
pub const RECORD_BYTES: usize = 512;

/// The guard over one key's signatures.
#[derive(Debug)]
pub struct SignGuard {
    path: PathBuf,
    last: Option<SignedState>,
    writes: u64,
    /// Whether this node wrote the file since it opened it (then it rewrites it in place).
    replaced: bool,
}

impl SignGuard {
    /// Reads the file at `path` (none yet: nothing signed). A file that does not read is
    /// an error: the node must not guess what its key signed.
    pub fn open(path: &Path) -> Result<SignGuard> {
        let unreadable = || {
            format!(
                "{}: the record of what this validator's key last signed does not read; fix it or, if the key never signed on another machine, remove it",
                path.display()
            )
        };
        let last = match std::fs::read_to_string(path) {
            Ok(text) => Some(
                serde_json::from_str::<OnDisk>(&text)
                    .with_context(unreadable)?
                    .state()
                    .map_err(|e| anyhow!(e))
                    .with_context(unreadable)?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(e).with_context(unreadable)
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(SignGuard {
            path: path.to_path_buf(),
            last,
            writes: 0,
            replaced: false,
        })
    }

    pub fn last(&self) -> Option<&SignedState> {
        self.last.as_ref()
    }

    /// Whether `m`, signed by this key, may be sent: recorded durably first if it is above
    /// the last. `Err` if the record cannot be written (then nothing may be sent).
    pub fn allow(&mut self, m: &Message) -> Result<Result<(), String>> {
        self.allow_all([m])?
            .pop()
            .ok_or_else(|| anyhow!("no verdict on a message"))
    }

    /// [`SignGuard::allow`] for each of `messages` in order, each judged against the ones
    /// allowed before it, with one durable write of the highest allowed (one sync for a
    /// batch of the driver's outputs, not one per message). `Err` if the record cannot be
    /// written: then none of them may be sent.
    pub fn allow_all<'m>(
        &mut self,
        messages: impl IntoIterator<Item = &'m Message>,
    ) -> Result<Vec<Result<(), String>>> {
        let mut last = self.last.clone();
        let mut verdicts = Vec::new();
        for m in messages {
            let next = SignedState::of(m);
            let verdict = match &last {
                Some(l) if next.place() < l.place() || (next.place() == l.place() && next != *l) => {
                    Err(format!(
                        "refusing to sign height {} round {} step {}: this key already signed height {} round {} step {} ({}); is it running on another machine?",
                        next.height,
                        next.round,
                        next.step,
                        l.height,
                        l.round,
                        l.step,
                        self.path.display()
                    ))
                }
                _ => {
                    last = Some(next);
                    Ok(())
                }
            };
            verdicts.push(verdict);
        }
        if last != self.last {
            if let Some(highest) = &last {
                self.write(highest)?;
                self.writes += 1;
            }
            self.last = last;
        }
        Ok(verdicts)
    }

    /// How many times the record was written since it was opened.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Records `state` durably: in place once this node has written the file (and it is
    /// still one sector long), otherwise by replacing the file with one that is.
    fn write(&mut self, state: &SignedState) -> Result<()> {
        let mut text = serde_json::to_string_pretty(&OnDisk::of(state))?;
        text.push('\n');
        if text.len() > RECORD_BYTES {
            // Cannot happen with these fields (about 300 bytes); never write a torn record.
            return self.replace(&text);
        }
        let padded = format!("{text:<RECORD_BYTES$}");
        let sector = self
            .replaced
            .then(|| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .ok()
            })
            .flatten()
            .filter(|f| f.metadata().is_ok_and(|m| m.len() == RECORD_BYTES as u64));
        match sector {
            Some(file) => file
                .write_all_at(padded.as_bytes(), 0)
                .and_then(|()| file.sync_data())
                .with_context(|| format!("writing {}", self.path.display())),
            None => {
                self.replace(&padded)?;
                self.replaced = true;
                Ok(())
            }
        }
    }

    /// Replaces the file: a new file written and synced, then renamed over the old one,
    /// and the folder synced.
    fn replace(&self, text: &str) -> Result<()> {
        crate::wal::replace(&self.path, text.as_bytes())
            .with_context(|| format!("replacing {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acta_ledger::{testing, Hash, Height, Proposal, Round, Vote};

    fn vote(kind: VoteKind, height: u64, round: u32, block: u8) -> Message {
        Message::Vote(
            Vote {
                kind,
                height: Height(height),
                round: Round(round),
                block: Some(Hash([block; 32])),
            }
            .sign(&testing::key(0xa0, 0), &testing::chain_id()),
        )
    }

    /// The check as wire format section 15.3a defines it (computed apart, with Python's
    /// hashlib).
    #[test]
    fn the_check_is_the_sha256_of_the_fields_as_the_wire_format_says() {
        let state = SignedState {
            height: 7,
            round: 1,
            step: 2,
            signature: "ab".repeat(64),
        };
        assert_eq!(
            state.check(),
            "ad226fb91bfcf26f9c0921e86d6ee04a76b70a4295e8537a00ab8824d1db3a5a"
        );
    }

    #[test]
    fn the_record_is_replaced_once_then_rewritten_in_place_and_a_torn_one_does_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signed_state.json");
        // Written by hand (or an older version): pretty JSON of its own length, no check.
        let old = SignedState::of(&vote(VoteKind::Prevote, 3, 0, 1));
        std::fs::write(&path, serde_json::to_string_pretty(&old).unwrap()).unwrap();
        let mut guard = SignGuard::open(&path).unwrap();
        assert_eq!(guard.last(), Some(&old));
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let handwritten = inode(&path);
        guard
            .allow(&vote(VoteKind::Precommit, 3, 0, 1))
            .unwrap()
            .unwrap();
        // The first write replaces the file with one sector, which reads back.
        let replaced = inode(&path);
        assert_ne!(replaced, handwritten);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), RECORD_BYTES as u64);
        assert_eq!(SignGuard::open(&path).unwrap().last().unwrap().step, 2);
        // From then on the same file is rewritten in place, padding and all.
        guard
            .allow(&vote(VoteKind::Prevote, 40, 0, 1))
            .unwrap()
            .unwrap();
        assert_eq!(inode(&path), replaced);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), RECORD_BYTES);
        assert!(text.starts_with('{') && text.ends_with(' '), "{text:?}");
        let reread = SignGuard::open(&path).unwrap();
        assert_eq!(reread.last(), guard.last());
        assert_eq!(reread.last().unwrap().height, 40);
        // A write torn inside the sector can leave valid JSON of another height: its check
        // fails, and the node does not start on it.
        std::fs::write(&path, text.replacen("\"height\": 40", "\"height\": 4 ", 1)).unwrap();
        let e = format!("{:#}", SignGuard::open(&path).unwrap_err());
        assert!(e.contains("does not read") && e.contains("check"), "{e}");
    }

    #[test]
    fn a_key_never_signs_at_or_below_what_it_signed_even_after_a_move() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signed_state.json");
        let mut guard = SignGuard::open(&path).unwrap();
        assert!(guard.last().is_none());
        let proposal = Message::Proposal(
            Proposal {
                height: Height(5),
                round: Round(0),
                block: Hash([1; 32]),
                pol_round: None,
            }
            .sign(&testing::key(0xa0, 0), &testing::chain_id()),
        );
        guard.allow(&proposal).unwrap().unwrap();
        guard
            .allow(&vote(VoteKind::Prevote, 5, 0, 1))
            .unwrap()
            .unwrap();
        // The same message again (a restart from the WAL) is fine.
        guard
            .allow(&vote(VoteKind::Prevote, 5, 0, 1))
            .unwrap()
            .unwrap();
        // Another value at the same step, or an earlier step, is refused.
        let e = guard
            .allow(&vote(VoteKind::Prevote, 5, 0, 2))
            .unwrap()
            .unwrap_err();
        assert!(e.contains("already signed height 5 round 0 step 1"), "{e}");
        assert!(guard.allow(&proposal).unwrap().is_err());
        // The record travels with the key: a new node reading it refuses the same.
        let mut moved = SignGuard::open(&path).unwrap();
        assert!(moved
            .allow(&vote(VoteKind::Prevote, 5, 0, 2))
            .unwrap()
            .is_err());
        assert!(moved
            .allow(&vote(VoteKind::Prevote, 4, 9, 2))
            .unwrap()
            .is_err());
        moved
            .allow(&vote(VoteKind::Precommit, 5, 0, 1))
            .unwrap()
            .unwrap();
        moved
            .allow(&vote(VoteKind::Prevote, 5, 1, 3))
            .unwrap()
            .unwrap();
        moved
            .allow(&vote(VoteKind::Prevote, 6, 0, 3))
            .unwrap()
            .unwrap();
        assert_eq!(SignGuard::open(&path).unwrap().last().unwrap().height, 6);
        // A file that does not read stops the node rather than letting it guess.
        std::fs::write(&path, "{\"height\": \"six\"}").unwrap();
        let e = SignGuard::open(&path).unwrap_err().to_string();
        assert!(e.contains("does not read"), "{e}");
    }

    #[test]
    fn a_batch_of_messages_is_judged_in_order_and_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signed_state.json");
        let mut guard = SignGuard::open(&path).unwrap();
        let prevote = vote(VoteKind::Prevote, 7, 0, 1);
        let precommit = vote(VoteKind::Precommit, 7, 0, 1);
        let other_prevote = vote(VoteKind::Prevote, 7, 0, 2);
        // A lower message after a higher one in the same batch is refused; the rest pass,
        // and the highest is written once.
        let verdicts = guard
            .allow_all([&prevote, &precommit, &other_prevote])
            .unwrap();
        assert!(verdicts[0].is_ok() && verdicts[1].is_ok(), "{verdicts:?}");
        assert!(verdicts[2]
            .as_ref()
            .unwrap_err()
            .contains("already signed height 7 round 0 step 2"));
        assert_eq!(guard.writes(), 1);
        let kept = SignGuard::open(&path).unwrap();
        assert_eq!(kept.last().unwrap().step, 2);
        // Nothing new, nothing written: the last message again, or only refusals.
        let verdicts = guard.allow_all([&precommit, &prevote]).unwrap();
        assert!(verdicts[0].is_ok() && verdicts[1].is_err());
        assert_eq!(guard.writes(), 1);
        // An empty batch writes nothing either.
        assert!(guard.allow_all([]).unwrap().is_empty());
        assert_eq!(guard.writes(), 1);
    }
}
