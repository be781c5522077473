//! Step 2: the person's answer on the consent page.

use subtle::ConstantTimeEq;

use super::{verifier_id, ClientRedirect, RedirectFailure, Shown, SigninError};
use crate::actors::registry::GetClient;
use crate::actors::token_broker::{AuthTransaction, BrokerError, DecideConsent};
use crate::actors::vault::{SealSecret, UPSTREAM_PKCE};
use crate::audit::AuditEvent;
use crate::domain::pkce::{challenge_of, new_verifier};
use crate::domain::{ErrorCode, SecretToken};
use crate::metrics::METRICS;
use crate::service::session::{upstream_credentials, CredentialsError};
use crate::service::Services;

/// Approve or Deny, as the consent form sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// A consent form as posted.
#[derive(Debug)]
pub struct ConsentAnswer {
    /// The sign-in's state (a hidden field).
    pub state: SecretToken,
    /// The form's CSRF token (a hidden field).
    pub csrf: SecretToken,
    /// The CSRF token of the cookie set with the form, if the browser sent it.
    pub csrf_cookie: Option<SecretToken>,
    /// `None` when the form says neither Approve nor Deny.
    pub decision: Option<Decision>,
    /// The browser's address, for the audit log.
    pub ip: String,
}

/// An approved sign-in: the browser goes to the upstream's sign-in page,
/// and keeps `browser` (a cookie) to finish it at the callback.
#[derive(Debug)]
pub struct UpstreamSignIn {
    pub location: String,
    pub browser: SecretToken,
}

/// Why an approved sign-in goes back to the client instead.
#[derive(Debug)]
pub enum ConsentFailure {
    /// The person pressed Deny.
    Denied,
    /// The client was removed, disabled or expired meanwhile.
    ClientGone,
    /// The upstream client could not be named.
    Credentials(CredentialsError),
    /// The upstream PKCE verifier could not be stored.
    NotStored,
}

impl RedirectFailure for ConsentFailure {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Denied | Self::ClientGone => ErrorCode::AccessDenied,
            Self::Credentials(e) => e.code(),
            Self::NotStored => ErrorCode::TemporarilyUnavailable,
        }
    }

    fn description(&self) -> String {
        match self {
            Self::Denied => "the user denied the request".into(),
            Self::ClientGone => "the client is no longer registered".into(),
            Self::Credentials(e) => e.description().into(),
            Self::NotStored => "the sign-in could not be stored".into(),
        }
    }
}

/// Records the person's answer. On approval, the sign-in is bound to this
/// browser: only the browser holding [`UpstreamSignIn::browser`] can
/// complete it at the callback.
pub async fn consent(
    services: &Services,
    answer: ConsentAnswer,
) -> Result<UpstreamSignIn, SigninError> {
    let bound = answer.csrf_cookie.as_ref().is_some_and(|cookie| {
        bool::from(
            cookie
                .expose()
                .as_bytes()
                .ct_eq(answer.csrf.expose().as_bytes()),
        )
    });
    if !bound {
        return Err(Shown::ConsentFromAnotherBrowser.into());
    }
    let approve = answer.decision.ok_or(Shown::NoDecision)? == Decision::Approve;
    let now = services.clock.now();
    let browser = SecretToken::generate("");
    let decided = services
        .broker
        .send(DecideConsent {
            state: answer.state.clone(),
            csrf: answer.csrf,
            approve,
            browser: browser.hash(),
            now,
        })
        .await;
    let txn = match decided {
        Ok(Ok(txn)) => txn,
        Ok(Err(BrokerError::UnknownTransaction)) => return Err(Shown::ConsentExpired.into()),
        Ok(Err(BrokerError::Csrf)) => return Err(Shown::ConsentForged.into()),
        _ => return Err(Shown::ConsentNotRecorded.into()),
    };
    AuditEvent::Consent {
        client_id: &txn.client_id,
        ip: &answer.ip,
        approved: approve,
    }
    .emit();
    crate::service::timeline::consent(services, &txn.client_id, approve);
    METRICS
        .consent
        .with_label_values(&[if approve { "approved" } else { "denied" }])
        .inc();
    let refuse = |failure: ConsentFailure| {
        SigninError::Redirect(ClientRedirect::error(
            &txn.redirect_uri,
            &txn.client_state,
            &failure,
        ))
    };
    if !approve {
        return Err(refuse(ConsentFailure::Denied));
    }
    let location = upstream_location(services, &txn, &answer.state, now)
        .await
        .map_err(refuse)?;
    Ok(UpstreamSignIn { location, browser })
}

/// The upstream's sign-in page for an approved sign-in, its PKCE verifier
/// sealed in the Vault until the callback.
async fn upstream_location(
    services: &Services,
    txn: &AuthTransaction,
    state: &SecretToken,
    now: i64,
) -> Result<String, ConsentFailure> {
    let lookup = GetClient {
        client_id: txn.client_id.clone(),
        now,
    };
    let Ok(Ok(Some(client))) = services.registry.read(lookup).await else {
        return Err(ConsentFailure::ClientGone);
    };
    let creds = upstream_credentials(services, txn.upstream_client_id.as_deref(), &client)
        .await
        .map_err(ConsentFailure::Credentials)?;
    let verifier = new_verifier();
    let sealed = services
        .vault
        .send(SealSecret {
            kind: UPSTREAM_PKCE.into(),
            id: verifier_id(state),
            plaintext: verifier.clone().into_bytes(),
        })
        .await;
    if !matches!(sealed, Ok(Ok(()))) {
        return Err(ConsentFailure::NotStored);
    }
    Ok(services.upstream.authorize_url(
        &creds,
        state.expose(),
        &challenge_of(&verifier),
        &txn.scopes,
        &services.config.callback_url(),
        services.access.hd_hint().as_deref(),
    ))
}
