//! Which headers pass the gateway, in each direction, and the headers the
//! gateway sets itself: `X-Forwarded-*` from the real peer, the user's
//! upstream token, and (when enabled) who the user and client are.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponseBuilder};

use crate::configuration::Config;
use crate::domain::Cidr;
use crate::http::client_addr::forwarded_chain;
use crate::service::session::UpstreamSession;

/// Headers that belong to one connection, never forwarded in either
/// direction (RFC 9110 §7.6.1), with those a `Connection` header names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Request headers never passed on to the MCP server: the browser's cookies
/// for this origin (Drawbridge's own among them), the client's `Expect`
/// (answered here), and forwarding headers a client could forge — the
/// gateway sets `X-Forwarded-*` itself from the real peer.
const NOT_FORWARDED: &[&str] = &[
    "cookie",
    "expect",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
];

/// Whether a header of the request (or of the upstream's answer) stays on
/// this hop: hop-by-hop by definition or named by the message's `Connection`.
fn hop_by_hop(name: &str, connection_named: &[String]) -> bool {
    HOP_BY_HOP.contains(&name) || connection_named.iter().any(|n| n == name)
}

/// The header names listed in a message's `Connection` header(s), lowercased.
fn connection_named<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    values
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// The request to the MCP server with the client's end-to-end headers
/// (never its credentials, cookies or forwarding claims) and the gateway's
/// own: `X-Forwarded-*`, the user's upstream token, and the identity
/// headers when enabled.
pub(super) fn forwarded_request(
    mut upstream: reqwest::RequestBuilder,
    req: &HttpRequest,
    config: &Config,
    session: &UpstreamSession,
) -> reqwest::RequestBuilder {
    let g = &config.gateway;
    let named = connection_named(
        req.headers()
            .get_all(header::CONNECTION)
            .map(|v| v.as_bytes()),
    );
    for (name, value) in req.headers() {
        let n = name.as_str();
        if hop_by_hop(n, &named)
            || NOT_FORWARDED.contains(&n)
            || n.starts_with("x-forwarded-")
            || n == "authorization"
            || n.eq_ignore_ascii_case(&g.upstream_token_header)
            || n.starts_with("x-drawbridge-")
        {
            continue;
        }
        upstream = upstream.header(n, value.as_bytes());
    }
    if let Some(chain) = forwarded_for(req, &config.server.trusted_proxies) {
        upstream = upstream.header("x-forwarded-for", chain);
    }
    let public = &config.server.base_url;
    upstream = upstream.header("x-forwarded-proto", public.scheme());
    if let Some(host) = public.host_str() {
        let host = match public.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        upstream = upstream.header("x-forwarded-host", host);
    }
    let token = &session.access_token;
    upstream = if g
        .upstream_token_header
        .eq_ignore_ascii_case("authorization")
    {
        upstream.header("authorization", format!("Bearer {token}"))
    } else {
        upstream.header(g.upstream_token_header.as_str(), token.clone())
    };
    if g.identity_headers {
        upstream = upstream
            .header("x-drawbridge-user", session.user.clone())
            .header("x-drawbridge-client", session.client_id.as_str());
    }
    upstream
}

/// `X-Forwarded-For` for the MCP server: the real peer, appended to the
/// chain a trusted proxy passed on (see `rate_limit.trusted_proxies`);
/// without a trusted proxy in front, whatever the client claimed is dropped.
fn forwarded_for(req: &HttpRequest, trusted: &[Cidr]) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
        v4 => v4,
    };
    let mut chain: Vec<IpAddr> = Vec::new();
    if trusted.iter().any(|c| c.contains(peer)) {
        chain = forwarded_chain(req);
    }
    chain.push(peer);
    Some(
        chain
            .iter()
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Copies the MCP server's end-to-end answer headers. Not Set-Cookie: the
/// MCP server's cookies would land on Drawbridge's origin (beside its own),
/// and are never sent back (see [`NOT_FORWARDED`]). Not WWW-Authenticate:
/// challenges are this server's to make; the MCP server's would name
/// another authorization server.
pub(super) fn copy_answer_headers(res: &mut HttpResponseBuilder, answer: &reqwest::Response) {
    let named = connection_named(
        answer
            .headers()
            .get_all("connection")
            .iter()
            .map(|v| v.as_bytes()),
    );
    for (name, value) in answer.headers() {
        if hop_by_hop(name.as_str(), &named)
            || name.as_str() == "set-cookie"
            || name.as_str() == "www-authenticate"
        {
            continue;
        }
        res.append_header((name.as_str(), value.as_bytes()));
    }
}
