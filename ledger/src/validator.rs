//! Validator sets with voting power.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    codec::{encode, invalid_data, read_vec},
    merkle,
    types::{Height, ValidatorIndex, VotingPower},
    Error, Hash, PublicKey, Result,
};

/// The state namespace of the validator set (`staking.rs` of `acta-contracts` writes it).
pub const NS_VALIDATORS: &str = "validators";
/// The key of the latest validator set in [`NS_VALIDATORS`].
pub const SET_KEY: &[u8] = b"set";
/// The key of the set's [`SetHistory`] in [`NS_VALIDATORS`] (format version 14).
pub const SET_HISTORY_KEY: &[u8] = b"history";
/// The domain tag of [`SetHistory::then`]'s hash.
pub const SET_HISTORY_TAG: &[u8] = b"acta/validator-set-history/1";

/// Every change of the validator set since the genesis, as a count and a hash chain,
/// committed in the state (format version 14): a block that changes the set (its value
/// after the block differs from before) appends its height and the new set's hash. Whoever lists the changes up to a height (a snapshot's
/// manifest) can be held to the whole list: one change left out, or two that cancel out
/// (A to B and back to A), and the chain differs. Absent from the state until the set
/// first changes: [`SetHistory::default`], no change and a head of 32 zero bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SetHistory {
    /// How many blocks changed the set.
    pub changes: u64,
    /// `SHA-256(SET_HISTORY_TAG ‖ previous head ‖ height (u64 LE) ‖ set hash)` of the last
    /// one; zeros before the first.
    pub head: Hash,
}

impl SetHistory {
    /// The history after block `height` changed the set to the one whose hash is `set`.
    pub fn then(&self, height: Height, set: &Hash) -> SetHistory {
        SetHistory {
            changes: self.changes.saturating_add(1),
            head: Hash::digest_parts(&[
                SET_HISTORY_TAG,
                &self.head.0,
                &height.0.to_le_bytes(),
                &set.0,
            ]),
        }
    }
}

/// One validator: its consensus key and its voting power (stake).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Validator {
    pub public_key: PublicKey,
    pub power: VotingPower,
}

/// A validator set, sorted by public key with no key twice and no validator without power.
/// A validator's index is its position in this order.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    #[borsh(skip)]
    #[serde(skip)]
    total_power: u64,
}

impl ValidatorSet {
    /// The most validators a set may hold.
    pub const VALIDATORS_MAX: usize = 256;
    /// The most voting power a set may hold in all, as in CometBFT: small enough that
    /// proposer priorities (which move by up to twice the total) never overflow an i64.
    pub const TOTAL_POWER_MAX: u64 = (i64::MAX / 8) as u64;

    /// Builds a set from validators in any order.
    pub fn new(mut validators: Vec<Validator>) -> Result<ValidatorSet> {
        validators.sort_by_key(|v| v.public_key);
        let total_power =
            Self::check(&validators).map_err(|e| Error::invalid("validator set", e))?;
        Ok(ValidatorSet {
            validators,
            total_power,
        })
    }

    /// Checks a sorted list and returns its total power.
    fn check(validators: &[Validator]) -> Result<u64, String> {
        if validators.is_empty() {
            return Err("no validators".into());
        }
        if validators.len() > Self::VALIDATORS_MAX {
            return Err(format!(
                "{} validators, more than the maximum {}",
                validators.len(),
                Self::VALIDATORS_MAX
            ));
        }
        let mut total: u64 = 0;
        for (i, v) in validators.iter().enumerate() {
            if v.power.0 == 0 {
                return Err(format!("validator {} has no voting power", v.public_key));
            }
            if i > 0 && validators[i - 1].public_key >= v.public_key {
                return Err(format!(
                    "validator {} is listed twice or out of order",
                    v.public_key
                ));
            }
            total = total
                .checked_add(v.power.0)
                .filter(|t| *t <= Self::TOTAL_POWER_MAX)
                .ok_or_else(|| format!("total power above {}", Self::TOTAL_POWER_MAX))?;
        }
        Ok(total)
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn total_power(&self) -> VotingPower {
        VotingPower(self.total_power)
    }

    pub fn get(&self, index: ValidatorIndex) -> Option<&Validator> {
        self.validators.get(usize::from(index.0))
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<ValidatorIndex> {
        self.validators
            .binary_search_by(|v| v.public_key.cmp(key))
            .ok()
            .map(|i| ValidatorIndex(u16::try_from(i).expect("at most 256 validators")))
    }

    /// Whether `power` is more than two thirds of the total: a quorum.
    pub fn is_quorum(&self, power: VotingPower) -> bool {
        u128::from(power.0) * 3 > u128::from(self.total_power) * 2
    }

    /// Whether `power` is more than one third of the total: enough that at least one honest
    /// validator is among its holders.
    pub fn is_one_third(&self, power: VotingPower) -> bool {
        u128::from(power.0) * 3 > u128::from(self.total_power)
    }

    /// The RFC 9162 root over the borsh encodings of the validators, in order. Headers carry
    /// it as `validators_hash` and `next_validators_hash`.
    pub fn hash(&self) -> Hash {
        let leaves: Vec<Vec<u8>> = self.validators.iter().map(encode).collect();
        merkle::root_of(&leaves)
    }
}

impl BorshDeserialize for ValidatorSet {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let validators: Vec<Validator> = read_vec(reader, Self::VALIDATORS_MAX, "validator set")?;
        let total_power = Self::check(&validators).map_err(invalid_data)?;
        Ok(ValidatorSet {
            validators,
            total_power,
        })
    }
}

impl<'de> Deserialize<'de> for ValidatorSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            validators: Vec<Validator>,
        }
        ValidatorSet::new(Raw::deserialize(d)?.validators).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::{codec::decode, Keypair};

    fn v(seed: u8, power: u64) -> Validator {
        Validator {
            public_key: Keypair::from_seed([seed; 32]).public(),
            power: VotingPower(power),
        }
    }

    #[test]
    fn new_sorts_and_sums() {
        let set = ValidatorSet::new(vec![v(1, 10), v(2, 20), v(3, 30)]).unwrap();
        assert_eq!(set.total_power(), VotingPower(60));
        assert!(set
            .validators()
            .windows(2)
            .all(|w| w[0].public_key < w[1].public_key));
        for val in set.validators() {
            let i = set.index_of(&val.public_key).unwrap();
            assert_eq!(set.get(i), Some(val));
        }
    }

    #[test]
    fn quorum_is_strictly_more_than_two_thirds_of_power() {
        let set = ValidatorSet::new(vec![v(1, 1), v(2, 1), v(3, 1)]).unwrap();
        assert!(!set.is_quorum(VotingPower(2)));
        assert!(set.is_quorum(VotingPower(3)));
        assert!(!set.is_one_third(VotingPower(1)));
        assert!(set.is_one_third(VotingPower(2)));
        let set = ValidatorSet::new(vec![v(1, 100), v(2, 1), v(3, 1), v(4, 1)]).unwrap();
        assert!(set.is_quorum(VotingPower(100)));
    }

    #[test]
    fn bad_sets_are_refused_when_built_and_when_decoded() {
        assert!(ValidatorSet::new(vec![]).is_err());
        assert!(ValidatorSet::new(vec![v(1, 1), v(1, 2)]).is_err());
        assert!(ValidatorSet::new(vec![v(1, 0)]).is_err());
        assert!(ValidatorSet::new(vec![v(1, ValidatorSet::TOTAL_POWER_MAX), v(2, 1)]).is_err());
        // Encoded out of order: decoding refuses it.
        let mut list = vec![v(1, 1), v(2, 1)];
        list.sort_by_key(|v| std::cmp::Reverse(v.public_key));
        let bytes = encode(&list);
        assert!(decode::<ValidatorSet>("validator set", &bytes, 1 << 16).is_err());
        let good = ValidatorSet::new(list).unwrap();
        let back: ValidatorSet = decode("validator set", &encode(&good), 1 << 16).unwrap();
        assert_eq!(back, good);
        assert_eq!(back.total_power(), VotingPower(2));
    }
}
