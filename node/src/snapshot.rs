//! Snapshots for the node: which height to offer, the validator-set changes a verifier
//! follows, and restoring a verified snapshot into a node's home, from a file
//! (`actad snapshot restore`) or from peers (`actad start --state-sync`, [`crate::statesync`]).
//!
//! A restore writes into `data/store.restoring` and moves it to `data/store` once whole:
//! a restore killed at any moment leaves no store that claims a height, and the next
//! attempt starts over.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use acta_contracts::{
    genesis::genesis_changes,
    staking::{validators_at, NS_VALIDATORS, SET_KEY},
};
use acta_ledger::{
    bundle::{SetChange, BUNDLE_CHANGES_MAX},
    checkpoint::CHECKPOINT_INTERVAL,
    codec,
    snapshot::{self, Chunk, Manifest, Verified},
    state::{state_key, AuthenticatedState, STATE_VALUE_BYTES_MAX},
    store::{Restore, Store},
    Hash, Height, ValidatorSet,
};
use anyhow::{anyhow, bail, Context, Result};
use tracing::info;

use crate::{
    config::{Config, Home},
    genesis::{ChainSpec, Genesis},
    node::kept_histories,
};

/// Checkpoints tried, newest first, for one with the cosignatures a snapshot needs.
const CHECKPOINTS_TRIED: u64 = 16;

/// The validator-set changes a verifier must follow from the genesis to the header at
/// `height`: a set written at version `s` signs from `s + 2`, and header `s + 1` announces
/// it as its next set. Only versions that changed the set count (a block that wrote it
/// back as it was changed nothing), as the state's history of changes counts them
/// (format version 14; `Manifest::check_set_history`). A store restored from a snapshot
/// holds the headers and commits of the changes up to its snapshot's block as they came
/// with it (the blocks before are not in it), and the set's versions up to there.
pub fn set_changes(store: &Store, height: Height) -> Result<Vec<SetChange>> {
    let restored = store.restored_set_changes()?.unwrap_or_default();
    let key = state_key(NS_VALIDATORS, SET_KEY);
    let mut changes = Vec::new();
    let mut previous: Option<Vec<u8>> = None;
    // The set's whole history: a pruning node keeps it (`node::kept_histories`). Past the
    // most a proof carries, no list is given rather than a list cut short.
    let history = store.history_of(&key, BUNDLE_CHANGES_MAX + 1)?;
    if history.len() > BUNDLE_CHANGES_MAX {
        bail!(
            "the validator set has more than {BUNDLE_CHANGES_MAX} versions: more changes than one proof carries"
        );
    }
    for (s, value) in history {
        let announced = Height(s.0 + 1);
        let unchanged = previous == value;
        previous.clone_from(&value);
        if s.0 == 0 || unchanged {
            continue;
        }
        if announced >= height {
            break;
        }
        let set: ValidatorSet = value
            .map(|b| codec::decode("validator set", &b, STATE_VALUE_BYTES_MAX))
            .transpose()?
            .ok_or_else(|| anyhow!("validator set deleted at {s}"))?;
        // The restored list is in height order (a manifest's changes were checked so).
        let (header, commit) = match restored
            .binary_search_by_key(&announced, |c| c.header.height)
            .ok()
            .and_then(|i| restored.get(i))
        {
            Some(c) => (c.header.clone(), c.commit.clone()),
            None => (
                store
                    .block(announced)?
                    .ok_or_else(|| anyhow!("no block at {announced}"))?
                    .header,
                store
                    .commit(announced)?
                    .ok_or_else(|| anyhow!("no commit at {announced}"))?,
            ),
        };
        changes.push(SetChange {
            header,
            commit,
            next_validators: set,
        });
    }
    Ok(changes)
}

/// The manifest of the newest snapshot this store can give at or below `at` (the latest
/// height without): the newest checkpoint height whose state is kept and whose checkpoint
/// more than two thirds of the power cosigned, checked as a restoring node checks it.
pub fn manifest(store: &Store, spec: &ChainSpec, at: Option<Height>) -> Result<Manifest> {
    let latest = store
        .latest_height()?
        .ok_or_else(|| anyhow!("the store is empty"))?;
    let top = at.map_or(latest, |a| a.min(latest));
    let mut size = top.0 - top.0 % CHECKPOINT_INTERVAL;
    let oldest = store.oldest_state();
    let mut last_error = None;
    for _ in 0..CHECKPOINTS_TRIED {
        if size == 0 || Height(size) < oldest {
            break;
        }
        let height = Height(size);
        let attempt = (|| -> Result<Manifest> {
            let next = validators_at(store, height.next())?;
            let m = Manifest::of(
                store,
                &spec.chain_id,
                height,
                set_changes(store, height)?,
                next,
            )?;
            m.clone().verify(&spec.chain_id, &spec.validators)?;
            // As a restore will check it: the list holds every change the state records.
            m.check_set_history_in(|key| store.get(key, height))?;
            Ok(m)
        })();
        match attempt {
            Ok(m) => return Ok(m),
            Err(e) => last_error = Some(e),
        }
        size -= CHECKPOINT_INTERVAL;
    }
    let why = last_error.map_or_else(String::new, |e| format!(": {e:#}"));
    bail!(
        "no snapshot at or below height {top}: snapshots are taken at checkpoint heights (multiples of {CHECKPOINT_INTERVAL}) whose state is kept (from {oldest}) and whose checkpoint more than two thirds of the power cosigned{why}"
    )
}

/// The past versions of the kept keys (the validator set) that a restored store needs to
/// read the set of any height, as a store that replayed the chain does: the genesis set
/// at 0, and each announced set at the height before the header that announced it.
fn kept_versions(spec: &ChainSpec, verified: &Verified) -> Vec<(Hash, Height, Option<Vec<u8>>)> {
    let key = state_key(NS_VALIDATORS, SET_KEY);
    debug_assert_eq!(kept_histories(), vec![key]);
    let m = &verified.manifest;
    let mut out = vec![(
        key,
        Height(0),
        genesis_changes(&spec.state).get(&key).cloned().flatten(),
    )];
    let announced = m
        .validator_changes
        .iter()
        .map(|c| (c.header.height, &c.next_validators))
        .chain(std::iter::once((m.height(), &m.next_validators)));
    for (at, set) in announced {
        out.push((key, Height(at.0 - 1), Some(codec::encode(set))));
    }
    out
}

/// A verified snapshot being restored into a node's home.
#[derive(Debug)]
pub struct Restoring {
    restore: Restore,
    verified: Verified,
    spec: ChainSpec,
    staging: PathBuf,
    target: PathBuf,
}

impl Restoring {
    /// Starts restoring `verified` into `home`, whose store must hold no height; clears
    /// what an interrupted restore left.
    pub fn begin(
        home: &Home,
        config: &Config,
        spec: &ChainSpec,
        verified: Verified,
    ) -> Result<Self> {
        let target = home.store();
        refuse_if_in_use(&target)?;
        let staging = home.data().join("store.restoring");
        if staging.exists() {
            info!("clearing an interrupted restore in {}", staging.display());
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("removing {}", staging.display()))?;
        }
        std::fs::create_dir_all(home.data())
            .with_context(|| format!("creating {}", home.data().display()))?;
        let (history, _) = config.storage.retention();
        let mut store = Store::open_tuned(&staging, history, config.storage.memory())
            .with_context(|| format!("creating the store in {}", staging.display()))?;
        store.keep_history_of(&kept_histories());
        let m = &verified.manifest;
        let restore = Arc::new(store).restore(m.height(), m.state_root())?;
        Ok(Restoring {
            restore,
            verified,
            spec: spec.clone(),
            staging,
            target,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.verified.manifest
    }

    /// Entries restored so far.
    pub fn entries(&self) -> u64 {
        self.restore.entries()
    }

    /// The key after which the next chunk starts.
    pub fn after(&self) -> Option<Hash> {
        self.restore.last_key()
    }

    /// Adds the next chunk (checked against the state root).
    pub fn add(&mut self, chunk: Chunk) -> Result<()> {
        self.restore.add(chunk)?;
        Ok(())
    }

    /// Checks the whole state, writes the snapshot's block and log, and moves the store
    /// into place.
    pub fn finish(self) -> Result<Height> {
        let kept = kept_versions(&self.spec, &self.verified);
        let height = self.verified.manifest.height();
        let entries = self.restore.entries();
        self.restore.finish(&self.verified.manifest, &kept)?;
        // The store closed with the restore; an empty store left by an earlier start goes,
        // checked again (an `actad start` of the same home since `begin` may hold it now).
        refuse_if_in_use(&self.target)?;
        if self.target.exists() {
            std::fs::remove_dir_all(&self.target)
                .with_context(|| format!("removing {}", self.target.display()))?;
        }
        std::fs::rename(&self.staging, &self.target).with_context(|| {
            format!(
                "moving {} to {}",
                self.staging.display(),
                self.target.display()
            )
        })?;
        if let Some(dir) = self.target.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("syncing {}", dir.display()))?;
        }
        info!("restored the state from a snapshot: {entries} entries at height {height}");
        Ok(height)
    }
}

/// Refuses to restore over a store that holds a height; an empty store (left by a start
/// that failed before its genesis) is replaced.
fn refuse_if_in_use(target: &Path) -> Result<()> {
    if !target.exists() {
        return Ok(());
    }
    let store = Store::open(target)
        .with_context(|| format!("opening {} (is actad running?)", target.display()))?;
    if let Some(h) = store.latest_height()? {
        bail!(
            "the store in {} already holds height {h}: a snapshot is restored into a new node's home (move that data/ folder away first)",
            target.display()
        );
    }
    Ok(())
}

/// Whether the node's store holds a height already.
pub fn store_holds_a_height(home: &Home) -> Result<Option<Height>> {
    if !home.store().exists() {
        return Ok(None);
    }
    let store = Store::open(home.store())
        .with_context(|| format!("opening {} (is actad running?)", home.store().display()))?;
    Ok(store.latest_height()?)
}

/// `actad snapshot create`: writes the snapshot at or below `at` of a stopped node's
/// store to `out`. Returns the manifest and the number of chunks.
pub fn create(home: &Home, at: Option<Height>, out: &Path) -> Result<(Manifest, u64)> {
    let config = Config::load(&home.config())?;
    let (_, spec) = Genesis::load(&home.genesis())?;
    let (history, _) = config.storage.retention();
    let store = Store::open_with(home.store(), history).with_context(|| {
        format!(
            "opening the store in {} (a snapshot is taken of a stopped node: is actad running?)",
            home.store().display()
        )
    })?;
    let manifest = manifest(&store, &spec, at)?;
    let partial = out.with_extension("partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let (file, chunks) = snapshot::write_file(&store, &manifest, std::io::BufWriter::new(file))?;
    file.into_inner()
        .map_err(|e| anyhow!("writing {}: {}", partial.display(), e.error()))?
        .sync_all()
        .with_context(|| format!("syncing {}", partial.display()))?;
    std::fs::rename(&partial, out)
        .with_context(|| format!("moving {} to {}", partial.display(), out.display()))?;
    Ok((manifest, chunks))
}

/// `actad snapshot restore`: restores a snapshot file into a new node's home, after
/// checking it against the home's genesis. Returns the height restored.
pub fn restore_file(home: &Home, path: &Path) -> Result<Height> {
    let config = Config::load(&home.config())?;
    let (_, spec) = Genesis::load(&home.genesis())?;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = snapshot::FileReader::new(std::io::BufReader::new(file))
        .with_context(|| format!("reading {}", path.display()))?;
    let verified = reader
        .manifest()
        .clone()
        .verify(&spec.chain_id, &spec.validators)
        .with_context(|| format!("checking the manifest of {}", path.display()))?;
    let mut restoring = Restoring::begin(home, &config, &spec, verified)?;
    while let Some(chunk) = reader
        .next_chunk()
        .with_context(|| format!("reading {}", path.display()))?
    {
        restoring.add(chunk)?;
    }
    restoring.finish()
}
