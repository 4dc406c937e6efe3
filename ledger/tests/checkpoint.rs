//! Acta's checkpoints checked by implementations Acta did not write: Cloudflare's
//! `signed_note` (C2SP signed-note) parses and verifies the cosigned notes, with a
//! tlog-cosignature v1 verifier written here from the C2SP text, and `tlog_tiles` (a port of
//! Go's `sumdb/tlog`) parses the checkpoint text and checks Acta's block-log inclusion and
//! consistency proofs. A note cosigned through `signed_note` opens in Acta, too.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use acta_ledger::{
    blocklog::{self, MemoryLog},
    checkpoint::{self, Checkpoint, Cosignature, SignedCheckpoint},
    testing, Hash, Keypair,
};
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use signed_note::{Note, Signer, Verifier, VerifierList};

/// The tlog-cosignature v1 (type 0x04) Ed25519 verifier, from c2sp.org/tlog-cosignature.
struct Cosigner {
    name: String,
    key: VerifyingKey,
    signing: Option<SigningKey>,
    timestamp: u64,
}

impl Cosigner {
    fn new(name: String, keypair: &Keypair) -> Cosigner {
        let signing = SigningKey::from_bytes(&keypair.seed());
        Cosigner {
            name,
            key: signing.verifying_key(),
            signing: Some(signing),
            timestamp: 1_800_000_000,
        }
    }

    fn message(ts: u64, text: &[u8]) -> Vec<u8> {
        let mut m = format!("cosignature/v1\ntime {ts}\n").into_bytes();
        m.extend_from_slice(text);
        m
    }
}

impl Verifier for Cosigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        let mut key = vec![0x04];
        key.extend_from_slice(self.key.as_bytes());
        signed_note::key_id(&self.name, &key)
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        if sig.len() != 72 {
            return false;
        }
        let ts = u64::from_be_bytes(sig[..8].try_into().unwrap());
        let signature = ed25519_dalek::Signature::from_bytes(sig[8..].try_into().unwrap());
        self.key
            .verify(&Cosigner::message(ts, msg), &signature)
            .is_ok()
    }
}

impl Signer for Cosigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        Verifier::key_id(self)
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        let signing = self
            .signing
            .as_ref()
            .ok_or_else(ed25519_dalek::SignatureError::new)?;
        let sig = signing.sign(&Cosigner::message(self.timestamp, msg));
        let mut out = self.timestamp.to_be_bytes().to_vec();
        out.extend_from_slice(&sig.to_bytes());
        Ok(out)
    }
}

fn tlog_hash(h: &Hash) -> tlog_tiles::Hash {
    tlog_tiles::Hash(h.0)
}

#[test]
fn checkpoints_and_proofs_verify_with_independent_implementations() {
    let chain = testing::chain_id();
    let (keys, set) = testing::validators(4, &[10, 10, 10, 10]);
    let blocks: Vec<Hash> = (0u32..45).map(|i| Hash::digest(&i.to_be_bytes())).collect();
    let mut log = MemoryLog::new();
    for b in &blocks {
        log.push(b).unwrap();
    }
    let checkpoint_at = |size: u64| Checkpoint {
        origin: checkpoint::origin(&chain),
        size,
        root: blocklog::root(&log, size).unwrap(),
    };
    let cp = checkpoint_at(45);
    let signed = SignedCheckpoint {
        checkpoint: cp.clone(),
        cosignatures: keys[..3]
            .iter()
            .map(|k| Cosignature::sign(k, &cp, 1_800_000_000))
            .collect(),
    };
    let note_text = signed.note();

    // signed_note parses the note and verifies the three cosignatures, with key IDs it
    // computes itself.
    let cosigners: Vec<Cosigner> = keys
        .iter()
        .map(|k| Cosigner::new(checkpoint::cosigner_name(&k.public()), k))
        .collect();
    for (c, k) in cosigners.iter().zip(&keys) {
        assert_eq!(
            Verifier::key_id(c),
            checkpoint::key_id(&c.name, &k.public())
        );
    }
    let verifiers = VerifierList::new(
        cosigners
            .iter()
            .map(|c| {
                Box::new(Cosigner {
                    name: c.name.clone(),
                    key: c.key,
                    signing: None,
                    timestamp: 0,
                }) as Box<dyn Verifier>
            })
            .collect(),
    );
    let note = Note::from_bytes(note_text.as_bytes()).unwrap();
    let (verified, unverified) = note.verify(&verifiers).unwrap();
    assert_eq!((verified.len(), unverified.len()), (3, 0));
    // A changed root fails there too.
    let forged = note_text.replacen(&cp.text(), &checkpoint_at(44).text(), 1);
    assert!(Note::from_bytes(forged.as_bytes())
        .unwrap()
        .verify(&verifiers)
        .is_err());

    // tlog_tiles parses the checkpoint text to the same origin, size and root.
    let parsed = tlog_tiles::Checkpoint::from_bytes(note.text()).unwrap();
    assert_eq!(
        (parsed.origin(), parsed.size(), parsed.hash().0),
        (cp.origin.as_str(), 45, cp.root.0)
    );

    // It checks Acta's inclusion proofs of blocks and consistency proofs of checkpoints.
    for index in [0u64, 1, 17, 31, 32, 44] {
        let proof = blocklog::inclusion_proof(&log, index, 45).unwrap();
        let path: Vec<tlog_tiles::Hash> = proof.path.iter().map(tlog_hash).collect();
        tlog_tiles::check_record(
            &path,
            45,
            tlog_hash(&cp.root),
            index,
            tlog_tiles::record_hash(&blocks[index as usize].0),
        )
        .unwrap();
        cp.verify_block(&blocks[index as usize], &proof).unwrap();
    }
    for old in [1u64, 2, 16, 30, 44] {
        let proof = blocklog::consistency_proof(&log, old, 45).unwrap();
        let path: Vec<tlog_tiles::Hash> = proof.path.iter().map(tlog_hash).collect();
        let older = checkpoint_at(old);
        tlog_tiles::check_tree(&path, 45, tlog_hash(&cp.root), old, tlog_hash(&older.root))
            .unwrap();
        cp.verify_extends(&older, &proof).unwrap();
    }

    // The other way: a note cosigned through signed_note opens in Acta.
    let mut note = Note::new(cp.text().as_bytes(), &[]).unwrap();
    let signers: Vec<&dyn Signer> = cosigners[1..].iter().map(|c| c as &dyn Signer).collect();
    note.add_sigs(&signers).unwrap();
    let text = String::from_utf8(note.to_bytes()).unwrap();
    let (opened, power) = SignedCheckpoint::open(&text, &cp.origin, &set).unwrap();
    assert_eq!((opened.checkpoint, power.0), (cp, 30));
}
