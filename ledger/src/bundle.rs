//! Proof bundles: what an auditor needs to check, offline, that records are on the ledger as
//! claimed, trusting nothing but the genesis (its chain id and validator set).
//!
//! A bundle names one block header and carries:
//! - the commit certificate that signs the header;
//! - the validator-set changes between the genesis and that header: for each change, the
//!   header that announced the new set as `next_validators_hash`, its commit, and the set;
//! - state values with their proofs against the header's state root;
//! - optionally, a transaction with its inclusion proof under `txs_root` and its result with
//!   its inclusion proof under `results_root`;
//! - optionally, a sensor reading with its inclusion proof under the `readings_root` of the
//!   attestation batch proven in the state.
//!
//! [`ProofBundle::verify`] walks these links in order and names the step that failed. Its
//! trust assumption is the one of every light client: each validator set, while it signed,
//! had more than two thirds of its power honest (see `docs/adr/0006-node-api.md`).

use serde::{Deserialize, Serialize};

use crate::{
    block::Header,
    light::verify_commit,
    merkle::{self, InclusionProof},
    records::AttestationRecord,
    state::{state_key, StateProof},
    types::{ChainId, Height, Timestamp},
    validator::ValidatorSet,
    vote::Commit,
    Hash, Transaction,
};

/// The bundle format's version.
pub const BUNDLE_VERSION: u32 = 1;
/// The most validator-set changes a bundle may carry.
pub const BUNDLE_CHANGES_MAX: usize = 100_000;
/// The most state values a bundle may carry.
pub const BUNDLE_STATE_MAX: usize = 1024;

/// Bytes as lowercase hex in JSON.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'_, str>>::deserialize(d)?;
        hex::decode(s.as_ref()).map_err(serde::de::Error::custom)
    }
}

mod hex_option {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A change of validator set: `header` (signed by `commit`) names `next_validators` as the
/// set that signs the block after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetChange {
    pub header: Header,
    pub commit: Commit,
    pub next_validators: ValidatorSet,
}

/// A state value (or its absence) with its proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateEntry {
    pub namespace: String,
    #[serde(with = "hex_bytes")]
    pub key: Vec<u8>,
    /// The value's bytes; `null` proves that the key holds nothing.
    #[serde(with = "hex_option")]
    pub value: Option<Vec<u8>>,
    /// The borsh encoding of the [`StateProof`].
    #[serde(with = "hex_bytes")]
    pub proof: Vec<u8>,
}

/// A transaction of the header's block and its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxEntry {
    /// The transaction's borsh encoding.
    #[serde(with = "hex_bytes")]
    pub tx: Vec<u8>,
    pub tx_proof: InclusionProof,
    /// The borsh encoding of its result (a receipt).
    #[serde(with = "hex_bytes")]
    pub result: Vec<u8>,
    pub result_proof: InclusionProof,
}

/// One sensor reading of an attestation batch that the bundle's state entries prove.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingEntry {
    /// The reading's bytes, as the device hashed them.
    #[serde(with = "hex_bytes")]
    pub reading: Vec<u8>,
    pub proof: InclusionProof,
}

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    pub version: u32,
    pub chain_id: ChainId,
    pub validator_changes: Vec<SetChange>,
    pub header: Header,
    pub commit: Commit,
    pub state: Vec<StateEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<TxEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<ReadingEntry>,
}

/// The step of verification that failed, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {message}")]
pub struct BundleError {
    pub step: &'static str,
    pub message: String,
}

fn fail<T>(step: &'static str, message: impl Into<String>) -> Result<T, BundleError> {
    Err(BundleError {
        step,
        message: message.into(),
    })
}

/// What a verified bundle established. A caller checks that these are the facts it asked
/// about (the key it wanted, the transaction it sent, the device it audits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub chain_id: ChainId,
    pub height: Height,
    pub block_hash: Hash,
    pub time: Timestamp,
    /// The power that signed the header, and the set's total.
    pub signed_power: u64,
    pub total_power: u64,
    /// The state values proven: namespace, key, and the value (`None`: proven absent).
    pub state: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
    /// The transaction proven in the block, and its result's bytes.
    pub tx: Option<(Hash, Vec<u8>)>,
    /// The reading proven: its batch's device and sequence number, and its index.
    pub reading: Option<ProvenReading>,
    /// What was checked, one line per step, in order.
    pub steps: Vec<String>,
}

/// A reading a bundle proved to be in an attested batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProvenReading {
    pub device: crate::Did,
    pub sequence: u64,
    pub index: u64,
}

impl ProofBundle {
    /// Checks every link from the records to the genesis validator set. See the module
    /// documentation.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        genesis_validators: &ValidatorSet,
    ) -> Result<Verified, BundleError> {
        let mut steps = Vec::new();
        if self.version != BUNDLE_VERSION {
            return fail(
                "format",
                format!(
                    "bundle version {} (this verifier reads {BUNDLE_VERSION})",
                    self.version
                ),
            );
        }
        if self.validator_changes.len() > BUNDLE_CHANGES_MAX || self.state.len() > BUNDLE_STATE_MAX
        {
            return fail("format", "too many validator changes or state entries");
        }
        if self.chain_id != *chain_id || self.header.chain_id != *chain_id {
            return fail(
                "chain",
                format!(
                    "the bundle is for chain {} (header: {}), the genesis for {chain_id}",
                    self.chain_id, self.header.chain_id
                ),
            );
        }
        steps.push(format!("chain id {chain_id} matches the genesis"));

        let target = self.header.height;
        let mut trusted = genesis_validators.clone();
        let mut last = Height(0);
        for change in &self.validator_changes {
            let h = &change.header;
            let step = "validator set";
            if h.height <= last || h.height >= target {
                return fail(
                    step,
                    format!(
                        "change announced at height {} is not between {last} and {target}",
                        h.height
                    ),
                );
            }
            if h.chain_id != *chain_id {
                return fail(
                    step,
                    format!("header {} is for chain {}", h.height, h.chain_id),
                );
            }
            if h.validators_hash != trusted.hash() {
                return fail(
                    step,
                    format!(
                        "header {} is not signed by the set trusted at that height (a change before it is missing)",
                        h.height
                    ),
                );
            }
            verify_commit(chain_id, &trusted, &change.commit, h.height, &h.hash()).map_err(
                |e| BundleError {
                    step,
                    message: format!("header {}: {e}", h.height),
                },
            )?;
            if h.next_validators_hash != change.next_validators.hash() {
                return fail(
                    step,
                    format!(
                        "header {} does not name the new set given with it",
                        h.height
                    ),
                );
            }
            steps.push(format!(
                "validator set changes after height {} ({} validators, power {}), signed by the set before",
                h.height,
                change.next_validators.len(),
                change.next_validators.total_power().0
            ));
            trusted = change.next_validators.clone();
            last = h.height;
        }

        let hash = self.header.hash();
        if self.header.validators_hash != trusted.hash() {
            return fail(
                "commit",
                format!(
                    "header {target} names a validator set other than the one trusted at that height"
                ),
            );
        }
        let signed =
            verify_commit(chain_id, &trusted, &self.commit, target, &hash).map_err(|e| {
                BundleError {
                    step: "commit",
                    message: e.to_string(),
                }
            })?;
        steps.push(format!(
            "header {target} (block {hash}) is signed by {} of {} voting power, more than two thirds",
            signed.0,
            trusted.total_power().0
        ));

        let mut attestation = None;
        let mut proven_state = Vec::with_capacity(self.state.len());
        for entry in &self.state {
            let key = state_key_checked(&entry.namespace, &entry.key)?;
            let proof = StateProof::decode(&entry.proof).map_err(|e| BundleError {
                step: "state",
                message: format!("{}/{}: {e}", entry.namespace, hex::encode(&entry.key)),
            })?;
            proof
                .verify(&self.header.state_root, &key, entry.value.as_deref())
                .map_err(|e| BundleError {
                    step: "state",
                    message: format!(
                        "{}/{} is not proven under the state root {}: {e}",
                        entry.namespace,
                        hex::encode(&entry.key),
                        self.header.state_root
                    ),
                })?;
            steps.push(match &entry.value {
                Some(v) => format!(
                    "{}/{} holds the given {} bytes at height {target}",
                    entry.namespace,
                    hex::encode(&entry.key),
                    v.len()
                ),
                None => format!(
                    "{}/{} holds nothing at height {target}",
                    entry.namespace,
                    hex::encode(&entry.key)
                ),
            });
            if entry.namespace == "attestation" && attestation.is_none() {
                attestation = entry.value.clone();
            }
            proven_state.push((
                entry.namespace.clone(),
                entry.key.clone(),
                entry.value.clone(),
            ));
        }
        let mut proven_tx = None;
        let mut proven_reading = None;

        if let Some(t) = &self.tx {
            let tx = Transaction::decode(&t.tx).map_err(|e| BundleError {
                step: "transaction",
                message: e.to_string(),
            })?;
            let id = tx.id();
            merkle::verify_inclusion(
                &merkle::leaf_hash(&id.0),
                &t.tx_proof,
                &self.header.txs_root,
            )
            .map_err(|e| BundleError {
                step: "transaction",
                message: format!("transaction {id} is not in block {target}: {e}"),
            })?;
            if t.result_proof.leaf_index != t.tx_proof.leaf_index
                || t.result_proof.tree_size != t.tx_proof.tree_size
            {
                return fail(
                    "transaction",
                    "the result's position differs from the transaction's",
                );
            }
            merkle::verify_inclusion(
                &merkle::leaf_hash(&t.result),
                &t.result_proof,
                &self.header.results_root,
            )
            .map_err(|e| BundleError {
                step: "transaction",
                message: format!("the result of {id} is not the block's: {e}"),
            })?;
            steps.push(format!(
                "transaction {id} is number {} of block {target}, and its result is the block's",
                t.tx_proof.leaf_index
            ));
            proven_tx = Some((id, t.result.clone()));
        }

        if let Some(r) = &self.reading {
            if r.reading.len() > crate::tx::READING_BYTES_MAX {
                return fail(
                    "reading",
                    format!(
                        "the reading has {} bytes; a reading has at most {}",
                        r.reading.len(),
                        crate::tx::READING_BYTES_MAX
                    ),
                );
            }
            let Some(bytes) = attestation else {
                return fail("reading", "the bundle proves no attestation batch");
            };
            let batches = self
                .state
                .iter()
                .filter(|e| e.namespace == "attestation")
                .count();
            if batches > 1 {
                return fail(
                    "reading",
                    "the bundle proves more than one batch: which one holds the reading is unclear",
                );
            }
            let record: AttestationRecord =
                crate::codec::decode("attestation record", &bytes, crate::tx::TX_BYTES_MAX)
                    .map_err(|e| BundleError {
                        step: "reading",
                        message: e.to_string(),
                    })?;
            if r.proof.tree_size != u64::from(record.batch.reading_count) {
                return fail(
                    "reading",
                    format!(
                        "the proof is for {} readings, the batch has {}",
                        r.proof.tree_size, record.batch.reading_count
                    ),
                );
            }
            merkle::verify_inclusion(
                &merkle::leaf_hash(&r.reading),
                &r.proof,
                &record.batch.readings_root,
            )
            .map_err(|e| BundleError {
                step: "reading",
                message: format!(
                    "the reading is not in batch {} of {}: {e}",
                    record.batch.sequence, record.batch.device
                ),
            })?;
            steps.push(format!(
                "the reading is number {} of the {} in batch {} of {}",
                r.proof.leaf_index,
                record.batch.reading_count,
                record.batch.sequence,
                record.batch.device
            ));
            proven_reading = Some(ProvenReading {
                device: record.batch.device,
                sequence: record.batch.sequence,
                index: r.proof.leaf_index,
            });
        }

        Ok(Verified {
            chain_id: chain_id.clone(),
            height: target,
            block_hash: hash,
            time: self.header.time,
            signed_power: signed.0,
            total_power: trusted.total_power().0,
            state: proven_state,
            tx: proven_tx,
            reading: proven_reading,
            steps,
        })
    }
}

fn state_key_checked(namespace: &str, key: &[u8]) -> Result<Hash, BundleError> {
    if namespace.is_empty() || namespace.len() > 64 {
        return fail(
            "state",
            format!("namespace {namespace:?} is not 1 to 64 bytes"),
        );
    }
    Ok(state_key(namespace, key))
}

/// What an auditor trusts: a chain id and its genesis validator set, as read from a node's
/// `genesis.json` (only `chain_id` and each validator's `consensus_key` and `power` are
/// read; the rest of the file does not matter to a proof).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustAnchor {
    pub chain_id: ChainId,
    pub validators: ValidatorSet,
}

impl TrustAnchor {
    pub fn from_genesis_json(text: &str) -> Result<TrustAnchor, String> {
        #[derive(Deserialize)]
        struct Validator {
            consensus_key: String,
            power: u64,
        }
        #[derive(Deserialize)]
        struct Genesis {
            chain_id: String,
            validators: Vec<Validator>,
        }
        let g: Genesis =
            serde_json::from_str(text).map_err(|e| format!("not a genesis file: {e}"))?;
        let chain_id = ChainId::new(&g.chain_id).map_err(|e| format!("field chain_id: {e}"))?;
        let mut set = Vec::with_capacity(g.validators.len());
        for (i, v) in g.validators.iter().enumerate() {
            let key = crate::PublicKey::from_hex(&v.consensus_key)
                .map_err(|e| format!("field validators[{i}].consensus_key: {e}"))?;
            set.push(crate::Validator {
                public_key: key,
                power: crate::VotingPower(v.power),
            });
        }
        let validators = ValidatorSet::new(set).map_err(|e| format!("field validators: {e}"))?;
        Ok(TrustAnchor {
            chain_id,
            validators,
        })
    }
}
