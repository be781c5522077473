//! Clients known by their Client ID Metadata Document: the `client_id` is
//! the document's URL. At each sign-in the operator's policy is checked,
//! the document is taken from the cache or fetched ([`DocumentCache`]), and
//! the Registry's record of the client follows the document: created the
//! first time, updated when the document changed (so the admin API shows
//! what the consent page was built from, and the token endpoint finds a
//! public client).

use std::sync::Arc;

use crate::actors::registry::{AdmitDocumentClient, ClientView, DocumentState, GetClient};
use crate::audit::AuditEvent;
use crate::cimd::{fetch, DocumentCache, Source};
use crate::clock::Clock;
use crate::configuration::Config;
use crate::domain::{ClientId, DocumentUrl};
use crate::metrics;
use crate::service::signin::Shown;
use crate::service::Services;

/// The cache the server fetches documents through: the network, under the
/// operator's fetch bounds.
pub fn document_cache(config: &Config, clock: Clock) -> DocumentCache {
    let policy = config.oauth.cimd.fetch.clone();
    let source: Source = Arc::new(move |url: DocumentUrl| {
        let policy = policy.clone();
        Box::pin(async move { fetch(&url, &policy).await })
    });
    DocumentCache::new(
        source,
        config.registration.clone(),
        config.oauth.cimd.lifetimes,
        clock,
    )
}

/// The client whose metadata document is at `url`, as the document says
/// now; a refusal (policy, fetch, validation, disabled) is shown to the
/// person with its reason and audited.
pub async fn document_client(
    services: &Services,
    url: &DocumentUrl,
    ip: &str,
) -> Result<ClientView, Shown> {
    let refused = |reason: String| {
        AuditEvent::ClientDocumentRefused {
            client_id: url.as_str(),
            ip,
            reason: &reason,
        }
        .emit();
        Shown::ClientDocumentRefused(reason)
    };
    if let Err(refusal) = services.config.oauth.cimd.policy.permits(url) {
        metrics::client_document("refused_by_policy");
        return Err(refused(refusal.to_string()));
    }
    let document = services
        .cimd
        .get(url)
        .await
        .map_err(|e| refused(e.to_string()))?;
    let client_id = ClientId::document(url);
    let now = services.clock.now();
    let lookup = GetClient {
        client_id: client_id.clone(),
        now,
    };
    let stored = match services.registry.read(lookup).await {
        Ok(Ok(stored)) => stored,
        _ => return Err(Shown::ClientLookupUnavailable),
    };
    if let Some(client) = stored.filter(|c| c.document.map(|d| d.digest) == Some(document.digest)) {
        return Ok(client);
    }
    let admit = AdmitDocumentClient {
        client_id,
        metadata: document.metadata.clone(),
        document: DocumentState {
            fetched_at: document.fetched_at,
            digest: document.digest,
        },
        now,
    };
    match services.registry.send(admit).await {
        Ok(Ok(client)) if client.disabled => Err(Shown::UnknownClient),
        Ok(Ok(client)) => {
            AuditEvent::ClientDocumentAdmitted {
                client_id: url.as_str(),
                ip,
            }
            .emit();
            let how = "metadata document admitted";
            crate::service::timeline::registered(services, &client.client_id, how);
            Ok(client)
        }
        _ => Err(Shown::ClientLookupUnavailable),
    }
}
