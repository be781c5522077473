use std::fmt;

/// Scopes that are identity scopes, never expanded into Google API URLs.
const IDENTITY_SCOPES: &[&str] = &["openid", "email", "profile"];
const GOOGLE_SCOPE_BASE: &str = "https://www.googleapis.com/auth/";

/// An ordered set of distinct scope tokens (RFC 6749 §3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope token `{0}` contains characters RFC 6749 does not allow")]
    BadToken(String),
    #[error("scope `{0}` is not offered by this server")]
    Unsupported(String),
    #[error("too many scopes (at most {0})")]
    TooMany(usize),
}

const MAX_SCOPES: usize = 64;

/// OpenID Connect Core §11: asks for a refresh token. Drawbridge decides
/// refresh-token issuance itself (and Google would refuse the scope), so
/// the token is accepted wherever scopes are read and then dropped.
pub const OFFLINE_ACCESS: &str = "offline_access";

impl ScopeSet {
    /// Parses a space-separated scope string. With `google_aliases`, short
    /// names such as `drive.file` become full Google scope URLs.
    /// `offline_access` is accepted and left out (see [`OFFLINE_ACCESS`]).
    pub fn parse(raw: &str, google_aliases: bool) -> Result<Self, ScopeError> {
        let mut out: Vec<String> = Vec::new();
        for token in raw
            .split(' ')
            .filter(|t| !t.is_empty() && *t != OFFLINE_ACCESS)
        {
            let valid = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(ScopeError::BadToken(token.chars().take(64).collect()));
            }
            let canonical = if google_aliases {
                expand_alias(token)
            } else {
                token.to_owned()
            };
            if !out.contains(&canonical) {
                out.push(canonical);
            }
            if out.len() > MAX_SCOPES {
                return Err(ScopeError::TooMany(MAX_SCOPES));
            }
        }
        Ok(Self(out))
    }

    pub fn from_tokens(tokens: impl IntoIterator<Item = String>) -> Self {
        let mut out = Vec::new();
        for t in tokens {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        Self(out)
    }

    /// Fails on the first scope that `supported` does not contain.
    pub fn ensure_within(&self, supported: &ScopeSet) -> Result<(), ScopeError> {
        match self.0.iter().find(|s| !supported.0.contains(s)) {
            Some(s) => Err(ScopeError::Unsupported(s.clone())),
            None => Ok(()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn tokens(&self) -> &[String] {
        &self.0
    }
}

fn expand_alias(token: &str) -> String {
    if token.contains(':') || IDENTITY_SCOPES.contains(&token) {
        token.to_owned()
    } else {
        format!("{GOOGLE_SCOPE_BASE}{token}")
    }
}

/// Stored as the space-separated string (records keep their bytes).
impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Read back from this server's own records, where it was validated.
impl<'de> serde::Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(Self::from_tokens(
            raw.split(' ').filter(|t| !t.is_empty()).map(str::to_owned),
        ))
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_aliases_expand_and_duplicates_collapse() {
        let s = ScopeSet::parse(
            "openid  drive.file https://www.googleapis.com/auth/drive.file email",
            true,
        )
        .unwrap();
        assert_eq!(
            s.to_string(),
            "openid https://www.googleapis.com/auth/drive.file email"
        );
        assert_eq!(
            ScopeSet::parse("drive.file", false).unwrap().to_string(),
            "drive.file"
        );
    }

    #[test]
    fn bad_tokens_and_unsupported_scopes_are_named() {
        assert_eq!(
            ScopeSet::parse("a\"b", false),
            Err(ScopeError::BadToken("a\"b".into()))
        );
        let supported = ScopeSet::parse("openid email", false).unwrap();
        let asked = ScopeSet::parse("openid admin", false).unwrap();
        assert_eq!(
            asked.ensure_within(&supported),
            Err(ScopeError::Unsupported("admin".into()))
        );
    }
}
