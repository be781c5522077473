//! Step 3: the upstream sends the browser back. Only the browser that
//! approved the consent can finish a sign-in; the sign-in's upstream PKCE
//! verifier is deleted whatever the outcome.

use super::returning::remember;
use super::user::store_user;
use super::{verifier_id, ClientRedirect, RedirectAnswer, RedirectFailure, Shown, SigninError};
use crate::actors::registry::{GetClient, RecordClientUse};
use crate::actors::token_broker::{AuthTransaction, BrokerError, CompleteTransaction, IssueCode};
use crate::actors::vault::{DeleteSecrets, OpenSecret, UPSTREAM_PKCE};
use crate::audit::AuditEvent;
use crate::domain::{ErrorCode, Person, Refusal, SecretToken};
use crate::metrics::METRICS;
use crate::service::access::{record_refusal, Stage};
use crate::service::session::{upstream_credentials, CredentialsError};
use crate::service::Services;
use crate::upstream::UpstreamError;

/// The upstream's answer, as the browser brought it to the callback.
#[derive(Debug)]
pub struct UpstreamAnswer {
    /// The sign-in's state.
    pub state: SecretToken,
    /// The upstream's authorization code.
    pub code: Option<String>,
    /// The upstream's `error`, when it did not sign the person in.
    pub error: Option<String>,
    /// The browser binding (cookie) set with the Approve answer, if sent.
    pub browser: Option<SecretToken>,
    /// The browser's address, for the audit log.
    pub ip: String,
}

/// Why a sign-in that reached the callback goes back to the client without
/// a code.
#[derive(Debug)]
pub enum CallbackFailure {
    /// The person declined at the identity provider.
    DeclinedUpstream,
    /// The identity provider reported another error.
    UpstreamReportedError,
    /// The identity provider sent the browser back without a code.
    NoUpstreamCode,
    /// The sign-in's PKCE verifier could not be read.
    VerifierUnreadable,
    /// The client was removed, disabled or expired meanwhile.
    ClientGone,
    /// The client could not be looked up.
    ClientLookupUnavailable,
    /// The upstream client could not be named.
    Credentials(CredentialsError),
    /// The identity provider could not be reached.
    UpstreamUnavailable,
    /// The identity provider refused access (`access_denied`).
    UpstreamRefused,
    /// The identity provider rejected the exchange, or its ID token was
    /// refused (wrong issuer, audience, nonce, signature …).
    UpstreamRejected,
    /// The user's upstream tokens could not be stored.
    CredentialsNotStored,
    /// Drawbridge's code could not be stored.
    CodeNotStored,
    /// The access policy does not admit this person (nothing was stored):
    /// shown as a page, not redirected. The email (when verified) is for
    /// the audit record.
    NotAllowed {
        refusal: Refusal,
        email: Option<String>,
    },
}

impl RedirectFailure for CallbackFailure {
    fn code(&self) -> ErrorCode {
        match self {
            Self::DeclinedUpstream
            | Self::ClientGone
            | Self::UpstreamRefused
            | Self::NotAllowed { .. } => ErrorCode::AccessDenied,
            Self::UpstreamReportedError | Self::NoUpstreamCode | Self::UpstreamRejected => {
                ErrorCode::ServerError
            }
            Self::Credentials(e) => e.code(),
            Self::VerifierUnreadable
            | Self::ClientLookupUnavailable
            | Self::UpstreamUnavailable
            | Self::CredentialsNotStored
            | Self::CodeNotStored => ErrorCode::TemporarilyUnavailable,
        }
    }

    fn description(&self) -> String {
        let text = match self {
            Self::DeclinedUpstream => "the user declined at the identity provider",
            Self::UpstreamReportedError => "the identity provider reported an error",
            Self::NoUpstreamCode => "the identity provider returned no code",
            Self::VerifierUnreadable => "the sign-in's verifier could not be read; try again",
            Self::ClientGone => "the client is no longer registered",
            Self::ClientLookupUnavailable => "the server could not look up the client; try again",
            Self::Credentials(e) => e.description(),
            Self::UpstreamUnavailable => "the identity provider is unavailable; try again",
            Self::UpstreamRefused => "the identity provider refused access",
            Self::UpstreamRejected => "the identity provider rejected the sign-in",
            Self::CredentialsNotStored => "the credentials could not be stored; try again",
            Self::CodeNotStored => "the authorization code could not be stored; try again",
            Self::NotAllowed { refusal, .. } => return refusal.to_string(),
        };
        text.to_owned()
    }
}

impl From<UpstreamError> for CallbackFailure {
    fn from(e: UpstreamError) -> Self {
        tracing::warn!(error = %e, "upstream sign-in step failed");
        match e {
            UpstreamError::Unavailable(_) => Self::UpstreamUnavailable,
            UpstreamError::Rejected { error, .. } if error == "access_denied" => {
                Self::UpstreamRefused
            }
            UpstreamError::Rejected { .. } => Self::UpstreamRejected,
        }
    }
}

/// The audit and metric outcome of a callback from the wrong browser.
const WRONG_BROWSER: &str = "browser_mismatch";
/// The metric outcome of a sign-in the access policy refused.
const REFUSED: &str = "refused_by_policy";

/// Finishes a sign-in: the client's redirect with Drawbridge's code, or
/// with the reason it has none; a page when the sign-in is unknown or
/// belongs to another browser.
pub async fn callback(
    services: &Services,
    answer: UpstreamAnswer,
) -> Result<SignedIn, SigninError> {
    let now = services.clock.now();
    let taken = services
        .broker
        .send(CompleteTransaction {
            state: answer.state.clone(),
            browser: answer.browser.clone(),
            now,
        })
        .await;
    let txn = match taken {
        Ok(Ok(txn)) => txn,
        Ok(Err(BrokerError::WrongBrowser(txn))) => {
            // Approved in another browser: someone else's sign-in link. The
            // transaction is gone; nothing goes to the client's redirect URI.
            forget_verifier(services, &answer.state).await;
            crate::service::timeline::callback_in_another_browser(services, &txn.client_id);
            AuditEvent::UpstreamCallback {
                client_id: &txn.client_id,
                ip: &answer.ip,
                user: None,
                reason: Some(WRONG_BROWSER),
            }
            .emit();
            METRICS.logins.with_label_values(&[WRONG_BROWSER]).inc();
            return Err(Shown::ApprovedInAnotherBrowser.into());
        }
        Ok(Err(_)) => return Err(Shown::CallbackExpired.into()),
        Err(_) => return Err(Shown::CallbackBusy.into()),
    };
    let verifier = services
        .vault
        .read(OpenSecret {
            kind: UPSTREAM_PKCE.into(),
            id: verifier_id(&answer.state),
        })
        .await;
    let verifier = match verifier {
        Ok(Ok(Some(v))) => Some(String::from_utf8(v).unwrap_or_default()),
        _ => None,
    };
    // The verifier is single use, whatever happens next: its deletion runs
    // alongside the sign-in (and is durable before the answer goes out).
    let (finished, ()) = futures_util::future::join(
        finish(services, &answer, &txn, verifier, now),
        forget_verifier(services, &answer.state),
    )
    .await;
    let outcome = finished.as_ref().map(|done| done.email.as_deref());
    super::steps::called_back(services, &txn.client_id, outcome);
    if let Err(CallbackFailure::NotAllowed { refusal, email }) = &finished {
        // The person sees why on a page (the lists are not shown); the
        // client gets nothing: RFC 6749 would allow `access_denied` at its
        // redirect URI, but then nobody tells the person why.
        record_refusal(
            Stage::Signin,
            *refusal,
            &txn.client_id,
            &answer.ip,
            email.as_deref(),
        );
        METRICS.logins.with_label_values(&[REFUSED]).inc();
        return Err(Shown::AccessRefused(*refusal).into());
    }
    let user = finished
        .as_ref()
        .ok()
        .and_then(|done| done.email.as_deref());
    let reason = finished.as_ref().err().map(|f| f.code().as_str());
    AuditEvent::UpstreamCallback {
        client_id: &txn.client_id,
        ip: &answer.ip,
        user,
        reason,
    }
    .emit();
    METRICS
        .logins
        .with_label_values(&[reason.unwrap_or("ok")])
        .inc();
    match finished {
        Ok(done) => {
            let lifetime = services.config.tokens.grant_lifetime;
            let returning = remember(services, &done.user, now + lifetime).await;
            let redirect = ClientRedirect {
                redirect_uri: txn.redirect_uri,
                client_state: txn.client_state,
                answer: RedirectAnswer::Code(done.code),
            };
            Ok(SignedIn {
                redirect,
                returning: returning.map(|value| (value, lifetime)),
            })
        }
        Err(failure) => Err(SigninError::Redirect(ClientRedirect::error(
            &txn.redirect_uri,
            &txn.client_state,
            &failure,
        ))),
    }
}

/// Deletes the sign-in's upstream PKCE verifier from the Vault.
async fn forget_verifier(services: &Services, state: &SecretToken) {
    let deleted = services
        .vault
        .send(DeleteSecrets {
            kind: UPSTREAM_PKCE.into(),
            ids: vec![verifier_id(state)],
        })
        .await;
    if !matches!(deleted, Ok(Ok(_))) {
        tracing::warn!("a used upstream PKCE verifier could not be deleted now; the janitor deletes it on its next run");
    }
}

/// A completed sign-in: the client's redirect with Drawbridge's code, and
/// the cookie that remembers the user in this browser.
#[derive(Debug)]
pub struct SignedIn {
    pub redirect: ClientRedirect,
    /// The returning-browser cookie's value and lifetime in seconds (see
    /// [`super::returning`]); `None` when it could not be signed now.
    pub returning: Option<(String, i64)>,
}

/// What [`finish`] answers.
struct Finished {
    /// Drawbridge's authorization code.
    code: SecretToken,
    /// The Vault's id of the user.
    user: String,
    /// The user's verified email (for the audit log).
    email: Option<String>,
}

/// Exchanges the upstream code and mints Drawbridge's.
async fn finish(
    services: &Services,
    answer: &UpstreamAnswer,
    txn: &AuthTransaction,
    verifier: Option<String>,
    now: i64,
) -> Result<Finished, CallbackFailure> {
    match answer.error.as_deref() {
        Some("access_denied") => return Err(CallbackFailure::DeclinedUpstream),
        Some(_) => return Err(CallbackFailure::UpstreamReportedError),
        None => {}
    }
    let code = answer.code.as_deref().filter(|c| !c.is_empty());
    let code = code.ok_or(CallbackFailure::NoUpstreamCode)?;
    let verifier = verifier.ok_or(CallbackFailure::VerifierUnreadable)?;
    let lookup = GetClient {
        client_id: txn.client_id.clone(),
        now,
    };
    let client = match services.registry.read(lookup).await {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => return Err(CallbackFailure::ClientGone),
        _ => return Err(CallbackFailure::ClientLookupUnavailable),
    };
    let creds = upstream_credentials(services, txn.upstream_client_id.as_deref(), &client)
        .await
        .map_err(CallbackFailure::Credentials)?;
    let callback_url = services.config.callback_url();
    let upstream = &services.upstream;
    let tokens = upstream
        .exchange_code(&creds, code, &verifier, &callback_url)
        .await?;
    let identity = upstream
        .identity(&creds, &tokens, answer.state.expose())
        .await?;
    // Before anything is kept for them.
    let person = Person {
        email: identity.email.as_deref(),
        email_verified: identity.email_verified,
        hosted_domain: identity.hosted_domain.as_deref(),
    };
    if let Err(refusal) = services.access.check(person) {
        let email = identity.verified_email().map(str::to_owned);
        return Err(CallbackFailure::NotAllowed { refusal, email });
    }
    let user = store_user(services, &identity, &tokens, now)
        .await
        .ok_or(CallbackFailure::CredentialsNotStored)?;
    let issued = services
        .broker
        .send(IssueCode {
            transaction: txn.clone(),
            user: user.clone(),
            now,
        })
        .await;
    let Ok(Ok(code)) = issued else {
        return Err(CallbackFailure::CodeNotStored);
    };
    let used = RecordClientUse {
        client_id: txn.client_id.clone(),
        now,
    };
    if !matches!(services.registry.send(used).await, Ok(Ok(_))) {
        // Only the client's last-use date is lost (the sign-in stands).
        tracing::warn!(client_id = %txn.client_id, "the client's use could not be recorded");
    }
    Ok(Finished {
        code,
        user,
        email: identity.verified_email().map(str::to_owned),
    })
}
