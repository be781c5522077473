//! Random credentials, their SHA-256 hashes, and constant-time comparison.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `n` bytes from the operating system's CSPRNG, base64url without padding.
pub fn random_b64(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The OS random source failing is unrecoverable for an authorization
    // server: issuing predictable credentials would be worse than stopping.
    getrandom::fill(&mut bytes).expect("operating system random source is unavailable");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A secret handed to a client once (client secret, registration access
/// token). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// A new secret: `prefix` followed by 256 random bits.
    pub fn generate(prefix: &str) -> Self {
        Self(format!("{prefix}{}", random_b64(32)))
    }

    /// Wraps a secret presented by a client.
    pub fn presented(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one response that hands it out.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

/// SHA-256 of a secret; the only form in which secrets are stored.
#[derive(Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `presented` hashes to this value, in constant time.
    pub fn verify(&self, presented: &SecretToken) -> bool {
        let other = presented.hash();
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_long_distinct_and_verify_only_themselves() {
        let a = SecretToken::generate("mcp_cs_");
        let b = SecretToken::generate("mcp_cs_");
        assert!(a.expose().starts_with("mcp_cs_"));
        assert_eq!(a.expose().len(), "mcp_cs_".len() + 43);
        assert_ne!(a, b);
        assert!(a.hash().verify(&a));
        assert!(!a.hash().verify(&b));
        assert!(!a.hash().verify(&SecretToken::presented("")));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let a = SecretToken::generate("x_");
        assert!(!format!("{a:?} {:?}", a.hash()).contains(&a.expose()[2..]));
    }
}
