//! Light-client verification: checking commit certificates against validator sets, and
//! following a chain of headers across validator-set changes from a trusted starting point.

use crate::{
    block::Header,
    crypto::{signing_bytes, SignatureBatch},
    types::{ChainId, Height, VotingPower},
    validator::ValidatorSet,
    vote::Commit,
    Error, Hash, Result,
};

/// Checks that `commit` certifies `block` at `height`: every signature is a valid precommit
/// by a distinct member of `set`, and together they hold more than two thirds of its power.
/// Returns the power that signed.
pub fn verify_commit(
    chain_id: &ChainId,
    set: &ValidatorSet,
    commit: &Commit,
    height: Height,
    block: &Hash,
) -> Result<VotingPower> {
    if commit.height != height {
        return Err(Error::Commit(format!(
            "commit is for height {}, expected {height}",
            commit.height
        )));
    }
    if commit.block != *block {
        return Err(Error::Commit(format!(
            "commit is for block {}, expected {block}",
            commit.block
        )));
    }
    let vote = commit.vote();
    let message = signing_bytes(vote.kind.domain(), chain_id, &vote.payload());
    let mut power: u64 = 0;
    let mut batch = SignatureBatch::with_capacity(commit.signatures.len());
    let mut previous = None;
    for sig in &commit.signatures {
        if previous.is_some_and(|p| p >= sig.validator) {
            return Err(Error::Commit(format!(
                "signatures out of order or repeated at validator {}",
                sig.validator
            )));
        }
        previous = Some(sig.validator);
        let validator = set.get(sig.validator).ok_or_else(|| {
            Error::Commit(format!(
                "validator index {} not in a set of {}",
                sig.validator,
                set.len()
            ))
        })?;
        // Cannot overflow: the set's total power fits in a u64.
        power += validator.power.0;
        batch.push(validator.public_key, sig.signature, message.clone());
    }
    if !set.is_quorum(VotingPower(power)) {
        return Err(Error::Commit(format!(
            "signed power {power} is not more than two thirds of {}",
            set.total_power()
        )));
    }
    batch.verify_all().map_err(|(i, e)| {
        Error::Commit(format!(
            "signature of validator {}: {e}",
            commit.signatures[i].validator
        ))
    })?;
    Ok(VotingPower(power))
}

/// What a light client trusts: a block at some height and the validator set that signs the
/// next block. At height 0 it is the genesis: its hash and validators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedState {
    pub chain_id: ChainId,
    pub height: Height,
    pub block_hash: Hash,
    pub next_validators: ValidatorSet,
}

impl TrustedState {
    pub fn genesis(chain_id: ChainId, genesis_hash: Hash, validators: ValidatorSet) -> Self {
        TrustedState {
            chain_id,
            height: Height(0),
            block_hash: genesis_hash,
            next_validators: validators,
        }
    }

    /// Verifies the next header and its commit, and moves trust to it. `next_validators` is
    /// the set that will sign the block after it, which the header names by hash.
    pub fn verify_next(
        &self,
        header: &Header,
        commit: &Commit,
        next_validators: &ValidatorSet,
    ) -> Result<TrustedState> {
        let fail = |why: String| {
            Err(Error::LightClient(format!(
                "header {}: {why}",
                header.height
            )))
        };
        if header.chain_id != self.chain_id {
            return fail(format!(
                "chain {} is not {}",
                header.chain_id, self.chain_id
            ));
        }
        if header.height != self.height.next() {
            return fail(format!("expected height {}", self.height.next()));
        }
        if header.parent_hash != self.block_hash {
            return fail(format!(
                "parent {} is not the trusted block {}",
                header.parent_hash, self.block_hash
            ));
        }
        if header.validators_hash != self.next_validators.hash() {
            return fail("validators hash is not that of the trusted next set".into());
        }
        if header.next_validators_hash != next_validators.hash() {
            return fail("next validators hash does not match the set given".into());
        }
        let hash = header.hash();
        verify_commit(
            &self.chain_id,
            &self.next_validators,
            commit,
            header.height,
            &hash,
        )
        .map_err(|e| Error::LightClient(format!("header {}: {e}", header.height)))?;
        Ok(TrustedState {
            chain_id: self.chain_id.clone(),
            height: header.height,
            block_hash: hash,
            next_validators: next_validators.clone(),
        })
    }

    /// Follows a chain of headers, each with its commit and the set that signs the header
    /// after it. Returns the state trusted after the last one.
    pub fn verify_chain<'a>(
        &self,
        chain: impl IntoIterator<Item = (&'a Header, &'a Commit, &'a ValidatorSet)>,
    ) -> Result<TrustedState> {
        let mut trusted = self.clone();
        for (header, commit, next) in chain {
            trusted = trusted.verify_next(header, commit, next)?;
        }
        Ok(trusted)
    }
}
