//! RFC 7591 client metadata: the raw request and its validated form.

use serde::{Deserialize, Serialize};

use super::{ApplicationType, Glob, RedirectUri, RedirectUriError, ScopeError, ScopeSet};

const MAX_REDIRECT_URIS: usize = 20;
const MAX_CONTACTS: usize = 10;
const MAX_NAME_CHARS: usize = 200;
const MAX_TEXT_CHARS: usize = 2000;

/// A registration or update request as sent (RFC 7591 §2). Unknown fields
/// are ignored, as RFC 7591 requires. The body must be a JSON object.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(remote = "Self")]
#[schema(example = json!({"client_name": "MCP Inspector", "redirect_uris": ["http://localhost:6274/oauth/callback"], "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}))]
pub struct RegistrationRequest {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub logo_uri: Option<String>,
    pub client_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    /// `native` or `web` (OpenID Connect Registration §2); inferred from
    /// the redirect URIs when left out.
    pub application_type: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    /// Custom upstream client (source document): the client's own Google client.
    pub upstream_client_id: Option<String>,
    pub upstream_client_secret: Option<String>,
}

/// The derived reader would also take the fields from a JSON array, in
/// order; RFC 7591 §3.1 asks for an object, so anything else is refused.
impl<'de> Deserialize<'de> for RegistrationRequest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> serde::de::Visitor<'de> for ObjectOnly {
            type Value = RegistrationRequest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object of client metadata")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                RegistrationRequest::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(ObjectOnly)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthMethod {
    None,
    ClientSecretPost,
    ClientSecretBasic,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [
        AuthMethod::None,
        AuthMethod::ClientSecretPost,
        AuthMethod::ClientSecretBasic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == raw)
    }

    /// Whether clients using this method hold a secret.
    pub fn has_secret(self) -> bool {
        self != AuthMethod::None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [GrantType::AuthorizationCode, GrantType::RefreshToken]
            .into_iter()
            .find(|g| g.as_str() == raw)
    }
}

/// What the server allows clients to register.
#[derive(Debug, Clone)]
pub struct RegistrationPolicy {
    pub allowed_redirect_uris: Vec<Glob>,
    pub supported_scopes: ScopeSet,
    pub google_scope_aliases: bool,
    pub allow_custom_upstream_clients: bool,
}

/// Validated client metadata, as stored in the client record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub client_name: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub scope: Option<ScopeSet>,
    pub contacts: Vec<String>,
    pub logo_uri: Option<String>,
    pub client_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub auth_method: AuthMethod,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub upstream_client_id: Option<String>,
    pub application_type: ApplicationType,
}

/// Why metadata was refused; `code()` is the RFC 7591 §3.2.2 error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    RedirectUri(String),
    #[error("{0}")]
    Invalid(String),
}

impl MetadataError {
    pub fn code(&self) -> &'static str {
        match self {
            MetadataError::RedirectUri(_) => "invalid_redirect_uri",
            MetadataError::Invalid(_) => "invalid_client_metadata",
        }
    }
}

fn invalid(msg: impl Into<String>) -> MetadataError {
    MetadataError::Invalid(msg.into())
}

impl ClientMetadata {
    pub fn parse(
        req: RegistrationRequest,
        policy: &RegistrationPolicy,
    ) -> Result<Self, MetadataError> {
        let redirect_uris = parse_redirect_uris(req.redirect_uris, policy)?;
        let application_type = match req.application_type.as_deref() {
            None => ApplicationType::inferred(&redirect_uris),
            Some(raw) => ApplicationType::parse(raw).ok_or_else(|| {
                invalid(format!(
                    "application_type `{}` is not supported (native, web)",
                    truncate(raw)
                ))
            })?,
        };
        if let Some(uri) = redirect_uris.iter().find(|u| !application_type.allows(u)) {
            return Err(MetadataError::RedirectUri(format!(
                "a web client's redirect URIs must be https and not on loopback: {}",
                truncate(uri)
            )));
        }
        let grant_types = parse_grant_types(req.grant_types)?;
        if let Some(types) = req.response_types {
            if types.is_empty() || types.iter().any(|t| t != "code") {
                return Err(invalid("response_types must be [\"code\"]"));
            }
        }
        let auth_method = match req.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::ClientSecretPost,
            Some(raw) => AuthMethod::parse(raw).ok_or_else(|| {
                invalid(format!(
                    "token_endpoint_auth_method `{}` is not supported (none, client_secret_post, client_secret_basic)",
                    truncate(raw)
                ))
            })?,
        };
        let scope = match req
            .scope
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(raw) => {
                let set = ScopeSet::parse(raw, policy.google_scope_aliases).map_err(scope_error)?;
                set.ensure_within(&policy.supported_scopes)
                    .map_err(scope_error)?;
                Some(set)
            }
        };
        let upstream_client_id =
            text("upstream_client_id", req.upstream_client_id, MAX_NAME_CHARS)?;
        if (upstream_client_id.is_some() || req.upstream_client_secret.is_some())
            && !policy.allow_custom_upstream_clients
        {
            return Err(invalid(
                "custom upstream clients (upstream_client_id) are not enabled on this server",
            ));
        }
        if req.upstream_client_secret.is_some() && upstream_client_id.is_none() {
            return Err(invalid("upstream_client_secret needs upstream_client_id"));
        }
        let contacts = req.contacts.unwrap_or_default();
        if contacts.len() > MAX_CONTACTS
            || contacts
                .iter()
                .any(|c| c.is_empty() || c.chars().count() > 320)
        {
            return Err(invalid(format!(
                "contacts: at most {MAX_CONTACTS} non-empty addresses"
            )));
        }
        Ok(Self {
            client_name: text("client_name", req.client_name, MAX_NAME_CHARS)?,
            redirect_uris,
            grant_types,
            scope,
            contacts,
            logo_uri: web_uri("logo_uri", req.logo_uri)?,
            client_uri: web_uri("client_uri", req.client_uri)?,
            policy_uri: web_uri("policy_uri", req.policy_uri)?,
            tos_uri: web_uri("tos_uri", req.tos_uri)?,
            auth_method,
            software_id: text("software_id", req.software_id, MAX_NAME_CHARS)?,
            software_version: text("software_version", req.software_version, MAX_NAME_CHARS)?,
            upstream_client_id,
            application_type,
        })
    }

    pub fn grant_type_names(&self) -> Vec<&'static str> {
        self.grant_types.iter().map(|g| g.as_str()).collect()
    }
}

fn parse_redirect_uris(
    raw: Option<Vec<String>>,
    policy: &RegistrationPolicy,
) -> Result<Vec<RedirectUri>, MetadataError> {
    let uris = raw.unwrap_or_default();
    if uris.is_empty() {
        return Err(MetadataError::RedirectUri(
            "redirect_uris is required and must not be empty".into(),
        ));
    }
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(MetadataError::RedirectUri(format!(
            "at most {MAX_REDIRECT_URIS} redirect_uris"
        )));
    }
    let mut out: Vec<RedirectUri> = Vec::with_capacity(uris.len());
    for raw in uris {
        let uri = RedirectUri::parse(&raw, &policy.allowed_redirect_uris).map_err(
            |e: RedirectUriError| MetadataError::RedirectUri(format!("{e}: {}", truncate(&raw))),
        )?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

fn parse_grant_types(raw: Option<Vec<String>>) -> Result<Vec<GrantType>, MetadataError> {
    let raw = raw.unwrap_or_else(|| vec!["authorization_code".into()]);
    let mut out = Vec::new();
    for g in &raw {
        let grant = GrantType::parse(g).ok_or_else(|| {
            invalid(format!(
                "grant type `{}` is not supported (authorization_code, refresh_token)",
                truncate(g)
            ))
        })?;
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    if !out.contains(&GrantType::AuthorizationCode) {
        return Err(invalid("grant_types must include authorization_code"));
    }
    Ok(out)
}

fn scope_error(e: ScopeError) -> MetadataError {
    invalid(e.to_string())
}

fn text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, MetadataError> {
    match value {
        Some(v) if v.chars().count() > max => {
            Err(invalid(format!("{field} is longer than {max} characters")))
        }
        Some(v) if v.chars().any(char::is_control) => {
            Err(invalid(format!("{field} contains control characters")))
        }
        Some(v) if v.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// A URI shown to users (logo, home page, policy): http(s) only.
fn web_uri(field: &str, value: Option<String>) -> Result<Option<String>, MetadataError> {
    let Some(v) = text(field, value, MAX_TEXT_CHARS)? else {
        return Ok(None);
    };
    match url::Url::parse(&v) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => {
            Ok(Some(v))
        }
        _ => Err(invalid(format!("{field} must be an absolute http(s) URL"))),
    }
}

fn truncate(raw: &str) -> String {
    let mut s: String = raw.chars().take(100).collect();
    if s.len() < raw.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RegistrationPolicy {
        RegistrationPolicy {
            allowed_redirect_uris: vec![],
            supported_scopes: ScopeSet::parse(
                "openid email https://www.googleapis.com/auth/drive.file",
                false,
            )
            .unwrap(),
            google_scope_aliases: true,
            allow_custom_upstream_clients: false,
        }
    }

    fn req(json: serde_json::Value) -> RegistrationRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_follow_the_source_document() {
        let m = ClientMetadata::parse(
            req(serde_json::json!({"redirect_uris": ["https://a.example/cb"]})),
            &policy(),
        )
        .unwrap();
        assert_eq!(m.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(m.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(m.scope, None);
    }

    #[test]
    fn scope_aliases_are_checked_against_the_configured_scopes() {
        let m = ClientMetadata::parse(
            req(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "scope": "openid drive.file"})),
            &policy(),
        )
        .unwrap();
        assert_eq!(
            m.scope.map(|s| s.to_string()).as_deref(),
            Some("openid https://www.googleapis.com/auth/drive.file")
        );
        let err = ClientMetadata::parse(
            req(serde_json::json!({"redirect_uris": ["https://a.example/cb"], "scope": "gmail.send"})),
            &policy(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_client_metadata");
    }

    #[test]
    fn unsupported_methods_and_grants_are_refused() {
        for body in [
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            serde_json::json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:alert(1)"}),
        ] {
            let err = ClientMetadata::parse(req(body.clone()), &policy()).unwrap_err();
            assert_eq!(err.code(), "invalid_client_metadata", "{body}");
        }
        let err = ClientMetadata::parse(req(serde_json::json!({"redirect_uris": []})), &policy())
            .unwrap_err();
        assert_eq!(err.code(), "invalid_redirect_uri");
    }

    #[test]
    fn only_a_json_object_is_read() {
        let positional = r#"[null, null, "x", ["https://a.example/cb"], null, null, null, null,
            null, null, null, null, null, null, null, null, null]"#;
        for body in [positional, "[]", "42", "null", r#""x""#] {
            assert!(
                serde_json::from_str::<RegistrationRequest>(body).is_err(),
                "{body}"
            );
        }
        let read: RegistrationRequest =
            serde_json::from_str(r#"{"client_name": "x", "extra": [1]}"#).unwrap();
        assert_eq!(read.client_name.as_deref(), Some("x"));
    }
}
