//! Dynamic client registration (RFC 7591) and the client's own management
//! of its registration (RFC 7592: read, update, delete with the
//! registration access token). Each outcome is audited here; refusals of a
//! registration are counted in the `registrations` metric.

use super::{
    forget_upstream_secret, seal_upstream_secret, secret_too_long, MAX_UPSTREAM_SECRET_BYTES,
};
use crate::actors::registry::{
    ClientView, DeleteClient, ReadClient, RegisterClient, Registered, RegistryError, RemoveClient,
    UpdateClient, Updated,
};
use crate::actors::token_broker::RevokeClientGrants;
use crate::audit::AuditEvent;
use crate::domain::{ClientId, ClientMetadata, ErrorCode, RegistrationRequest, SecretToken};
use crate::metrics::METRICS;
use crate::service::{Answered, ServiceError, Services};

/// Where a registration comes from.
#[derive(Debug)]
pub struct Origin {
    /// The client address, for the audit records.
    pub ip: String,
    /// The key per-address limits count it under (an IPv6 /64 as one).
    pub address_key: String,
}

/// Registers a client (RFC 7591 §3): its metadata checked against the
/// registration policy, its custom upstream client secret sealed (all or
/// nothing). A never-used registration may be evicted to make room.
pub async fn register(
    services: &Services,
    request: RegistrationRequest,
    origin: &Origin,
) -> Result<Registered, ServiceError> {
    let ip = origin.ip.as_str();
    let upstream_secret = request.upstream_client_secret.clone();
    let metadata = ClientMetadata::parse(request, &services.config.registration)
        .map_err(|e| refused(ip, e.into()))?;
    let msg = RegisterClient {
        metadata,
        origin: Some(origin.address_key.clone()),
        now: services.clock.now(),
    };
    let registered = services
        .registry
        .send(msg)
        .await?
        .map_err(|e| refused(ip, e.into()))?;
    if let Some(evicted) = &registered.evicted {
        METRICS
            .registrations
            .with_label_values(&["evicted_unused"])
            .inc();
        AuditEvent::ClientEvicted {
            client_id: evicted,
            ip,
        }
        .emit();
    }
    let client_id = &registered.client.client_id;
    if let Err(e) = seal_upstream_secret(services, client_id, upstream_secret).await {
        roll_back(services, client_id).await;
        return Err(refused(ip, e));
    }
    METRICS.registrations.with_label_values(&["created"]).inc();
    AuditEvent::ClientRegistered {
        client_id,
        ip,
        auth_method: registered.client.auth_method().as_str(),
    }
    .emit();
    let how = format!(
        "dynamic registration ({})",
        registered.client.auth_method().as_str()
    );
    crate::service::timeline::registered(services, client_id, &how);
    Ok(registered)
}

/// All or nothing: a client whose upstream secret could not be kept is
/// removed again, and the registrant (who never saw its id) is refused. A
/// crash between the two writes leaves a client nobody knows, which
/// expires as never used (`unused_expiry_minutes`).
async fn roll_back(services: &Services, client_id: &ClientId) {
    let msg = RemoveClient {
        client_id: client_id.clone(),
    };
    if let Err(e) = services.registry.send(msg).await.answered() {
        tracing::error!(%client_id, error = %e, "a registration whose upstream secret could not be stored was not rolled back; it expires unused");
    }
}

/// A refused registration, audited and counted.
fn refused(ip: &str, e: ServiceError) -> ServiceError {
    let reason = e.code.as_str();
    AuditEvent::RegistrationRefused { ip, reason }.emit();
    METRICS.registrations.with_label_values(&[reason]).inc();
    e
}

/// What a client configuration request (RFC 7592 §2) presents: the client
/// id from its URL and the registration access token.
#[derive(Debug)]
pub struct Management {
    /// As it appears in the URL.
    pub client_id: String,
    /// `None` when the request carries no bearer token.
    pub token: Option<SecretToken>,
    pub ip: String,
}

impl Management {
    /// The client id and token, or `invalid_token` (audited when a token
    /// came with a client id that cannot be one).
    fn credentials(&self) -> Result<(ClientId, SecretToken), ServiceError> {
        let token = self.token.clone().ok_or_else(|| {
            ServiceError::invalid_token(
                "an Authorization: Bearer registration access token is required",
            )
        })?;
        let id = ClientId::parse(&self.client_id).ok_or_else(|| self.bad_token())?;
        Ok((id, token))
    }

    /// A wrong registration access token (or client id): audited.
    fn bad_token(&self) -> ServiceError {
        let shown: String = self
            .client_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(40)
            .collect();
        AuditEvent::InvalidRegistrationToken {
            client_id: &shown,
            ip: &self.ip,
        }
        .emit();
        RegistryError::InvalidToken.into()
    }

    /// Maps the Registry's refusal, auditing a wrong token.
    fn refused(&self, e: RegistryError) -> ServiceError {
        match e {
            RegistryError::InvalidToken => self.bad_token(),
            other => other.into(),
        }
    }
}

/// Reads the client's registration (RFC 7592 §2.1); answers it with the
/// token that was presented (the response repeats it).
pub async fn read(
    services: &Services,
    m: &Management,
) -> Result<(ClientView, SecretToken), ServiceError> {
    let (client_id, token) = m.credentials()?;
    let msg = ReadClient {
        client_id: client_id.clone(),
        registration_token: token.clone(),
        now: services.clock.now(),
    };
    let client = services
        .registry
        .read(msg)
        .await?
        .map_err(|e| m.refused(e))?;
    AuditEvent::ClientRead {
        client_id: client_id.as_str(),
        ip: &m.ip,
    }
    .emit();
    Ok((client, token))
}

/// Replaces the client's metadata (RFC 7592 §2.2), keeping its id; a
/// custom upstream client secret is sealed anew, or forgotten with its
/// upstream client.
pub async fn update(
    services: &Services,
    m: &Management,
    mut request: RegistrationRequest,
) -> Result<(Updated, SecretToken), ServiceError> {
    let (client_id, token) = m.credentials()?;
    let presented_secret = request.client_secret.take().map(SecretToken::presented);
    let upstream_secret = request.upstream_client_secret.clone();
    check_update(&request, &client_id)?;
    let metadata = ClientMetadata::parse(request, &services.config.registration)?;
    let msg = UpdateClient {
        client_id: client_id.clone(),
        registration_token: token.clone(),
        presented_secret,
        metadata,
        now: services.clock.now(),
    };
    let updated = services
        .registry
        .send(msg)
        .await?
        .map_err(|e| m.refused(e))?;
    if upstream_secret.is_some() {
        seal_upstream_secret(services, client_id.as_str(), upstream_secret).await?;
    } else if updated.client.metadata.upstream_client_id.is_none() {
        // No custom upstream client any more: its secret goes.
        forget_upstream_secret(services, client_id.as_str()).await;
    }
    AuditEvent::ClientUpdated {
        client_id: client_id.as_str(),
        ip: &m.ip,
    }
    .emit();
    Ok((updated, token))
}

/// What an update is refused for before anything changes: a body naming
/// another client, or a custom upstream client secret the Vault would
/// refuse (a registration is rolled back when the Vault refuses its
/// secret; an update cannot be).
fn check_update(request: &RegistrationRequest, client_id: &ClientId) -> Result<(), ServiceError> {
    if request
        .client_id
        .as_deref()
        .is_some_and(|id| id != client_id.as_str())
    {
        return Err(ServiceError::invalid(
            ErrorCode::InvalidClientMetadata,
            "client_id in the body does not match the URL",
        ));
    }
    let secret = request.upstream_client_secret.as_ref();
    if secret.is_some_and(|s| s.len() > MAX_UPSTREAM_SECRET_BYTES) {
        return Err(secret_too_long());
    }
    Ok(())
}

/// Deletes the client (RFC 7592 §2.3) with every token it holds and its
/// custom upstream client secret.
pub async fn delete(services: &Services, m: &Management) -> Result<(), ServiceError> {
    let (client_id, token) = m.credentials()?;
    let msg = DeleteClient {
        client_id: client_id.clone(),
        registration_token: token,
        now: services.clock.now(),
    };
    services
        .registry
        .send(msg)
        .await?
        .map_err(|e| m.refused(e))?;
    let grants = RevokeClientGrants {
        client_ids: vec![client_id.clone()],
    };
    if let Err(e) = services.broker.send(grants).await.answered() {
        // Its tokens are refused all the same: every use checks the client.
        tracing::error!(client_id = client_id.as_str(), error = %e, "the tokens of a deleted client could not be revoked now");
    }
    forget_upstream_secret(services, client_id.as_str()).await;
    AuditEvent::ClientDeleted {
        client_id: client_id.as_str(),
        ip: &m.ip,
    }
    .emit();
    Ok(())
}
