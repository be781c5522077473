use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::domain::{
    ApplicationType, AuthMethod, ClientId, ClientMetadata, GrantType, RedirectUri, ScopeSet,
    SecretHash,
};
use crate::storage::{codec, StoreError, Tree};

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
    /// For a client whose id is its metadata document's URL: the document
    /// its metadata was last taken from. `None` for registered clients.
    pub document: Option<DocumentState>,
}

/// Which version of a client's metadata document a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentState {
    /// When the document was fetched.
    pub fetched_at: UnixTime,
    /// SHA-256 of its bytes: a changed document is a new version.
    pub digest: [u8; 32],
}

/// How long clients live: a short time when they never complete a login
/// (abandoned registrations), a longer time after their last use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    pub unused_seconds: i64,
    pub idle_seconds: i64,
}

impl ClientRecord {
    /// The record format written now: 3 added the metadata document's
    /// state; 2 added the metadata's `application_type` (formats 1 and 2
    /// are read: the type inferred, no document).
    pub const FORMAT: u8 = 3;

    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        codec::encode_format(Self::FORMAT, self)
    }

    /// Reads the current format and the previous ones.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let v2 = match codec::format_of(bytes) {
            Some(codec::FORMAT_V1) => {
                ClientRecordV2::from(codec::decode::<ClientRecordV1>(Tree::Clients, bytes)?)
            }
            Some(2) => codec::decode_format(Tree::Clients, 2, bytes)?,
            _ => return codec::decode_format(Tree::Clients, Self::FORMAT, bytes),
        };
        Ok(Self {
            client_id: v2.client_id,
            secret_hash: v2.secret_hash,
            registration_token_hash: v2.registration_token_hash,
            metadata: v2.metadata,
            issued_at: v2.issued_at,
            last_used_at: v2.last_used_at,
            updated_at: v2.updated_at,
            disabled: v2.disabled,
            document: None,
        })
    }

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
            document: self.document,
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
    pub document: Option<DocumentState>,
}

impl ClientView {
    pub fn auth_method(&self) -> AuthMethod {
        self.metadata.auth_method
    }
}

/// A client record as format 2 wrote it: without the document's state.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct ClientRecordV2 {
    client_id: ClientId,
    secret_hash: Option<SecretHash>,
    registration_token_hash: SecretHash,
    metadata: ClientMetadata,
    issued_at: UnixTime,
    last_used_at: Option<UnixTime>,
    updated_at: UnixTime,
    disabled: bool,
}

impl From<ClientRecordV1> for ClientRecordV2 {
    fn from(v1: ClientRecordV1) -> Self {
        let m = v1.metadata;
        Self {
            client_id: v1.client_id,
            secret_hash: v1.secret_hash,
            registration_token_hash: v1.registration_token_hash,
            metadata: ClientMetadata {
                application_type: ApplicationType::inferred(&m.redirect_uris),
                client_name: m.client_name,
                redirect_uris: m.redirect_uris,
                grant_types: m.grant_types,
                scope: m.scope,
                contacts: m.contacts,
                logo_uri: m.logo_uri,
                client_uri: m.client_uri,
                policy_uri: m.policy_uri,
                tos_uri: m.tos_uri,
                auth_method: m.auth_method,
                software_id: m.software_id,
                software_version: m.software_version,
                upstream_client_id: m.upstream_client_id,
            },
            issued_at: v1.issued_at,
            last_used_at: v1.last_used_at,
            updated_at: v1.updated_at,
            disabled: v1.disabled,
        }
    }
}

/// A client record as format 1 (release 0.1.0) wrote it.
#[derive(Deserialize)]
struct ClientRecordV1 {
    client_id: ClientId,
    secret_hash: Option<SecretHash>,
    registration_token_hash: SecretHash,
    metadata: ClientMetadataV1,
    issued_at: UnixTime,
    last_used_at: Option<UnixTime>,
    updated_at: UnixTime,
    disabled: bool,
}

/// Client metadata as format 1 stored it: without `application_type`.
#[derive(Deserialize)]
struct ClientMetadataV1 {
    client_name: Option<String>,
    redirect_uris: Vec<RedirectUri>,
    grant_types: Vec<GrantType>,
    scope: Option<ScopeSet>,
    contacts: Vec<String>,
    logo_uri: Option<String>,
    client_uri: Option<String>,
    policy_uri: Option<String>,
    tos_uri: Option<String>,
    auth_method: AuthMethod,
    software_id: Option<String>,
    software_version: Option<String>,
    upstream_client_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ScopeSet, SecretToken};

    fn record() -> ClientRecord {
        let metadata = ClientMetadata {
            client_name: Some("Old".into()),
            redirect_uris: vec![RedirectUri::parse("https://app.example/cb", &[]).unwrap()],
            grant_types: vec![GrantType::AuthorizationCode],
            scope: Some(ScopeSet::parse("openid", false).unwrap()),
            contacts: vec![],
            logo_uri: None,
            client_uri: None,
            policy_uri: None,
            tos_uri: None,
            auth_method: AuthMethod::None,
            software_id: None,
            software_version: None,
            upstream_client_id: None,
            application_type: ApplicationType::Web,
        };
        ClientRecord {
            client_id: ClientId::generate(),
            secret_hash: None,
            registration_token_hash: SecretToken::generate("t").hash(),
            metadata,
            issued_at: 10,
            last_used_at: Some(20),
            updated_at: 30,
            disabled: true,
            document: None,
        }
    }

    #[test]
    fn a_format_2_record_reads_as_a_registered_client_without_a_document() {
        let r = record();
        let v2 = ClientRecordV2 {
            client_id: r.client_id.clone(),
            secret_hash: r.secret_hash,
            registration_token_hash: r.registration_token_hash,
            metadata: r.metadata.clone(),
            issued_at: r.issued_at,
            last_used_at: r.last_used_at,
            updated_at: r.updated_at,
            disabled: r.disabled,
        };
        let bytes = codec::encode_format(2, &v2).unwrap();
        assert_eq!(ClientRecord::decode(&bytes).unwrap(), r);
    }

    #[test]
    fn a_documents_state_survives_encoding() {
        let mut r = record();
        r.document = Some(DocumentState {
            fetched_at: 40,
            digest: [7; 32],
        });
        let bytes = r.encode().unwrap();
        assert_eq!(codec::format_of(&bytes), Some(ClientRecord::FORMAT));
        assert_eq!(ClientRecord::decode(&bytes).unwrap(), r);
    }
}
