//! Messages the Registry answers. Each carries `now`, so expiry is decided
//! by the caller's clock.

use actix::Message;

use super::record::{ClientRecord, ClientView, DocumentState};
use super::RegistryError;
use crate::clock::UnixTime;
use crate::domain::timeline::{Step, Timeline};
use crate::domain::{AuthMethod, ClientId, ClientMetadata, SecretToken};

/// Registers a new client (RFC 7591).
#[derive(Debug, Message)]
#[rtype(result = "Result<Registered, RegistryError>")]
pub struct RegisterClient {
    pub metadata: ClientMetadata,
    /// Where the registration comes from (a client address, an IPv6 /64),
    /// for the cap on never-used registrations per address.
    pub origin: Option<String>,
    pub now: UnixTime,
}

/// A new registration, with the credentials shown to the client once.
#[derive(Debug)]
pub struct Registered {
    pub client: ClientView,
    /// A never-used registration evicted to make room (the registry was full).
    pub evicted: Option<ClientId>,
    pub client_secret: Option<SecretToken>,
    pub registration_token: SecretToken,
}

/// Stores a client's metadata as its metadata document says, creating the
/// client on its first sign-in (the id is the document's URL).
#[derive(Debug, Message)]
#[rtype(result = "Result<ClientView, RegistryError>")]
pub struct AdmitDocumentClient {
    pub client_id: ClientId,
    pub metadata: ClientMetadata,
    pub document: DocumentState,
    pub now: UnixTime,
}

/// Reads a client's configuration with its registration access token (RFC 7592 §2.1).
#[derive(Debug, Message)]
#[rtype(result = "Result<ClientView, RegistryError>")]
pub struct ReadClient {
    pub client_id: ClientId,
    pub registration_token: SecretToken,
    pub now: UnixTime,
}

/// Replaces a client's metadata, keeping its id (RFC 7592 §2.2).
#[derive(Debug, Message)]
#[rtype(result = "Result<Updated, RegistryError>")]
pub struct UpdateClient {
    pub client_id: ClientId,
    pub registration_token: SecretToken,
    /// `client_secret` sent in the body, which must match when present.
    pub presented_secret: Option<SecretToken>,
    pub metadata: ClientMetadata,
    pub now: UnixTime,
}

#[derive(Debug)]
pub struct Updated {
    pub client: ClientView,
    /// A secret issued because the client moved from `none` to a method
    /// that needs one.
    pub new_secret: Option<SecretToken>,
}

/// Deletes a client (RFC 7592 §2.3).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct DeleteClient {
    pub client_id: ClientId,
    pub registration_token: SecretToken,
    pub now: UnixTime,
}

/// Checks a client's credentials at the token endpoint; success counts as a use.
#[derive(Debug, Message)]
#[rtype(result = "Result<ClientView, RegistryError>")]
pub struct AuthenticateClient {
    pub client_id: ClientId,
    /// How the client presented its credentials.
    pub method: AuthMethod,
    pub secret: Option<SecretToken>,
    pub now: UnixTime,
}

/// Records a successful use (a completed login), extending the client's life.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct RecordClientUse {
    pub client_id: ClientId,
    pub now: UnixTime,
}

/// Number of stored clients.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, RegistryError>")]
pub struct CountClients;

/// Removes up to `limit` expired clients; answers how many were removed.
#[derive(Debug, Message)]
#[rtype(result = "Result<PurgeReport, RegistryError>")]
pub struct PurgeExpired {
    pub now: UnixTime,
    /// Remove at most this many.
    pub limit: usize,
    /// Start after this key (the previous answer's `next`).
    pub after: Option<Vec<u8>>,
    /// Look at most at this many clients.
    pub scan: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    pub removed: Vec<ClientId>,
    pub scanned: usize,
    /// Where the next step starts; `None` once the whole registry was seen.
    pub next: Option<Vec<u8>>,
}

/// Answers when the store does; used by readiness checks.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct PingStore;

/// A live client's public view, without authentication (authorization
/// requests name a client by id only).
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<ClientView>, RegistryError>")]
pub struct GetClient {
    pub client_id: ClientId,
    pub now: UnixTime,
}

/// Filters of an operator's client listing.
#[derive(Debug, Default, Clone)]
pub struct ClientFilter {
    pub name_contains: Option<String>,
    pub created_before: Option<UnixTime>,
    pub created_after: Option<UnixTime>,
    pub expired: Option<bool>,
    pub auth_method: Option<AuthMethod>,
    /// Known by a metadata document (`true`) or registered (`false`).
    pub document: Option<bool>,
}

impl ClientFilter {
    /// Whether `record` (expired or not, as said) passes every filter set.
    pub(super) fn keeps(&self, record: &ClientRecord, expired: bool) -> bool {
        let name = record
            .metadata
            .client_name
            .as_deref()
            .unwrap_or("")
            .to_lowercase();
        self.name_contains
            .as_ref()
            .is_none_or(|n| name.contains(&n.to_lowercase()))
            && self.created_before.is_none_or(|t| record.issued_at < t)
            && self.created_after.is_none_or(|t| record.issued_at > t)
            && self.expired.is_none_or(|e| e == expired)
            && self
                .auth_method
                .is_none_or(|m| m == record.metadata.auth_method)
            && self.document.is_none_or(|d| d == record.document.is_some())
    }
}

/// A page of clients for operators (cursor pagination).
#[derive(Debug, Message)]
#[rtype(result = "Result<ClientPage, RegistryError>")]
pub struct ListClients {
    pub after: Option<String>,
    pub limit: usize,
    pub filter: ClientFilter,
    pub now: UnixTime,
}

#[derive(Debug, Default)]
pub struct ClientPage {
    pub clients: Vec<ClientView>,
    pub next: Option<String>,
}

/// A client by id, expired or not.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<ClientView>, RegistryError>")]
pub struct InspectClient {
    pub client_id: ClientId,
}

/// Disables or enables a client; answers whether it exists.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, RegistryError>")]
pub struct SetClientDisabled {
    pub client_id: ClientId,
    pub disabled: bool,
}

/// Deletes a client (operators); answers whether it existed.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, RegistryError>")]
pub struct RemoveClient {
    pub client_id: ClientId,
}

/// Adds a step to a stored client's connection timeline (nothing for a
/// client not stored), forgetting steps older than `keep_seconds`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct RecordStep {
    pub client_id: ClientId,
    pub step: Step,
    pub keep_seconds: i64,
}

/// Notes a call of a stored client through the gateway at `now` (sent at
/// most once per interval per client, see `service::timeline`).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), RegistryError>")]
pub struct RecordGatewayCall {
    pub client_id: ClientId,
    pub now: UnixTime,
    pub keep_seconds: i64,
}

/// A client's connection timeline, without the steps older than
/// `keep_seconds`; `None` when the client is not stored. Answered by the
/// actor itself, so every step sent to it before is in the answer.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Timeline>, RegistryError>")]
pub struct ReadTimeline {
    pub client_id: ClientId,
    pub now: UnixTime,
    pub keep_seconds: i64,
}
