//! Newtype ids so a space id can never be passed where an item id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies a space on its own instance.
    SpaceId
);
uuid_id!(
    /// Identifies an item on its own instance.
    ItemId
);
uuid_id!(
    /// Identifies an API token (not the secret itself).
    TokenId
);

/// The BLAKE3 digest that names a file chunk. It can only hold 32 bytes, and its text form is
/// exactly 64 lowercase hex digits: nothing else parses, so a value another instance sent can
/// never become a path, a `..` or an absolute file name where chunks are stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
#[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
pub struct ChunkHash([u8; 32]);

/// Why a text is not a chunk hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadChunkHash;

impl fmt::Display for BadChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a chunk hash is 64 lowercase hex digits (a BLAKE3 digest)")
    }
}

impl std::error::Error for BadChunkHash {}

impl ChunkHash {
    /// The digest of these bytes.
    pub fn of(bytes: &[u8]) -> ChunkHash {
        ChunkHash(*blake3::hash(bytes).as_bytes())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> ChunkHash {
        ChunkHash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }
}

impl FromStr for ChunkHash {
    type Err = BadChunkHash;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // HEXLOWER refuses upper case, so one digest has one spelling.
        let bytes = data_encoding::HEXLOWER
            .decode(s.as_bytes())
            .map_err(|_| BadChunkHash)?;
        bytes.try_into().map(ChunkHash).map_err(|_| BadChunkHash)
    }
}

impl fmt::Display for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChunkHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkHash({})", self.to_hex())
    }
}

impl Serialize for ChunkHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChunkHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_hashes_are_64_lowercase_hex_digits_and_nothing_else() {
        let hash = ChunkHash::of(b"chunk");
        assert_eq!(hash.to_hex(), blake3::hash(b"chunk").to_hex().as_str());
        assert_eq!(hash.to_hex().parse::<ChunkHash>(), Ok(hash));
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(serde_json::from_str::<ChunkHash>(&json).unwrap(), hash);
        for bad in [
            "/etc/passwd".to_string(),
            "../../ferry.db".to_string(),
            String::new(),
            hash.to_hex().to_uppercase(),
            format!("{}0", hash.to_hex()),
            hash.to_hex()[1..].to_string(),
            format!("/{}", &hash.to_hex()[1..]),
            "g".repeat(64),
        ] {
            assert_eq!(bad.parse::<ChunkHash>(), Err(BadChunkHash), "{bad}");
            let json = serde_json::to_string(&bad).unwrap();
            assert!(serde_json::from_str::<ChunkHash>(&json).is_err(), "{bad}");
        }
    }
}
