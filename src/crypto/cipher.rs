//! AES-256-GCM sealing with a keyring, so keys can rotate.
//!
//! A sealed value is `0x45 0x01 | id length | key id | 96-bit nonce | ciphertext+tag`.
//! The associated data binds the record's kind and storage key, so a
//! ciphertext copied to another record, or to another kind, fails to open.
//! An unsealed value (FILE_PLAINTEXT) is `0x50 0x01 | plaintext`.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SEALED: [u8; 2] = [0x45, 0x01];
const PLAIN: [u8; 2] = [0x50, 0x01];
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
pub const KEY_LEN: usize = 32;

/// Why a stored value could not be opened. Never carries plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("sealed value is truncated or not in the sealed format")]
    Malformed,
    #[error("sealed under key `{0}`, which this keyring does not hold")]
    UnknownKey(String),
    #[error(
        "sealed value failed authentication (altered, moved to another record, or a different key)"
    )]
    Tampered,
    #[error("value is sealed but this store runs without encryption (FILE_PLAINTEXT)")]
    SealedWithoutKeyring,
}

/// One AES-256 key and the id stored with every ciphertext it makes.
#[derive(Clone)]
pub struct DataKey {
    pub id: String,
    pub bytes: [u8; KEY_LEN],
    pub created_at: i64,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({}, ***)", self.id)
    }
}

impl DataKey {
    pub fn generate(now: i64) -> Self {
        let mut bytes = [0u8; KEY_LEN];
        fill_random(&mut bytes);
        let mut id = [0u8; 4];
        fill_random(&mut id);
        let id = super::hex(&id);
        Self {
            id,
            bytes,
            created_at: now,
        }
    }
}

fn fill_random(buf: &mut [u8]) {
    // An authorization server that cannot get randomness must not go on.
    getrandom::fill(buf).expect("operating system random source is unavailable");
}

/// The keys a vault can open with; `current` seals.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<DataKey>,
    current: usize,
    /// Key of the blind index (HMAC of user identities); never rotates, so
    /// lookups stay stable across key rotation.
    index_key: [u8; KEY_LEN],
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.key_ids())
            .field("current", &self.current_id())
            .finish()
    }
}

impl Keyring {
    pub fn generate(now: i64) -> Self {
        let mut index_key = [0u8; KEY_LEN];
        fill_random(&mut index_key);
        Self {
            keys: vec![DataKey::generate(now)],
            current: 0,
            index_key,
        }
    }

    /// Builds a keyring; `current` must name one of `keys`.
    pub fn new(keys: Vec<DataKey>, current: &str, index_key: [u8; KEY_LEN]) -> Option<Self> {
        let current = keys.iter().position(|k| k.id == current)?;
        Some(Self {
            keys,
            current,
            index_key,
        })
    }

    pub fn keys(&self) -> &[DataKey] {
        &self.keys
    }

    pub fn index_key(&self) -> &[u8; KEY_LEN] {
        &self.index_key
    }

    pub fn current_id(&self) -> &str {
        &self.keys[self.current].id
    }

    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Adds a new key and makes it current; older keys still open.
    pub fn add_current(&mut self, key: DataKey) {
        self.keys.push(key);
        self.current = self.keys.len() - 1;
    }

    /// Drops every key but the current one.
    pub fn retire_old_keys(&mut self) -> Vec<String> {
        let current = self.keys[self.current].clone();
        let retired = self
            .keys
            .iter()
            .filter(|k| k.id != current.id)
            .map(|k| k.id.clone())
            .collect();
        self.keys = vec![current];
        self.current = 0;
        retired
    }

    pub fn seal(&self, kind: &str, record_key: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let key = &self.keys[self.current];
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let cipher = Aes256Gcm::new_from_slice(&key.bytes).expect("32-byte key");
        let aad = associated_data(kind, record_key);
        let nonce_ref = Nonce::try_from(&nonce[..]).expect("12-byte nonce");
        let ct = cipher
            .encrypt(
                &nonce_ref,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(3 + key.id.len() + NONCE_LEN + ct.len());
        out.extend_from_slice(&SEALED);
        out.push(key.id.len() as u8);
        out.extend_from_slice(key.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(
        &self,
        kind: &str,
        record_key: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>, CipherError> {
        let parts = split_sealed(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == parts.key_id)
            .ok_or_else(|| CipherError::UnknownKey(parts.key_id.to_owned()))?;
        let cipher = Aes256Gcm::new_from_slice(&key.bytes).expect("32-byte key");
        let nonce = Nonce::try_from(parts.nonce).map_err(|_| CipherError::Malformed)?;
        let aad = associated_data(kind, record_key);
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: parts.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| CipherError::Tampered)
    }

    /// A key for `purpose` (e.g. signing a cookie), derived from the index
    /// key: the same for every process that reads this keyring, unchanged
    /// by rotations of the data keys, never stored.
    pub fn derive_key(&self, purpose: &str) -> [u8; KEY_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key)
            .expect("HMAC takes any key length");
        mac.update(b"drawbridge derived key");
        mac.update(&[0]);
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A stable, keyed, one-way index of an identity (`label` separates
    /// kinds), so stored keys do not reveal who the users are.
    pub fn blind_index(&self, label: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key)
            .expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        super::hex(&mac.finalize().into_bytes())
    }
}

struct SealedParts<'a> {
    key_id: &'a str,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

fn split_sealed(sealed: &[u8]) -> Result<SealedParts<'_>, CipherError> {
    let rest = sealed
        .strip_prefix(&SEALED[..])
        .ok_or(CipherError::Malformed)?;
    let (&id_len, rest) = rest.split_first().ok_or(CipherError::Malformed)?;
    let id_len = id_len as usize;
    if rest.len() < id_len + NONCE_LEN + TAG_LEN {
        return Err(CipherError::Malformed);
    }
    let (id, rest) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(id).map_err(|_| CipherError::Malformed)?;
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    Ok(SealedParts {
        key_id,
        nonce,
        ciphertext,
    })
}

/// The id of the key a sealed value was made with.
pub fn sealed_key_id(sealed: &[u8]) -> Result<&str, CipherError> {
    split_sealed(sealed).map(|p| p.key_id)
}

fn associated_data(kind: &str, record_key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(kind.len() + 1 + record_key.len());
    aad.extend_from_slice(kind.as_bytes());
    aad.push(0);
    aad.extend_from_slice(record_key);
    aad
}

/// How vault values are written: sealed under a keyring, or (FILE_PLAINTEXT)
/// as they are.
#[derive(Debug, Clone)]
pub enum Codec {
    Sealed(Keyring),
    Plain,
}

impl Codec {
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Codec::Sealed(_))
    }

    pub fn keyring(&self) -> Option<&Keyring> {
        match self {
            Codec::Sealed(k) => Some(k),
            Codec::Plain => None,
        }
    }

    pub fn wrap(&self, kind: &str, record_key: &[u8], plaintext: &[u8]) -> Vec<u8> {
        match self {
            Codec::Sealed(k) => k.seal(kind, record_key, plaintext),
            Codec::Plain => [&PLAIN[..], plaintext].concat(),
        }
    }

    /// Opens a value written by this codec, or an unsealed value (so a
    /// store part-way through a migration still reads).
    pub fn unwrap(
        &self,
        kind: &str,
        record_key: &[u8],
        stored: &[u8],
    ) -> Result<Vec<u8>, CipherError> {
        if let Some(plain) = stored.strip_prefix(&PLAIN[..]) {
            return Ok(plain.to_vec());
        }
        match self {
            Codec::Sealed(k) => k.open(kind, record_key, stored),
            Codec::Plain if stored.starts_with(&SEALED) => Err(CipherError::SealedWithoutKeyring),
            Codec::Plain => Err(CipherError::Malformed),
        }
    }

    /// The key of an identity as stored: blind-indexed when encrypted.
    pub fn identity_key(&self, label: &str, value: &str) -> String {
        match self {
            Codec::Sealed(k) => k.blind_index(label, value),
            Codec::Plain => value.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_stable_per_keyring_and_distinct_per_purpose() {
        let ring = Keyring::generate(0);
        assert_eq!(ring.derive_key("a"), ring.derive_key("a"));
        assert_ne!(ring.derive_key("a"), ring.derive_key("b"));
        assert_ne!(ring.derive_key("a"), Keyring::generate(0).derive_key("a"));
    }

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let ring = Keyring::generate(0);
        let a = ring.seal("user", b"u/1", b"ya29.secret");
        let b = ring.seal("user", b"u/1", b"ya29.secret");
        assert_ne!(a, b, "a fresh nonce per seal");
        assert_eq!(ring.open("user", b"u/1", &a).unwrap(), b"ya29.secret");
        assert_eq!(sealed_key_id(&a).unwrap(), ring.current_id());
        assert!(!a.windows(11).any(|w| w == b"ya29.secret"));
    }

    #[test]
    fn a_flipped_bit_is_tampering() {
        let ring = Keyring::generate(0);
        let sealed = ring.seal("user", b"k", b"payload");
        for i in 3 + ring.current_id().len()..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                ring.open("user", b"k", &bad),
                Err(CipherError::Tampered),
                "bit in byte {i}"
            );
        }
    }

    #[test]
    fn truncated_values_are_malformed_or_tampered_never_a_panic() {
        let ring = Keyring::generate(0);
        let sealed = ring.seal("user", b"k", b"payload");
        for len in 0..sealed.len() {
            assert!(
                ring.open("user", b"k", &sealed[..len]).is_err(),
                "length {len}"
            );
        }
    }

    #[test]
    fn another_key_or_another_record_cannot_open_it() {
        let ring = Keyring::generate(0);
        let other = Keyring::generate(0);
        let sealed = ring.seal("user", b"k", b"payload");
        assert_eq!(
            other.open("user", b"k", &sealed),
            Err(CipherError::UnknownKey(ring.current_id().into()))
        );
        // Same id, different key material: authentication fails.
        let mut impostor =
            Keyring::new(other.keys().to_vec(), other.current_id(), [0; 32]).unwrap();
        impostor.keys[0].id = ring.current_id().to_owned();
        assert_eq!(
            impostor.open("user", b"k", &sealed),
            Err(CipherError::Tampered)
        );
        assert_eq!(
            ring.open("user", b"other", &sealed),
            Err(CipherError::Tampered)
        );
        assert_eq!(
            ring.open("secret", b"k", &sealed),
            Err(CipherError::Tampered)
        );
    }

    #[test]
    fn rotation_keeps_old_values_readable_until_retired() {
        let mut ring = Keyring::generate(0);
        let old = ring.seal("user", b"k", b"v");
        ring.add_current(DataKey::generate(1));
        assert_ne!(
            sealed_key_id(&ring.seal("user", b"k", b"v")).unwrap(),
            sealed_key_id(&old).unwrap()
        );
        assert_eq!(ring.open("user", b"k", &old).unwrap(), b"v");
        let retired = ring.retire_old_keys();
        assert_eq!(retired.len(), 1);
        assert!(matches!(
            ring.open("user", b"k", &old),
            Err(CipherError::UnknownKey(_))
        ));
    }

    #[test]
    fn plain_codec_refuses_sealed_values_and_blind_index_is_keyed() {
        let ring = Keyring::generate(0);
        let sealed = Codec::Sealed(ring.clone()).wrap("user", b"k", b"v");
        assert_eq!(
            Codec::Plain.unwrap("user", b"k", &sealed),
            Err(CipherError::SealedWithoutKeyring)
        );
        let plain = Codec::Plain.wrap("user", b"k", b"v");
        assert_eq!(
            Codec::Sealed(ring.clone())
                .unwrap("user", b"k", &plain)
                .unwrap(),
            b"v"
        );
        assert_eq!(
            ring.blind_index("email", "a@b.c"),
            ring.blind_index("email", "a@b.c")
        );
        assert_ne!(
            ring.blind_index("email", "a@b.c"),
            Keyring::generate(0).blind_index("email", "a@b.c")
        );
        assert_ne!(ring.blind_index("email", "x"), ring.blind_index("sub", "x"));
    }
}
