use super::*;

fn ok(raw: &str) -> bool {
    RedirectUri::parse(raw, &[]).is_ok()
}

#[test]
fn https_loopback_http_and_private_schemes_are_accepted() {
    for raw in [
        "https://claude.ai/api/mcp/auth_callback",
        "http://localhost:6274/oauth/callback",
        "http://127.0.0.1:33418/",
        "http://[::1]:8080/cb",
        "cursor://anysphere.cursor-retrieval/oauth/user-callback",
        "com.example.app:/oauth2redirect",
        "HTTP://LOCALHOST:8080/cb",
        "https://Example.COM/cb",
        "https://xn--pple-43d.com/cb",
        "https://a.example/..cb/.well-known",
    ] {
        assert!(ok(raw), "{raw}");
    }
}

#[test]
fn only_an_allowlist_pattern_that_names_a_scheme_admits_it() {
    let named = [Glob::new("myapp:/cb")];
    assert!(RedirectUri::parse("myapp:/cb", &named).is_ok());
    for wide in ["*", "m*", "*:/cb"] {
        let wide = [Glob::new(wide)];
        assert_eq!(
            RedirectUri::parse("mailto:a@example.com", &wide),
            Err(RedirectUriError::NotAppScheme("mailto".into())),
        );
        assert_eq!(
            RedirectUri::parse("myapp:/cb", &wide),
            Err(RedirectUriError::NotAppScheme("myapp".into())),
        );
    }
    assert_eq!(
        RedirectUri::parse("chrome://settings", &[]),
        Err(RedirectUriError::NotAppScheme("chrome".into())),
    );
}

#[test]
fn dangerous_forms_are_refused_with_the_reason() {
    let cases = [
        (
            "javascript:alert(1)",
            RedirectUriError::ForbiddenScheme("javascript".into()),
        ),
        (
            "data:text/html,hi",
            RedirectUriError::ForbiddenScheme("data".into()),
        ),
        (
            "file:///etc/passwd",
            RedirectUriError::ForbiddenScheme("file".into()),
        ),
        (
            "vbscript:msgbox",
            RedirectUriError::ForbiddenScheme("vbscript".into()),
        ),
        ("https://example.com/cb#frag", RedirectUriError::Fragment),
        ("https://user:pw@example.com/cb", RedirectUriError::UserInfo),
        (
            "https://example.com\\@evil.com/",
            RedirectUriError::BadCharacters,
        ),
        ("http://example.com/cb", RedirectUriError::InsecureHttp),
        ("http://127.0.0.2/cb", RedirectUriError::InsecureHttp),
        (
            "http://localhost.evil.com/cb",
            RedirectUriError::InsecureHttp,
        ),
        (
            "/relative/path",
            RedirectUriError::Unparseable("relative URL without a base".into()),
        ),
        ("", RedirectUriError::Empty),
        ("http://127.0.0.1/%2e%2E/cb", RedirectUriError::DotSegment),
        ("https://a.example/x/../cb", RedirectUriError::DotSegment),
        ("http://127.0.0.1/./cb", RedirectUriError::DotSegment),
        (
            "http://1\u{ff12}7.0.0.1/cb",
            RedirectUriError::NonCanonicalHost,
        ),
        ("http://127.1/cb", RedirectUriError::NonCanonicalHost),
        ("http://2130706433/cb", RedirectUriError::NonCanonicalHost),
        ("http://[0:0::1]:80/cb", RedirectUriError::NonCanonicalHost),
        (
            "https://\u{430}pple.com/cb",
            RedirectUriError::NonCanonicalHost,
        ),
        ("https://a%2eexample/cb", RedirectUriError::NonCanonicalHost),
    ];
    for (raw, want) in cases {
        assert_eq!(RedirectUri::parse(raw, &[]), Err(want), "{raw}");
    }
}

#[test]
fn loopback_redirects_match_on_any_port_and_nothing_else() {
    assert!(matches_registered(
        "https://a.example/cb",
        "https://a.example/cb"
    ));
    assert!(!matches_registered(
        "https://a.example/cb",
        "https://a.example/cb2"
    ));
    assert!(!matches_registered(
        "https://a.example:443/cb",
        "https://a.example:8443/cb"
    ));
    assert!(matches_registered(
        "http://127.0.0.1/callback",
        "http://127.0.0.1:51234/callback"
    ));
    assert!(matches_registered(
        "http://localhost:3000/cb",
        "http://localhost:4000/cb"
    ));
    assert!(!matches_registered(
        "http://localhost:3000/cb",
        "http://127.0.0.1:3000/cb"
    ));
    assert!(!matches_registered(
        "http://127.0.0.1/callback",
        "http://127.0.0.1:5000/other"
    ));
    assert!(!matches_registered(
        "http://127.0.0.1/cb",
        "http://evil@127.0.0.1:5000/cb"
    ));
    assert!(matches_registered(
        "http://[::1]/cb",
        "http://[::1]:5000/cb"
    ));
    assert!(matches_registered(
        "HTTP://LOCALHOST:80/cb",
        "HTTP://LOCALHOST:81/cb"
    ));
    // Only the port may change: no case folding, no normalisation.
    for other in [
        "HTTP://127.0.0.1:5000/cb",
        "http://127.0.0.1:5000/CB",
        "http://127.0.0.1:5000/cb/",
        "http://127.0.0.1:5000/x/%2e%2e/cb",
        "http://127.0.0.1:5000/./cb",
        "http://2130706433:5000/cb",
        "http://127.1:5000/cb",
        "http://127.0.0.1:5000@127.0.0.1/cb",
        "http://127.0.0.1:5000/cb#x",
        "http://127.0.0.1:x/cb",
    ] {
        assert!(!matches_registered("http://127.0.0.1/cb", other), "{other}");
    }
    assert!(!matches_registered(
        "HTTP://LOCALHOST:80/cb",
        "http://localhost:80/cb"
    ));
}

#[test]
fn an_allowlist_narrows_what_is_accepted() {
    let allow = [
        Glob::new("https://claude.ai/*"),
        Glob::new("http://127.0.0.1:*"),
    ];
    assert!(RedirectUri::parse("https://claude.ai/api/mcp/auth_callback", &allow).is_ok());
    assert!(RedirectUri::parse("http://127.0.0.1:5000/cb", &allow).is_ok());
    assert_eq!(
        RedirectUri::parse("https://example.com/cb", &allow),
        Err(RedirectUriError::NotAllowlisted)
    );
}
