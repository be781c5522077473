//! The Registry's read side: answers lookups and credential checks on the
//! caller's thread from a read-only view of the `clients` tree (see
//! `actors::handle`). Only the Registry actor writes it; a check that finds
//! the client's last-use time stale asks the actor to record the use.

use std::sync::OnceLock;

use actix::Addr;

use crate::actors::handle::Reads;
use crate::clock::UnixTime;
use crate::domain::{AuthMethod, ClientId, SecretHash, SecretToken};
use crate::storage::{keys, ReadOnly, RegistryTree};

use super::messages::*;
use super::record::{ClientRecord, ClientView, ExpiryPolicy, USE_WRITE_INTERVAL};
use super::{Registry, RegistryError};

/// Client lookups and credential checks, answered on the caller's thread.
pub struct RegistryReader {
    clients: ReadOnly<RegistryTree>,
    expiry: ExpiryPolicy,
    /// A hash compared against when the client is unknown, so a miss costs
    /// the same as a wrong secret.
    decoy: SecretHash,
    /// The actor, told about uses (set once it runs).
    registry: OnceLock<Addr<Registry>>,
}

impl RegistryReader {
    pub fn new(clients: ReadOnly<RegistryTree>, expiry: ExpiryPolicy) -> Self {
        Self {
            clients,
            expiry,
            decoy: SecretToken::generate("").hash(),
            registry: OnceLock::new(),
        }
    }

    /// Connects the reader to the actor that records client uses.
    pub fn attach(&self, registry: Addr<Registry>) {
        let _ = self.registry.set(registry);
    }

    pub(super) fn load(&self, client_id: &str) -> Result<Option<ClientRecord>, RegistryError> {
        match self
            .clients
            .get(RegistryTree::Clients, &keys::client(client_id))?
        {
            None => Ok(None),
            Some(bytes) => Ok(Some(ClientRecord::decode(&bytes)?)),
        }
    }

    /// A live (stored and unexpired) client.
    pub(super) fn live(
        &self,
        client_id: &str,
        now: UnixTime,
    ) -> Result<Option<ClientRecord>, RegistryError> {
        Ok(self
            .load(client_id)?
            .filter(|r| !r.is_expired(now, self.expiry)))
    }

    /// The client named by `client_id` when `token` is its registration
    /// access token.
    pub(super) fn authorized(
        &self,
        client_id: &ClientId,
        token: &SecretToken,
        now: UnixTime,
    ) -> Result<ClientRecord, RegistryError> {
        match self.live(client_id.as_str(), now)? {
            Some(r) if r.registration_token_hash.verify(token) => Ok(r),
            Some(_) => Err(RegistryError::InvalidToken),
            None => {
                self.decoy.verify(token);
                Err(RegistryError::InvalidToken)
            }
        }
    }

    /// The client whose credentials these are (enabled and live).
    fn verify(&self, msg: &AuthenticateClient) -> Result<ClientRecord, RegistryError> {
        let record = self.live(&msg.client_id, msg.now)?;
        let Some(record) = record.filter(|r| !r.disabled) else {
            if let Some(s) = &msg.secret {
                self.decoy.verify(s);
            }
            return Err(RegistryError::InvalidClient);
        };
        // A confidential client may present its secret by either standard
        // method (RFC 6749 §2.3.1 makes Basic the one servers must take;
        // RFC 7591's default is Basic, and clients are not always careful
        // to send the one they registered): both prove the same secret. A
        // public client presents none.
        let ok = match (&record.secret_hash, &msg.secret) {
            (None, None) => msg.method == AuthMethod::None,
            (Some(hash), Some(secret)) => {
                // Verify first so a wrong method costs the same time.
                hash.verify(secret) & msg.method.has_secret()
            }
            _ => false,
        };
        if !ok {
            return Err(RegistryError::InvalidClient);
        }
        Ok(record)
    }
}

impl Reads<AuthenticateClient> for RegistryReader {
    fn read(&self, msg: AuthenticateClient) -> Result<ClientView, RegistryError> {
        let record = self.verify(&msg)?;
        let stale = record
            .last_used_at
            .is_none_or(|t| msg.now - t >= USE_WRITE_INTERVAL);
        if stale {
            if let Some(registry) = self.registry.get() {
                registry.do_send(RecordClientUse {
                    client_id: record.client_id.clone(),
                    now: msg.now,
                });
            }
        }
        Ok(record.view(self.expiry))
    }
}

impl Reads<GetClient> for RegistryReader {
    fn read(&self, msg: GetClient) -> Result<Option<ClientView>, RegistryError> {
        Ok(self
            .live(&msg.client_id, msg.now)?
            .filter(|r| !r.disabled)
            .map(|r| r.view(self.expiry)))
    }
}

impl Reads<InspectClient> for RegistryReader {
    fn read(&self, msg: InspectClient) -> Result<Option<ClientView>, RegistryError> {
        Ok(self.load(&msg.client_id)?.map(|r| r.view(self.expiry)))
    }
}

impl Reads<ReadClient> for RegistryReader {
    fn read(&self, msg: ReadClient) -> Result<ClientView, RegistryError> {
        Ok(self
            .authorized(&msg.client_id, &msg.registration_token, msg.now)?
            .view(self.expiry))
    }
}
