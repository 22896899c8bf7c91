//! The 20-byte v1 info-hash: SHA-1 of the info dictionary's bytes as they appear in the file.

use std::fmt;
use std::str::FromStr;

use data_encoding::{BASE32_NOPAD, HEXLOWER_PERMISSIVE};
use sha1::{Digest, Sha1};

use crate::error::MetainfoError;

/// A torrent's v1 identity. Displays as 40 lowercase hex digits; parses from 40 hex digits
/// (either case) or 32 base32 characters (either case), the two forms magnet links use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InfoHash(pub [u8; 20]);

impl InfoHash {
    /// The info-hash of an info dictionary given as its exact encoded bytes.
    pub fn of_info_bytes(info: &[u8]) -> Self {
        Self(Sha1::digest(info).into())
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// 40 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        HEXLOWER_PERMISSIVE.encode(&self.0)
    }

    /// 32 uppercase base32 characters (RFC 4648, no padding).
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }
}

impl fmt::Display for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InfoHash({})", self.to_hex())
    }
}

impl FromStr for InfoHash {
    type Err = MetainfoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| MetainfoError::InvalidInfoHash {
            input: s.chars().take(80).collect(),
            reason,
        };
        let decoded = match s.len() {
            40 => HEXLOWER_PERMISSIVE
                .decode(s.as_bytes())
                .map_err(|_| invalid("not 40 hex digits"))?,
            32 => BASE32_NOPAD
                .decode(s.to_ascii_uppercase().as_bytes())
                .map_err(|_| invalid("not 32 base32 characters"))?,
            _ => return Err(invalid("expected 40 hex digits or 32 base32 characters")),
        };
        let bytes: [u8; 20] = decoded
            .try_into()
            .map_err(|_| invalid("does not decode to 20 bytes"))?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base32_forms_round_trip() {
        let hash = InfoHash::of_info_bytes(b"d4:name4:teste");
        let hex = hash.to_string();
        assert_eq!(hex.len(), 40);
        assert_eq!(hex, hex.to_lowercase());
        assert_eq!(hex.parse::<InfoHash>().unwrap(), hash);
        assert_eq!(hex.to_uppercase().parse::<InfoHash>().unwrap(), hash);
        let b32 = hash.to_base32();
        assert_eq!(b32.len(), 32);
        assert_eq!(b32.parse::<InfoHash>().unwrap(), hash);
        assert_eq!(b32.to_lowercase().parse::<InfoHash>().unwrap(), hash);
    }

    #[test]
    fn known_value() {
        // SHA-1("abc")
        let hash = InfoHash::of_info_bytes(b"abc");
        assert_eq!(hash.to_hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in ["", "abc", &"g".repeat(40), &"1".repeat(32), &"a".repeat(41)] {
            let err = bad.parse::<InfoHash>().unwrap_err();
            assert!(
                matches!(err, MetainfoError::InvalidInfoHash { .. }),
                "{bad}: {err}"
            );
        }
    }
}
