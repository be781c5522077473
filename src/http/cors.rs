//! CORS for the endpoints browser-based MCP clients call directly (MCP
//! Inspector in direct mode, web apps): discovery, registration, token,
//! revocation and the gateway. Never on the admin API, the consent page or
//! the sign-in's browser endpoints, which answer no cross-origin script.
//!
//! Nothing here relies on cookies: credentials are never allowed
//! (`Access-Control-Allow-Credentials` is not sent), so answering any
//! origin exposes nothing a script could not already fetch itself without
//! a browser. `server.cors_allowed_origins` narrows it (`[]`: off).

use actix_cors::Cors;
use actix_web::http::{header, Method};

/// Request headers a browser client may send.
const ALLOWED_HEADERS: [&str; 8] = [
    "authorization",
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

/// Response headers a browser client may read.
const EXPOSED_HEADERS: [&str; 3] = ["www-authenticate", "mcp-session-id", "mcp-protocol-version"];

/// Which origins may call, from the configuration.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    /// `None`: any origin.
    origins: Option<Vec<String>>,
}

impl CorsPolicy {
    /// `["*"]`: any origin; otherwise exactly these origins (none: off).
    pub fn new(allowed: &[String]) -> Self {
        let any = allowed.iter().any(|o| o == "*");
        Self {
            origins: (!any).then(|| allowed.to_vec()),
        }
    }

    /// The middleware for a resource serving `methods`. Requests from an
    /// origin not allowed are still served (without CORS headers, so a
    /// browser keeps the answer from the script).
    pub fn middleware(&self, methods: &[Method]) -> Cors {
        let mut cors = Cors::default()
            .allowed_methods(methods.iter().cloned())
            .allowed_headers(ALLOWED_HEADERS.map(header::HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(header::HeaderName::from_static))
            .max_age(3600)
            .block_on_origin_mismatch(false);
        match &self.origins {
            None => cors = cors.allow_any_origin(),
            Some(origins) => {
                for origin in origins {
                    cors = cors.allowed_origin(origin);
                }
            }
        }
        cors
    }
}
