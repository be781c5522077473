use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::domain::{SecretHash, SecretToken};

/// A login in progress, from the authorization request to the upstream
/// callback. Keyed by the hash of its state; stored durably so a login
/// survives a restart between the redirect and the callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthTransaction {
    pub client_id: String,
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
}

/// A Drawbridge authorization code, single use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub client_id: String,
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
    pub client_id: String,
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
    pub client_id: String,
    /// The user, by the Vault's random id (`u_…`): never a subject or email.
    pub user: String,
    pub scopes: Vec<String>,
    pub resource: Option<String>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// Refresh tokens: when this one was exchanged for a successor.
    pub rotated_at: Option<UnixTime>,
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
