//! The upstream identity provider Drawbridge signs users in with: `google`
//! (the default endpoints, overridable), `oidc` (any issuer, by discovery)
//! or `dev` (the built-in development provider in [`dev`]).
//!
//! Token calls go through `oauth2` over a `reqwest` client with rustls,
//! bounded time-outs and no redirects (SSRF).

mod build;
pub mod dev;
mod id_token;
mod identity;
mod transport;

use transport::{describe, error_chain, map_error, record, token_set};

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

impl Upstream {
    /// The operator's client at the upstream.
    pub fn default_credentials(&self) -> Option<&Credentials> {
        self.default.as_ref()
    }

    /// Where to send the browser: Drawbridge's own callback, PKCE and
    /// state, and Google's `hd` hint (one Workspace domain) when given.
    pub fn authorize_url(
        &self,
        creds: &Credentials,
        state: &str,
        challenge: &str,
        scopes: &[String],
        redirect: &str,
        hd: Option<&str>,
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
            if let Some(hd) = hd {
                q.append_pair("hd", hd);
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
            hosted_domain: claims.hosted_domain,
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
        // The ID token's `hd` stands; userinfo only adds the email.
        Ok(Identity {
            hosted_domain: identity.hosted_domain.or(info.hosted_domain),
            ..info
        })
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
