//! A fetched metadata document, validated into the client metadata the
//! rest of Drawbridge knows. The document is held to the same rules as a
//! registration (RFC 7591 field by field, the redirect-URI policy), plus
//! the document's own: its `client_id` is the URL exactly, the client is
//! public (`none`; a shared secret cannot be published), and grant types
//! Drawbridge does not serve are ignored rather than refused (VS Code
//! lists `device_code`).

use serde_json::{Map, Value};

use crate::domain::DocumentUrl;
use crate::domain::{
    AuthMethod, ClientMetadata, GrantType, RegistrationPolicy, RegistrationRequest, ScopeSet,
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("the client metadata document is not a JSON object")]
    NotAnObject,
    #[error("the client metadata document's client_id is not its own URL")]
    ClientIdMismatch,
    #[error("a client metadata document cannot use a shared secret (token_endpoint_auth_method `{0}`); use none")]
    SharedSecret(String),
    #[error("the client metadata document may not carry {0}")]
    Forbidden(&'static str),
    #[error("the client metadata document is invalid: {0}")]
    Metadata(String),
}

/// Validates `body`, fetched from `url`, under the registration `policy`.
pub fn validate(
    url: &DocumentUrl,
    body: &[u8],
    policy: &RegistrationPolicy,
) -> Result<ClientMetadata, DocumentError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| DocumentError::NotAnObject)?;
    let Value::Object(mut doc) = value else {
        return Err(DocumentError::NotAnObject);
    };
    if doc.get("client_id").and_then(Value::as_str) != Some(url.as_str()) {
        return Err(DocumentError::ClientIdMismatch);
    }
    for field in ["client_secret", "client_secret_expires_at"] {
        if doc.contains_key(field) {
            return Err(DocumentError::Forbidden(field));
        }
    }
    // Drawbridge's own extensions are for registered clients only.
    for field in ["upstream_client_id", "upstream_client_secret"] {
        doc.remove(field);
    }
    match doc.get("token_endpoint_auth_method") {
        None => {
            doc.insert("token_endpoint_auth_method".into(), "none".into());
        }
        Some(Value::String(m)) if m == "none" => {}
        Some(Value::String(m)) if AuthMethod::parse(m).is_some_and(AuthMethod::has_secret) => {
            return Err(DocumentError::SharedSecret(m.chars().take(40).collect()))
        }
        Some(other) => {
            let shown: String = other.to_string().chars().take(40).collect();
            return Err(DocumentError::Metadata(format!(
                "token_endpoint_auth_method {shown} is not supported (none)"
            )));
        }
    }
    keep_known_grant_types(&mut doc);
    keep_supported_scopes(&mut doc, policy);
    let request: RegistrationRequest = serde_json::from_value(Value::Object(doc))
        .map_err(|e| DocumentError::Metadata(e.to_string().chars().take(200).collect()))?;
    ClientMetadata::parse(request, policy).map_err(|e| DocumentError::Metadata(e.to_string()))
}

/// Keeps the document's `scope` to the scopes this server offers: a
/// document is written for every server the client talks to, so scopes
/// meant for others are not a reason to refuse it. With none left the
/// field goes (the client asks as any client may).
fn keep_supported_scopes(doc: &mut Map<String, Value>, policy: &RegistrationPolicy) {
    let Some(Value::String(raw)) = doc.get("scope") else {
        return;
    };
    let kept: Vec<&str> = raw
        .split(' ')
        .filter(|token| {
            ScopeSet::parse(token, policy.google_scope_aliases)
                .is_ok_and(|s| !s.is_empty() && s.ensure_within(&policy.supported_scopes).is_ok())
        })
        .collect();
    if kept.is_empty() {
        doc.remove("scope");
    } else {
        let kept = kept.join(" ");
        doc.insert("scope".into(), Value::String(kept));
    }
}

/// Drops the grant types Drawbridge does not serve; a document with none
/// left gets the default (`authorization_code`).
fn keep_known_grant_types(doc: &mut Map<String, Value>) {
    let Some(Value::Array(grants)) = doc.get("grant_types") else {
        return;
    };
    let known: Vec<Value> = grants
        .iter()
        .filter(|g| g.as_str().and_then(GrantType::parse).is_some())
        .cloned()
        .collect();
    if known.is_empty() {
        doc.remove("grant_types");
    } else {
        doc.insert("grant_types".into(), Value::Array(known));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ScopeSet;
    use serde_json::json;

    const URL: &str = "https://vscode.dev/oauth/client-metadata.json";

    fn policy() -> RegistrationPolicy {
        RegistrationPolicy {
            allowed_redirect_uris: Vec::new(),
            supported_scopes: ScopeSet::parse("openid email profile", false).unwrap(),
            google_scope_aliases: false,
            allow_custom_upstream_clients: false,
        }
    }

    fn check(doc: Value) -> Result<ClientMetadata, DocumentError> {
        validate(
            &DocumentUrl::parse(URL).unwrap(),
            doc.to_string().as_bytes(),
            &policy(),
        )
    }

    #[test]
    fn a_vs_code_style_document_is_a_public_client_and_its_device_code_grant_is_ignored() {
        let meta = check(json!({
            "client_id": URL,
            "client_name": "Visual Studio Code",
            "client_uri": "https://code.visualstudio.com",
            "redirect_uris": ["http://127.0.0.1:33418/", "https://vscode.dev/redirect"],
            "grant_types": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "some_future_field": {"x": 1}
        }))
        .unwrap();
        assert_eq!(meta.auth_method, AuthMethod::None);
        assert_eq!(
            meta.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(meta.client_name.as_deref(), Some("Visual Studio Code"));
        assert_eq!(meta.redirect_uris.len(), 2);
    }

    #[test]
    fn scopes_meant_for_other_servers_are_dropped_not_refused() {
        let meta = check(json!({"client_id": URL, "redirect_uris": ["https://vscode.dev/r"], "scope": "atproto email transition:generic openid"})).unwrap();
        assert_eq!(meta.scope.unwrap().to_string(), "email openid");
        let meta = check(json!({"client_id": URL, "redirect_uris": ["https://vscode.dev/r"], "scope": "atproto"})).unwrap();
        assert_eq!(meta.scope, None);
    }

    #[test]
    fn a_document_without_an_auth_method_is_public() {
        let meta =
            check(json!({"client_id": URL, "redirect_uris": ["https://vscode.dev/redirect"]}))
                .unwrap();
        assert_eq!(meta.auth_method, AuthMethod::None);
    }

    #[test]
    fn a_document_that_names_another_client_id_or_none_is_refused() {
        for id in [
            json!("https://vscode.dev/oauth/other.json"),
            json!(null),
            json!(URL.to_uppercase()),
        ] {
            let err = check(json!({"client_id": id, "redirect_uris": ["https://vscode.dev/r"]}))
                .unwrap_err();
            assert_eq!(err, DocumentError::ClientIdMismatch, "{id}");
        }
        let err = check(json!({"redirect_uris": ["https://vscode.dev/r"]})).unwrap_err();
        assert_eq!(err, DocumentError::ClientIdMismatch);
    }

    #[test]
    fn shared_secret_methods_and_secrets_are_refused() {
        for method in ["client_secret_post", "client_secret_basic"] {
            let err = check(json!({"client_id": URL, "redirect_uris": ["https://vscode.dev/r"], "token_endpoint_auth_method": method})).unwrap_err();
            assert!(
                matches!(err, DocumentError::SharedSecret(_)),
                "{method}: {err}"
            );
        }
        let err = check(json!({"client_id": URL, "redirect_uris": ["https://vscode.dev/r"], "client_secret": "s"})).unwrap_err();
        assert_eq!(err, DocumentError::Forbidden("client_secret"));
        let err = check(json!({"client_id": URL, "redirect_uris": ["https://vscode.dev/r"], "token_endpoint_auth_method": "private_key_jwt"})).unwrap_err();
        assert!(matches!(err, DocumentError::Metadata(_)), "{err}");
    }

    #[test]
    fn documents_that_are_not_objects_or_break_registration_rules_are_refused() {
        assert_eq!(
            validate(&DocumentUrl::parse(URL).unwrap(), b"[1,2]", &policy()).unwrap_err(),
            DocumentError::NotAnObject
        );
        assert_eq!(
            validate(
                &DocumentUrl::parse(URL).unwrap(),
                b"{\"client_id\":",
                &policy()
            )
            .unwrap_err(),
            DocumentError::NotAnObject
        );
        let err =
            check(json!({"client_id": URL, "redirect_uris": ["javascript:alert(1)"]})).unwrap_err();
        assert!(matches!(err, DocumentError::Metadata(_)), "{err}");
        let err = check(json!({"client_id": URL})).unwrap_err();
        assert!(matches!(err, DocumentError::Metadata(_)), "{err}");
    }
}
