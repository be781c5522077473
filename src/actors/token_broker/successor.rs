//! The pair a refresh token was rotated into, kept sealed in the rotated
//! token's record for the grace window: a duplicate refresh (a client that
//! retried, or the same request landing on another instance) gets the same
//! pair back instead of revoking the family, and a restart does not forget
//! it. Sealed with AES-256-GCM under a key derived from the keyring's index
//! key ([`Keyring::derive_key`](crate::crypto::cipher::Keyring::derive_key)):
//! the same for every instance that reads the key file, unchanged by
//! data-key rotations. The associated data binds the rotated token's hash,
//! so a sealed pair moved to another record does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};

use super::records::TokenPair;
use crate::domain::SecretToken;

/// What the key is derived for.
pub const PURPOSE: &str = "refresh successor";
const CONTEXT: &[u8] = b"drawbridge refresh successor v1";
const NONCE_LEN: usize = 12;

/// The key successors are sealed with.
#[derive(Clone)]
pub struct SuccessorKey(Aes256Gcm);

#[derive(Serialize, Deserialize)]
struct Plain {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: i64,
    scope: String,
    grant_id: String,
}

impl SuccessorKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(Aes256Gcm::new_from_slice(&key).expect("32-byte key"))
    }

    /// A key of this process alone (storage without encryption): a
    /// duplicate refresh after a restart, or on another instance, is then
    /// refused as a reuse, as it always was.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("operating system random source is unavailable");
        Self::new(key)
    }

    fn aad(rotated: &[u8]) -> Vec<u8> {
        let mut aad = CONTEXT.to_vec();
        aad.push(0);
        aad.extend_from_slice(rotated);
        aad
    }

    /// Seals `pair`, the successor of the refresh token whose hash is `rotated`.
    pub fn seal(&self, rotated: &[u8], pair: &TokenPair) -> Vec<u8> {
        let plain = Plain {
            access_token: pair.access_token.expose().to_owned(),
            refresh_token: pair.refresh_token.as_ref().map(|t| t.expose().to_owned()),
            expires_in: pair.expires_in,
            scope: pair.scope.clone(),
            grant_id: pair.grant_id.clone(),
        };
        let msg = bincode::serde::encode_to_vec(&plain, bincode::config::standard())
            .expect("encoding strings and integers cannot fail");
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("operating system random source is unavailable");
        let sealed = self
            .0
            .encrypt(
                &Nonce::try_from(&nonce[..]).expect("12-byte nonce"),
                Payload {
                    msg: &msg,
                    aad: &Self::aad(rotated),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// The pair sealed by [`seal`](Self::seal) for `rotated`, or `None`
    /// when it does not open (another key, altered, or moved).
    pub fn open(&self, rotated: &[u8], sealed: &[u8]) -> Option<TokenPair> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let msg = self
            .0
            .decrypt(
                &Nonce::try_from(nonce).ok()?,
                Payload {
                    msg: ciphertext,
                    aad: &Self::aad(rotated),
                },
            )
            .ok()?;
        let config = bincode::config::standard().with_limit::<4096>();
        let (plain, _): (Plain, usize) = bincode::serde::decode_from_slice(&msg, config).ok()?;
        Some(TokenPair {
            access_token: SecretToken::presented(plain.access_token),
            refresh_token: plain.refresh_token.map(SecretToken::presented),
            expires_in: plain.expires_in,
            scope: plain.scope,
            grant_id: plain.grant_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> TokenPair {
        TokenPair {
            access_token: SecretToken::generate("mcp_at_"),
            refresh_token: Some(SecretToken::generate("mcp_rt_")),
            expires_in: 3600,
            scope: "openid email".into(),
            grant_id: "g_1".into(),
        }
    }

    #[test]
    fn a_sealed_successor_opens_only_for_its_token_and_key() {
        let key = SuccessorKey::new([7; 32]);
        let p = pair();
        let sealed = key.seal(b"rotated-a", &p);
        let opened = key.open(b"rotated-a", &sealed).unwrap();
        assert_eq!(opened.access_token, p.access_token);
        assert_eq!(opened.refresh_token, p.refresh_token);
        assert_eq!(
            (opened.expires_in, opened.scope, opened.grant_id),
            (3600, p.scope, p.grant_id)
        );
        // Another instance reading the same key file derives the same key.
        assert!(SuccessorKey::new([7; 32])
            .open(b"rotated-a", &sealed)
            .is_some());
        assert!(
            key.open(b"rotated-b", &sealed).is_none(),
            "moved to another record"
        );
        assert!(SuccessorKey::new([8; 32])
            .open(b"rotated-a", &sealed)
            .is_none());
        assert!(SuccessorKey::random().open(b"rotated-a", &sealed).is_none());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open(b"rotated-a", &altered).is_none());
        assert!(key.open(b"rotated-a", &sealed[..5]).is_none());
        assert!(!String::from_utf8_lossy(&sealed).contains(p.access_token.expose()));
    }
}
