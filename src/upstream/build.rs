//! Building the upstream from the configuration: the provider's endpoints
//! (Google's, overridden ones, or OpenID discovery) and its ID-token keys.

use super::*;

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
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.upstream.connect_timeout)
            .timeout(config.upstream.timeout)
            .user_agent(concat!("drawbridge/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &config.upstream.ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("upstream.ca_file: {e}"))?;
            for root in roots {
                http = http.add_root_certificate(root);
            }
        }
        let http = http.build().map_err(|e| format!("HTTP client: {e}"))?;
        let s = &config.upstream;
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
        let google_creds = config.upstream.google.as_ref().map(|g| Credentials {
            client_id: g.client_id.clone(),
            client_secret: Some(g.client_secret.clone()).filter(|s| !s.is_empty()),
        });
        let offline = vec![("access_type", "offline"), ("prompt", "consent")];
        let identity_scopes = vec!["openid".to_owned(), "email".to_owned()];
        match config.upstream.provider {
            UpstreamProvider::Google => {
                let file = config.upstream.google.as_ref();
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
}
