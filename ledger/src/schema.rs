//! JSON schemas of the ledger's leaf types, for the node's OpenAPI document (feature
//! `openapi`).
//!
//! The records, headers and proofs derive theirs (`utoipa::ToSchema`, beside `Serialize`);
//! the types here serialize by hand (hex, base58, a newtype's number), so their schemas say
//! by hand what those serializers write. Each is named after its type and referenced.

use std::borrow::Cow;

use utoipa::openapi::{
    schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type},
    RefOr,
};
use utoipa::{Number, PartialSchema, ToSchema};

use crate::{
    ChainId, Did, Hash, Height, PublicKey, RefusalCode, Round, Signature, Timestamp,
    ValidatorIndex, VotingPower,
};

/// A string of `pattern`.
fn string(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// An integer from 0 to `max`.
fn integer(max: u64, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Integer))
        .minimum(Some(0))
        .maximum(Some(Number::UInt(
            usize::try_from(max).unwrap_or(usize::MAX),
        )))
        .description(Some(description))
        .into()
}

/// Implements `ToSchema` under the type's own name with `schema`.
macro_rules! schema {
    ($($ty:ident => $schema:expr;)*) => {$(
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    )*};
}

schema! {
    Hash => string("^[0-9a-f]{64}$", "SHA-256, lowercase hex.");
    Did => string(
        "^did:acta:[1-9A-HJ-NP-Za-km-z]{16,22}$",
        "did:acta: and the base58 of 16 bytes (16 to 22 characters).",
    );
    PublicKey => string("^[0-9a-f]{64}$", "Ed25519 public key, hex.");
    Signature => string("^[0-9a-f]{128}$", "Ed25519 signature, hex.");
    ChainId => string("^[a-z0-9._-]{1,50}$", "The chain id: 1 to 50 of a-z, 0-9, `-`, `_` and `.`.");
    Height => integer(u64::MAX, "A block height: 0 is the genesis state, 1 the first block.");
    Round => integer(u64::from(u32::MAX), "A consensus round within a height.");
    Timestamp => integer(u64::MAX, "Milliseconds since 1970-01-01T00:00:00Z.");
    VotingPower => integer(u64::MAX, "Stake-weighted voting power.");
    ValidatorIndex => integer(u64::from(u16::MAX), "A validator's position in its sorted set.");
    RefusalCode => ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .enum_values(Some(RefusalCode::ALL.iter().map(|c| c.as_str())))
        .description(Some(
            "A frozen refusal code of the ledger (docs/wire-format.md, section 6.3).",
        ))
        .into();
}

/// An event's attributes ([`crate::receipt::Event`]): pairs of strings, each an array of
/// exactly two (name, value), as serde writes a `(String, String)`.
pub(crate) fn event_attributes() -> Schema {
    let text = ObjectBuilder::new().schema_type(SchemaType::new(Type::String));
    let pair = ArrayBuilder::new()
        .items(text)
        .min_items(Some(2))
        .max_items(Some(2))
        .description(Some("A name and its value."));
    ArrayBuilder::new().items(pair).into()
}
