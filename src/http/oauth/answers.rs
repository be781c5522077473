//! How the sign-in's outcomes are answered to the browser: the client's
//! redirect (with a code or an RFC 6749 §4.1.2.1 error), or a page for what
//! must not be redirected.

use actix_web::HttpResponse;
use url::Url;

use crate::http::AppState;
use crate::pages::error_page;
use crate::service::signin::{ClientRedirect, RedirectAnswer, Shown, SigninError};

/// The browser sent back to the client, with our issuer (RFC 9207).
pub fn client_redirect(state: &AppState, redirect: &ClientRedirect) -> HttpResponse {
    match &redirect.answer {
        RedirectAnswer::Code(code) => {
            let issuer = state.config.issuer();
            let mut params = vec![("code", code.expose()), ("iss", issuer.as_str())];
            if !redirect.client_state.is_empty() {
                params.push(("state", &redirect.client_state));
            }
            found(&with_query(&redirect.redirect_uri, &params))
        }
        RedirectAnswer::Error { code, description } => redirect_error(
            state,
            &redirect.redirect_uri,
            &redirect.client_state,
            code.as_str(),
            description,
        ),
    }
}

/// A sign-in step's refusal, redirected or shown.
pub fn refusal(state: &AppState, error: &SigninError) -> HttpResponse {
    match error {
        SigninError::Show(shown) => shown_page(shown),
        SigninError::Redirect(redirect) => client_redirect(state, redirect),
    }
}

/// The page telling the person why the sign-in cannot continue.
pub fn shown_page(shown: &Shown) -> HttpResponse {
    let document_refused;
    let access_refused;
    let (status, error, description) = match shown {
        Shown::AccessRefused(refusal) => {
            access_refused = format!("You signed in, but {refusal}. Nothing was kept about this sign-in. If you think you should have access, ask the service's operator; if you have another account, sign in again with it from your application.");
            (403, "access_denied", access_refused.as_str())
        }
        Shown::ClientDocumentRefused(reason) => {
            document_refused = format!("This application's client metadata document cannot be used: {reason}.");
            (400, "invalid_client", document_refused.as_str())
        }
        Shown::NoClientId => (400, "invalid_request", "The request names no client_id."),
        Shown::UnknownClient => (400, "invalid_client", "This application is not registered here (or its registration expired). Reconnect it to register again."),
        Shown::ClientLookupUnavailable => (503, "temporarily_unavailable", "The server could not look up the application."),
        Shown::RedirectUriNotRegistered => (400, "invalid_request", "The redirect_uri is not one this application registered."),
        Shown::RedirectUriNeeded => (400, "invalid_request", "The request needs a redirect_uri (the application registered several)."),
        Shown::ConsentFromAnotherBrowser => (403, "access_denied", "This consent form was not shown in this browser. Start the sign-in again from your application."),
        Shown::NoDecision => (400, "invalid_request", "Choose Approve or Deny."),
        Shown::ConsentExpired => (400, "invalid_request", "This sign-in expired or was already completed."),
        Shown::ConsentForged => (403, "access_denied", "This consent form is not valid (or was already submitted)."),
        Shown::ConsentNotRecorded => (503, "temporarily_unavailable", "The server could not record your answer; try again."),
        Shown::ApprovedInAnotherBrowser => (403, "access_denied", "This sign-in was approved in another browser (or before a server upgrade), so it cannot finish in this one. If you did not start it, close this page. Otherwise start the sign-in again from your application, in this browser."),
        Shown::CallbackExpired => (400, "invalid_request", "This sign-in expired or was already completed. Start again from your application."),
        Shown::CallbackBusy => (503, "temporarily_unavailable", "The server is busy; start the sign-in again."),
    };
    error_page(status, error, description)
}

/// `uri` with `params` added to its query (the client's own query kept).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.into()
        }
        Err(_) => uri.to_owned(),
    }
}

/// An authorization error sent back to the client's redirect URI
/// (RFC 6749 §4.1.2.1) with its state and our issuer (RFC 9207).
fn redirect_error(
    state: &AppState,
    redirect_uri: &str,
    client_state: &str,
    error: &str,
    description: &str,
) -> HttpResponse {
    let issuer = state.config.issuer();
    let mut params = vec![
        ("error", error),
        ("error_description", description),
        ("iss", issuer.as_str()),
    ];
    if !client_state.is_empty() {
        params.push(("state", client_state));
    }
    found(&with_query(redirect_uri, &params))
}

pub fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}
