//! State snapshots: the state at a committed height, in chunks that each prove themselves
//! against the state root, with a manifest that proves the root from the genesis.
//!
//! A node joins a chain from a snapshot instead of replaying it: it checks the manifest as
//! a light client does (the validator-set changes from the genesis, then the commit of the
//! snapshot's block by more than two thirds of the power that signs it), then each chunk
//! with its range proof against the block's state root, then the rebuilt tree's root. The
//! block log's complete subtrees come with the cosignatures of the checkpoint of the same
//! size, so that the restored log appends the next blocks as the whole log would. Nothing in
//! a snapshot is trusted because of who sent it: a peer or a backup file is checked alike.
//!
//! The file format (`docs/wire-format.md`, section 12): [`FILE_MAGIC`], then frames of a
//! little-endian `u32` length and that many bytes: the borsh [`Manifest`], then each borsh
//! [`Chunk`] in key order, then a frame of length zero.

use std::io::{Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};
use jmt::proof::SparseMerkleRangeProof;
use sha2::Sha256;

#[cfg(feature = "store")]
use crate::store::Store;

use crate::{
    block::{Block, BLOCK_BYTES_MAX},
    blocklog,
    bundle::{SetChange, BUNDLE_CHANGES_MAX},
    checkpoint::{self, Checkpoint, Cosignature},
    codec,
    light::TrustedState,
    state::{state_key, STATE_VALUE_BYTES_MAX},
    types::{ChainId, Height, VotingPower},
    validator::{SetHistory, ValidatorSet, NS_VALIDATORS, SET_HISTORY_KEY, SET_KEY},
    vote::Commit,
    Error, Hash, Result,
};

/// The version of the manifest and chunk formats.
pub const SNAPSHOT_VERSION: u16 = 1;
/// The first bytes of a snapshot file.
pub const FILE_MAGIC: &[u8; 16] = b"acta-snapshot/1\n";
/// The most state entries one chunk holds.
pub const CHUNK_ENTRIES_MAX: usize = 4096;
/// The most bytes of keys and values one chunk holds (a chunk holds one entry at least,
/// whatever its size).
pub const CHUNK_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The largest encoded chunk: a full chunk, one value of the largest size, and the proof.
pub const CHUNK_ENCODED_MAX: usize = CHUNK_BYTES_MAX + STATE_VALUE_BYTES_MAX + 64 * 1024;
/// The largest encoded manifest: a block and its commit, and the set changes before it.
pub const MANIFEST_BYTES_MAX: usize = BLOCK_BYTES_MAX + 64 * 1024 * 1024;

/// What a manifest whose set changes are not the chain's is refused as
/// ([`Manifest::check_set_history`]): every peer that offered it offered a lie.
pub const SET_HISTORY_REFUSED: &str = "snapshot's validator-set changes";

fn bad(why: impl Into<String>) -> Error {
    Error::invalid("snapshot", why.into())
}

/// What a snapshot is of, and the proofs that it is of the chain.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct Manifest {
    /// [`SNAPSHOT_VERSION`].
    pub version: u16,
    pub chain_id: ChainId,
    /// The validator-set changes announced before `block`, as in proof bundles.
    pub validator_changes: Vec<SetChange>,
    /// The block at the snapshot's height, whose header holds the state root.
    pub block: Block,
    /// Its commit certificate.
    pub commit: Commit,
    /// The set that signs the block after it (its header names it by hash).
    pub next_validators: ValidatorSet,
    /// The hashes of the block log's complete subtrees at the snapshot's height
    /// ([`blocklog::frontier`]).
    pub log: Vec<Hash>,
    /// Cosignatures of the checkpoint of that log, by more than two thirds of the power of
    /// the set that signed the block.
    pub cosignatures: Vec<Cosignature>,
    /// How many state entries the chunks hold.
    pub entries: u64,
}

/// Some state entries in key order, following the previous chunk's, with the proof that
/// they are all the keys of the tree up to the last one.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct Chunk {
    /// Key hashes and values.
    pub entries: Vec<(Hash, Vec<u8>)>,
    pub proof: RangeProof,
}

/// The siblings on the right of the path to a chunk's last key: with the entries restored
/// so far, they give the state root.
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize)]
pub struct RangeProof(pub(crate) SparseMerkleRangeProof<Sha256>);

/// A manifest whose proofs hold.
#[derive(Clone, Debug)]
pub struct Verified {
    pub manifest: Manifest,
    /// The set that signed the snapshot's block.
    pub validators: ValidatorSet,
    /// The power that signed its commit.
    pub signed: VotingPower,
}

impl Manifest {
    /// The snapshot's height.
    pub fn height(&self) -> Height {
        self.block.height()
    }

    /// Checks that the manifest lists every change of the validator set up to its block,
    /// and nothing else, against what the restored state says at the snapshot's height:
    /// `history`, its [`SetHistory`] (`None`: no change since the genesis), and `set`, its
    /// latest set (`None` in a state that keeps none). The list holds the changes made by
    /// blocks up to *h* - 2 (each announced by the header after it, below *h*); the state's
    /// history also holds the change made by block *h* - 1, if any (the manifest's
    /// `next_validators` differs from the set that signs block *h*, which its header names),
    /// and the one made by block *h* (the state's set differs from `next_validators`). Any
    /// other difference means changes were left out, or made up (ADR 0014).
    pub fn check_set_history(
        &self,
        history: Option<SetHistory>,
        set: Option<&ValidatorSet>,
    ) -> Result<()> {
        let height = self.height();
        let mut expected =
            self.validator_changes
                .iter()
                .try_fold(SetHistory::default(), |history, change| {
                    let written = change
                        .header
                        .height
                        .0
                        .checked_sub(1)
                        .ok_or_else(|| bad("a set change is announced at height 0"))?;
                    Ok::<_, Error>(history.then(Height(written), &change.next_validators.hash()))
                })?;
        let listed = expected.changes;
        let next = self.next_validators.hash();
        if next != self.block.header.validators_hash {
            expected = expected.then(Height(height.0.saturating_sub(1)), &next);
        }
        if let Some(set) = set.map(ValidatorSet::hash).filter(|s| *s != next) {
            expected = expected.then(height, &set);
        }
        let stated = history.unwrap_or_default();
        if stated == expected {
            return Ok(());
        }
        Err(Error::invalid(
            SET_HISTORY_REFUSED,
            format!(
                "the state at height {height} records {} changes of the validator set, and the manifest shows {} ({listed} listed): changes were left out or made up",
                stated.changes, expected.changes
            ),
        ))
    }

    /// [`Manifest::check_set_history`] against a state read by `read` (a key's value at
    /// the snapshot's height).
    pub fn check_set_history_in(
        &self,
        read: impl Fn(&Hash) -> Result<Option<Vec<u8>>>,
    ) -> Result<()> {
        let at = |key: &[u8]| read(&state_key(NS_VALIDATORS, key));
        let history = at(SET_HISTORY_KEY)?
            .map(|b| codec::decode("validator-set history", &b, STATE_VALUE_BYTES_MAX))
            .transpose()?;
        let set: Option<ValidatorSet> = at(SET_KEY)?
            .map(|b| codec::decode("validator set", &b, STATE_VALUE_BYTES_MAX))
            .transpose()?;
        self.check_set_history(history, set.as_ref())
    }

    /// The state root the chunks must rebuild.
    pub fn state_root(&self) -> Hash {
        self.block.header.state_root
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest> {
        codec::decode("snapshot manifest", bytes, MANIFEST_BYTES_MAX)
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Checks the manifest against a chain known by its id and genesis validators alone:
    /// the validator-set changes, the commit of the block by the set they lead to, the
    /// block's body, the next set, and the cosigned checkpoint of the block log.
    pub fn verify(
        mut self,
        chain_id: &ChainId,
        genesis_validators: &ValidatorSet,
    ) -> Result<Verified> {
        if self.version != SNAPSHOT_VERSION {
            return Err(bad(format!(
                "version {}; this node reads version {SNAPSHOT_VERSION}",
                self.version
            )));
        }
        if self.chain_id != *chain_id {
            return Err(bad(format!(
                "the snapshot is of chain {}, not {chain_id}",
                self.chain_id
            )));
        }
        if self.validator_changes.len() > BUNDLE_CHANGES_MAX {
            return Err(bad("too many validator-set changes"));
        }
        let height = self.height();
        if height.0 == 0 {
            return Err(bad(
                "a snapshot is of a committed block, not of the genesis",
            ));
        }
        let mut trusted = TrustedState::anchor(chain_id.clone(), genesis_validators.clone());
        for change in &self.validator_changes {
            if change.header.height >= height {
                return Err(bad(format!(
                    "a set change announced at height {} is not below the snapshot's {height}",
                    change.header.height
                )));
            }
            trusted = trusted.skip_to(&change.header, &change.commit, &change.next_validators)?;
        }
        let signed = trusted.verify_header(&self.block.header, &self.commit)?;
        self.block.check_body()?;
        if self.block.header.next_validators_hash != self.next_validators.hash() {
            return Err(bad(format!(
                "the next validators given are not those the header of block {height} names"
            )));
        }
        let validators = trusted.next_validators;
        let root = blocklog::frontier_root(height.0, &self.log)?;
        let checkpoint = Checkpoint {
            origin: checkpoint::origin(chain_id),
            size: height.0,
            root,
        };
        // Only the members' cosignatures count, each once, and only those are kept: a
        // restored node stores and serves what it kept, never lines it did not check.
        let mut power = 0u64;
        let mut seen = std::collections::BTreeSet::new();
        let mut counted = Vec::with_capacity(validators.len());
        for c in std::mem::take(&mut self.cosignatures) {
            let Some(index) = validators.index_of(&c.key) else {
                continue;
            };
            if seen.contains(&c.key) {
                continue;
            }
            c.verify(&checkpoint).map_err(|_| {
                bad(format!(
                    "the cosignature of {} does not verify against the checkpoint of {height} blocks",
                    c.key
                ))
            })?;
            seen.insert(c.key);
            let v = validators.get(index).expect("index_of gives a member");
            power = power.saturating_add(v.power.0);
            counted.push(c);
        }
        self.cosignatures = counted;
        if !validators.is_quorum(VotingPower(power)) {
            return Err(bad(format!(
                "the checkpoint of {height} blocks is cosigned by power {power} of {}, not more than two thirds",
                validators.total_power().0
            )));
        }
        Ok(Verified {
            manifest: self,
            validators,
            signed,
        })
    }
}

#[cfg(feature = "store")]
impl Manifest {
    /// The manifest of the state at `height` (a checkpoint size) in `store`: its block and
    /// commit, the block log's complete subtrees and the checkpoint's cosignatures, as
    /// stored. The validator-set changes before the block and the next set come from the
    /// caller, who knows where the state keeps the validator set.
    pub fn of(
        store: &Store,
        chain_id: &ChainId,
        height: Height,
        validator_changes: Vec<SetChange>,
        next_validators: ValidatorSet,
    ) -> Result<Manifest> {
        let missing = |what: &str| Error::Storage(format!("no {what} at height {height}"));
        Ok(Manifest {
            version: SNAPSHOT_VERSION,
            chain_id: chain_id.clone(),
            validator_changes,
            block: store.block(height)?.ok_or_else(|| missing("block"))?,
            commit: store.commit(height)?.ok_or_else(|| missing("commit"))?,
            next_validators,
            log: blocklog::frontier(store, height.0)?,
            cosignatures: store.cosignatures(height.0)?,
            entries: store.state_entries(height)?,
        })
    }
}

/// Writes the snapshot of `manifest`'s state, read from `store`, to `out`; returns the
/// number of chunks.
#[cfg(feature = "store")]
pub fn write_file<W: Write>(store: &Store, manifest: &Manifest, out: W) -> Result<(W, u64)> {
    let mut file = FileWriter::new(out, manifest)?;
    let mut after = None;
    let mut chunks = 0u64;
    while let Some(chunk) = store.snapshot_chunk(manifest.height(), after.as_ref())? {
        file.chunk(&chunk)?;
        after = chunk.last_key();
        chunks += 1;
    }
    Ok((file.finish()?, chunks))
}

/// Restores the state of a snapshot file into the empty `store`, after verifying its
/// manifest against the chain's id and genesis validators; `kept` gives, from the verified
/// manifest, the past versions of the keys whose history the store keeps. Returns the
/// verified manifest.
#[cfg(feature = "store")]
pub fn restore_file<R: Read>(
    input: R,
    store: &std::sync::Arc<Store>,
    chain_id: &ChainId,
    genesis_validators: &ValidatorSet,
    kept: impl FnOnce(&Verified) -> Vec<(Hash, Height, Option<Vec<u8>>)>,
) -> Result<Verified> {
    let mut file = FileReader::new(input)?;
    let verified = file.manifest.clone().verify(chain_id, genesis_validators)?;
    let manifest = &verified.manifest;
    let mut restore = store.restore(manifest.height(), manifest.state_root())?;
    while let Some(chunk) = file.next_chunk()? {
        restore.add(chunk)?;
    }
    restore.finish(manifest, &kept(&verified))?;
    Ok(verified)
}

impl Chunk {
    pub fn decode(bytes: &[u8]) -> Result<Chunk> {
        codec::decode("snapshot chunk", bytes, CHUNK_ENCODED_MAX)
    }

    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// The last key of the chunk (chunks are never empty once checked).
    pub fn last_key(&self) -> Option<Hash> {
        self.entries.last().map(|(k, _)| *k)
    }

    /// Checks what can be checked without the tree: entries present, each value within
    /// the state's limit, keys strictly increasing and after `after`.
    pub fn check_order(&self, after: Option<&Hash>) -> Result<()> {
        if self.entries.is_empty() {
            return Err(bad("an empty chunk"));
        }
        if self.entries.len() > CHUNK_ENTRIES_MAX {
            return Err(bad(format!(
                "a chunk of {} entries; at most {CHUNK_ENTRIES_MAX}",
                self.entries.len()
            )));
        }
        let mut previous = after.copied();
        for (key, value) in &self.entries {
            if value.len() > STATE_VALUE_BYTES_MAX {
                return Err(bad(format!("the value of key {key} is too large")));
            }
            if previous.is_some_and(|p| p >= *key) {
                return Err(bad(format!("key {key} is out of order")));
            }
            previous = Some(*key);
        }
        Ok(())
    }
}

/// Writes a snapshot file.
#[derive(Debug)]
pub struct FileWriter<W: Write> {
    out: W,
}

fn write_frame(out: &mut impl Write, bytes: &[u8]) -> Result<()> {
    let len = u32::try_from(bytes.len()).map_err(|_| bad("a frame larger than 4 GiB"))?;
    out.write_all(&len.to_le_bytes()).map_err(io_err)?;
    out.write_all(bytes).map_err(io_err)
}

fn io_err(e: std::io::Error) -> Error {
    bad(format!("writing: {e}"))
}

impl<W: Write> FileWriter<W> {
    /// Starts a file with its manifest.
    pub fn new(mut out: W, manifest: &Manifest) -> Result<Self> {
        out.write_all(FILE_MAGIC).map_err(io_err)?;
        write_frame(&mut out, &manifest.encode())?;
        Ok(FileWriter { out })
    }

    pub fn chunk(&mut self, chunk: &Chunk) -> Result<()> {
        write_frame(&mut self.out, &chunk.encode())
    }

    /// Ends the file and returns the writer, flushed.
    pub fn finish(mut self) -> Result<W> {
        self.out.write_all(&0u32.to_le_bytes()).map_err(io_err)?;
        self.out.flush().map_err(io_err)?;
        Ok(self.out)
    }
}

/// Reads a snapshot file: the manifest, then the chunks in order.
#[derive(Debug)]
pub struct FileReader<R: Read> {
    input: R,
    manifest: Manifest,
    ended: bool,
}

fn read_frame(input: &mut impl Read, max: usize, what: &str) -> Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|e| bad(format!("reading the length of the {what}: {e}")))?;
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 {
        return Ok(None);
    }
    if len > max {
        return Err(bad(format!("a {what} of {len} bytes; at most {max}")));
    }
    let mut bytes = Vec::new();
    input
        .take(len as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(format!("reading the {what}: {e}")))?;
    if bytes.len() != len {
        return Err(bad(format!(
            "the file ends inside a {what} ({} of {len} bytes)",
            bytes.len()
        )));
    }
    Ok(Some(bytes))
}

impl<R: Read> FileReader<R> {
    /// Reads the magic and the manifest (not yet verified).
    pub fn new(mut input: R) -> Result<Self> {
        let mut magic = [0u8; 16];
        input
            .read_exact(&mut magic)
            .map_err(|e| bad(format!("reading the file's first bytes: {e}")))?;
        if &magic != FILE_MAGIC {
            return Err(bad("not an Acta snapshot file (wrong first bytes)"));
        }
        let bytes = read_frame(&mut input, MANIFEST_BYTES_MAX, "manifest")?
            .ok_or_else(|| bad("the file has no manifest"))?;
        Ok(FileReader {
            input,
            manifest: Manifest::decode(&bytes)?,
            ended: false,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The next chunk, or `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        if self.ended {
            return Ok(None);
        }
        match read_frame(&mut self.input, CHUNK_ENCODED_MAX, "chunk")? {
            None => {
                self.ended = true;
                Ok(None)
            }
            Some(bytes) => Ok(Some(Chunk::decode(&bytes)?)),
        }
    }
}
