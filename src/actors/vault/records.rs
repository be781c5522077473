use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// A user's upstream (Google) tokens. `Debug` never shows a token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<UnixTime>,
    pub scopes: Vec<String>,
    pub id_token: Option<String>,
}

impl fmt::Debug for UpstreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTokens")
            .field("access_token", &"***")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// What the Vault keeps for one user, keyed by their upstream identity
/// (issuer and subject). Stored as record format 2 (see
/// [`crate::storage::codec`]); format 1 ([`UserCredentialsV1`]) is read too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCredentials {
    /// Drawbridge's random id for this user (`u_…`), assigned by the Vault
    /// on first store; the only way other records name the user.
    pub uid: String,
    /// The issuer that vouched for `sub`; empty for a record written
    /// before issuers were recorded whose issuer is unknown.
    pub issuer: String,
    /// The upstream subject (`sub` claim): stable, unlike the email.
    pub sub: String,
    pub email: Option<String>,
    /// Whether the issuer said the email is verified (`email_verified`).
    /// An unverified email is kept for display only: never an identity
    /// (gateway header, introspection `username`, revoke by email).
    pub email_verified: bool,
    pub tokens: UpstreamTokens,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl UserCredentials {
    /// The email, when the issuer verified it: the only email that may name
    /// the user.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }

    /// How the user is named in headers and records: the verified email,
    /// else the subject.
    pub fn label(&self) -> &str {
        self.verified_email().unwrap_or(&self.sub)
    }
}

/// Record format 1 of [`UserCredentials`] (keyed by `sub` alone, email
/// verification not recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCredentialsV1 {
    pub uid: String,
    pub sub: String,
    pub email: Option<String>,
    pub tokens: UpstreamTokens,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl From<UserCredentialsV1> for UserCredentials {
    /// Issuer and email verification come from the ID token stored with
    /// the record (it came straight from the issuer's token endpoint when
    /// the user signed in); without one the issuer is unknown and the email
    /// unverified, until the user signs in again.
    fn from(old: UserCredentialsV1) -> Self {
        let claims = old
            .tokens
            .id_token
            .as_deref()
            .and_then(crate::upstream::unverified_claims);
        let claim = |name: &str| claims.as_ref().and_then(|c| c.get(name)).cloned();
        let issuer = claim("iss")
            .and_then(|i| i.as_str().map(crate::upstream::canonical_issuer))
            .unwrap_or_default();
        let same_email = match (claim("email"), old.email.as_deref()) {
            (Some(serde_json::Value::String(e)), Some(stored)) => e.eq_ignore_ascii_case(stored),
            _ => false,
        };
        let email_verified = same_email
            && claim("sub")
                .and_then(|s| s.as_str().map(str::to_owned))
                .as_deref()
                == Some(old.sub.as_str())
            && crate::upstream::claim_is_true(claim("email_verified").as_ref());
        Self {
            uid: old.uid,
            issuer,
            sub: old.sub,
            email: old.email,
            email_verified,
            tokens: old.tokens,
            created_at: old.created_at,
            updated_at: old.updated_at,
        }
    }
}

/// Names a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    /// The issuer and subject the upstream vouched for. An empty issuer
    /// names a record written before issuers were recorded.
    Subject { issuer: String, sub: String },
    /// The Vault's random user id (what grants and tokens hold).
    Id(String),
}

/// A user as listed: identity and dates, never tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub uid: String,
    pub issuer: String,
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub has_refresh_token: bool,
    pub updated_at: UnixTime,
}
