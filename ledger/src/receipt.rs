//! Receipts: what each transaction of a block did, as the header's `results_root` commits
//! to it.
//!
//! A receipt holds consensus data only: the transaction's id and either the events it
//! emitted or a [`RefusalCode`], a number frozen by the wire format. The English text that
//! explains a refusal is not part of a receipt: rewording a message, or a dependency
//! changing its `Display`, must never change a root and fork the chain (CometBFT keeps its
//! `log` out of the results hash for the same reason). Nodes keep that text beside the
//! block, outside of anything hashed.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::Hash;

/// Something a transaction did, for receipts and subscribers. Attribute values come from
/// the transaction and the state (ids, numbers), never from error text.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schema::event_attributes))]
    pub attributes: Vec<(String, String)>,
}

impl Event {
    pub fn new(kind: &str, attributes: &[(&str, String)]) -> Event {
        Event {
            kind: kind.to_string(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }
}

macro_rules! refusal_codes {
    ($($(#[$doc:meta])* $variant:ident = $number:literal, $name:literal;)*) => {
        /// Why the ledger refused a transaction that a block included. The numbers are
        /// frozen (docs/wire-format.md, section 6.3, and the golden file): a code is only
        /// ever added, never renumbered or reused.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RefusalCode {
            $($(#[$doc])* $variant = $number,)*
        }

        impl RefusalCode {
            /// Every code, in number order.
            pub const ALL: &'static [RefusalCode] = &[$(RefusalCode::$variant,)*];

            /// The code's frozen number, as encoded in receipts.
            pub fn number(self) -> u16 {
                self as u16
            }

            /// The code with `number`, if there is one.
            pub fn from_number(number: u16) -> Option<RefusalCode> {
                match number {
                    $($number => Some(RefusalCode::$variant),)*
                    _ => None,
                }
            }

            /// The code's name, as the API and the CLI show it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(RefusalCode::$variant => $name,)*
                }
            }

            /// The code named `name`, if there is one.
            pub fn from_name(name: &str) -> Option<RefusalCode> {
                match name {
                    $($name => Some(RefusalCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

refusal_codes! {
    /// A record the call names does not exist.
    NotFound = 1, "not_found";
    /// The record the call would create exists already.
    AlreadyExists = 2, "already_exists";
    /// A DID or device the call needs is deactivated.
    Deactivated = 3, "deactivated";
    /// The signer may not make this call.
    Unauthorized = 4, "unauthorized";
    /// The call's content breaks a rule of its record.
    Invalid = 5, "invalid";
    /// A count or size limit of the ledger is reached.
    Limit = 6, "limit";
    /// The record is not in a phase that allows the call (budget rounds).
    WrongPhase = 7, "wrong_phase";
    /// An attestation batch skips a sequence number.
    SequenceGap = 8, "sequence_gap";
    /// An attestation batch does not extend its device's chain.
    Fork = 9, "fork";
    /// An approval names an action other than the one its proposal holds.
    ActionMismatch = 10, "action_mismatch";
    /// A parameter name that the registry does not know.
    UnknownParameter = 11, "unknown_parameter";
    /// A parameter value outside its registered range.
    OutOfRange = 12, "out_of_range";
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BorshSerialize for RefusalCode {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.number(), writer)
    }
}

impl BorshDeserialize for RefusalCode {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let number = u16::deserialize_reader(reader)?;
        RefusalCode::from_number(number)
            .ok_or_else(|| crate::codec::invalid_data(format!("unknown refusal code {number}")))
    }
}

impl Serialize for RefusalCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RefusalCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <String as Deserialize>::deserialize(d)?;
        RefusalCode::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown refusal code {name:?}")))
    }
}

/// The outcome of one transaction of a block. Either way the transaction used up its
/// signer's nonce: a transaction is final once it is in a block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    Accepted { events: Vec<Event> },
    Refused { code: RefusalCode },
}

/// A transaction's id and outcome: one leaf of the header's `results_root`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    pub tx: Hash,
    pub outcome: Outcome,
}

impl Receipt {
    pub fn is_accepted(&self) -> bool {
        matches!(self.outcome, Outcome::Accepted { .. })
    }

    /// The refusal code, if the transaction was refused.
    pub fn refusal(&self) -> Option<RefusalCode> {
        match self.outcome {
            Outcome::Refused { code } => Some(code),
            Outcome::Accepted { .. } => None,
        }
    }

    /// The bytes of each receipt: the leaves of a header's `results_root`.
    pub fn leaves(receipts: &[Receipt]) -> Vec<Vec<u8>> {
        receipts.iter().map(crate::codec::encode).collect()
    }

    /// The header's `results_root` for these receipts.
    pub fn results_root(receipts: &[Receipt]) -> Hash {
        crate::Block::results_root(&Self::leaves(receipts))
    }

    /// Decodes one receipt (a proven leaf of `results_root`), of at most `max_bytes`.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> crate::Result<Receipt> {
        crate::codec::decode("receipt", bytes, max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_by_number_and_name_and_are_unique() {
        let mut numbers = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeSet::new();
        for &code in RefusalCode::ALL {
            assert!(numbers.insert(code.number()));
            assert!(names.insert(code.as_str()));
            assert_eq!(RefusalCode::from_number(code.number()), Some(code));
            assert_eq!(RefusalCode::from_name(code.as_str()), Some(code));
            let bytes = crate::codec::encode(&code);
            assert_eq!(bytes, code.number().to_le_bytes());
            let back: RefusalCode = borsh::from_slice(&bytes).unwrap();
            assert_eq!(back, code);
        }
        assert!(borsh::from_slice::<RefusalCode>(&0u16.to_le_bytes()).is_err());
        assert!(borsh::from_slice::<RefusalCode>(&999u16.to_le_bytes()).is_err());
        assert!(serde_json::from_str::<RefusalCode>("\"no_such_code\"").is_err());
    }

    #[test]
    fn a_refusal_encodes_its_code_and_nothing_else() {
        let receipt = Receipt {
            tx: Hash::digest(b"tx"),
            outcome: Outcome::Refused {
                code: RefusalCode::NotFound,
            },
        };
        let bytes = crate::codec::encode(&receipt);
        let mut expected = Hash::digest(b"tx").0.to_vec();
        expected.extend([1, 1, 0]);
        assert_eq!(bytes, expected);
        assert_eq!(Receipt::decode(&bytes, 1024).unwrap(), receipt);
    }
}
