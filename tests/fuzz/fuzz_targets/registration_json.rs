//! Registration bodies from strangers (`POST /oauth/register`, RFC 7591).
//!
//! The handler takes `web::Json<RegistrationRequest>` (actix-web decodes it
//! with `serde_json::from_slice`) and hands it to `ClientMetadata::parse`;
//! this does the same, under an open and a strict server policy, and checks
//! what was accepted.
#![no_main]

use std::sync::LazyLock;

use drawbridge::domain::{
    ClientMetadata, Glob, GrantType, RedirectUri, RegistrationPolicy, RegistrationRequest, ScopeSet,
};
use drawbridge::storage::{codec, Tree};
use libfuzzer_sys::fuzz_target;

/// Any redirect URI, every scope below, custom upstream clients allowed.
static OPEN: LazyLock<RegistrationPolicy> = LazyLock::new(|| RegistrationPolicy {
    allowed_redirect_uris: vec![],
    supported_scopes: scopes(
        "openid email profile https://www.googleapis.com/auth/drive.file \
         https://www.googleapis.com/auth/calendar.readonly",
    ),
    google_scope_aliases: true,
    allow_custom_upstream_clients: true,
});

/// Narrower in every way than [`OPEN`].
static STRICT: LazyLock<RegistrationPolicy> = LazyLock::new(|| RegistrationPolicy {
    allowed_redirect_uris: vec![
        Glob::new("https://claude.ai/*"),
        Glob::new("http://127.0.0.1:*"),
        Glob::new("http://localhost:*"),
    ],
    supported_scopes: scopes("openid email https://www.googleapis.com/auth/drive.file"),
    google_scope_aliases: true,
    allow_custom_upstream_clients: false,
});

fn scopes(raw: &str) -> ScopeSet {
    ScopeSet::parse(raw, false).expect("valid scopes")
}

fn decode(body: &[u8]) -> Option<RegistrationRequest> {
    serde_json::from_slice(body).ok()
}

fuzz_target!(|body: &[u8]| {
    let Some(request) = decode(body) else {
        return;
    };
    let secret_sent = request.upstream_client_secret.is_some();
    let open = check(ClientMetadata::parse(request, &OPEN), &OPEN, secret_sent);
    let request = decode(body).expect("decoded once already");
    let strict = check(
        ClientMetadata::parse(request, &STRICT),
        &STRICT,
        secret_sent,
    );
    if let Some(strict) = strict {
        assert_eq!(open, Some(strict), "a stricter policy accepted more");
    }
});

fn check(
    result: Result<ClientMetadata, drawbridge::domain::MetadataError>,
    policy: &RegistrationPolicy,
    secret_sent: bool,
) -> Option<ClientMetadata> {
    let m = match result {
        Ok(m) => m,
        Err(e) => {
            let code = e.code();
            assert!(
                ["invalid_redirect_uri", "invalid_client_metadata"].contains(&code),
                "{code}"
            );
            return None;
        }
    };
    check_redirect_uris(&m.redirect_uris, policy);
    let grants = &m.grant_types;
    assert!(grants.contains(&GrantType::AuthorizationCode));
    assert!(grants.len() <= 2, "{grants:?}");
    assert!(m.contacts.len() <= 10 && m.contacts.iter().all(|c| !c.is_empty()));
    if let Some(scope) = &m.scope {
        // Stored already expanded: parsing again changes nothing.
        let set = ScopeSet::parse(&scope.to_string(), policy.google_scope_aliases)
            .expect("stored scope parses");
        assert_eq!(&set, scope);
        assert!(!set.is_empty());
        set.ensure_within(&policy.supported_scopes)
            .expect("stored scope is supported");
    }
    for (name, text) in [
        ("client_name", &m.client_name),
        ("software_id", &m.software_id),
        ("software_version", &m.software_version),
        ("upstream_client_id", &m.upstream_client_id),
    ] {
        check_text(name, text.as_deref(), 200);
    }
    for (name, uri) in [
        ("logo_uri", &m.logo_uri),
        ("client_uri", &m.client_uri),
        ("policy_uri", &m.policy_uri),
        ("tos_uri", &m.tos_uri),
    ] {
        check_text(name, uri.as_deref(), 2000);
        if let Some(uri) = uri {
            let url = url::Url::parse(uri).expect("a web URI parses");
            assert!(["http", "https"].contains(&url.scheme()) && url.host().is_some());
        }
    }
    if m.upstream_client_id.is_some() || secret_sent {
        assert!(policy.allow_custom_upstream_clients);
        assert!(m.upstream_client_id.is_some(), "a secret without an id");
    }
    // The registry stores what was accepted; it must read back the same.
    let stored = codec::encode(&m).expect("metadata encodes");
    let back: ClientMetadata = codec::decode(Tree::Clients, &stored).expect("metadata decodes");
    assert_eq!(back, m);
    Some(m)
}

fn check_redirect_uris(uris: &[RedirectUri], policy: &RegistrationPolicy) {
    assert!(!uris.is_empty() && uris.len() <= 20, "{} URIs", uris.len());
    for (i, uri) in uris.iter().enumerate() {
        assert!(!uris[..i].contains(uri), "{uri:?} twice");
        RedirectUri::parse(uri, &policy.allowed_redirect_uris)
            .unwrap_or_else(|e| panic!("stored {uri:?} does not parse again: {e}"));
    }
}

fn check_text(name: &str, text: Option<&str>, max: usize) {
    let Some(text) = text else { return };
    assert!(text.chars().count() <= max, "{name} too long");
    assert!(!text.chars().any(char::is_control), "{name}: {text:?}");
    assert!(!text.trim().is_empty(), "{name} is blank");
}
