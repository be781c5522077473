//! Step 1: an authorization request becomes a pending sign-in (shown as a
//! consent page), or a refusal.

use super::{ClientRedirect, RedirectFailure, Shown, SigninError};
use crate::actors::registry::{ClientView, GetClient};
use crate::actors::token_broker::{BeginAuthorization, GrantedScopes, NewTransaction};
use crate::audit::AuditEvent;
use crate::domain::pkce::PkceError;
use crate::domain::{
    matches_registered, ClientId, CodeChallenge, DocumentUrl, ErrorCode, ScopeSet, SecretToken,
};
use crate::service::clients::document::document_client;
use crate::service::Services;

/// The longest `state` accepted: it is stored with the sign-in until the
/// callback, so it is bounded (RFC 6749 leaves its size to the server).
pub const MAX_STATE_BYTES: usize = 1024;
/// The longest `upstream_client_id` accepted (as at registration).
const MAX_UPSTREAM_CLIENT_ID: usize = 200;

/// An authorization request's parameters as the client sent them (an empty
/// parameter counts as absent). Each is checked here, against the client's
/// registration.
#[derive(Debug, Default)]
pub struct AuthorizationRequest {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub response_type: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
    pub upstream_client_id: Option<String>,
    /// The browser's returning-user cookie, if it sent one (see
    /// [`super::returning`]).
    pub returning: Option<String>,
    /// The browser's address, for the audit log.
    pub ip: String,
}

/// A sign-in waiting for the person's consent: what the consent page shows
/// and the secrets its form carries back.
#[derive(Debug)]
pub struct PendingConsent {
    pub client: ClientView,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    /// Those of `scopes` the browser's returning user already granted the
    /// client (a step-up): the consent page lists the others as new.
    pub granted: Vec<String>,
    /// The sign-in's state (also the upstream's `state`).
    pub state: SecretToken,
    /// The consent form's CSRF token (also kept in a cookie).
    pub csrf: SecretToken,
}

/// Why an authorization request is refused at the client's redirect URI.
#[derive(Debug)]
pub enum AuthorizeFailure {
    /// `state` is longer than [`MAX_STATE_BYTES`] (it is not echoed back).
    StateTooLong,
    /// `response_type` is not `code`.
    ResponseTypeNotCode,
    /// The PKCE challenge is missing or not S256.
    Challenge(PkceError),
    /// The scopes are unknown here or not the client's (the reason).
    Scope(String),
    /// `resource` names another protected resource.
    ForeignResource,
    /// `upstream_client_id` was sent, but the operator does not allow it.
    CustomUpstreamDisabled,
    /// `upstream_client_id` is too long or has control characters.
    MalformedUpstreamClientId,
    /// The sign-in could not be stored.
    NotStarted,
}

impl RedirectFailure for AuthorizeFailure {
    fn code(&self) -> ErrorCode {
        match self {
            Self::ResponseTypeNotCode => ErrorCode::UnsupportedResponseType,
            Self::Scope(_) => ErrorCode::InvalidScope,
            Self::ForeignResource => ErrorCode::InvalidTarget,
            Self::NotStarted => ErrorCode::TemporarilyUnavailable,
            Self::StateTooLong
            | Self::Challenge(_)
            | Self::CustomUpstreamDisabled
            | Self::MalformedUpstreamClientId => ErrorCode::InvalidRequest,
        }
    }

    fn description(&self) -> String {
        match self {
            Self::StateTooLong => format!("state is longer than {MAX_STATE_BYTES} bytes"),
            Self::ResponseTypeNotCode => "response_type must be code".into(),
            Self::Challenge(e) => e.to_string(),
            Self::Scope(reason) => reason.clone(),
            Self::ForeignResource => "resource is not this server's protected resource".into(),
            Self::CustomUpstreamDisabled => {
                "custom upstream clients are not enabled on this server".into()
            }
            Self::MalformedUpstreamClientId => "upstream_client_id is malformed".into(),
            Self::NotStarted => "the sign-in could not be started; try again".into(),
        }
    }
}

/// Checks an authorization request and starts its sign-in. Who asks and
/// where to answer are checked first: failures there are [`Shown`]; the
/// rest are answered at the client's redirect URI.
pub async fn authorize(
    services: &Services,
    request: AuthorizationRequest,
) -> Result<PendingConsent, SigninError> {
    let now = services.clock.now();
    let client = known_client(services, &request, now).await?;
    let redirect_uri = redirect_uri(&client, request.redirect_uri.as_deref())?;
    let client_state = request.state.clone().unwrap_or_default();
    if client_state.len() > MAX_STATE_BYTES {
        // RFC 6749 §4.1.2.1, without echoing the oversized state back.
        let failure = AuthorizeFailure::StateTooLong;
        return Err(SigninError::Redirect(ClientRedirect::error(
            &redirect_uri,
            "",
            &failure,
        )));
    }
    let refuse = |failure: AuthorizeFailure| {
        SigninError::Redirect(ClientRedirect::error(
            &redirect_uri,
            &client_state,
            &failure,
        ))
    };
    let checked = check(services, &client, &request).map_err(refuse)?;
    let transaction = NewTransaction {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        client_state: client_state.clone(),
        code_challenge: checked.challenge.as_str().to_owned(),
        scopes: checked.scopes.tokens().to_vec(),
        resource: checked.resource,
        upstream_client_id: request.upstream_client_id.clone(),
    };
    let begin = BeginAuthorization {
        request: transaction,
        now,
    };
    let Ok(Ok(begun)) = services.broker.send(begin).await else {
        return Err(refuse(AuthorizeFailure::NotStarted));
    };
    AuditEvent::AuthorizationStarted {
        client_id: &client.client_id,
        ip: &request.ip,
    }
    .emit();
    let granted = granted_before(services, &client, &request, &checked.scopes, now).await;
    Ok(PendingConsent {
        client,
        redirect_uri,
        granted,
        scopes: checked.scopes,
        state: begun.state,
        csrf: begun.csrf,
    })
}

/// Which of `scopes` the browser's returning user (if any) already granted
/// the client. Only for the consent page's wording: an unreadable answer
/// is "none".
async fn granted_before(
    services: &Services,
    client: &ClientView,
    request: &AuthorizationRequest,
    scopes: &ScopeSet,
    now: i64,
) -> Vec<String> {
    let Some(cookie) = request.returning.as_deref() else {
        return Vec::new();
    };
    let Some(user) = super::returning::recall(services, cookie, now).await else {
        return Vec::new();
    };
    let lookup = GrantedScopes {
        client_id: client.client_id.clone(),
        user,
        now,
    };
    let granted = match services.broker.read(lookup).await {
        Ok(Ok(granted)) => granted,
        _ => return Vec::new(),
    };
    let asked = scopes.tokens().iter();
    asked.filter(|s| granted.contains(s)).cloned().collect()
}

/// The client a request names: a live registration, or the client its
/// metadata document describes.
async fn known_client(
    services: &Services,
    request: &AuthorizationRequest,
    now: i64,
) -> Result<ClientView, Shown> {
    let client_id = request.client_id.as_deref().ok_or(Shown::NoClientId)?;
    if DocumentUrl::claims(client_id) {
        let url = DocumentUrl::parse(client_id)
            .map_err(|e| Shown::ClientDocumentRefused(e.to_string()))?;
        return document_client(services, &url, &request.ip).await;
    }
    // An id this server never issues is not registered (and never reaches storage).
    let client_id = ClientId::parse(client_id).ok_or(Shown::UnknownClient)?;
    let lookup = GetClient { client_id, now };
    match services.registry.read(lookup).await {
        Ok(Ok(Some(client))) => Ok(client),
        Ok(Ok(None)) => Err(Shown::UnknownClient),
        _ => Err(Shown::ClientLookupUnavailable),
    }
}

/// The redirect URI to answer at: the requested one when the client
/// registered it, else the client's only one.
fn redirect_uri(client: &ClientView, requested: Option<&str>) -> Result<String, Shown> {
    let registered = &client.metadata.redirect_uris;
    match requested {
        Some(r) if registered.iter().any(|reg| matches_registered(reg, r)) => Ok(r.to_owned()),
        Some(_) => Err(Shown::RedirectUriNotRegistered),
        None if registered.len() == 1 => Ok(registered[0].to_string()),
        None => Err(Shown::RedirectUriNeeded),
    }
}

/// The request's checked parameters.
struct Checked {
    challenge: CodeChallenge,
    scopes: ScopeSet,
    resource: Option<String>,
}

fn check(
    services: &Services,
    client: &ClientView,
    request: &AuthorizationRequest,
) -> Result<Checked, AuthorizeFailure> {
    if request.response_type.as_deref() != Some("code") {
        return Err(AuthorizeFailure::ResponseTypeNotCode);
    }
    // `state` is optional: PKCE S256, which is mandatory here, already
    // protects the client from CSRF (OAuth 2.1 §7.5.2, RFC 9700 §2.1), and
    // the official MCP TypeScript SDK sends no state.
    let challenge = CodeChallenge::parse(
        request.code_challenge.as_deref(),
        request.code_challenge_method.as_deref(),
    )
    .map_err(AuthorizeFailure::Challenge)?;
    let scopes = requested_scopes(services, client, request.scope.as_deref())
        .map_err(AuthorizeFailure::Scope)?;
    // This server's resource however spelled; stored in its canonical form
    // (as the token endpoint compares it).
    let ours = services.config.resource();
    let resource = match request.resource.as_deref() {
        None => None,
        Some(r) if crate::domain::names_resource(r, &ours) => Some(ours),
        Some(_) => return Err(AuthorizeFailure::ForeignResource),
    };
    if let Some(id) = &request.upstream_client_id {
        if !services.config.oauth.allow_custom_upstream_clients {
            return Err(AuthorizeFailure::CustomUpstreamDisabled);
        }
        if id.chars().count() > MAX_UPSTREAM_CLIENT_ID || id.chars().any(char::is_control) {
            return Err(AuthorizeFailure::MalformedUpstreamClientId);
        }
    }
    Ok(Checked {
        challenge,
        scopes,
        resource,
    })
}

/// The scopes a sign-in asks for: the requested ones (each offered by
/// this server), or by default the server's default scopes the client
/// registered (else all the client registered).
///
/// A request may ask for more than the client's registered `scope`: that
/// field is the client's own statement (RFC 7591 §2), not the operator's
/// limit, and MCP clients register with the scopes of their first sign-in
/// and then step up (re-authorize for more) when a tool call needs a scope
/// they lack. The operator's limit is `oauth.scopes`, and the person
/// approves every scope on the consent page.
fn requested_scopes(
    services: &Services,
    client: &ClientView,
    raw: Option<&str>,
) -> Result<ScopeSet, String> {
    let config = &services.config;
    if let Some(raw) = raw {
        let asked = ScopeSet::parse(raw, config.registration.google_scope_aliases)
            .map_err(|e| e.to_string())?;
        asked
            .ensure_within(&config.registration.supported_scopes)
            .map_err(|e| e.to_string())?;
        return Ok(asked);
    }
    let defaults = config.tokens.default_scopes.clone();
    let Some(registered) = &client.metadata.scope else {
        return Ok(defaults);
    };
    let within: Vec<String> = defaults
        .tokens()
        .iter()
        .filter(|s| registered.tokens().contains(s))
        .cloned()
        .collect();
    if within.is_empty() {
        Ok(registered.clone())
    } else {
        Ok(ScopeSet::from_tokens(within))
    }
}
