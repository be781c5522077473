//! The sign-in's steps in the client's connection timeline
//! ([`crate::service::timeline`]): what each answer of [`super::authorize`]
//! and [`super::callback`] tells an operator.

use super::{CallbackFailure, PendingConsent, RedirectAnswer, RedirectFailure, Shown, SigninError};
use crate::audit::shown_user;
use crate::domain::timeline::{Outcome, Step, StepKind};
use crate::domain::ClientId;
use crate::service::timeline::{host, now, record};
use crate::service::Services;

/// The answer to an authorization request naming `client_id` (as sent)
/// with `redirect_uri` (as sent): the consent page shown, an error at the
/// client's redirect URI, or a page that refused to redirect.
pub(super) fn authorize_answered(
    services: &Services,
    client_id: Option<&str>,
    redirect_uri: Option<&str>,
    answer: &Result<PendingConsent, SigninError>,
) {
    let Some(client_id) = client_id.and_then(ClientId::parse) else {
        return;
    };
    let at = now(services);
    let authorize = Step::new(at, StepKind::Authorize, Outcome::Ok);
    let step = match answer {
        Ok(pending) => {
            let detail = format!(
                "redirect host {}; scopes {}",
                host(&pending.redirect_uri),
                pending.scopes.tokens().join(" ")
            );
            record(services, &client_id, authorize.detail(detail));
            Step::new(at, StepKind::Consent, Outcome::Shown)
        }
        Err(SigninError::Redirect(redirect)) => {
            let RedirectAnswer::Error { code, description } = &redirect.answer else {
                return;
            };
            Step::new(at, StepKind::Authorize, Outcome::Error)
                .error(code.as_str(), description)
                .detail(format!("redirect host {}", host(&redirect.redirect_uri)))
        }
        Err(SigninError::Show(shown)) => {
            let Some((code, reason)) = shown_reason(shown) else {
                return;
            };
            let requested = redirect_uri.map_or("none".to_owned(), host);
            Step::new(at, StepKind::Authorize, Outcome::Error)
                .error(code, &reason)
                .detail(format!("redirect host {requested}"))
        }
    };
    record(services, &client_id, step);
}

/// Why an authorization request was answered with a page instead of a
/// redirect (the error class and the reason), for the pages that may
/// concern a stored client (an expired or disabled one is stored until
/// purged or enabled); `None` for the others.
fn shown_reason(shown: &Shown) -> Option<(&'static str, String)> {
    let (code, reason) = match shown {
        Shown::RedirectUriNotRegistered => (
            "invalid_request",
            "redirect_uri is not one the client registered (shown to the person, not redirected)",
        ),
        Shown::RedirectUriNeeded => (
            "invalid_request",
            "redirect_uri is missing and the client registered several (shown to the person, not redirected)",
        ),
        Shown::UnknownClient => (
            "invalid_client",
            "the client has expired or is disabled (shown to the person, not redirected)",
        ),
        Shown::ClientDocumentRefused(reason) => {
            let reason = format!("the client's metadata document was refused: {reason}");
            return Some(("invalid_client", reason));
        }
        _ => return None,
    };
    Some((code, reason.to_owned()))
}

/// The upstream callback's outcome: the user signed in (shown as
/// `audit.user_field` allows), or why not.
pub(super) fn called_back(
    services: &Services,
    client_id: &ClientId,
    finished: Result<Option<&str>, &CallbackFailure>,
) {
    let at = now(services);
    let step = match finished {
        Ok(email) => {
            let step = Step::new(at, StepKind::Callback, Outcome::Ok);
            match shown_user(email) {
                Some(user) => step.detail(format!("user {user}")),
                None => step,
            }
        }
        Err(failure) => {
            let step = Step::new(at, StepKind::Callback, Outcome::Error)
                .error(failure.code().as_str(), &failure.description());
            match failure {
                CallbackFailure::NotAllowed { .. } => step.detail("refused by the access policy"),
                _ => step,
            }
        }
    };
    record(services, client_id, step);
}
