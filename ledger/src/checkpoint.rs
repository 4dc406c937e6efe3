//! Checkpoints of the block log in the C2SP formats: a `tlog-checkpoint` note text (origin,
//! tree size, RFC 6962 root in base64) over [`crate::blocklog`], cosigned by validators
//! with `tlog-cosignature` v1 Ed25519 cosignatures (signed-note type `0x04`), and verified
//! by the power of the cosigners: more than two thirds of the validator set's.
//!
//! Each validator cosigns with its consensus key. The cosigned message starts with
//! `cosignature/v1\n`, which no consensus message can (those start with the borsh length of
//! an `acta/...` tag), so the key signs nothing it could be tricked into by a checkpoint.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use sha2::{Digest, Sha256};

use crate::{
    merkle, ChainId, Error, Hash, Keypair, PublicKey, Result, Signature, ValidatorSet, VotingPower,
};

/// The signed-note signature type of a timestamped Ed25519 cosignature (tlog-cosignature).
pub const COSIGNATURE_TYPE: u8 = 0x04;
/// Validators cosign the checkpoint of every height that is a multiple of this.
pub const CHECKPOINT_INTERVAL: u64 = 10;
/// The most signature lines a note may carry (the spec asks verifiers to accept 16 at least).
pub const NOTE_SIGNATURES_MAX: usize = 1024;
/// The largest note accepted, in bytes.
pub const NOTE_BYTES_MAX: usize = 256 * 1024;

fn bad(why: impl Into<String>) -> Error {
    Error::invalid("checkpoint", why.into())
}

/// A checkpoint's note text: the block log of `origin` has `size` leaves with root `root`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// The origin line of a chain's checkpoints.
pub fn origin(chain: &ChainId) -> String {
    format!("acta.city/{chain}/blocks")
}

impl Checkpoint {
    /// The checkpoint of `chain`'s block log at `size` blocks.
    pub fn of(
        log: &dyn crate::blocklog::HashReader,
        chain: &ChainId,
        size: u64,
    ) -> Result<Checkpoint> {
        Ok(Checkpoint {
            origin: origin(chain),
            size,
            root: crate::blocklog::root(log, size)?,
        })
    }

    /// The note text: three lines, each ending in a newline.
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root.0)
        )
    }

    /// Parses a note text strictly: an origin, a decimal size without leading zeroes, a
    /// base64 root of 32 bytes, and no extension lines.
    pub fn parse(text: &str) -> Result<Checkpoint> {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(bad("the text does not end in a newline"));
        };
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root] = lines.as_slice() else {
            return Err(bad(format!(
                "{} lines; a checkpoint has 3 (origin, size, root)",
                lines.len()
            )));
        };
        if origin.is_empty() {
            return Err(bad("the origin line is empty"));
        }
        let canonical = size.bytes().all(|b| b.is_ascii_digit())
            && !size.is_empty()
            && (size.len() == 1 || !size.starts_with('0'));
        let size: u64 = size.parse().ok().filter(|_| canonical).ok_or_else(|| {
            bad(format!(
                "size {size:?} is not a decimal without leading zeroes"
            ))
        })?;
        let root: [u8; 32] = STANDARD
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(format!("root {root:?} is not the base64 of 32 bytes")))?;
        let checkpoint = Checkpoint {
            origin: (*origin).to_string(),
            size,
            root: Hash(root),
        };
        if checkpoint.text() != text {
            return Err(bad("the text is not in canonical form"));
        }
        Ok(checkpoint)
    }

    /// Checks that the block with hash `block` is leaf `proof.leaf_index` (the block at
    /// height `leaf_index + 1`) of this checkpoint's log.
    pub fn verify_block(&self, block: &Hash, proof: &merkle::InclusionProof) -> Result<()> {
        if proof.tree_size != self.size {
            return Err(Error::Proof(format!(
                "the proof is for a log of {} blocks, the checkpoint of {}",
                proof.tree_size, self.size
            )));
        }
        merkle::verify_inclusion(&crate::blocklog::leaf(block), proof, &self.root)
    }

    /// Checks that this checkpoint's log extends `older`'s (RFC 9162 consistency).
    pub fn verify_extends(
        &self,
        older: &Checkpoint,
        proof: &merkle::ConsistencyProof,
    ) -> Result<()> {
        if older.origin != self.origin {
            return Err(bad(format!(
                "the checkpoints are of two logs: {} and {}",
                older.origin, self.origin
            )));
        }
        if proof.old_size != older.size || proof.new_size != self.size {
            return Err(Error::Proof(format!(
                "the proof is from {} to {} blocks, the checkpoints are of {} and {}",
                proof.old_size, proof.new_size, older.size, self.size
            )));
        }
        merkle::verify_consistency(&older.root, &self.root, proof)
    }
}

/// The key name a validator cosigns under.
pub fn cosigner_name(key: &PublicKey) -> String {
    format!("acta.city/validator/{}", key.to_hex())
}

/// The signed-note key ID of a cosigner: `SHA-256(name || 0x0A || 0x04 || key)[:4]`.
pub fn key_id(name: &str, key: &PublicKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', COSIGNATURE_TYPE]);
    h.update(key.0);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// The bytes a cosignature signs: `cosignature/v1`, the time, then the note text.
pub fn cosigned_message(text: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{text}").into_bytes()
}

/// One validator's cosignature of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Cosignature {
    pub key: PublicKey,
    /// Seconds since 1970 (the time of the checkpoint's last block).
    pub timestamp: u64,
    pub signature: Signature,
}

impl Cosignature {
    pub fn sign(keypair: &Keypair, checkpoint: &Checkpoint, timestamp: u64) -> Cosignature {
        Cosignature {
            key: keypair.public(),
            timestamp,
            signature: keypair.sign_raw(&cosigned_message(&checkpoint.text(), timestamp)),
        }
    }

    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.key.verify_raw(
            &cosigned_message(&checkpoint.text(), self.timestamp),
            &self.signature,
        )
    }

    /// The note's signature line: `— <name> base64(key ID || timestamp || signature)`.
    pub fn line(&self) -> String {
        let name = cosigner_name(&self.key);
        let mut bytes = key_id(&name, &self.key).to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.timestamp.to_be_bytes());
        bytes.extend_from_slice(&self.signature.0);
        format!("\u{2014} {name} {}\n", STANDARD.encode(bytes))
    }
}

/// A checkpoint with its cosignatures, as a signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub cosignatures: Vec<Cosignature>,
}

impl SignedCheckpoint {
    /// The signed note: the text, a blank line, one signature line per cosignature.
    pub fn note(&self) -> String {
        let mut note = self.checkpoint.text();
        note.push('\n');
        for c in &self.cosignatures {
            note.push_str(&c.line());
        }
        note
    }

    /// Opens a signed note as a checkpoint of `origin`, cosigned by members of `set`
    /// holding more than two thirds of its power. Signature lines of other keys are
    /// ignored (as signed-note requires); a line of a member that does not verify rejects
    /// the note. Returns the checkpoint, its verified cosignatures and their power.
    pub fn open(
        note: &str,
        origin: &str,
        set: &ValidatorSet,
    ) -> Result<(SignedCheckpoint, VotingPower)> {
        if note.len() > NOTE_BYTES_MAX {
            return Err(bad(format!(
                "the note has {} bytes; at most {NOTE_BYTES_MAX} are read",
                note.len()
            )));
        }
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(bad("the note holds control characters"));
        }
        let Some(split) = note.rfind("\n\n") else {
            return Err(bad("no blank line before the signatures"));
        };
        let (text, signatures) = (&note[..=split], &note[split + 2..]);
        let checkpoint = Checkpoint::parse(text)?;
        if checkpoint.origin != origin {
            return Err(bad(format!(
                "the checkpoint is of {}, not {origin}",
                checkpoint.origin
            )));
        }
        let Some(lines) = signatures.strip_suffix('\n') else {
            return Err(bad("the signatures do not end in a newline"));
        };
        let lines: Vec<&str> = lines.split('\n').collect();
        if lines.len() > NOTE_SIGNATURES_MAX {
            return Err(bad(format!(
                "{} signature lines; at most {NOTE_SIGNATURES_MAX}",
                lines.len()
            )));
        }
        // Each member's signed-note name and key ID, computed once.
        let known: std::collections::HashMap<(String, u32), &crate::Validator> = set
            .validators()
            .iter()
            .map(|v| {
                let name = cosigner_name(&v.public_key);
                let id = key_id(&name, &v.public_key);
                ((name, id), v)
            })
            .collect();
        let mut cosignatures = Vec::new();
        let mut power = 0u64;
        let mut seen = std::collections::BTreeSet::new();
        for line in lines {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(bad(format!("{line:?} is not a signature line")));
            };
            let Some((name, sig)) = rest.split_once(' ') else {
                return Err(bad(format!("{line:?} is not a signature line")));
            };
            let bytes = STANDARD
                .decode(sig)
                .map_err(|_| bad(format!("the signature of {name} is not base64")))?;
            if bytes.len() < 4 {
                return Err(bad(format!("the signature of {name} is too short")));
            }
            let id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            // A known key: a member of the set under its own name and key ID.
            let Some(validator) = known.get(&(name.to_string(), id)) else {
                continue;
            };
            let body = &bytes[4..];
            let (Ok(ts), Ok(signature)) = (
                <[u8; 8]>::try_from(body.get(..8).unwrap_or_default()),
                <[u8; 64]>::try_from(body.get(8..).unwrap_or_default()),
            ) else {
                return Err(bad(format!(
                    "the cosignature of {name} is not 8 + 64 bytes"
                )));
            };
            let c = Cosignature {
                key: validator.public_key,
                timestamp: u64::from_be_bytes(ts),
                signature: Signature(signature),
            };
            c.verify(&checkpoint)
                .map_err(|_| bad(format!("the cosignature of {name} does not verify")))?;
            if seen.insert(validator.public_key) {
                power += validator.power.0;
                cosignatures.push(c);
            }
        }
        if !set.is_quorum(VotingPower(power)) {
            return Err(bad(format!(
                "cosigned by {power} of {} voting power; more than two thirds is needed",
                set.total_power()
            )));
        }
        Ok((
            SignedCheckpoint {
                checkpoint,
                cosignatures,
            },
            VotingPower(power),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn fixture() -> (Vec<Keypair>, ValidatorSet, Checkpoint) {
        let (keys, set) = testing::validators(4, &[10, 10, 10, 10]);
        let checkpoint = Checkpoint {
            origin: origin(&testing::chain_id()),
            size: 17,
            root: Hash::digest(b"root"),
        };
        (keys, set, checkpoint)
    }

    #[test]
    fn texts_round_trip_and_only_canonical_ones_parse() {
        let (_, _, c) = fixture();
        assert_eq!(Checkpoint::parse(&c.text()).unwrap(), c);
        let root = STANDARD.encode(c.root.0);
        for bad in [
            format!("{}\n017\n{root}\n", c.origin),
            format!("{}\n17\n{root}", c.origin),
            format!("{}\n17\n{root}\next\n", c.origin),
            format!("\n17\n{root}\n"),
            format!("{}\n-1\n{root}\n", c.origin),
            format!("{}\n17\nAAAA\n", c.origin),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_note_opens_with_more_than_two_thirds_of_the_power() {
        let (keys, set, c) = fixture();
        let signed = |n: usize| SignedCheckpoint {
            checkpoint: c.clone(),
            cosignatures: keys[..n]
                .iter()
                .map(|k| Cosignature::sign(k, &c, 1_700_000_000))
                .collect(),
        };
        let (opened, power) = SignedCheckpoint::open(&signed(3).note(), &c.origin, &set).unwrap();
        assert_eq!((opened, power), (signed(3), VotingPower(30)));
        let e = SignedCheckpoint::open(&signed(2).note(), &c.origin, &set).unwrap_err();
        assert!(e.to_string().contains("cosigned by 20 of 40"), "{e}");
        // Another origin, a forged signature, a line of an unknown key (ignored).
        assert!(SignedCheckpoint::open(&signed(3).note(), "elsewhere", &set).is_err());
        let mut forged = signed(3);
        forged.cosignatures[1].signature.0[3] ^= 1;
        assert!(SignedCheckpoint::open(&forged.note(), &c.origin, &set).is_err());
        let stranger = testing::key(0x77, 0);
        let mut note = signed(3).note();
        note.push_str(&Cosignature::sign(&stranger, &c, 5).line());
        assert!(SignedCheckpoint::open(&note, &c.origin, &set).is_ok());
        // The same cosigner twice counts once.
        let mut twice = signed(2);
        twice.cosignatures.push(twice.cosignatures[0].clone());
        assert!(SignedCheckpoint::open(&twice.note(), &c.origin, &set).is_err());
        // Garbage is an error, never a panic.
        for junk in [
            "",
            "\n\n",
            "a\n\n\u{2014} x\n",
            "x\n1\nAA==\n\n\u{2014} n AAAA\n",
        ] {
            assert!(
                SignedCheckpoint::open(junk, &c.origin, &set).is_err(),
                "{junk:?}"
            );
        }
    }
}
