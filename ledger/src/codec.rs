//! Decoding with limits: every byte string from outside is checked against a maximum size
//! before decoding starts, and must be consumed exactly.
//!
//! Borsh allocates at most a bounded amount ahead of the bytes actually read (collections
//! grow as elements decode), so the memory a decode takes is bounded by the input's length.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::{Error, Result};

/// Encodes `value` as borsh bytes.
pub fn encode<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    borsh::to_vec(value).expect("borsh encoding into a Vec cannot fail")
}

/// Decodes exactly one `T` from `bytes`, refusing inputs longer than `max_bytes` and trailing
/// bytes. `what` names the type in the error.
pub fn decode<T: BorshDeserialize>(
    what: &'static str,
    bytes: &[u8],
    max_bytes: usize,
) -> Result<T> {
    if bytes.len() > max_bytes {
        return Err(Error::TooLarge {
            what,
            len: bytes.len(),
            max: max_bytes,
        });
    }
    borsh::from_slice(bytes).map_err(|e| Error::Decode {
        what,
        reason: e.to_string(),
    })
}

/// Reads a borsh length prefix and refuses it when above `max`, before anything is allocated.
pub(crate) fn read_len<R: std::io::Read>(
    reader: &mut R,
    max: usize,
    what: &str,
) -> std::io::Result<usize> {
    let len = u32::deserialize_reader(reader)? as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what} has {len} elements, more than the maximum {max}"),
        ));
    }
    Ok(len)
}

/// Reads a borsh `Vec<T>` whose length is at most `max`.
pub fn read_vec<R: std::io::Read, T: BorshDeserialize>(
    reader: &mut R,
    max: usize,
    what: &str,
) -> std::io::Result<Vec<T>> {
    let len = read_len(reader, max, what)?;
    // Grow as elements arrive rather than trusting the prefix with a large allocation.
    let mut out = Vec::with_capacity(len.min(1024));
    for _ in 0..len {
        out.push(T::deserialize_reader(reader)?);
    }
    Ok(out)
}

/// Reads a borsh byte string whose length is at most `max`.
pub(crate) fn read_bytes<R: std::io::Read>(
    reader: &mut R,
    max: usize,
    what: &str,
) -> std::io::Result<Vec<u8>> {
    let len = read_len(reader, max, what)?;
    let mut out = vec![0u8; len];
    reader.read_exact(&mut out)?;
    Ok(out)
}

pub(crate) fn invalid_data(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn decode_refuses_oversized_and_trailing_input() {
        let bytes = encode(&5u32);
        assert_eq!(decode::<u32>("u32", &bytes, 4).unwrap(), 5);
        assert!(matches!(
            decode::<u32>("u32", &bytes, 3),
            Err(Error::TooLarge { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode::<u32>("u32", &long, 16),
            Err(Error::Decode { .. })
        ));
        assert!(matches!(
            decode::<u32>("u32", &bytes[..3], 16),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn bounded_readers_refuse_long_prefixes_before_allocating() {
        // A length prefix of 4 billion with no data behind it.
        let bytes = u32::MAX.to_le_bytes();
        assert!(read_bytes(&mut &bytes[..], 1 << 20, "blob").is_err());
        assert!(read_vec::<_, u64>(&mut &bytes[..], 1 << 20, "list").is_err());
        let ok = encode(&vec![1u64, 2, 3]);
        assert_eq!(
            read_vec::<_, u64>(&mut &ok[..], 3, "list").unwrap(),
            vec![1, 2, 3]
        );
        assert!(read_vec::<_, u64>(&mut &ok[..], 2, "list").is_err());
    }
}
