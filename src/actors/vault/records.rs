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

/// What the Vault keeps for one user, keyed by their upstream identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCredentials {
    /// Drawbridge's random id for this user (`u_…`), assigned by the Vault
    /// on first store; the only way other records name the user.
    pub uid: String,
    /// The upstream subject (`sub` claim): stable, unlike the email.
    pub sub: String,
    pub email: Option<String>,
    pub tokens: UpstreamTokens,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// Names a user by subject or by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Sub(String),
    Email(String),
    /// The Vault's random user id (what grants and tokens hold).
    Id(String),
}

/// A user as listed: identity and dates, never tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub uid: String,
    pub sub: String,
    pub email: Option<String>,
    pub has_refresh_token: bool,
    pub updated_at: UnixTime,
}
