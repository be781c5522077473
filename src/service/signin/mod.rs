//! The sign-in, in three steps a browser walks through:
//!
//! 1. [`authorize`]: a client's authorization request is checked against
//!    its registration and becomes a pending sign-in, shown as a consent
//!    page;
//! 2. [`consent`]: the person approves (→ the upstream's sign-in page, the
//!    sign-in now bound to this browser) or denies (→ back to the client);
//! 3. [`callback`]: the upstream sends the browser back; its code is
//!    exchanged, the user's upstream tokens are kept, and the client gets
//!    Drawbridge's own single-use code.
//!
//! Each step answers where the browser goes next, or a [`SigninError`]
//! that says whether it may go back to the client ([`ClientRedirect`]) or
//! must be shown as a page ([`Shown`]): an error about an unknown client or
//! redirect URI is never redirected (no open redirect).

mod authorize;
mod callback;
mod consent;
mod returning;
mod steps;
mod user;

pub use authorize::{AuthorizationRequest, AuthorizeFailure, PendingConsent};
pub use callback::{callback, CallbackFailure, SignedIn, UpstreamAnswer};
pub use consent::{consent, ConsentAnswer, ConsentFailure, Decision, UpstreamSignIn};
pub use returning::BrowserKey;

use crate::domain::{ErrorCode, SecretToken};
use crate::service::Services;

/// Step 1 ([`authorize::authorize`]), with its answer noted in the
/// client's connection timeline.
pub async fn authorize(
    services: &Services,
    request: AuthorizationRequest,
) -> Result<PendingConsent, SigninError> {
    let client_id = request.client_id.clone();
    let redirect_uri = request.redirect_uri.clone();
    let answer = authorize::authorize(services, request).await;
    steps::authorize_answered(
        services,
        client_id.as_deref(),
        redirect_uri.as_deref(),
        &answer,
    );
    answer
}

/// Where the browser is sent back to the client, and with what.
#[derive(Debug)]
pub struct ClientRedirect {
    pub redirect_uri: String,
    /// The client's `state`, echoed back (empty: none to echo).
    pub client_state: String,
    pub answer: RedirectAnswer,
}

/// What a [`ClientRedirect`] tells the client.
#[derive(Debug)]
pub enum RedirectAnswer {
    /// Drawbridge's single-use authorization code.
    Code(SecretToken),
    /// An RFC 6749 §4.1.2.1 error.
    Error {
        code: ErrorCode,
        description: String,
    },
}

impl ClientRedirect {
    fn error(redirect_uri: &str, client_state: &str, failure: &impl RedirectFailure) -> Self {
        Self {
            redirect_uri: redirect_uri.to_owned(),
            client_state: client_state.to_owned(),
            answer: RedirectAnswer::Error {
                code: failure.code(),
                description: failure.description(),
            },
        }
    }
}

/// A failure that is answered at the client's redirect URI.
pub trait RedirectFailure {
    /// The RFC error code sent to the client.
    fn code(&self) -> ErrorCode;
    /// The `error_description` sent to the client.
    fn description(&self) -> String;
}

/// A sign-in that cannot continue and must not go back to the client (the
/// client or its redirect URI is unknown, or the browser is not the one
/// the sign-in belongs to): shown to the person as a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// The authorization request names no client.
    NoClientId,
    /// The client is not registered (or expired, or was disabled).
    UnknownClient,
    /// The `client_id` is a metadata document URL that cannot be used
    /// (malformed, refused by the operator's policy, not fetched, invalid):
    /// the reason, safe to show.
    ClientDocumentRefused(String),
    /// The client could not be looked up (storage busy).
    ClientLookupUnavailable,
    /// The `redirect_uri` is not one the client registered.
    RedirectUriNotRegistered,
    /// No `redirect_uri`, and the client registered several.
    RedirectUriNeeded,
    /// The consent form was posted from a browser it was not shown in.
    ConsentFromAnotherBrowser,
    /// The consent form says neither Approve nor Deny.
    NoDecision,
    /// The consent's sign-in expired or was already completed.
    ConsentExpired,
    /// The consent form's CSRF token does not match (or was used).
    ConsentForged,
    /// The consent answer could not be recorded (storage busy).
    ConsentNotRecorded,
    /// The sign-in was approved in another browser: the callback is refused.
    ApprovedInAnotherBrowser,
    /// The callback's sign-in expired or was already completed.
    CallbackExpired,
    /// The callback's sign-in could not be taken (the broker is busy).
    CallbackBusy,
    /// The access policy does not admit the person who signed in at the
    /// identity provider (nothing was stored for them).
    AccessRefused(crate::domain::Refusal),
}

/// Why a sign-in step did not go on.
#[derive(Debug)]
pub enum SigninError {
    /// Shown to the person; nothing goes to the client.
    Show(Shown),
    /// Sent back to the client's redirect URI.
    Redirect(ClientRedirect),
}

impl From<Shown> for SigninError {
    fn from(shown: Shown) -> Self {
        Self::Show(shown)
    }
}

/// The id under which a sign-in's upstream PKCE verifier is sealed in the
/// Vault: the hex of its state's hash (the state itself is never stored).
fn verifier_id(state: &SecretToken) -> String {
    crate::crypto::hex(state.hash().as_bytes())
}
