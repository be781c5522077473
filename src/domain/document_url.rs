//! A `client_id` that names a Client ID Metadata Document
//! (draft-ietf-oauth-client-id-metadata-document §3): an `https` URL with a
//! path, no fragment, no user name or password, no `.` or `..` segment.

use url::Url;

use super::has_dot_segment;

/// Longest document URL taken (a `client_id` travels in every request).
pub const MAX_URL_BYTES: usize = 2048;

/// A validated metadata-document URL. Its string form is exactly the
/// `client_id` the client sent (the document must repeat it exactly).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentUrl {
    raw: String,
    url: Url,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentUrlError {
    #[error("a client metadata document URL must use https")]
    NotHttps,
    #[error("the client metadata document URL is not a valid URL")]
    Invalid,
    #[error("a client metadata document URL must have a path")]
    NoPath,
    #[error("a client metadata document URL must not have a fragment")]
    Fragment,
    #[error("a client metadata document URL must not carry a user name or password")]
    Credentials,
    #[error("a client metadata document URL must not have `.` or `..` path segments")]
    DotSegment,
    #[error("the client metadata document URL is longer than {MAX_URL_BYTES} bytes")]
    TooLong,
}

impl DocumentUrl {
    /// Whether `client_id` claims to be a document URL at all (so a
    /// malformed one is refused as such, not looked up as a registration).
    pub fn claims(client_id: &str) -> bool {
        client_id
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    }

    pub fn parse(raw: &str) -> Result<Self, DocumentUrlError> {
        if raw.len() > MAX_URL_BYTES {
            return Err(DocumentUrlError::TooLong);
        }
        if !Self::claims(raw) {
            return Err(DocumentUrlError::NotHttps);
        }
        if raw.contains('#') {
            return Err(DocumentUrlError::Fragment);
        }
        if raw.chars().any(|c| c.is_control() || c == ' ' || c == '\\') {
            return Err(DocumentUrlError::Invalid);
        }
        // Dot segments are judged on the raw text: the parser would remove
        // them, and the document must name the URL exactly as sent.
        let after_scheme = &raw[8..];
        if after_scheme.starts_with('/') {
            return Err(DocumentUrlError::Invalid);
        }
        if has_dot_segment(after_scheme) {
            return Err(DocumentUrlError::DotSegment);
        }
        let url = Url::parse(raw).map_err(|_| DocumentUrlError::Invalid)?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err(DocumentUrlError::Invalid);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DocumentUrlError::Credentials);
        }
        if url.path().is_empty() || url.path() == "/" {
            return Err(DocumentUrlError::NoPath);
        }
        Ok(Self {
            raw: raw.to_owned(),
            url,
        })
    }

    /// The `client_id` exactly as sent.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The host the consent page shows.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}

impl std::fmt::Display for DocumentUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_known_clients_document_urls_are_accepted() {
        for raw in [
            "https://vscode.dev/oauth/client-metadata.json",
            "https://claude.ai/oauth/mcp-oauth-client-metadata",
            "https://claude.ai/oauth/claude-code-client-metadata",
            "https://example.com:8443/client?v=2",
        ] {
            let url = DocumentUrl::parse(raw).unwrap();
            assert_eq!(url.as_str(), raw);
        }
    }

    #[test]
    fn urls_the_draft_forbids_are_refused_with_the_reason() {
        use DocumentUrlError::*;
        for (raw, why) in [
            ("http://example.com/client", NotHttps),
            ("mcp_abc", NotHttps),
            ("https://example.com", NoPath),
            ("https://example.com/", NoPath),
            ("https://example.com/client#x", Fragment),
            ("https://user:pw@example.com/client", Credentials),
            ("https://user@example.com/client", Credentials),
            ("https://example.com/a/../client", DotSegment),
            ("https://example.com/./client", DotSegment),
            ("https://example.com/a/%2E%2e/client", DotSegment),
            ("https://example.com/a/..", DotSegment),
            ("https:///client", Invalid),
            ("https://exa mple.com/client", Invalid),
            ("https://example.com/a\\b", Invalid),
        ] {
            assert_eq!(DocumentUrl::parse(raw), Err(why.clone()), "{raw}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(DocumentUrl::parse(&long), Err(TooLong));
    }

    #[test]
    fn any_case_of_the_https_scheme_claims_a_document() {
        assert!(DocumentUrl::claims("HTTPS://example.com/x"));
        assert!(!DocumentUrl::claims("mcp_abc"));
        assert!(!DocumentUrl::claims("http://example.com/x"));
    }
}
