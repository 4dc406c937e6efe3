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
//! - optionally, readings of the attestation batch proven in the state (all of them or
//!   any subset), each with its inclusion proof under the batch's `readings_root`.
//!
//! [`ProofBundle::verify`] walks these links in order and names the step that failed. Its
//! trust assumption is the one of every light client: each validator set, while it signed,
//! had more than two thirds of its power honest (see `docs/adr/0006-node-api.md`).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    block::Header,
    checkpoint::Checkpoint,
    light::TrustedState,
    merkle::{self, InclusionProof},
    records::AttestationRecord,
    state::{state_key, StateProof},
    types::{ChainId, Height, Timestamp},
    validator::ValidatorSet,
    vote::Commit,
    Hash, Transaction,
};

/// The bundle format's version.
pub const BUNDLE_VERSION: u32 = 2;
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetChange {
    pub header: Header,
    pub commit: Commit,
    pub next_validators: ValidatorSet,
}

/// A state value (or its absence) with its proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateEntry {
    pub namespace: String,
    #[serde(with = "hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub key: Vec<u8>,
    /// The value's bytes; `null` proves that the key holds nothing.
    #[serde(with = "hex_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, required = true))]
    pub value: Option<Vec<u8>>,
    /// The borsh encoding of the `StateProof`, hex.
    #[serde(with = "hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub proof: Vec<u8>,
}

/// A transaction of the header's block and its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TxEntry {
    /// The transaction's borsh encoding.
    #[serde(with = "hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub tx: Vec<u8>,
    pub tx_proof: InclusionProof,
    /// The borsh encoding of its result (a receipt).
    #[serde(with = "hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub result: Vec<u8>,
    pub result_proof: InclusionProof,
}

/// One sensor reading of an attestation batch that the bundle's state entries prove.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadingEntry {
    /// The reading's bytes, as the device hashed them.
    #[serde(with = "hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub reading: Vec<u8>,
    pub proof: InclusionProof,
}

/// One ballot of a tallied budget round, with its inclusion proof under the round's
/// `ballots_root` (a resident's receipt).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BallotEntry {
    /// The ballot's borsh encoding (a `BudgetBallot`).
    #[serde(with = "hex_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ballot: Vec<u8>,
    pub proof: InclusionProof,
}

/// Hex strings of byte strings in JSON.
mod hex_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(items: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(items.iter().map(hex::encode))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// See the module documentation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProofBundle {
    pub version: u32,
    pub chain_id: ChainId,
    /// The API request this bundle proves the answer to (`/credentials/5f1c...`), if it was
    /// made for one: an auditor computes that answer again from the proven values and
    /// compares it with the one shown, field by field (`acta_contracts::audit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub validator_changes: Vec<SetChange>,
    pub header: Header,
    pub commit: Commit,
    pub state: Vec<StateEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<TxEntry>,
    /// Readings of the one attestation batch the state entries prove, any subset of it,
    /// each with its own inclusion proof (a verifier may drop any of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readings: Vec<ReadingEntry>,
    /// Ballots of the one budget round whose tally the state entries prove, each with its
    /// inclusion proof under the tally's `ballots_root` (a receipt).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ballots: Vec<BallotEntry>,
    /// Every ballot of that round, in index order, as borsh: their root must be the
    /// tally's `ballots_root` (what a replay of the tally checks).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "hex_list")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub all_ballots: Vec<Vec<u8>>,
    /// The header's block in the block log of a checkpoint, so that the bundle can be
    /// verified against that checkpoint instead of the chain of headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointEntry>,
}

/// The inclusion of a bundle's header in the block log of the checkpoint of `size` blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointEntry {
    pub size: u64,
    pub proof: InclusionProof,
}

/// What a bundle's header is checked against.
#[derive(Clone, Copy, Debug)]
enum Trust<'a> {
    Genesis(&'a ValidatorSet),
    Pinned(&'a TrustPin),
    Checkpoint(&'a Checkpoint),
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
    /// The power that signed the header, and the set's total (`None` when the header was
    /// proven by a checkpoint instead).
    pub signed_power: Option<u64>,
    pub total_power: Option<u64>,
    /// The validator set that signed the header (`None` when proven by a checkpoint).
    pub validators: Option<ValidatorSet>,
    /// The state values proven: namespace, key, and the value (`None`: proven absent).
    pub state: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
    /// The transaction proven in the block, and its result's bytes.
    pub tx: Option<(Hash, Vec<u8>)>,
    /// The readings proven: their batch's device and sequence number, their indexes and
    /// bytes.
    pub readings: Vec<ProvenReading>,
    /// The ballots proven to be among those a round tallied: all of them, or some.
    pub ballots: Vec<ProvenBallot>,
    /// What was checked, one line per step, in order.
    pub steps: Vec<String>,
}

/// A ballot a bundle proved to be among those its round tallied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProvenBallot {
    pub round: u64,
    /// Its position among the round's ballots.
    pub index: u64,
    pub ballot: crate::records::BudgetBallot,
    /// The proven bytes (the ballot's borsh encoding).
    pub bytes: Vec<u8>,
}

/// A reading a bundle proved to be in an attested batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProvenReading {
    pub device: crate::Did,
    pub sequence: u64,
    pub index: u64,
    pub bytes: Vec<u8>,
}

impl ProofBundle {
    /// Checks every link from the records to the genesis validator set. See the module
    /// documentation.
    pub fn verify(
        &self,
        chain_id: &ChainId,
        genesis_validators: &ValidatorSet,
    ) -> Result<Verified, BundleError> {
        self.verify_with(chain_id, Trust::Genesis(genesis_validators))
    }

    /// Checks every link from the records to what `anchor` trusts: its pinned validator set
    /// if it has one ([`TrustAnchor::pin`]), else its genesis set ([`Self::verify`]).
    pub fn verify_trusting(&self, anchor: &TrustAnchor) -> Result<Verified, BundleError> {
        match &anchor.pin {
            Some(pin) => self.verify_with(&anchor.chain_id, Trust::Pinned(pin)),
            None => self.verify_with(&anchor.chain_id, Trust::Genesis(&anchor.validators)),
        }
    }

    /// Checks the records against a checkpoint the caller trusts (its cosignatures already
    /// opened with [`crate::checkpoint::SignedCheckpoint::open`]): the header is proven to be
    /// a block of the checkpoint's log, and no chain of headers is followed.
    pub fn verify_against(
        &self,
        chain_id: &ChainId,
        checkpoint: &Checkpoint,
    ) -> Result<Verified, BundleError> {
        self.verify_with(chain_id, Trust::Checkpoint(checkpoint))
    }

    fn verify_with(&self, chain_id: &ChainId, trust: Trust<'_>) -> Result<Verified, BundleError> {
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
        let hash = self.header.hash();
        let (signed, trusted) = match trust {
            Trust::Genesis(genesis_validators) => {
                let start = TrustedState::anchor(chain_id.clone(), genesis_validators.clone());
                let (signed, set) = self.follow_headers(start, None, &mut steps)?;
                (Some(signed), Some(set))
            }
            Trust::Pinned(pin) => {
                let start = self.start_at_pin(chain_id, pin, &mut steps)?;
                let (signed, set) = self.follow_headers(start, Some(pin), &mut steps)?;
                (Some(signed), Some(set))
            }
            Trust::Checkpoint(checkpoint) => {
                let Some(entry) = &self.checkpoint else {
                    return fail(
                        "checkpoint",
                        "the bundle holds no proof against a checkpoint: read it again with &checkpoint=SIZE",
                    );
                };
                if checkpoint.origin != crate::checkpoint::origin(chain_id) {
                    return fail(
                        "checkpoint",
                        format!(
                            "the checkpoint is of {}, not of chain {chain_id}",
                            checkpoint.origin
                        ),
                    );
                }
                if entry.size != checkpoint.size
                    || target.0.checked_sub(1) != Some(entry.proof.leaf_index)
                {
                    return fail(
                        "checkpoint",
                        format!(
                            "the bundle proves leaf {} (block {target} is leaf {}) in a log of {} blocks; the checkpoint has {}",
                            entry.proof.leaf_index,
                            target.0.saturating_sub(1),
                            entry.size,
                            checkpoint.size
                        ),
                    );
                }
                checkpoint
                    .verify_block(&hash, &entry.proof)
                    .map_err(|e| BundleError {
                        step: "checkpoint",
                        message: format!("header {target} is not in the checkpoint's log: {e}"),
                    })?;
                steps.push(format!(
                    "header {target} (block {hash}) is block {target} of the {} blocks of checkpoint {} (root {})",
                    checkpoint.size, checkpoint.origin, checkpoint.root
                ));
                (None, None)
            }
        };

        let mut attestation = None;
        let mut proven_state = Vec::with_capacity(self.state.len());
        let mut keys = std::collections::HashSet::with_capacity(self.state.len());
        for entry in &self.state {
            if !keys.insert((entry.namespace.as_str(), entry.key.as_slice())) {
                return fail(
                    "state",
                    format!(
                        "{}/{} is given twice",
                        entry.namespace,
                        hex::encode(&entry.key)
                    ),
                );
            }
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
            let receipt =
                crate::Receipt::decode(&t.result, crate::tx::TX_BYTES_MAX).map_err(|e| {
                    BundleError {
                        step: "transaction",
                        message: format!("the result of {id}: {e}"),
                    }
                })?;
            if receipt.tx != id {
                return fail(
                    "transaction",
                    format!("the result proven is for {}, not {id}", receipt.tx),
                );
            }
            // Not its position: the rightmost leaf of a tree fits more than one (index,
            // size), and the header does not give the block's count of transactions.
            steps.push(format!(
                "transaction {id} is in block {target}, and its result is the block's"
            ));
            proven_tx = Some((id, t.result.clone()));
        }

        let mut proven_readings = Vec::with_capacity(self.readings.len());
        if !self.readings.is_empty() {
            if let Some(r) = self
                .readings
                .iter()
                .find(|r| r.reading.len() > crate::tx::READING_BYTES_MAX)
            {
                return fail(
                    "reading",
                    format!(
                        "reading {} has {} bytes; a reading has at most {}",
                        r.proof.leaf_index,
                        r.reading.len(),
                        crate::tx::READING_BYTES_MAX
                    ),
                );
            }
            let batch = self.proven_batch(attestation)?;
            let mut seen = std::collections::BTreeSet::new();
            for r in &self.readings {
                let index = r.proof.leaf_index;
                if r.proof.tree_size != u64::from(batch.reading_count) {
                    return fail(
                        "reading",
                        format!(
                            "the proof of reading {index} is for {} readings, the batch has {}",
                            r.proof.tree_size, batch.reading_count
                        ),
                    );
                }
                if !seen.insert(index) {
                    return fail("reading", format!("reading {index} is given twice"));
                }
                merkle::verify_inclusion(
                    &merkle::leaf_hash(&r.reading),
                    &r.proof,
                    &batch.readings_root,
                )
                .map_err(|e| BundleError {
                    step: "reading",
                    message: format!(
                        "reading {index} is not in batch {} of {}: {e}",
                        batch.sequence, batch.device
                    ),
                })?;
                proven_readings.push(ProvenReading {
                    device: batch.device,
                    sequence: batch.sequence,
                    index,
                    bytes: r.reading.clone(),
                });
            }
            steps.push(match proven_readings.as_slice() {
                [one] => format!(
                    "the reading is number {} of the {} in batch {} of {}",
                    one.index, batch.reading_count, batch.sequence, batch.device
                ),
                many => format!(
                    "{} readings are in batch {} of {} (of its {}), each by its own inclusion proof",
                    many.len(),
                    batch.sequence,
                    batch.device,
                    batch.reading_count
                ),
            });
        }

        let proven_ballots = self.verify_ballots(&mut steps)?;

        Ok(Verified {
            chain_id: chain_id.clone(),
            height: target,
            block_hash: hash,
            time: self.header.time,
            signed_power: signed,
            total_power: trusted.as_ref().map(|t| t.total_power().0),
            validators: trusted,
            state: proven_state,
            tx: proven_tx,
            readings: proven_readings,
            ballots: proven_ballots,
            steps,
        })
    }
}

impl ProofBundle {
    /// Where trust starts when it is pinned: the pinned set signs the pinned height and
    /// the headers after it. A header below the pinned height is refused (the pin says
    /// nothing of it), and one at the pinned height must be the pinned block.
    fn start_at_pin(
        &self,
        chain_id: &ChainId,
        pin: &TrustPin,
        steps: &mut Vec<String>,
    ) -> Result<TrustedState, BundleError> {
        let target = self.header.height;
        if target < pin.height {
            return fail(
                "trust",
                format!(
                    "header {target} is below the pinned height {}: the pin vouches only for blocks from there on (verify it against a checkpoint, or from the genesis)",
                    pin.height
                ),
            );
        }
        steps.push(format!(
            "trust pinned at height {} (block {}): {} validators, power {} (validators hash {})",
            pin.height,
            pin.block,
            pin.validators.len(),
            pin.validators.total_power().0,
            pin.validators.hash()
        ));
        // The pinned set signs the pinned height itself: trust starts just below it.
        let Some(below) = pin.height.0.checked_sub(1) else {
            return fail("trust", "a pin is above the genesis (height 1 or more)");
        };
        Ok(TrustedState {
            chain_id: chain_id.clone(),
            height: Height(below),
            block_hash: None,
            next_validators: pin.validators.clone(),
        })
    }

    /// Follows the validator-set changes from `start` (the genesis set, or a pinned one)
    /// and checks the header's commit: one light client ([`TrustedState`]). Changes below a
    /// pin are passed over, and a header at the pinned height must be the pinned block.
    /// Returns the power that signed and the set.
    fn follow_headers(
        &self,
        start: TrustedState,
        pin: Option<&TrustPin>,
        steps: &mut Vec<String>,
    ) -> Result<(u64, ValidatorSet), BundleError> {
        let target = self.header.height;
        let hash = self.header.hash();
        let other_history = |height: Height, hash: Hash| -> Result<(), BundleError> {
            match pin {
                Some(pin) if pin.height == height && pin.block != hash => fail(
                    "trust",
                    format!(
                        "block {height} is {hash}, the pinned block is {}: the bundle follows another history",
                        pin.block
                    ),
                ),
                _ => Ok(()),
            }
        };
        other_history(target, hash)?;
        // Skip from the start to each change of set, then to the header.
        let mut trusted = start;
        let mut passed_over = 0;
        for change in &self.validator_changes {
            let h = &change.header;
            // Below the pin, the pinned set stands for these changes.
            if pin.is_some_and(|p| h.height < p.height) {
                passed_over += 1;
                continue;
            }
            other_history(h.height, h.hash())?;
            if h.height >= target {
                return fail(
                    "validator set",
                    format!(
                        "a change announced at height {} is not below the header's {target}",
                        h.height
                    ),
                );
            }
            trusted = trusted
                .skip_to(h, &change.commit, &change.next_validators)
                .map_err(|e| BundleError {
                    step: "validator set",
                    message: light_message(e),
                })?;
            steps.push(format!(
                "validator set changes after height {} ({} validators, power {}), signed by the set before",
                h.height,
                change.next_validators.len(),
                change.next_validators.total_power().0
            ));
        }
        if passed_over > 0 {
            steps.push(format!(
                "{passed_over} validator-set change(s) below the pinned height not followed"
            ));
        }
        let signed = trusted
            .verify_header(&self.header, &self.commit)
            .map_err(|e| BundleError {
                step: "commit",
                message: light_message(e),
            })?;
        let trusted = trusted.next_validators;
        steps.push(format!(
            "header {target} (block {hash}) is signed by {} of {} voting power, more than two thirds",
            signed.0,
            trusted.total_power().0
        ));
        Ok((signed.0, trusted))
    }

    /// Checks `ballots` and `all_ballots` against the `ballots_root` of the one tally the
    /// state entries prove.
    fn verify_ballots(&self, steps: &mut Vec<String>) -> Result<Vec<ProvenBallot>, BundleError> {
        if self.ballots.is_empty() && self.all_ballots.is_empty() {
            return Ok(Vec::new());
        }
        let bad = |m: String| BundleError {
            step: "ballots",
            message: m,
        };
        let tallies: Vec<&StateEntry> = self
            .state
            .iter()
            .filter(|e| e.namespace == "budget_tally")
            .collect();
        let [entry] = tallies.as_slice() else {
            return fail(
                "ballots",
                "the bundle must prove exactly one round's tally to prove ballots",
            );
        };
        let Some(bytes) = &entry.value else {
            return fail("ballots", "the bundle proves that the round has no tally");
        };
        let record: crate::records::TallyRecord =
            crate::codec::decode("tally record", bytes, crate::state::STATE_VALUE_BYTES_MAX)
                .map_err(|e| bad(e.to_string()))?;
        if entry.key != record.round.to_be_bytes() {
            return fail(
                "ballots",
                format!(
                    "the tally proven is stored under another round's key than {}",
                    record.round
                ),
            );
        }
        let decode = |b: &[u8]| -> Result<crate::records::BudgetBallot, BundleError> {
            crate::codec::decode("ballot", b, crate::tx::TX_BYTES_MAX)
                .map_err(|e| bad(e.to_string()))
        };
        let mut out = Vec::new();
        if !self.all_ballots.is_empty() {
            let n = self.all_ballots.len() as u64;
            if n != record.voters {
                return fail(
                    "ballots",
                    format!(
                        "the bundle gives {n} ballots; round {} tallied {}",
                        record.round, record.voters
                    ),
                );
            }
            let root = merkle::root_of(&self.all_ballots);
            if root != record.ballots_root {
                return fail(
                    "ballots",
                    format!(
                        "the ballots given hash to {root}, not to the root round {} tallied ({}): a ballot was added, dropped, edited or moved",
                        record.round, record.ballots_root
                    ),
                );
            }
            for (i, b) in self.all_ballots.iter().enumerate() {
                out.push(ProvenBallot {
                    round: record.round,
                    index: i as u64,
                    ballot: decode(b)?,
                    bytes: b.clone(),
                });
            }
            steps.push(format!(
                "the {n} ballots given are exactly those round {} tallied (their root is the tally's)",
                record.round
            ));
        }
        if !self.all_ballots.is_empty() && !self.ballots.is_empty() {
            return fail(
                "ballots",
                "the bundle gives ballots both in full and one by one; a bundle does one or the other",
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for b in &self.ballots {
            let index = b.proof.leaf_index;
            if !seen.insert(index) {
                return fail("ballots", format!("ballot {index} is given twice"));
            }
            if b.proof.tree_size != record.voters {
                return fail(
                    "ballots",
                    format!(
                        "the proof of ballot {index} is for {} ballots; round {} tallied {}",
                        b.proof.tree_size, record.round, record.voters
                    ),
                );
            }
            merkle::verify_inclusion(
                &merkle::leaf_hash(&b.ballot),
                &b.proof,
                &record.ballots_root,
            )
            .map_err(|e| {
                bad(format!(
                    "ballot {index} is not among those round {} tallied: {e}",
                    record.round
                ))
            })?;
            out.push(ProvenBallot {
                round: record.round,
                index,
                ballot: decode(&b.ballot)?,
                bytes: b.ballot.clone(),
            });
            steps.push(format!(
                "ballot {index} is one of the {} that round {} tallied",
                record.voters, record.round
            ));
        }
        Ok(out)
    }

    /// The attestation batch that the bundle's state entries prove (exactly one), for its
    /// readings.
    fn proven_batch(
        &self,
        attestation: Option<Vec<u8>>,
    ) -> Result<crate::tx::AttestationBatch, BundleError> {
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
                "the bundle proves more than one batch: which one holds the readings is unclear",
            );
        }
        let record: AttestationRecord =
            crate::codec::decode("attestation record", &bytes, crate::tx::TX_BYTES_MAX).map_err(
                |e| BundleError {
                    step: "reading",
                    message: e.to_string(),
                },
            )?;
        Ok(record.batch)
    }
}

fn light_message(e: crate::Error) -> String {
    match e {
        crate::Error::LightClient(m) => m,
        other => other.to_string(),
    }
}

fn state_key_checked(namespace: &str, key: &[u8]) -> Result<Hash, BundleError> {
    if namespace.is_empty()
        || namespace.len() > 64
        || !namespace
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
    {
        return fail(
            "state",
            format!("namespace {namespace:?} is not 1 to 64 characters of a-z 0-9 _"),
        );
    }
    Ok(state_key(namespace, key))
}

/// What an auditor trusts: a chain id and its genesis validator set, as read from a node's
/// `genesis.json` (only `chain_id` and each validator's `consensus_key` and `power` are
/// read; the rest of the file does not matter to a proof), and optionally a later validator
/// set it pinned ([`TrustPin`]), which then replaces the genesis set for proofs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustAnchor {
    pub chain_id: ChainId,
    pub validators: ValidatorSet,
    pub pin: Option<TrustPin>,
}

/// A later point of trust an auditor pins in place of the genesis: the validator set that
/// signed block `height`, whose hash is `block`, taken from a source the auditor trusts (a
/// bundle it verified while the keys of the older sets were safe, or the agencies' own
/// publication, compared by its validators hash). Headers from `height` on are checked
/// from this set, and the changes of set before it are not followed, so the keys of a set
/// replaced before `height` can no longer make a history that verifies. Headers below
/// `height` are refused: the pin vouches for nothing before it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustPin {
    pub height: Height,
    pub block: Hash,
    pub validators: ValidatorSet,
}

/// A validator as a genesis file lists it.
#[derive(Deserialize)]
struct ListedValidator {
    consensus_key: String,
    power: u64,
}

/// The set of listed validators, each a key in hex and a power.
fn listed_set<'a>(
    validators: impl ExactSizeIterator<Item = (&'a str, u64)>,
) -> Result<ValidatorSet, String> {
    let mut set = Vec::with_capacity(validators.len());
    for (i, (key, power)) in validators.enumerate() {
        let key = crate::PublicKey::from_hex(key)
            .map_err(|e| format!("field validators[{i}].consensus_key: {e}"))?;
        set.push(crate::Validator {
            public_key: key,
            power: crate::VotingPower(power),
        });
    }
    ValidatorSet::new(set).map_err(|e| format!("field validators: {e}"))
}

/// A validator as a trust pin lists it: the genesis file's form, and nothing else.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PinnedValidator {
    consensus_key: String,
    power: u64,
}

/// A trust pin's file: `acta audit pin` writes it, `--trust` reads it.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PinFile {
    format: String,
    chain_id: String,
    height: u64,
    block: Hash,
    validators_hash: Hash,
    validators: Vec<PinnedValidator>,
}

/// The `format` of a trust pin's file.
pub const PIN_FORMAT: &str = "acta-trust-pin/1";

impl TrustPin {
    /// The pin's file: JSON with the format, chain id, height, block hash, the set's hash
    /// (what an auditor compares with the agencies' publication) and the set itself.
    pub fn to_json(&self, chain_id: &ChainId) -> String {
        let file = PinFile {
            format: PIN_FORMAT.to_string(),
            chain_id: chain_id.to_string(),
            height: self.height.0,
            block: self.block,
            validators_hash: self.validators.hash(),
            validators: self
                .validators
                .validators()
                .iter()
                .map(|v| PinnedValidator {
                    consensus_key: v.public_key.to_hex(),
                    power: v.power.0,
                })
                .collect(),
        };
        let mut text = serde_json::to_string_pretty(&file).expect("a pin serializes");
        text.push('\n');
        text
    }
}

impl TrustAnchor {
    /// The set this anchor trusts, for JSON reports: `"genesis"`, or the pin's height,
    /// block and validators hash.
    pub fn trusted_json(&self) -> serde_json::Value {
        match &self.pin {
            Some(pin) => serde_json::json!({ "pin": {
                "height": pin.height,
                "block": pin.block,
                "validators_hash": pin.validators.hash(),
            }}),
            None => serde_json::json!("genesis"),
        }
    }

    /// Trust in the genesis set alone.
    pub fn genesis(chain_id: ChainId, validators: ValidatorSet) -> TrustAnchor {
        TrustAnchor {
            chain_id,
            validators,
            pin: None,
        }
    }

    /// This anchor with the pin of a trust pin's file ([`TrustPin::to_json`]), which must
    /// be of the same chain, above the genesis, and whose set must hash to the hash it
    /// states.
    pub fn pinned_by_json(self, text: &str) -> Result<TrustAnchor, String> {
        // The format first: a later version's fields are not errors of this one.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not a trust pin: {e}"))?;
        match value.get("format").and_then(serde_json::Value::as_str) {
            Some(PIN_FORMAT) => {}
            other => {
                return Err(format!(
                    "field format: {other:?} (this verifier reads {PIN_FORMAT:?})"
                ))
            }
        }
        let file: PinFile =
            serde_json::from_value(value).map_err(|e| format!("not a trust pin: {e}"))?;
        if file.chain_id != self.chain_id.as_str() {
            return Err(format!(
                "field chain_id: the pin is of chain {}, the genesis of {}",
                file.chain_id, self.chain_id
            ));
        }
        if file.height == 0 {
            return Err("field height: a pin is above the genesis (height 1 or more)".into());
        }
        let validators = listed_set(
            file.validators
                .iter()
                .map(|v| (v.consensus_key.as_str(), v.power)),
        )?;
        if validators.hash() != file.validators_hash {
            return Err(format!(
                "field validators_hash: {} is not the hash of the validators listed ({})",
                file.validators_hash,
                validators.hash()
            ));
        }
        Ok(TrustAnchor {
            pin: Some(TrustPin {
                height: Height(file.height),
                block: file.block,
                validators,
            }),
            ..self
        })
    }

    pub fn from_genesis_json(text: &str) -> Result<TrustAnchor, String> {
        #[derive(Deserialize)]
        struct Genesis {
            chain_id: String,
            validators: Vec<ListedValidator>,
        }
        let g: Genesis =
            serde_json::from_str(text).map_err(|e| format!("not a genesis file: {e}"))?;
        let chain_id = ChainId::new(&g.chain_id).map_err(|e| format!("field chain_id: {e}"))?;
        let validators = listed_set(
            g.validators
                .iter()
                .map(|v| (v.consensus_key.as_str(), v.power)),
        )?;
        Ok(TrustAnchor::genesis(chain_id, validators))
    }
}
