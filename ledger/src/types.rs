//! Newtypes for the numbers that must not be mixed up, and the chain id.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use time::format_description::well_known::Rfc3339;

use crate::codec::{invalid_data, read_bytes};

macro_rules! number {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
            BorshSerialize, BorshDeserialize, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

number!(
    /// A block height. The genesis state is height 0; the first block is height 1.
    Height(u64)
);
number!(
    /// A consensus round within a height.
    Round(u32)
);
number!(
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp(u64)
);
number!(
    /// Stake-weighted voting power of a validator.
    VotingPower(u64)
);
number!(
    /// A validator's position in its (sorted) validator set.
    ValidatorIndex(u16)
);

impl Timestamp {
    /// The wall clock now, for wallets and nodes. The executor never reads a clock: it
    /// knows only the block's time.
    pub fn now() -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Timestamp(ms)
    }

    /// `ms` milliseconds later (saturating).
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// As an RFC 3339 UTC time to the second (`2026-11-21T08:53:22Z`): how answers and
    /// people read a time. A time past the year 9999 shows as milliseconds.
    pub fn rfc3339(self) -> String {
        let secs = i64::try_from(self.0 / 1000).unwrap_or(i64::MAX);
        time::OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| format!("{} ms since 1970", self.0))
    }

    /// As an RFC 3339 UTC time to the millisecond (`2026-11-21T08:53:22.999Z`): exact, for
    /// a query such as a DID resolution's `versionTime`.
    pub fn rfc3339_ms(self) -> String {
        let seconds = self.rfc3339();
        match seconds.strip_suffix('Z') {
            Some(s) => format!("{s}.{:03}Z", self.0 % 1000),
            None => seconds,
        }
    }

    /// A time as people write it: RFC 3339 (`2027-03-01T09:00:00Z`, or with an offset
    /// such as `+01:00`), the same without seconds (`2027-03-01T09:00Z`), a date
    /// (`2027-03-01`, midnight UTC), or Unix milliseconds.
    pub fn parse(s: &str) -> std::result::Result<Timestamp, String> {
        let bad = || {
            format!(
                "{s:?} is not a time: use 2027-03-01T09:00Z, 2027-03-01T09:00:00+01:00, \
                 2027-03-01 (midnight UTC) or Unix milliseconds"
            )
        };
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(Timestamp).map_err(|_| bad());
        }
        let t = if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
            t
        } else if let Some(t) = [
            "[year]-[month]-[day]T[hour]:[minute]Z",
            "[year]-[month]-[day]T[hour]:[minute][offset_hour sign:mandatory]:[offset_minute]",
        ]
        .iter()
        .find_map(|f| {
            let format = time::format_description::parse_borrowed::<2>(f).ok()?;
            time::OffsetDateTime::parse(s, &format).ok().or_else(|| {
                time::PrimitiveDateTime::parse(s, &format)
                    .ok()
                    .map(time::PrimitiveDateTime::assume_utc)
            })
        }) {
            t
        } else {
            let format = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]")
                .map_err(|_| bad())?;
            time::Date::parse(s, &format)
                .map_err(|_| bad())?
                .midnight()
                .assume_utc()
        };
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        u64::try_from(ms).map(Timestamp).map_err(|_| bad())
    }
}

impl Height {
    pub fn next(self) -> Height {
        Height(self.0.checked_add(1).expect("height cannot overflow u64"))
    }
}

/// The chain id: 1 to 50 characters from `a-z`, `0-9`, `-`, `_` and `.`. It is in every
/// signed message so that a signature for one chain is worthless on another.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, Serialize)]
#[serde(transparent)]
pub struct ChainId(String);

impl ChainId {
    pub const MAX_LEN: usize = 50;

    pub fn new(id: impl Into<String>) -> crate::Result<ChainId> {
        let id = id.into();
        Self::check(&id).map_err(|reason| crate::Error::invalid("chain id", reason))?;
        Ok(ChainId(id))
    }

    fn check(id: &str) -> Result<(), String> {
        if id.is_empty() || id.len() > Self::MAX_LEN {
            return Err(format!(
                "{:?} must be 1 to {} characters",
                id,
                Self::MAX_LEN
            ));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(*c)))
        {
            return Err(format!(
                "{id:?} has the character {c:?}; allowed are a-z 0-9 - _ ."
            ));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl BorshDeserialize for ChainId {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let bytes = read_bytes(reader, Self::MAX_LEN, "chain id")?;
        let id = String::from_utf8(bytes).map_err(|_| invalid_data("chain id is not utf-8"))?;
        Self::check(&id).map_err(invalid_data)?;
        Ok(ChainId(id))
    }
}

impl<'de> Deserialize<'de> for ChainId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ChainId::new(<String as Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.0)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    #[test]
    fn times_read_as_people_write_them_and_print_as_rfc3339() {
        let nine = Timestamp(1_803_891_600_000); // 2027-03-01T09:00:00Z
        for s in [
            "2027-03-01T09:00Z",
            "2027-03-01T09:00:00Z",
            "2027-03-01T10:00+01:00",
            "2027-03-01T10:00:00+01:00",
            "1803891600000",
        ] {
            assert_eq!(Timestamp::parse(s), Ok(nine), "{s}");
        }
        assert_eq!(
            Timestamp::parse("2027-03-01"),
            Ok(Timestamp(1_803_859_200_000))
        );
        assert_eq!(nine.rfc3339(), "2027-03-01T09:00:00Z");
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp(951_782_400_999).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(
            Timestamp(951_782_400_999).rfc3339_ms(),
            "2000-02-29T00:00:00.999Z"
        );
        assert_eq!(
            Timestamp::parse("2000-02-29T00:00:00.999Z"),
            Ok(Timestamp(951_782_400_999))
        );
        for bad in [
            "",
            "2027-02-30",
            "2027-03-01T25:00Z",
            "2027-03-01 09:00",
            "next week",
            "1969-12-31T23:59Z",
            "-5",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn chain_id_accepts_plain_names_and_refuses_the_rest() {
        assert!(ChainId::new("acta-city-1").is_ok());
        for bad in ["", "Acta", "acta city", "ac/ta", &"a".repeat(51)] {
            assert!(ChainId::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn chain_id_decode_checks_what_new_checks() {
        let good = ChainId::new("acta-1").unwrap();
        assert_eq!(
            decode::<ChainId>("chain id", &encode(&good), 64).unwrap(),
            good
        );
        let bad = encode(&String::from("ACTA"));
        assert!(decode::<ChainId>("chain id", &bad, 64).is_err());
        let long = encode(&"a".repeat(51));
        assert!(decode::<ChainId>("chain id", &long, 64).is_err());
    }
}

/// UTF-8 text of at most `MAX` bytes, checked when decoded.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, Serialize)]
#[serde(transparent)]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    pub fn new(s: impl Into<String>) -> crate::Result<Self> {
        let s = s.into();
        if s.len() > MAX {
            return Err(crate::Error::TooLarge {
                what: "text",
                len: s.len(),
                max: MAX,
            });
        }
        Ok(Text(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> BorshDeserialize for Text<MAX> {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let bytes = read_bytes(reader, MAX, "text")?;
        String::from_utf8(bytes)
            .map(Text)
            .map_err(|_| invalid_data("text is not utf-8"))
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::new(<String as Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl<const MAX: usize> fmt::Debug for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize> fmt::Display for Text<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bytes, at most `MAX` of them, checked when decoded; hex in JSON.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize)]
pub struct Bytes<const MAX: usize>(Vec<u8>);

impl<const MAX: usize> Bytes<MAX> {
    pub fn new(bytes: impl Into<Vec<u8>>) -> crate::Result<Self> {
        let bytes = bytes.into();
        if bytes.len() > MAX {
            return Err(crate::Error::TooLarge {
                what: "bytes",
                len: bytes.len(),
                max: MAX,
            });
        }
        Ok(Bytes(bytes))
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl<const MAX: usize> BorshDeserialize for Bytes<MAX> {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        read_bytes(reader, MAX, "bytes").map(Bytes)
    }
}

impl<const MAX: usize> Serialize for Bytes<MAX> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Bytes<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'_, str> as Deserialize>::deserialize(d)?;
        let bytes = hex::decode(s.as_ref()).map_err(serde::de::Error::custom)?;
        Bytes::new(bytes).map_err(serde::de::Error::custom)
    }
}

impl<const MAX: usize> fmt::Debug for Bytes<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({})", hex::encode(&self.0))
    }
}
