use std::fmt;

use serde::{Deserialize, Serialize};

use super::secret::random_b64;
use super::DocumentUrl;

/// A client id: one this server issued at registration (`mcp_` followed by
/// 128 random bits in base64url), or the URL of the client's metadata
/// document ([`DocumentUrl`]). Parsed at the edge ([`ClientId::parse`]);
/// stored and sent as its string (records keep the bytes they had when ids
/// were plain strings). A generated id never starts with `https://`.
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

    /// Accepts only strings shaped like an id this server issues, or a
    /// valid metadata-document URL, so arbitrary input never reaches
    /// storage as a key.
    pub fn parse(raw: &str) -> Option<Self> {
        if DocumentUrl::claims(raw) {
            return DocumentUrl::parse(raw).ok().map(|url| Self::document(&url));
        }
        let rest = raw.strip_prefix(CLIENT_ID_PREFIX)?;
        let ok = rest.len() == RANDOM_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    /// The id of the client whose metadata document is at `url`.
    pub fn document(url: &DocumentUrl) -> Self {
        Self(url.as_str().to_owned())
    }

    /// The metadata document this id names, if it is a URL.
    pub fn document_url(&self) -> Option<DocumentUrl> {
        DocumentUrl::claims(&self.0)
            .then(|| DocumentUrl::parse(&self.0).ok())
            .flatten()
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
    fn a_metadata_document_url_is_a_client_id_and_generated_ids_never_look_like_one() {
        let raw = "https://vscode.dev/oauth/client-metadata.json";
        let id = ClientId::parse(raw).unwrap();
        assert_eq!(id.as_str(), raw);
        assert_eq!(id.document_url().unwrap().as_str(), raw);
        assert_eq!(ClientId::parse("https://vscode.dev/a/../b"), None);
        assert_eq!(ClientId::parse("https://vscode.dev/"), None);
        for _ in 0..100 {
            let generated = ClientId::generate();
            assert!(!generated.to_ascii_lowercase().starts_with("https://"));
            assert!(generated.document_url().is_none());
        }
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
