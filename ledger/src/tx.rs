//! Transactions and the calls they carry.
//!
//! A transaction is signed by its `signer` over `borsh(("acta/tx/v2", chain_id, (signer,
//! nonce, valid_until, call)))`. Its id is the SHA-256 of its whole borsh encoding, signature included.
//! A third party cannot turn a valid signature into another valid one (signatures as
//! verified here are not malleable), so a signed transaction keeps its id; its signer could
//! sign the same call again, and the nonce check lets at most one such copy execute.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    codec,
    crypto::{Domain, SignatureBatch},
    records::{CredentialKind, DidDocument, GovAction, RoundSpec},
    types::{Bytes, ChainId, Text, Timestamp},
    Error, Hash, Keypair, PublicKey, Result, Signature,
};

/// The most bytes one encoded transaction may have.
pub const TX_BYTES_MAX: usize = 64 * 1024;

/// A decentralised identifier `did:acta:<id>`, where the id is the base58 encoding of the
/// first 16 bytes of SHA-256 of the DID's initial public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Did(pub [u8; 16]);

impl Did {
    pub const PREFIX: &'static str = "did:acta:";

    /// The DID whose initial key is `key`.
    pub fn from_initial_key(key: &PublicKey) -> Did {
        let digest = Hash::digest(&key.0);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest.0[..16]);
        Did(id)
    }

    /// Parses `did:acta:<base58>`.
    pub fn parse(s: &str) -> Result<Did> {
        let bad = |why: &str| Error::invalid("did", format!("{s:?}: {why}"));
        let id = s
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| bad("does not start with did:acta:"))?;
        if id.len() > 24 {
            return Err(bad("identifier too long"));
        }
        let bytes = bs58::decode(id)
            .into_vec()
            .map_err(|_| bad("identifier is not base58"))?;
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|_| bad("identifier is not 16 bytes"))?;
        Ok(Did(arr))
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({self})")
    }
}

impl Serialize for Did {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Did {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Did::parse(&<String as Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// What a transaction asks the ledger to do: one enum over all record modules. New modules
/// and calls are added at the end, so existing encodings never change.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    Identity(IdentityCall),
    Sensor(SensorCall),
    Credential(CredentialCall),
    Governance(GovernanceCall),
    Budget(BudgetCall),
}

/// Calls of the participatory budget module.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetCall {
    /// Opens a round; signed by a key of `office`, which holds a BudgetOffice credential.
    OpenRound { office: Did, spec: RoundSpec },
    /// Proposes a project; signed by a key of `proposer`, a resident of the round's
    /// district, while proposals are open.
    Propose {
        round: u64,
        proposer: Did,
        title: Text<128>,
        cost: u64,
    },
    /// Casts (or replaces) `voter`'s ballot; signed by a key of `voter`, a resident of the
    /// round's district, while voting is open.
    Vote {
        round: u64,
        voter: Did,
        projects: Vec<u32>,
    },
    /// Asks for a ballot token of a secret round: `blinded` is the token message of a fresh
    /// ballot key, blinded ([`crate::token::blind`]). Signed by a key of `voter`, a
    /// resident of the round's district, once a round, before the round closes.
    RequestToken {
        round: u64,
        voter: Did,
        blinded: Bytes<{ crate::token::RSA_VALUE_BYTES_MAX }>,
    },
    /// The registrar's blind signature answering request `request` of a secret round;
    /// signed by a key of the round's registrar, before the round closes.
    IssueToken {
        round: u64,
        request: u64,
        blind_signature: Bytes<{ crate::token::RSA_VALUE_BYTES_MAX }>,
    },
    /// Casts (or replaces) a secret round's ballot, signed by the one-time ballot key the
    /// `token` was made for, while voting is open.
    VoteSecret {
        round: u64,
        token: Bytes<{ crate::token::RSA_VALUE_BYTES_MAX }>,
        projects: Vec<u32>,
    },
}

/// Calls of the credentials module, signed by a key of the issuer's DID.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialCall {
    /// Anchors a credential: its hash, subject, kind, district (residents only) and
    /// validity window.
    Issue {
        id: Hash,
        issuer: Did,
        subject: Did,
        kind: CredentialKind,
        district: Option<Text<32>>,
        valid_from: Timestamp,
        valid_until: Timestamp,
    },
    Suspend {
        id: Hash,
    },
    Reinstate {
        id: Hash,
    },
    /// Final.
    Revoke {
        id: Hash,
    },
}

/// Calls of the governance module, signed by council members.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GovernanceCall {
    /// Proposes an action; the proposer's approval is counted.
    Propose { action: GovAction },
    /// Approves a pending proposal; the approval that reaches the threshold carries it out.
    /// `action_hash` is [`GovAction::hash`] of the action the signer saw: an approval counts
    /// only for that action, never for whatever a proposal of that number turns out to hold.
    Approve { proposal: u64, action_hash: Hash },
}

/// Calls of the identity module.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityCall {
    /// Creates the DID of the signer's key (`did:acta:` and the key's id), whose document
    /// lists that key as `#key-1`; optionally pre-commits the SHA-256 of the key the first
    /// rotation must install.
    CreateDid { next_key_hash: Option<Hash> },
    /// Replaces the DID's document. Signed by one of its keys or a controller's key.
    UpdateDocument { did: Did, document: DidDocument },
    /// Replaces the signing key (which must be one of the DID's own keys) with `new_key`,
    /// which must match the pre-committed hash if there is one, and pre-commits the next.
    RotateKey {
        did: Did,
        new_key: PublicKey,
        next_key_hash: Option<Hash>,
    },
    /// Deactivates the DID for good.
    Deactivate { did: Did },
}

/// Calls of the sensor module.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorCall {
    /// A batch of readings attested by the device's key (the transaction's signer).
    Attest(AttestationBatch),
    /// Registers `device` (an existing DID) under `operator`, whose key signs and who holds
    /// a SensorOperator credential.
    Register {
        operator: Did,
        device: Did,
        kind: Text<32>,
        unit: Text<16>,
        location: Text<6>,
        stream: Text<64>,
    },
    /// Moves a device; signed by a key of its operator.
    Relocate { device: Did, location: Text<6> },
    /// Hands a device to another operator (who must hold a SensorOperator credential);
    /// signed by a key of the current operator.
    Transfer { device: Did, operator: Did },
    /// Retires a device for good; signed by a key of its operator.
    Deactivate { device: Did },
}

/// The most bytes one sensor reading (one leaf of an attestation batch's `readings_root`)
/// may have. Wallets refuse a larger reading before signing its batch, and a proof bundle
/// of a larger reading does not verify, so no reading of any size needs to be carried.
pub const READING_BYTES_MAX: usize = 64 * 1024;

/// A signed batch of sensor readings. The readings stay off the ledger; `readings_root` is
/// the RFC 9162 root over them, so any one reading can be proven to be in the batch.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttestationBatch {
    pub device: Did,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub stream: Text<64>,
    pub sequence: u64,
    pub prev_batch_hash: Hash,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub reading_count: u32,
    pub readings_root: Hash,
    pub raw_batch_hash: Hash,
}

/// How long a transaction signed by Acta's wallets stays valid unless told otherwise: 10
/// minutes (nodes' pools take at most an hour by default).
pub const TX_LIFETIME_DEFAULT_MS: u64 = 10 * 60 * 1_000;

/// A signed transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transaction {
    pub chain_id: ChainId,
    pub signer: PublicKey,
    pub nonce: u64,
    /// The latest block time at which the transaction may be in a block. Past it, the
    /// signed bytes are dead: a transaction refused before any block held it (by a
    /// mempool, which leaves its nonce unused) cannot be brought back later.
    pub valid_until: Timestamp,
    /// The call (its JSON follows its encoding: docs/wire-format.md, section 5.2).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub call: Call,
    pub signature: Signature,
}

impl Transaction {
    /// Builds and signs a transaction that may be in a block up to the time `valid_until`.
    pub fn sign(
        key: &Keypair,
        chain_id: ChainId,
        nonce: u64,
        valid_until: Timestamp,
        call: Call,
    ) -> Transaction {
        let signer = key.public();
        let signature = key.sign(
            Domain::Transaction,
            &chain_id,
            &(signer, nonce, valid_until, &call),
        );
        Transaction {
            chain_id,
            signer,
            nonce,
            valid_until,
            call,
            signature,
        }
    }

    /// The exact bytes the signer signed.
    pub fn signing_bytes(&self) -> Vec<u8> {
        crate::crypto::signing_bytes(
            Domain::Transaction,
            &self.chain_id,
            &(self.signer, self.nonce, self.valid_until, &self.call),
        )
    }

    /// Whether a block of time `time` may hold the transaction.
    pub fn is_live_at(&self, time: Timestamp) -> bool {
        time <= self.valid_until
    }

    /// The transaction id: SHA-256 of the whole encoding.
    pub fn id(&self) -> Hash {
        Hash::of(self)
    }

    /// Checks the chain id and the signature.
    pub fn verify(&self, chain_id: &ChainId) -> Result<()> {
        self.check_chain(chain_id)?;
        self.signer
            .verify_raw(&self.signing_bytes(), &self.signature)
    }

    fn check_chain(&self, chain_id: &ChainId) -> Result<()> {
        if &self.chain_id != chain_id {
            return Err(Error::WrongChainId {
                expected: chain_id.to_string(),
                got: self.chain_id.to_string(),
            });
        }
        Ok(())
    }

    /// Checks many transactions at once. Returns one result per transaction.
    pub fn verify_batch(txs: &[&Transaction], chain_id: &ChainId) -> Vec<Result<()>> {
        Self::verify_groups(&[txs], chain_id)
            .pop()
            .expect("one result list per group")
    }

    /// [`Transaction::verify_batch`] for several groups (each a sender's batch) at once:
    /// their signatures are checked together first, then group by group if that fails
    /// ([`SignatureBatch::verify_groups`]). One result list per group, in order.
    pub fn verify_groups(groups: &[&[&Transaction]], chain_id: &ChainId) -> Vec<Vec<Result<()>>> {
        let mut batches = Vec::with_capacity(groups.len());
        let mut chain_errors = Vec::with_capacity(groups.len());
        for txs in groups {
            let mut batch = SignatureBatch::with_capacity(txs.len());
            let mut errors = Vec::with_capacity(txs.len());
            for tx in *txs {
                let wrong_chain = tx.check_chain(chain_id).err();
                if wrong_chain.is_none() {
                    batch.push(tx.signer, tx.signature, tx.signing_bytes());
                }
                errors.push(wrong_chain);
            }
            batches.push(batch);
            chain_errors.push(errors);
        }
        SignatureBatch::verify_groups(batches)
            .into_iter()
            .zip(chain_errors)
            .map(|(sig_results, errors)| {
                let mut sig_results = sig_results.into_iter();
                errors
                    .into_iter()
                    .map(|e| match e {
                        Some(e) => Err(e),
                        None => sig_results.next().expect("one result per pushed signature"),
                    })
                    .collect()
            })
            .collect()
    }

    /// Decodes one transaction of at most [`TX_BYTES_MAX`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Transaction> {
        codec::decode("transaction", bytes, TX_BYTES_MAX)
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn chain() -> ChainId {
        ChainId::new("acta-test").unwrap()
    }

    fn tx(seed: u8, nonce: u64) -> Transaction {
        let call = Call::Identity(IdentityCall::CreateDid {
            next_key_hash: None,
        });
        Transaction::sign(
            &Keypair::from_seed([seed; 32]),
            chain(),
            nonce,
            Timestamp(1_000),
            call,
        )
    }

    #[test]
    fn did_is_derived_from_the_initial_key_and_round_trips() {
        let key = Keypair::from_seed([7; 32]).public();
        let did = Did::from_initial_key(&key);
        let text = did.to_string();
        assert!(text.starts_with("did:acta:"));
        assert_eq!(Did::parse(&text).unwrap(), did);
        for bad in [
            "did:web:x",
            "did:acta:",
            "did:acta:0OIl",
            "did:acta:111111111111111111111111111",
        ] {
            assert!(Did::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_signed_transaction_verifies_and_any_change_breaks_it() {
        let t = tx(1, 0);
        t.verify(&chain()).unwrap();
        let mut n = t.clone();
        n.nonce = 1;
        assert!(n.verify(&chain()).is_err());
        let mut v = t.clone();
        v.valid_until = Timestamp(1_001);
        assert!(v.verify(&chain()).is_err(), "the time limit is signed");
        let mut s = t.clone();
        s.signer = Keypair::from_seed([2; 32]).public();
        assert!(s.verify(&chain()).is_err());
        let other = ChainId::new("acta-other").unwrap();
        assert!(matches!(t.verify(&other), Err(Error::WrongChainId { .. })));
        let decoded = Transaction::decode(&t.encode()).unwrap();
        assert_eq!(decoded, t);
        assert_eq!(decoded.id(), t.id());
    }

    #[test]
    fn batch_verification_agrees_with_single_verification() {
        let mut txs: Vec<Transaction> = (0..20u8).map(|i| tx(i, u64::from(i))).collect();
        txs[4].signature.0[3] ^= 0x10;
        txs[9].chain_id = ChainId::new("acta-other").unwrap();
        txs[13].nonce += 1;
        let refs: Vec<&Transaction> = txs.iter().collect();
        let batch = Transaction::verify_batch(&refs, &chain());
        for (t, r) in txs.iter().zip(&batch) {
            assert_eq!(t.verify(&chain()).is_ok(), r.is_ok());
        }
        assert_eq!(batch.iter().filter(|r| r.is_err()).count(), 3);
    }
}
