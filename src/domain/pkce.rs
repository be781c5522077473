//! PKCE (RFC 7636), S256 only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::secret::random_b64;

/// A client's `code_challenge` with method S256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge is required (PKCE with S256)")]
    Missing,
    #[error("code_challenge_method must be S256; `plain` is not accepted")]
    Method,
    #[error("code_challenge must be 43 base64url characters")]
    Malformed,
}

impl CodeChallenge {
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, PkceError> {
        let challenge = challenge
            .filter(|c| !c.is_empty())
            .ok_or(PkceError::Missing)?;
        if method != Some("S256") {
            return Err(PkceError::Method);
        }
        let ok = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(challenge.to_owned()))
            .ok_or(PkceError::Malformed)
    }

    /// Restores a challenge stored after [`CodeChallenge::parse`].
    pub fn stored(challenge: String) -> Self {
        Self(challenge)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` hashes to this challenge (constant time).
    pub fn verify(&self, verifier: &str) -> bool {
        let shaped = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        let computed = challenge_of(verifier);
        shaped & bool::from(computed.as_bytes().ct_eq(self.0.as_bytes()))
    }
}

pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh verifier (256 random bits) for Drawbridge's own upstream PKCE.
pub fn new_verifier() -> String {
    random_b64(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example_verifies() {
        let c = CodeChallenge::parse(
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            Some("S256"),
        )
        .unwrap();
        assert!(c.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!c.verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"));
        assert!(!c.verify(""));
    }

    #[test]
    fn plain_and_missing_challenges_are_refused() {
        assert_eq!(
            CodeChallenge::parse(None, Some("S256")),
            Err(PkceError::Missing)
        );
        assert_eq!(
            CodeChallenge::parse(Some(&"a".repeat(43)), Some("plain")),
            Err(PkceError::Method)
        );
        assert_eq!(
            CodeChallenge::parse(Some(&"a".repeat(43)), None),
            Err(PkceError::Method)
        );
        assert_eq!(
            CodeChallenge::parse(Some("short"), Some("S256")),
            Err(PkceError::Malformed)
        );
        let v = new_verifier();
        assert!(CodeChallenge::parse(Some(&challenge_of(&v)), Some("S256"))
            .unwrap()
            .verify(&v));
    }
}
