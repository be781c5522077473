//! ID-token validation (OpenID Connect Core §3.1.3.7) with the
//! `openidconnect` crate: the signature against the issuer's JWKS (fetched
//! when first needed, fetched again when a token names a key it does not
//! hold: key rotation), `iss`, `aud` (the upstream client id the code was
//! exchanged with), `exp` and the `nonce` Drawbridge sent.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    ClaimsVerificationError, ClientId, ClientSecret, IssuerUrl, JsonWebKeySetUrl, Nonce,
    SignatureVerificationError,
};
use sha2::{Digest, Sha256};

use super::{describe, Credentials, UpstreamError};

/// A JWKS is fetched again for an unknown key at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// The `nonce` sent with the authorization request of the sign-in whose
/// `state` is `state`: derived, so nothing more is stored per sign-in.
pub fn nonce_for(state: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"drawbridge-oidc-nonce\0");
    h.update(state.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

pub struct IdTokenValidator {
    /// The issuer identities are recorded under.
    pub issuer: String,
    /// Every `iss` an ID token may carry (Google's may omit the scheme).
    accepted: Vec<String>,
    jwks_uri: Option<JsonWebKeySetUrl>,
    algs: Vec<CoreJwsSigningAlgorithm>,
    keys: tokio::sync::Mutex<Keys>,
}

struct Keys {
    set: CoreJsonWebKeySet,
    fetched: Option<Instant>,
}

/// What a valid ID token says about the user.
pub struct IdClaims {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    /// Google's `hd` (Workspace domain) claim.
    pub hosted_domain: Option<String>,
}

fn invalid(reason: impl std::fmt::Display) -> UpstreamError {
    tracing::warn!(reason = %reason, "ID token refused");
    UpstreamError::Rejected {
        error: "invalid_id_token".into(),
        description: "the identity provider's ID token is not valid".into(),
    }
}

impl IdTokenValidator {
    /// A validator for `issuer`'s tokens, with its keys at `jwks_uri` (or
    /// already fetched, from discovery). `shared_secret` also accepts HS256
    /// tokens MACed with the client secret (the built-in dev provider).
    pub fn new(
        issuer: &str,
        also_accepted: &[&str],
        jwks_uri: Option<&str>,
        keys: Option<CoreJsonWebKeySet>,
        shared_secret: bool,
    ) -> Result<Self, String> {
        let jwks_uri = jwks_uri
            .map(|u| JsonWebKeySetUrl::new(u.to_owned()))
            .transpose()
            .map_err(|e| format!("JWKS URI: {e}"))?;
        let mut algs = vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            CoreJwsSigningAlgorithm::RsaSsaPssSha384,
            CoreJwsSigningAlgorithm::RsaSsaPssSha512,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EcdsaP384Sha384,
            CoreJwsSigningAlgorithm::EdDsa,
        ];
        if shared_secret {
            algs.push(CoreJwsSigningAlgorithm::HmacSha256);
        }
        let mut accepted = vec![issuer.to_owned()];
        accepted.extend(also_accepted.iter().map(|s| s.to_string()));
        Ok(Self {
            issuer: issuer.to_owned(),
            accepted,
            jwks_uri,
            algs,
            keys: tokio::sync::Mutex::new(Keys {
                fetched: keys.as_ref().map(|_| Instant::now()),
                set: keys.unwrap_or_else(|| CoreJsonWebKeySet::new(vec![])),
            }),
        })
    }

    /// Validates `jwt`, an ID token the token endpoint returned for a code
    /// exchanged with `creds`, for the sign-in that sent `nonce`.
    pub async fn validate(
        &self,
        http: &reqwest::Client,
        jwt: &str,
        creds: &Credentials,
        nonce: &str,
    ) -> Result<IdClaims, UpstreamError> {
        let token: CoreIdToken = jwt
            .parse()
            .map_err(|_| invalid(format!("unreadable ({} bytes)", jwt.len())))?;
        let mut keys = self.keys.lock().await;
        if keys.fetched.is_none() {
            self.fetch(http, &mut keys).await?;
        }
        let mut result = self.check(&token, &keys.set, creds, nonce);
        let unknown_key = matches!(
            result,
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey
            ))
        );
        if unknown_key && keys.fetched.is_some_and(|t| t.elapsed() >= REFETCH_AFTER) {
            self.fetch(http, &mut keys).await?;
            result = self.check(&token, &keys.set, creds, nonce);
        }
        drop(keys);
        let claims = result.map_err(invalid)?;
        let iss = claims.issuer().as_str();
        if !self.accepted.iter().any(|a| a == iss) {
            return Err(invalid(format!("issuer `{iss}` is not `{}`", self.issuer)));
        }
        // `hd` is not a standard claim, so the crate's claims leave it out:
        // it is read from the payload of this same token, now verified.
        let hosted_domain = super::unverified_claims(jwt)
            .as_ref()
            .and_then(super::identity::hosted_domain);
        Ok(IdClaims {
            sub: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified(),
            hosted_domain,
        })
    }

    fn check(
        &self,
        token: &CoreIdToken,
        keys: &CoreJsonWebKeySet,
        creds: &Credentials,
        nonce: &str,
    ) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
        // The issuer is compared below, against every accepted spelling.
        let any_issuer = IssuerUrl::new(self.issuer.clone())
            .or_else(|_| IssuerUrl::new("https://issuer.invalid".into()))
            .expect("a valid URL");
        let client_id = ClientId::new(creds.client_id.clone());
        let verifier = match &creds.client_secret {
            Some(secret) => CoreIdTokenVerifier::new_confidential_client(
                client_id,
                ClientSecret::new(secret.clone()),
                any_issuer,
                keys.clone(),
            ),
            None => CoreIdTokenVerifier::new_public_client(client_id, any_issuer, keys.clone()),
        }
        .require_issuer_match(false)
        .set_allowed_algs(self.algs.clone());
        token
            .clone()
            .into_claims(&verifier, &Nonce::new(nonce.to_owned()))
    }

    async fn fetch(&self, http: &reqwest::Client, keys: &mut Keys) -> Result<(), UpstreamError> {
        let Some(uri) = &self.jwks_uri else {
            // No JWKS (the dev provider): only shared-secret tokens verify.
            keys.fetched = Some(Instant::now());
            return Ok(());
        };
        let started = Instant::now();
        let result = fetch_jwks(http, uri).await;
        super::record("jwks", &result, started);
        keys.set = result?;
        keys.fetched = Some(Instant::now());
        Ok(())
    }
}

/// The issuer's signing keys (over the same client: no redirects, time-outs).
pub async fn fetch_jwks(
    http: &reqwest::Client,
    uri: &JsonWebKeySetUrl,
) -> Result<CoreJsonWebKeySet, UpstreamError> {
    let res = http
        .get(uri.as_str())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| UpstreamError::Unavailable(describe(&e)))?;
    let status = res.status().as_u16();
    if status != 200 {
        return Err(UpstreamError::Unavailable(if status >= 500 {
            format!("answered HTTP {status}")
        } else {
            format!("answered HTTP {status} with no JWKS")
        }));
    }
    let body = res
        .bytes()
        .await
        .map_err(|e| UpstreamError::Unavailable(describe(&e)))?;
    serde_json::from_slice(&body).map_err(|_| {
        UpstreamError::Unavailable(format!(
            "answered HTTP 200 with an unreadable JWKS ({} bytes)",
            body.len()
        ))
    })
}
