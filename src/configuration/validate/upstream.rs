//! `[upstream]` and `[google]`: which identity provider, its credentials,
//! its endpoints and time-outs.

use std::time::Duration;

use url::Url;

use super::rules::{absolute_url, err, is_loopback_host, ranged};
use crate::configuration::{ConfigError, GoogleCredentials, Settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProvider {
    Google,
    Oidc,
    Dev,
}

impl UpstreamProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Oidc => "oidc",
            Self::Dev => "dev",
        }
    }
}

impl std::fmt::Display for UpstreamProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The provider and the client credentials Drawbridge holds at it.
pub(super) struct Identity {
    pub provider: UpstreamProvider,
    pub google: Option<GoogleCredentials>,
}

/// The provider, its credentials and Drawbridge's callback at it.
pub(super) fn identity(s: &Settings) -> Result<Identity, ConfigError> {
    let provider = match s.upstream.provider.as_str() {
        "google" => UpstreamProvider::Google,
        "oidc" => UpstreamProvider::Oidc,
        "dev" => UpstreamProvider::Dev,
        other => {
            return Err(err(
                "upstream.provider",
                format!("expected google, oidc or dev, got `{other}`"),
            ))
        }
    };
    let google = google_credentials(s)?;
    if provider == UpstreamProvider::Google && google.is_none() {
        return Err(err(
            "upstream.provider",
            "`google` needs google.credentials_file (GOOGLE_OAUTH_CREDENTIALS_FILE) or google.client_id and google.client_secret",
        ));
    }
    if !s.google.redirect_uri.is_empty() {
        absolute_url("google.redirect_uri", &s.google.redirect_uri)?;
    }
    Ok(Identity { provider, google })
}

/// The time-outs of upstream calls.
pub(super) struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

/// The endpoints (well-formed, and never plain HTTP beyond this machine),
/// what each provider needs, and the time-outs.
pub(super) fn endpoints(s: &Settings, identity: &Identity) -> Result<Timeouts, ConfigError> {
    let connect = ranged(
        "upstream.connect_timeout_ms",
        s.upstream.connect_timeout_ms,
        10,
        60_000,
    )?;
    let total = ranged("upstream.timeout_ms", s.upstream.timeout_ms, 10, 300_000)?;
    let u = &s.upstream;
    let configured = [
        ("upstream.issuer", &u.issuer),
        ("upstream.jwks_uri", &u.jwks_uri),
        ("upstream.auth_uri", &u.auth_uri),
        ("upstream.token_uri", &u.token_uri),
        ("upstream.userinfo_uri", &u.userinfo_uri),
        ("upstream.revocation_uri", &u.revocation_uri),
    ];
    for (key, value) in configured {
        if !value.is_empty() {
            absolute_url(key, value)?;
        }
    }
    // The issuer's keys decide who signs in, the token endpoint sees the
    // real client secret and users' tokens, the authorization endpoint
    // the user's browser: none of them over plain HTTP beyond this
    // machine (Google's credentials.json included).
    let from_file = |f: fn(&GoogleCredentials) -> &Option<String>| {
        identity
            .google
            .as_ref()
            .and_then(|g| f(g).clone())
            .unwrap_or_default()
    };
    let file_auth = from_file(|g| &g.auth_uri);
    let file_token = from_file(|g| &g.token_uri);
    let from_credentials = [
        ("google.credentials_file (auth_uri)", &file_auth),
        ("google.credentials_file (token_uri)", &file_token),
    ];
    for (key, value) in configured.into_iter().chain(from_credentials) {
        let url = Url::parse(value).ok().filter(|u| u.scheme() == "http");
        if let Some(host) = url.as_ref().and_then(|u| u.host_str()) {
            if !is_loopback_host(host) {
                return Err(err(key, format!("`{value}` uses http:// on a non-loopback host: the upstream's endpoints, ID tokens and keys must come over https://")));
            }
        }
    }
    provider_needs(s, identity)?;
    Ok(Timeouts {
        connect: Duration::from_millis(connect),
        total: Duration::from_millis(total),
    })
}

/// What each provider needs beyond the common keys.
fn provider_needs(s: &Settings, identity: &Identity) -> Result<(), ConfigError> {
    let provider = identity.provider;
    if provider == UpstreamProvider::Google
        && !s.upstream.issuer.is_empty()
        && s.upstream.jwks_uri.is_empty()
    {
        return Err(err(
            "upstream.jwks_uri",
            "the google provider with another upstream.issuer needs that issuer's JWKS URI (upstream.jwks_uri) to check its ID tokens",
        ));
    }
    if provider == UpstreamProvider::Oidc && s.upstream.issuer.is_empty() {
        return Err(err(
            "upstream.issuer",
            "the oidc provider needs the issuer URL (discovery)",
        ));
    }
    if provider == UpstreamProvider::Oidc && identity.google.is_none() {
        return Err(err("google.client_id", "the oidc provider needs the client id and secret registered at the issuer (google.client_id / google.client_secret)"));
    }
    if provider == UpstreamProvider::Dev && !is_loopback_host(&s.server.host) {
        return Err(err("upstream.provider", format!("the dev provider refuses to listen on `{}`: use a loopback address such as 127.0.0.1", s.server.host)));
    }
    Ok(())
}

/// The client credentials: `google.credentials_file`, with
/// `google.client_id`/`client_secret` winning over it, or those two alone.
fn google_credentials(s: &Settings) -> Result<Option<GoogleCredentials>, ConfigError> {
    let g = &s.google;
    if !g.credentials_file.is_empty() {
        let mut creds = GoogleCredentials::from_file(std::path::Path::new(&g.credentials_file))
            .map_err(|e| err("google.credentials_file", e))?;
        // Individual variables win over the file.
        if !g.client_id.is_empty() {
            creds.client_id = g.client_id.clone();
        }
        if !g.client_secret.0.is_empty() {
            creds.client_secret = g.client_secret.0.clone();
        }
        return Ok(Some(creds));
    }
    match (g.client_id.is_empty(), g.client_secret.0.is_empty()) {
        (true, true) => Ok(None),
        (false, _) => Ok(Some(GoogleCredentials {
            client_id: g.client_id.clone(),
            client_secret: g.client_secret.0.clone(),
            auth_uri: None,
            token_uri: None,
            redirect_uris: vec![],
        })),
        (true, false) => Err(err(
            "google.client_id",
            "google.client_secret is set but google.client_id is not",
        )),
    }
}
