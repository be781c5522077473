//! The upstream identity provider Drawbridge signs users in with: `google`
//! (the default endpoints, overridable), `oidc` (any issuer, by discovery)
//! or `dev` (the built-in development provider in [`dev`]).
//!
//! Token calls go through `oauth2` over a `reqwest` client with rustls,
//! bounded time-outs and no redirects (SSRF).

pub mod dev;
mod id_token;
mod identity;

use std::fmt;

use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    RevocationUrl, StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

pub use id_token::nonce_for;
pub use identity::{canonical_issuer, claim_is_true, unverified_claims, Identity, GOOGLE_ISSUER};

use id_token::IdTokenValidator;

use crate::configuration::{Config, UpstreamProvider};

const GOOGLE_AUTH: &str = "https://accounts.google.com/o/oauth2/v2/auth";
const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";
const GOOGLE_USERINFO: &str = "https://openidconnect.googleapis.com/v1/userinfo";
const GOOGLE_REVOKE: &str = "https://oauth2.googleapis.com/revoke";
const GOOGLE_JWKS: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// The `id_token` Google and OpenID providers add to a token response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type UpstreamTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    UpstreamTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointSet,
>;

/// A client registered at the upstream: the default (operator's) one or a
/// custom one. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials({}, secret: {})",
            self.client_id,
            if self.client_secret.is_some() {
                "***"
            } else {
                "none"
            }
        )
    }
}

/// Tokens as the upstream issued them. `Debug` hides them.
#[derive(Clone)]
pub struct UpstreamTokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
    pub scopes: Vec<String>,
    pub id_token: Option<String>,
    /// The response as sent, for `token_mode = "passthrough"`.
    pub raw: serde_json::Value,
}

impl fmt::Debug for UpstreamTokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UpstreamTokenSet(expires_in: {:?}, scopes: {:?})",
            self.expires_in, self.scopes
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream answered with an OAuth error (e.g. `invalid_grant`).
    #[error("upstream refused: {error}")]
    Rejected { error: String, description: String },
    /// Time-out, connection failure, 5xx or an answer that is not OAuth.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
}

impl UpstreamError {
    /// The metrics label of a failure: `rejected` (an OAuth error),
    /// `timeout`, `unreachable` (no connection), `connection_lost` (the
    /// connection broke mid-request), `http_5xx`, `malformed` (an answer that
    /// is not OAuth), or `unavailable`.
    pub fn outcome(&self) -> &'static str {
        let UpstreamError::Unavailable(text) = self else {
            return "rejected";
        };
        if text.starts_with("timed out") {
            "timeout"
        } else if text.starts_with("connection failed") {
            "unreachable"
        } else if text.starts_with("request failed") {
            "connection_lost"
        } else if text.starts_with("answered HTTP 5") && !text.contains(" with ") {
            "http_5xx"
        } else if text.contains("unreadable") || text.contains(" with ") {
            "malformed"
        } else {
            "unavailable"
        }
    }

    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, UpstreamError::Rejected { error, .. } if error == "invalid_grant")
    }
}

#[derive(Debug, Clone)]
pub struct Endpoints {
    pub auth_uri: String,
    pub token_uri: String,
    pub userinfo_uri: Option<String>,
    pub revocation_uri: Option<String>,
}

pub struct Upstream {
    http: reqwest::Client,
    pub endpoints: Endpoints,
    default: Option<Credentials>,
    /// Parameters added to every authorization redirect.
    auth_params: Vec<(&'static str, &'static str)>,
    /// Scopes always asked for (the user's identity).
    identity_scopes: Vec<String>,
    /// Checks the ID tokens the token endpoint returns.
    id_tokens: IdTokenValidator,
}

/// The discovery document's `revocation_endpoint` (RFC 8414), which the
/// OpenID metadata type leaves out.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct RevocationMetadata {
    #[serde(default)]
    revocation_endpoint: Option<String>,
}

impl openidconnect::AdditionalProviderMetadata for RevocationMetadata {}

type ProviderMetadata = openidconnect::ProviderMetadata<
    RevocationMetadata,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreClientAuthMethod,
    openidconnect::core::CoreClaimName,
    openidconnect::core::CoreClaimType,
    openidconnect::core::CoreGrantType,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJweKeyManagementAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreResponseMode,
    openidconnect::core::CoreResponseType,
    openidconnect::core::CoreSubjectIdentifierType,
>;

impl Upstream {
    /// Builds the upstream for `config` (OpenID discovery for `oidc`).
    /// `dev` needs the credentials of the built-in provider.
    pub async fn build(config: &Config, dev: Option<Credentials>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.upstream_connect_timeout)
            .timeout(config.upstream_timeout)
            .user_agent(concat!("drawbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let s = &config.settings.upstream;
        let pick = |setting: &str, fallback: String| {
            if setting.is_empty() {
                fallback
            } else {
                setting.to_owned()
            }
        };
        let pick_opt = |setting: &str, fallback: Option<String>| {
            if setting.is_empty() {
                fallback
            } else {
                Some(setting.to_owned())
            }
        };
        let google_creds = config.google.as_ref().map(|g| Credentials {
            client_id: g.client_id.clone(),
            client_secret: Some(g.client_secret.clone()).filter(|s| !s.is_empty()),
        });
        let offline = vec![("access_type", "offline"), ("prompt", "consent")];
        let identity_scopes = vec!["openid".to_owned(), "email".to_owned()];
        match config.provider {
            UpstreamProvider::Google => {
                let file = config.google.as_ref();
                let endpoints = Endpoints {
                    auth_uri: pick(
                        &s.auth_uri,
                        file.and_then(|g| g.auth_uri.clone())
                            .unwrap_or_else(|| GOOGLE_AUTH.into()),
                    ),
                    token_uri: pick(
                        &s.token_uri,
                        file.and_then(|g| g.token_uri.clone())
                            .unwrap_or_else(|| GOOGLE_TOKEN.into()),
                    ),
                    userinfo_uri: pick_opt(&s.userinfo_uri, Some(GOOGLE_USERINFO.into())),
                    revocation_uri: pick_opt(&s.revocation_uri, Some(GOOGLE_REVOKE.into())),
                };
                // Google's fixed issuer and keys, unless the endpoints were
                // moved to another issuer (which then names its keys too:
                // configuration validation requires both).
                let id_tokens = if s.issuer.is_empty() {
                    IdTokenValidator::new(
                        GOOGLE_ISSUER,
                        &["accounts.google.com"],
                        Some(&pick(&s.jwks_uri, GOOGLE_JWKS.into())),
                        None,
                        false,
                    )
                } else {
                    IdTokenValidator::new(&s.issuer, &[], Some(&s.jwks_uri), None, false)
                }?;
                Ok(Self {
                    http,
                    endpoints,
                    default: google_creds,
                    auth_params: offline,
                    identity_scopes,
                    id_tokens,
                })
            }
            UpstreamProvider::Oidc => {
                let issuer = openidconnect::IssuerUrl::new(s.issuer.clone())
                    .map_err(|e| format!("upstream.issuer: {e}"))?;
                let doc = ProviderMetadata::discover_async(issuer, &http)
                    .await
                    .map_err(|e| {
                        format!("OpenID discovery at {}: {}", s.issuer, error_chain(&e))
                    })?;
                let mut identity_scopes = identity_scopes;
                let mut auth_params = vec![("prompt", "consent")];
                let offline_scope = doc
                    .scopes_supported()
                    .is_some_and(|all| all.iter().any(|s| s.as_str() == "offline_access"));
                if offline_scope {
                    identity_scopes.push("offline_access".into());
                } else {
                    auth_params.push(("access_type", "offline"));
                }
                let endpoints = Endpoints {
                    auth_uri: pick(&s.auth_uri, doc.authorization_endpoint().to_string()),
                    token_uri: pick(
                        &s.token_uri,
                        doc.token_endpoint()
                            .map(|u| u.to_string())
                            .ok_or("OpenID discovery: the issuer lists no token_endpoint")?,
                    ),
                    userinfo_uri: pick_opt(
                        &s.userinfo_uri,
                        doc.userinfo_endpoint().map(|u| u.to_string()),
                    ),
                    revocation_uri: pick_opt(
                        &s.revocation_uri,
                        doc.additional_metadata().revocation_endpoint.clone(),
                    ),
                };
                let jwks_uri = pick(&s.jwks_uri, doc.jwks_uri().to_string());
                // Keys fetched by discovery, unless another JWKS was configured.
                let keys = s.jwks_uri.is_empty().then(|| doc.jwks().clone());
                let id_tokens =
                    IdTokenValidator::new(&s.issuer, &[], Some(&jwks_uri), keys, false)?;
                Ok(Self {
                    http,
                    endpoints,
                    default: google_creds,
                    auth_params,
                    identity_scopes,
                    id_tokens,
                })
            }
            UpstreamProvider::Dev => {
                let endpoints = Endpoints {
                    auth_uri: pick(&s.auth_uri, config.public_url(dev::AUTHORIZE)),
                    token_uri: pick(&s.token_uri, config.public_url(dev::TOKEN)),
                    userinfo_uri: pick_opt(&s.userinfo_uri, Some(config.public_url(dev::USERINFO))),
                    revocation_uri: pick_opt(
                        &s.revocation_uri,
                        Some(config.public_url(dev::REVOKE)),
                    ),
                };
                // The dev provider MACs its ID tokens with its client secret.
                let id_tokens = IdTokenValidator::new(dev::ISSUER, &[], None, None, true)?;
                Ok(Self {
                    http,
                    endpoints,
                    default: dev,
                    auth_params: offline,
                    identity_scopes,
                    id_tokens,
                })
            }
        }
    }

    /// The operator's client at the upstream.
    pub fn default_credentials(&self) -> Option<&Credentials> {
        self.default.as_ref()
    }

    /// Where to send the browser: Drawbridge's own callback, PKCE and state.
    pub fn authorize_url(
        &self,
        creds: &Credentials,
        state: &str,
        challenge: &str,
        scopes: &[String],
        redirect: &str,
    ) -> String {
        let mut all: Vec<&str> = self.identity_scopes.iter().map(String::as_str).collect();
        for s in scopes {
            if !all.contains(&s.as_str()) {
                all.push(s);
            }
        }
        let mut url = Url::parse(&self.endpoints.auth_uri).expect("validated at start");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &creds.client_id)
                .append_pair("redirect_uri", redirect)
                .append_pair("scope", &all.join(" "))
                .append_pair("state", state)
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("nonce", &nonce_for(state));
            for (k, v) in &self.auth_params {
                q.append_pair(k, v);
            }
        }
        url.into()
    }

    fn client(
        &self,
        creds: &Credentials,
        redirect: Option<&str>,
    ) -> Result<OAuthClient, UpstreamError> {
        let token_url = TokenUrl::new(self.endpoints.token_uri.clone())
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        let revocation = self
            .endpoints
            .revocation_uri
            .clone()
            .and_then(|u| RevocationUrl::new(u).ok());
        let mut client = oauth2::Client::new(ClientId::new(creds.client_id.clone()))
            .set_token_uri(token_url)
            .set_revocation_url_option(revocation)
            .set_auth_type(AuthType::RequestBody);
        if let Some(secret) = &creds.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        if let Some(r) = redirect {
            client = client.set_redirect_uri(
                RedirectUrl::new(r.to_owned())
                    .map_err(|e| UpstreamError::Unavailable(e.to_string()))?,
            );
        }
        Ok(client)
    }

    pub async fn exchange_code(
        &self,
        creds: &Credentials,
        code: &str,
        verifier: &str,
        redirect: &str,
    ) -> Result<UpstreamTokenSet, UpstreamError> {
        let client = self.client(creds, Some(redirect))?;
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
        let started = std::time::Instant::now();
        let status = std::cell::Cell::new(None);
        let response = request
            .request_async(&|r| self.call(r, &status))
            .await
            .map_err(|e| map_error(e, status.get()));
        record("token", &response, started);
        Ok(token_set(response?))
    }

    pub async fn refresh(
        &self,
        creds: &Credentials,
        refresh_token: &str,
    ) -> Result<UpstreamTokenSet, UpstreamError> {
        let client = self.client(creds, None)?;
        let token = RefreshToken::new(refresh_token.to_owned());
        let started = std::time::Instant::now();
        let status = std::cell::Cell::new(None);
        let response = client
            .exchange_refresh_token(&token)
            .request_async(&|r| self.call(r, &status))
            .await
            .map_err(|e| map_error(e, status.get()));
        record("refresh", &response, started);
        Ok(token_set(response?))
    }

    /// Revokes a token at the upstream (RFC 7009), when it has an endpoint.
    pub async fn revoke(
        &self,
        creds: &Credentials,
        refresh_token: &str,
    ) -> Result<(), UpstreamError> {
        let client = self.client(creds, None)?;
        let token =
            StandardRevocableToken::RefreshToken(RefreshToken::new(refresh_token.to_owned()));
        let request = match client.revoke_token(token) {
            Ok(r) => r,
            Err(_) => return Ok(()),
        };
        let started = std::time::Instant::now();
        let result = request
            .request_async(&self.http)
            .await
            .map_err(|e| UpstreamError::Unavailable(e.to_string()));
        record("revoke", &result, started);
        result
    }

    /// Who signed in, for the sign-in whose `state` is `state`: the ID
    /// token, validated (signature, issuer, audience `creds`' client id,
    /// expiry, nonce), with the email from the userinfo endpoint when the
    /// token does not say it (same subject required); without an ID token,
    /// the userinfo endpoint alone.
    pub async fn identity(
        &self,
        creds: &Credentials,
        tokens: &UpstreamTokenSet,
        state: &str,
    ) -> Result<Identity, UpstreamError> {
        let issuer = self.id_tokens.issuer.as_str();
        let Some(jwt) = tokens.id_token.as_deref() else {
            return self.userinfo(issuer, &tokens.access_token).await;
        };
        let claims = self
            .id_tokens
            .validate(&self.http, jwt, creds, &nonce_for(state))
            .await?;
        let identity = Identity {
            issuer: issuer.to_owned(),
            sub: claims.sub,
            email_verified: claims.email.is_some() && claims.email_verified == Some(true),
            email: claims.email,
        };
        let says_email = identity.email.is_some() && claims.email_verified.is_some();
        if says_email || self.endpoints.userinfo_uri.is_none() {
            return Ok(identity);
        }
        let info = match self.userinfo(issuer, &tokens.access_token).await {
            Ok(info) => info,
            Err(e) => {
                // The subject is vouched for; only the email is missing.
                tracing::warn!(error = %e, "userinfo failed; signing in without an email");
                return Ok(identity);
            }
        };
        if info.sub != identity.sub {
            tracing::warn!("userinfo answered for another subject than the ID token");
            return Err(UpstreamError::Rejected {
                error: "invalid_id_token".into(),
                description: "userinfo and ID token disagree".into(),
            });
        }
        Ok(info)
    }

    async fn userinfo(&self, issuer: &str, access_token: &str) -> Result<Identity, UpstreamError> {
        let url = self.endpoints.userinfo_uri.as_deref().ok_or_else(|| {
            UpstreamError::Unavailable("no ID token and no userinfo endpoint".into())
        })?;
        let started = std::time::Instant::now();
        let result = self.call_userinfo(issuer, url, access_token).await;
        record("userinfo", &result, started);
        result
    }
}

impl Upstream {
    /// The HTTP call of a token request, noting the status it answered (so
    /// a failure can say whether the upstream answered 5xx or nonsense).
    async fn call(
        &self,
        request: oauth2::HttpRequest,
        status: &std::cell::Cell<Option<u16>>,
    ) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
        let response = oauth2::AsyncHttpClient::call(&self.http, request).await?;
        status.set(Some(response.status().as_u16()));
        Ok(response)
    }

    async fn call_userinfo(
        &self,
        issuer: &str,
        url: &str,
        access_token: &str,
    ) -> Result<Identity, UpstreamError> {
        let res = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| UpstreamError::Unavailable(describe(&e)))?;
        if !res.status().is_success() {
            let status = res.status().as_u16();
            return Err(UpstreamError::Unavailable(if status >= 500 {
                format!("answered HTTP {status}")
            } else {
                format!("answered HTTP {status} with no identity")
            }));
        }
        let claims: serde_json::Value = res
            .json()
            .await
            .map_err(|e| UpstreamError::Unavailable(describe(&e)))?;
        Identity::from_userinfo(issuer, &claims)
            .ok_or_else(|| UpstreamError::Unavailable("answered HTTP 200 with no `sub`".into()))
    }
}

fn record<T>(endpoint: &str, result: &Result<T, UpstreamError>, started: std::time::Instant) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.outcome(),
    };
    crate::metrics::upstream(endpoint, outcome, started.elapsed().as_secs_f64());
}

fn token_set(response: UpstreamTokenResponse) -> UpstreamTokenSet {
    UpstreamTokenSet {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        expires_in: response.expires_in().map(|d| d.as_secs()),
        scopes: response
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        id_token: response.extra_fields().id_token.clone(),
        raw: serde_json::to_value(&response).unwrap_or(serde_json::Value::Null),
    }
}

/// An error and its sources, for a start-up message.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_decode() {
        "an unreadable answer".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "request failed".into()
    }
}

fn map_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, BasicErrorResponse>,
    status: Option<u16>,
) -> UpstreamError {
    let answered = |what: &str| match status {
        Some(s) if s >= 500 => format!("answered HTTP {s}"),
        Some(s) => format!("answered HTTP {s} with {what}"),
        None => what.to_owned(),
    };
    match e {
        RequestTokenError::ServerResponse(r) => {
            let error = match r.error() {
                BasicErrorResponseType::Extension(x) => x.clone(),
                other => other.as_ref().to_owned(),
            };
            UpstreamError::Rejected {
                error,
                description: r.error_description().cloned().unwrap_or_default(),
            }
        }
        RequestTokenError::Request(e) => {
            let mut source: Option<&dyn std::error::Error> = Some(&e);
            let mut text = String::from("request failed");
            while let Some(s) = source {
                // oauth2 wraps reqwest's error in a Box.
                let reqwest = s
                    .downcast_ref::<reqwest::Error>()
                    .or_else(|| s.downcast_ref::<Box<reqwest::Error>>().map(|b| &**b));
                if let Some(r) = reqwest {
                    text = describe(r);
                    break;
                }
                source = s.source();
            }
            UpstreamError::Unavailable(text)
        }
        RequestTokenError::Parse(_, body) => UpstreamError::Unavailable(answered(&format!(
            "an unreadable token response ({} bytes)",
            body.len()
        ))),
        RequestTokenError::Other(m) => UpstreamError::Unavailable(answered(&m)),
    }
}
