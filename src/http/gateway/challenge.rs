//! Which refusal the gateway answers, and with which scopes: the answer
//! itself (RFC 6750's Bearer challenge naming the resource metadata) is
//! rendered by [`crate::http::errors::resource_challenge`].

use actix_web::HttpResponse;

use crate::configuration::Config;
use crate::http::errors::resource_challenge;
use crate::mcp::JsonRpcError;
use crate::service::session::{AccessRefusal, SessionRefusal};
use crate::service::ServiceError;

/// `invalid_token` for the scopes a sign-in grants by default.
pub(super) fn invalid_token(config: &Config, description: &'static str) -> HttpResponse {
    let scope = config.tokens.default_scopes.to_string();
    resource_challenge(
        config,
        Some(ServiceError::invalid_token(description)),
        &scope,
    )
}

/// The answer to a token the gateway does not accept.
pub(super) fn access_refused(config: &Config, refusal: AccessRefusal) -> HttpResponse {
    let description = match refusal {
        AccessRefusal::NoToken => {
            return resource_challenge(config, None, &config.tokens.default_scopes.to_string());
        }
        AccessRefusal::InsufficientScope => {
            let needed = config.gateway.scopes.tokens().join(" ");
            let refusal =
                ServiceError::insufficient_scope("the access token lacks a required scope");
            return resource_challenge(config, Some(refusal), &needed);
        }
        AccessRefusal::Unavailable => {
            let refusal = ServiceError::storage("the token service did not answer");
            return resource_challenge(config, Some(refusal), "");
        }
        AccessRefusal::UnknownToken => "the access token is unknown, expired or revoked",
        AccessRefusal::OtherResource => "the access token is for another resource",
        AccessRefusal::ClientGone => "the client is disabled, expired or no longer registered",
    };
    invalid_token(config, description)
}

/// 403 `insufficient_scope` naming every scope the MCP calls need
/// (`needed`, space-separated), so the client re-authorizes for them.
pub(super) fn insufficient_scope(config: &Config, needed: &str) -> HttpResponse {
    let refusal =
        ServiceError::insufficient_scope("the access token lacks a scope this MCP call needs");
    resource_challenge(config, Some(refusal), needed)
}

/// 400 for a body that is not MCP JSON-RPC (or disagrees with its
/// `Mcp-Method`/`Mcp-Name` headers), shaped as a JSON-RPC error without an
/// id, as an MCP server answers one: parse error (-32700) when it is not
/// JSON, invalid request (-32600) otherwise.
pub(super) fn malformed(e: JsonRpcError) -> HttpResponse {
    let code = match e {
        JsonRpcError::NotJson | JsonRpcError::DuplicateKey => -32700,
        _ => -32600,
    };
    HttpResponse::BadRequest()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": code, "message": e.to_string()},
        }))
}

/// The answer when the user's upstream token cannot be had.
pub(super) fn session_refused(config: &Config, refusal: SessionRefusal) -> HttpResponse {
    match refusal {
        SessionRefusal::Credentials(e) => resource_challenge(config, Some(e.into()), ""),
        SessionRefusal::Revoked => invalid_token(
            config,
            "access was withdrawn at the identity provider; sign in again",
        ),
        SessionRefusal::NotAllowed(_) => invalid_token(
            config,
            "this account is no longer allowed to use this service",
        ),
        SessionRefusal::Unavailable => resource_challenge(
            config,
            Some(ServiceError::unavailable(
                "the identity provider is unavailable; try again",
            )),
            "",
        ),
    }
}
