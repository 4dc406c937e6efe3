//! Reading the store for the API: state values at a height, and the proof bundle that
//! makes them checkable against the genesis validator set.

use acta_contracts::{answer::Query, budget::NS_BALLOT};
use acta_ledger::{
    blocklog,
    bundle::{
        BallotEntry, CheckpointEntry, ProofBundle, SetChange, StateEntry, TxEntry, BUNDLE_VERSION,
    },
    merkle,
    state::{state_key, AuthenticatedState},
    store::Store,
    Height, Timestamp,
};

use super::ApiError;
use crate::genesis::ChainSpec;

/// The height a read asks for: the latest committed one, or `?height=` if it is committed.
pub fn resolve_height(store: &Store, asked: Option<u64>) -> Result<Height, ApiError> {
    let latest = store
        .latest_height()
        .map_err(ApiError::internal)?
        .unwrap_or(Height(0));
    match asked {
        None => Ok(latest),
        Some(h) if h < store.oldest_state().0 => Err(store_error(acta_ledger::Error::Pruned {
            height: Height(h),
            oldest: store.oldest_state(),
        })),
        Some(h) if h <= latest.0 => Ok(Height(h)),
        Some(h) => Err(ApiError::not_found(format!(
            "height {h} is not committed yet (latest is {latest})"
        ))),
    }
}

/// A failed read of the store: 410 `pruned` (naming the oldest height kept) for a height
/// whose state this node no longer keeps, 500 for anything else.
pub fn store_error(e: acta_ledger::Error) -> ApiError {
    match e {
        acta_ledger::Error::Pruned { oldest, .. } => ApiError::new(
            axum::http::StatusCode::GONE,
            "pruned",
            format!("{e}; ask a node that keeps the whole history (storage.mode = \"archive\")"),
        )
        .with_oldest(oldest),
        e => ApiError::internal(e),
    }
}

/// How a proving reader proves a round's ballots (namespace `budget_ballot`).
#[derive(Debug, Default)]
pub enum BallotProofs {
    /// By a state proof each, like any value.
    #[default]
    State,
    /// All of them, by the tally's ballots root: the bundle carries every ballot.
    All,
    /// Each by its inclusion proof under the root; the hashes are the leaves of every
    /// ballot of the round, in index order.
    Inclusion(Vec<acta_ledger::Hash>),
}

/// Reads state values at one height, keeping each value's proof when asked to prove.
pub struct Reader<'a> {
    pub store: &'a Store,
    pub height: Height,
    /// The time of the block at `height` (the genesis time at 0).
    pub time: Timestamp,
    prove: bool,
    entries: Vec<StateEntry>,
    pub ballot_proofs: BallotProofs,
    /// Also prove the header in the log of the checkpoint of this many blocks.
    pub checkpoint: Option<u64>,
    ballots: Vec<BallotEntry>,
    all_ballots: Vec<Vec<u8>>,
}

impl<'a> Reader<'a> {
    /// A reader at `height`; a proof needs a block, so `prove` at height 0 is refused.
    pub fn new(
        store: &'a Store,
        spec: &ChainSpec,
        height: Height,
        prove: bool,
    ) -> Result<Reader<'a>, ApiError> {
        if prove && height == Height(0) {
            return Err(ApiError::bad_request(
                "no proof at height 0: the genesis state is known from the genesis file; ask for height 1 or later",
            ));
        }
        let time = if height == Height(0) {
            spec.genesis_time
        } else {
            store
                .block(height)
                .map_err(ApiError::internal)?
                .map_or(spec.genesis_time, |b| b.header.time)
        };
        Ok(Reader {
            store,
            height,
            time,
            prove,
            entries: Vec::new(),
            ballot_proofs: BallotProofs::State,
            checkpoint: None,
            ballots: Vec::new(),
            all_ballots: Vec::new(),
        })
    }

    /// The raw value of `key` in `namespace`.
    pub fn raw(&mut self, namespace: &str, key: &[u8]) -> Result<Option<Vec<u8>>, ApiError> {
        let k = state_key(namespace, key);
        if !self.prove {
            return self.store.get(&k, self.height).map_err(store_error);
        }
        if namespace == NS_BALLOT && !matches!(self.ballot_proofs, BallotProofs::State) {
            let value = self.store.get(&k, self.height).map_err(store_error)?;
            let bytes = value
                .clone()
                .ok_or_else(|| ApiError::internal("a ballot read by its root is missing"))?;
            match &self.ballot_proofs {
                BallotProofs::All => self.all_ballots.push(bytes),
                BallotProofs::Inclusion(leaves) => {
                    let index = key
                        .get(8..16)
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map(u64::from_be_bytes)
                        .and_then(|i| usize::try_from(i).ok())
                        .ok_or_else(|| ApiError::internal("a ballot key without its index"))?;
                    let proof =
                        merkle::inclusion_proof(leaves, index).map_err(ApiError::internal)?;
                    self.ballots.push(BallotEntry {
                        ballot: bytes,
                        proof,
                    });
                }
                BallotProofs::State => {}
            }
            return Ok(value);
        }
        let (value, proof) = self
            .store
            .get_with_proof(&k, self.height)
            .map_err(store_error)?;
        self.entries.push(StateEntry {
            namespace: namespace.to_string(),
            key: key.to_vec(),
            value: value.clone(),
            proof: proof.encode(),
        });
        Ok(value)
    }

    /// The proof bundle of everything read, if proving, as the answer to `query`.
    pub fn bundle(self, spec: &ChainSpec, query: &Query) -> Result<Option<ProofBundle>, ApiError> {
        if !self.prove {
            return Ok(None);
        }
        let mut b = bundle(
            self.store,
            spec,
            self.height,
            Some(query.target()),
            self.entries,
            None,
        )?;
        b.checkpoint = checkpoint_entry(self.store, self.height, self.checkpoint)?;
        b.ballots = self.ballots;
        b.all_ballots = self.all_ballots;
        Ok(Some(b))
    }
}

/// A bundle for the block at `height` (at least 1) answering `query` with `state` and `tx`.
pub fn bundle(
    store: &Store,
    spec: &ChainSpec,
    height: Height,
    query: Option<String>,
    state: Vec<StateEntry>,
    tx: Option<TxEntry>,
) -> Result<ProofBundle, ApiError> {
    let block = store
        .block(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("no block at committed height {height}")))?;
    let commit = store
        .commit(height)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(format!("no commit at committed height {height}")))?;
    Ok(ProofBundle {
        version: BUNDLE_VERSION,
        chain_id: spec.chain_id.clone(),
        query,
        validator_changes: set_changes(store, height)?,
        header: block.header,
        commit,
        state,
        tx,
        readings: Vec::new(),
        ballots: Vec::new(),
        all_ballots: Vec::new(),
        checkpoint: None,
    })
}

/// The proof of the block at `height` in the log of the checkpoint of `size` blocks.
pub fn checkpoint_entry(
    store: &Store,
    height: Height,
    size: Option<u64>,
) -> Result<Option<CheckpointEntry>, ApiError> {
    let Some(size) = size else {
        return Ok(None);
    };
    let latest = store.block_log_size().map_err(ApiError::internal)?;
    if size < height.0 || size > latest {
        return Err(ApiError::bad_request(format!(
            "checkpoint {size} cannot prove block {height}: give a size from {height} to {latest}"
        )));
    }
    let proof = blocklog::inclusion_proof(store, height.0 - 1, size).map_err(ApiError::internal)?;
    Ok(Some(CheckpointEntry { size, proof }))
}

fn set_changes(store: &Store, height: Height) -> Result<Vec<SetChange>, ApiError> {
    crate::snapshot::set_changes(store, height).map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use acta_ledger::{state::StateChanges, store::History};

    use super::*;

    /// A height whose state was pruned is refused with 410, naming the oldest height kept;
    /// the heights kept and those not committed yet answer as before.
    #[test]
    fn a_pruned_height_is_gone_and_says_which_heights_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), History::Prunable).unwrap();
        for _ in 0..5 {
            store.commit_state_only(&StateChanges::new()).unwrap();
        }
        store.prune(Height(3), 100).unwrap();
        let e = resolve_height(&store, Some(2)).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::GONE);
        assert_eq!(e.body.code, "pruned");
        assert_eq!(e.body.oldest, Some(Height(3)));
        assert!(
            e.body.message.contains("height 2") && e.body.message.contains("height 3"),
            "{e}"
        );
        assert_eq!(resolve_height(&store, Some(3)).unwrap(), Height(3));
        assert_eq!(resolve_height(&store, None).unwrap(), Height(4));
        let e = resolve_height(&store, Some(5)).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::NOT_FOUND);
    }
}
