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

/// What a light client trusts: a height, the hash of its block if known, and the validator
/// set that signs the blocks after it until a header announces another.
///
/// Trust moves forward in two ways, both checked by the same rules: [`Self::verify_next`]
/// follows the very next header (and checks that it extends the trusted block), and
/// [`Self::skip_to`] jumps to any later header signed by the trusted set, which a verifier
/// uses to go from one validator-set change to the next. Proof bundles
/// ([`crate::bundle::ProofBundle::verify`]) are checked with the latter. The trust
/// assumption is the one of every Tendermint light client: each validator set, while it
/// signs, has more than two thirds of its power honest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedState {
    pub chain_id: ChainId,
    pub height: Height,
    /// `None` at a genesis known only by its chain id and validators.
    pub block_hash: Option<Hash>,
    pub next_validators: ValidatorSet,
}

impl TrustedState {
    /// Trust at a chain's genesis, whose hash is the parent of block 1.
    pub fn genesis(chain_id: ChainId, genesis_hash: Hash, validators: ValidatorSet) -> Self {
        TrustedState {
            chain_id,
            height: Height(0),
            block_hash: Some(genesis_hash),
            next_validators: validators,
        }
    }

    /// Trust at a chain's genesis known by its chain id and validators alone (what an
    /// auditor's genesis file gives): headers can be skipped to, not followed one by one
    /// from block 1.
    pub fn anchor(chain_id: ChainId, validators: ValidatorSet) -> Self {
        TrustedState {
            chain_id,
            height: Height(0),
            block_hash: None,
            next_validators: validators,
        }
    }

    /// Checks a later header and its commit without moving trust: the header is for this
    /// chain, above the trusted height, names the trusted set as its signers, and that set
    /// signed it with more than two thirds of its power. Returns the power that signed.
    pub fn verify_header(&self, header: &Header, commit: &Commit) -> Result<VotingPower> {
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
        if header.height <= self.height {
            return fail(format!("not above the trusted height {}", self.height));
        }
        if header.validators_hash != self.next_validators.hash() {
            return fail(
                "it names a validator set other than the trusted one (a change of set before it is missing)"
                    .into(),
            );
        }
        verify_commit(
            &self.chain_id,
            &self.next_validators,
            commit,
            header.height,
            &header.hash(),
        )
        .map_err(|e| Error::LightClient(format!("header {}: {e}", header.height)))
    }

    /// Moves trust to a later header signed by the trusted set (see
    /// [`Self::verify_header`]); `next_validators` is the set that signs the block after
    /// it, which the header names by hash.
    pub fn skip_to(
        &self,
        header: &Header,
        commit: &Commit,
        next_validators: &ValidatorSet,
    ) -> Result<TrustedState> {
        self.verify_header(header, commit)?;
        if header.next_validators_hash != next_validators.hash() {
            return Err(Error::LightClient(format!(
                "header {}: its next validators hash does not match the set given",
                header.height
            )));
        }
        Ok(TrustedState {
            chain_id: self.chain_id.clone(),
            height: header.height,
            block_hash: Some(header.hash()),
            next_validators: next_validators.clone(),
        })
    }

    /// Verifies the next header and its commit, and moves trust to it: as
    /// [`Self::skip_to`], and the header is at the next height and extends the trusted
    /// block.
    pub fn verify_next(
        &self,
        header: &Header,
        commit: &Commit,
        next_validators: &ValidatorSet,
    ) -> Result<TrustedState> {
        if header.height != self.height.next() {
            return Err(Error::LightClient(format!(
                "header {}: expected height {}",
                header.height,
                self.height.next()
            )));
        }
        if let Some(parent) = self.block_hash {
            if header.parent_hash != parent {
                return Err(Error::LightClient(format!(
                    "header {}: parent {} is not the trusted block {parent}",
                    header.height, header.parent_hash
                )));
            }
        }
        self.skip_to(header, commit, next_validators)
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
