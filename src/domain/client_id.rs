use std::fmt;

use serde::{Deserialize, Serialize};

use super::secret::random_b64;

/// A proxy client id: `mcp_` followed by 128 random bits in base64url.
/// Parsed at the edge ([`ClientId::parse`]); stored and sent as its string
/// (records keep the bytes they had when ids were plain strings).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

pub const CLIENT_ID_PREFIX: &str = "mcp_";
/// 16 random bytes encode to 22 base64url characters.
const RANDOM_CHARS: usize = 22;

impl ClientId {
    pub fn generate() -> Self {
        Self(format!("{CLIENT_ID_PREFIX}{}", random_b64(16)))
    }

    /// Accepts only strings shaped like an id this server issues, so
    /// arbitrary input never reaches storage as a key.
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(CLIENT_ID_PREFIX)?;
        let ok = rest.len() == RANDOM_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An id read back from this server's own records or messages, where
    /// it was parsed when it first arrived.
    pub fn stored(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }
}

impl PartialEq<str> for ClientId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ClientId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Read as the string it is (storage keys, audit fields, comparisons);
/// a plain string never becomes a `ClientId` without [`ClientId::parse`].
impl std::ops::Deref for ClientId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ClientId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = ClientId::generate();
        assert_eq!(ClientId::parse(a.as_str()), Some(a.clone()));
        assert_ne!(a, ClientId::generate());
    }

    #[test]
    fn foreign_shapes_are_refused() {
        for raw in [
            "",
            "mcp_",
            "mcp_short",
            "abc_AAAAAAAAAAAAAAAAAAAAAA",
            "mcp_AAAAAAAAAAAAAAAAAAAA/A",
            "mcp_AAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(ClientId::parse(raw), None, "{raw}");
        }
    }
}
