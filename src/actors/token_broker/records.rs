use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::domain::{ClientId, SecretHash, SecretToken};
use crate::storage::{codec, StoreError, Tree};

/// A login in progress, from the authorization request to the upstream
/// callback. Keyed by the hash of its state; stored durably so a login
/// survives a restart between the redirect and the callback. Stored in
/// format 2 ([`AuthTransaction::encode`]); format-1 records (written before
/// the browser binding) are still read, without a binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthTransaction {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub client_state: String,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    pub csrf_hash: SecretHash,
    pub approved: bool,
    pub upstream_client_id: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// Hash of the cookie set in the browser that approved the consent; the
    /// upstream callback must come from that browser. `None` until approved
    /// (and in format-1 records, which therefore never complete).
    pub browser_hash: Option<SecretHash>,
}

/// [`AuthTransaction`] as format 1 stored it (before the browser binding).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct AuthTransactionV1 {
    client_id: ClientId,
    redirect_uri: String,
    client_state: String,
    code_challenge: String,
    scopes: Vec<String>,
    resource: Option<String>,
    csrf_hash: SecretHash,
    approved: bool,
    upstream_client_id: Option<String>,
    created_at: UnixTime,
    expires_at: UnixTime,
}

/// How a record type is read back from its tree.
pub trait Stored: Sized {
    fn decode_stored(tree: Tree, bytes: &[u8]) -> Result<Self, StoreError>;
}

macro_rules! stored_v1 {
    ($($t:ty),*) => {
        $(impl Stored for $t {
            fn decode_stored(tree: Tree, bytes: &[u8]) -> Result<Self, StoreError> {
                codec::decode(tree, bytes)
            }
        })*
    };
}
stored_v1!(CodeRecord, GrantRecord);

impl Stored for TokenRecord {
    fn decode_stored(_: Tree, bytes: &[u8]) -> Result<Self, StoreError> {
        Self::decode(bytes)
    }
}

impl Stored for AuthTransaction {
    fn decode_stored(_: Tree, bytes: &[u8]) -> Result<Self, StoreError> {
        Self::decode(bytes)
    }
}

impl AuthTransaction {
    /// The record format written now.
    pub const FORMAT: u8 = 2;

    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        codec::encode_format(Self::FORMAT, self)
    }

    /// Reads the current format and the previous one.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if codec::format_of(bytes) != Some(codec::FORMAT_V1) {
            return codec::decode_format(Tree::Transactions, Self::FORMAT, bytes);
        }
        let v1: AuthTransactionV1 = codec::decode(Tree::Transactions, bytes)?;
        Ok(Self {
            client_id: v1.client_id,
            redirect_uri: v1.redirect_uri,
            client_state: v1.client_state,
            code_challenge: v1.code_challenge,
            scopes: v1.scopes,
            resource: v1.resource,
            csrf_hash: v1.csrf_hash,
            approved: v1.approved,
            upstream_client_id: v1.upstream_client_id,
            created_at: v1.created_at,
            expires_at: v1.expires_at,
            browser_hash: None,
        })
    }
}

/// A Drawbridge authorization code, single use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    /// The user, by the Vault's random id (`u_…`): never a subject or email.
    pub user: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// Set on first redemption: a second use revokes this grant.
    pub redeemed_by: Option<String>,
}

/// A user's authorization of a client: the family every token descends from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub grant_id: String,
    pub client_id: ClientId,
    /// The user, by the Vault's random id (`u_…`): never a subject or email.
    pub user: String,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    pub created_at: UnixTime,
    /// No token of the grant lives past this (MAX_SESSION_LIFETIME_HOURS).
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn hint(self) -> &'static str {
        match self {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        }
    }
}

/// An issued token, stored under the SHA-256 of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub grant_id: String,
    pub client_id: ClientId,
    /// The user, by the Vault's random id (`u_…`): never a subject or email.
    pub user: String,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// Refresh tokens: when this one was exchanged for a successor.
    pub rotated_at: Option<UnixTime>,
    /// Refresh tokens, once rotated: the pair it was rotated into, sealed
    /// (see `successor`), so a duplicate refresh inside the grace window
    /// gets the same pair on any instance and after a restart. `None` in
    /// format-1 records (written before it existed).
    pub successor: Option<Vec<u8>>,
}

/// [`TokenRecord`] as format 1 stored it (before the sealed successor).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct TokenRecordV1 {
    kind: TokenKind,
    grant_id: String,
    client_id: ClientId,
    user: String,
    scopes: Vec<String>,
    resource: Option<String>,
    issued_at: UnixTime,
    expires_at: UnixTime,
    rotated_at: Option<UnixTime>,
}

impl TokenRecord {
    /// The record format written now.
    pub const FORMAT: u8 = 2;

    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        codec::encode_format(Self::FORMAT, self)
    }

    /// Reads the current format and the previous one.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if codec::format_of(bytes) != Some(codec::FORMAT_V1) {
            return codec::decode_format(Tree::Tokens, Self::FORMAT, bytes);
        }
        let v1: TokenRecordV1 = codec::decode(Tree::Tokens, bytes)?;
        Ok(Self {
            kind: v1.kind,
            grant_id: v1.grant_id,
            client_id: v1.client_id,
            user: v1.user,
            scopes: v1.scopes,
            resource: v1.resource,
            issued_at: v1.issued_at,
            expires_at: v1.expires_at,
            rotated_at: v1.rotated_at,
            successor: None,
        })
    }
}

/// Tokens handed to a client. `Debug` never shows them.
#[derive(Clone)]
pub struct TokenPair {
    pub access_token: SecretToken,
    pub refresh_token: Option<SecretToken>,
    pub expires_in: i64,
    pub scope: String,
    pub grant_id: String,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenPair(grant {}, expires_in {})",
            self.grant_id, self.expires_in
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> AuthTransactionV1 {
        AuthTransactionV1 {
            client_id: ClientId::stored("mcp_c"),
            redirect_uri: "http://127.0.0.1/cb".into(),
            client_state: "s".into(),
            code_challenge: "c".repeat(43),
            scopes: vec!["openid".into()],
            resource: None,
            csrf_hash: SecretToken::generate("").hash(),
            approved: true,
            upstream_client_id: None,
            created_at: 1,
            expires_at: 2,
        }
    }

    #[test]
    fn a_transaction_stored_by_the_previous_release_reads_back_without_a_browser_binding() {
        let old = codec::encode(&v1()).unwrap();
        let read = AuthTransaction::decode(&old).unwrap();
        assert_eq!(read.client_id, "mcp_c");
        assert!(read.approved);
        assert_eq!(read.browser_hash, None);
    }

    #[test]
    fn a_token_stored_by_the_previous_release_reads_back_without_a_successor() {
        let v1 = TokenRecordV1 {
            kind: TokenKind::Refresh,
            grant_id: "g_1".into(),
            client_id: ClientId::stored("mcp_c"),
            user: "u_1".into(),
            scopes: vec!["openid".into()],
            resource: None,
            issued_at: 1,
            expires_at: 2,
            rotated_at: Some(2),
        };
        let read = TokenRecord::decode(&codec::encode(&v1).unwrap()).unwrap();
        assert_eq!(
            (
                read.grant_id.as_str(),
                read.rotated_at,
                read.successor.clone()
            ),
            ("g_1", Some(2), None)
        );
        let mut now = read.clone();
        now.successor = Some(vec![1, 2, 3]);
        let stored = now.encode().unwrap();
        assert_eq!(codec::format_of(&stored), Some(TokenRecord::FORMAT));
        assert_eq!(TokenRecord::decode(&stored).unwrap(), now);
    }

    #[test]
    fn a_transaction_round_trips_in_the_current_format_with_its_binding() {
        let mut txn = AuthTransaction::decode(&codec::encode(&v1()).unwrap()).unwrap();
        let cookie = SecretToken::generate("");
        txn.browser_hash = Some(cookie.hash());
        let stored = txn.encode().unwrap();
        assert_eq!(codec::format_of(&stored), Some(AuthTransaction::FORMAT));
        let read = AuthTransaction::decode(&stored).unwrap();
        assert!(read.browser_hash.unwrap().verify(&cookie));
        assert!(codec::decode::<AuthTransaction>(Tree::Transactions, &stored).is_err());
    }
}
