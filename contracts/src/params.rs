//! Chain parameters: a typed registry of every name the council may set.
//!
//! A parameter is a `u64` with a unit, an inclusive range and a default. The council's
//! `SetParameter` is refused when proposed (and again when carried out) if the name is not
//! in [`REGISTRY`] or the value is outside its range, so a misspelt name can never be
//! stored with no effect. The state keeps, under namespace `param` (key: the name's
//! bytes), a [`ParamRecord`]: the value and the height at which it was set (0 for
//! genesis). A parameter never set has its default.

pub use acta_ledger::records::ParamRecord;
use acta_ledger::Height;
use serde::Serialize;

use crate::{error::ExecError, error::TxError, view::StateView};

/// Namespace of the parameters the council or the genesis set.
pub const NS_PARAM: &str = "param";

/// The unit of a parameter's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ParamUnit {
    /// Hundredths of a percent: 10,000 is the whole.
    BasisPoints,
    /// A number of block heights.
    Heights,
    /// Seconds of block time.
    Seconds,
}

/// A parameter the ledger knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ParamSpec {
    pub name: &'static str,
    pub unit: ParamUnit,
    /// The smallest value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
    /// The value when neither the genesis nor the council set one.
    pub default: u64,
    /// What the parameter does, in one sentence.
    pub meaning: &'static str,
}

/// The share of its power an equivocating validator loses, in basis points.
pub const SLASH_FRACTION_BPS: ParamSpec = ParamSpec {
    name: "slash_fraction_bps",
    unit: ParamUnit::BasisPoints,
    min: 1,
    max: 10_000,
    default: 500,
    meaning: "the share of its voting power a validator loses for equivocating \
              (rounded up, so an offence always costs at least one unit)",
};

/// Evidence older than this many heights is ignored.
pub const EVIDENCE_MAX_AGE: ParamSpec = ParamSpec {
    name: "evidence_max_age",
    unit: ParamUnit::Heights,
    min: 1,
    max: 10_000_000,
    default: 100_000,
    meaning: "evidence of an offence more than this many heights old is ignored",
};

/// How many heights after a budget round closes its tally is stored.
pub const TALLY_DELAY: ParamSpec = ParamSpec {
    name: "tally_delay",
    unit: ParamUnit::Heights,
    min: 1,
    max: 100_000,
    default: 150,
    meaning: "a budget round closed at height h has its tally stored by the block at \
              h + tally_delay; nodes run it off the consensus path in between, and the \
              block at h + tally_delay waits for it if it has not finished",
};

/// How long a council proposal may gather its approvals (format version 13).
pub const PROPOSAL_LIFETIME_S: ParamSpec = ParamSpec {
    name: "proposal_lifetime_s",
    unit: ParamUnit::Seconds,
    min: 3_600,
    max: 31_536_000,
    default: 2_592_000,
    meaning: "a council proposal made by a block at time t can be carried out by approvals \
              in blocks until t + proposal_lifetime_s, and is refused after; the lifetime \
              in force when it is proposed is the one it keeps",
};

/// Every parameter, sorted by name.
pub const REGISTRY: &[ParamSpec] = &[
    EVIDENCE_MAX_AGE,
    PROPOSAL_LIFETIME_S,
    SLASH_FRACTION_BPS,
    TALLY_DELAY,
];

/// The registered parameter `name`, or a refusal naming it.
pub fn spec(name: &str) -> Result<&'static ParamSpec, TxError> {
    REGISTRY
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| TxError::UnknownParameter(name.to_string()))
}

/// Checks that `value` may be given to the parameter `name`.
pub fn check(name: &str, value: u64) -> Result<&'static ParamSpec, TxError> {
    let spec = spec(name)?;
    if value < spec.min || value > spec.max {
        return Err(TxError::OutOfRange(format!(
            "{name} must be within {}..={}, not {value}",
            spec.min, spec.max
        )));
    }
    Ok(spec)
}

/// The value of `spec` in `view`: the one set, or the default.
pub fn get(view: &StateView<'_>, spec: &ParamSpec) -> Result<u64, ExecError> {
    Ok(record(view, spec)?.map_or(spec.default, |r| r.value))
}

/// The stored record of `spec`, if the genesis or the council set it.
pub fn record(view: &StateView<'_>, spec: &ParamSpec) -> Result<Option<ParamRecord>, ExecError> {
    view.get(NS_PARAM, spec.name.as_bytes())
}

/// Stores `value` for `name` (checked by [`check`]) as set at `height`.
pub(crate) fn set(view: &mut StateView<'_>, name: &str, value: u64, height: Height) {
    view.put(
        NS_PARAM,
        name.as_bytes(),
        &ParamRecord {
            value,
            set_at: height,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_sorted_unique_and_its_defaults_are_in_range() {
        for pair in REGISTRY.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for p in REGISTRY {
            assert!(p.min <= p.default && p.default <= p.max, "{}", p.name);
            assert!(check(p.name, p.default).is_ok());
        }
    }

    #[test]
    fn unknown_names_and_values_out_of_range_are_refused() {
        assert!(matches!(
            check("slash_fraction_bsp", 100),
            Err(TxError::UnknownParameter(_))
        ));
        assert!(matches!(
            check("slash_fraction_bps", 0),
            Err(TxError::OutOfRange(_))
        ));
        assert!(matches!(
            check("slash_fraction_bps", 10_001),
            Err(TxError::OutOfRange(_))
        ));
        assert_eq!(
            check("slash_fraction_bps", 10_000).unwrap().name,
            "slash_fraction_bps"
        );
    }
}
