use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::domain::{AuthMethod, ClientId, ClientMetadata, SecretHash};

/// A use is written back at most this often per client, so successful
/// authentications do not each cost a disk write.
pub(super) const USE_WRITE_INTERVAL: i64 = 60;

/// A proxy client as stored in [`crate::storage::Tree::Clients`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: ClientId,
    /// SHA-256 of the client secret; `None` for public clients.
    pub secret_hash: Option<SecretHash>,
    pub registration_token_hash: SecretHash,
    pub metadata: ClientMetadata,
    pub issued_at: UnixTime,
    /// Last successful use (authentication, completed login); `None` until
    /// the client first completes a login.
    pub last_used_at: Option<UnixTime>,
    pub updated_at: UnixTime,
    /// Disabled by an operator: cannot authenticate or sign in until enabled.
    pub disabled: bool,
}

/// How long clients live: a short time when they never complete a login
/// (abandoned registrations), a longer time after their last use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    pub unused_seconds: i64,
    pub idle_seconds: i64,
}

impl ClientRecord {
    pub fn expires_at(&self, policy: ExpiryPolicy) -> UnixTime {
        match self.last_used_at {
            None => self.issued_at.saturating_add(policy.unused_seconds),
            Some(used) => used.saturating_add(policy.idle_seconds),
        }
    }

    pub fn is_expired(&self, now: UnixTime, policy: ExpiryPolicy) -> bool {
        now >= self.expires_at(policy)
    }

    pub fn view(&self, policy: ExpiryPolicy) -> ClientView {
        ClientView {
            client_id: self.client_id.clone(),
            metadata: self.metadata.clone(),
            issued_at: self.issued_at,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at(policy),
            disabled: self.disabled,
        }
    }
}

/// What callers outside the Registry see of a client: never a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientView {
    pub client_id: ClientId,
    pub metadata: ClientMetadata,
    pub issued_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    pub expires_at: UnixTime,
    pub disabled: bool,
}

impl ClientView {
    pub fn auth_method(&self) -> AuthMethod {
        self.metadata.auth_method
    }
}
