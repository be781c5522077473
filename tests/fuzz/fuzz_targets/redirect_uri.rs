//! Redirect URIs from strangers: what registration accepts, and where the
//! authorization endpoint sends a browser for a requested URI that matches a
//! registered one.
//!
//! Input: UTF-8 lines `registered \n requested \n allowlist pattern`; a
//! missing `requested` is the registered URI itself.
#![no_main]

use drawbridge::domain::{matches_registered, Glob, RedirectUri, RedirectUriError};
use drawbridge::http::oauth::with_query;
use libfuzzer_sys::fuzz_target;
use url::Url;

/// Schemes a redirect must never use (they run code or read local data).
const NEVER: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "blob",
    "about",
    "filesystem",
    "view-source",
    "ws",
    "wss",
];

/// How a loopback host looks once parsed.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let registered = lines.next().unwrap_or_default();
    let requested = lines.next().unwrap_or(registered);
    let pattern = lines.next();
    check_registration(registered, pattern);
    check_authorization(registered, requested);
});

fn check_registration(raw: &str, pattern: Option<&str>) {
    let open = RedirectUri::parse(raw, &[]);
    if let Ok(uri) = &open {
        check_accepted(raw, uri);
    }
    let operator = vec![
        Glob::new("https://claude.ai/*"),
        Glob::new("http://127.0.0.1:*"),
    ];
    let fuzzed = pattern.map(|p| vec![Glob::new(p)]);
    for allowlist in std::iter::once(operator).chain(fuzzed) {
        if let Ok(uri) = RedirectUri::parse(raw, &allowlist) {
            // An allowlist only narrows, except that a pattern naming a
            // custom scheme literally may admit that scheme.
            let named = |scheme: &str| {
                allowlist
                    .iter()
                    .any(|g| g.as_str().starts_with(&format!("{scheme}:")))
            };
            assert!(
                open.is_ok()
                    || matches!(&open, Err(RedirectUriError::NotAppScheme(s)) if named(s)),
                "an allowlist let through {raw:?}"
            );
            assert!(allowlist.iter().any(|g| g.matches(raw)), "{raw:?}");
            check_accepted(raw, &uri);
        }
    }
}

fn check_accepted(raw: &str, uri: &RedirectUri) {
    assert_eq!(uri.as_str(), raw, "kept exactly as sent");
    assert!(raw.len() <= 2000, "{} bytes accepted", raw.len());
    assert!(
        !raw.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\'),
        "{raw:?}"
    );
    let url = uri.url();
    assert!(!NEVER.contains(&url.scheme()), "{raw:?}");
    assert!(url.fragment().is_none(), "{raw:?}");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{raw:?}"
    );
    match url.scheme() {
        "http" => assert!(uri.is_loopback(), "plain http off loopback: {raw:?}"),
        "https" => assert!(url.host().is_some(), "{raw:?}"),
        _ => {}
    }
    if uri.is_loopback() {
        assert_eq!(url.scheme(), "http");
        let host = url.host_str().unwrap_or_default();
        assert!(
            LOOPBACK_HOSTS.contains(&host),
            "{raw:?} is called loopback but its host is {host:?}"
        );
    }
}

fn check_authorization(registered: &str, requested: &str) {
    assert!(matches_registered(registered, registered));
    if !matches_registered(registered, requested) {
        return;
    }
    // The server only ever holds URIs that registration accepted.
    let Ok(reg) = RedirectUri::parse(registered, &[]) else {
        return;
    };
    if registered != requested {
        assert!(
            reg.is_loopback(),
            "{requested:?} matched non-loopback {registered:?}"
        );
    }
    // Where the browser goes: the requested URI with the response added.
    let params = [("code", "c0de"), ("state", "s"), ("iss", "https://gw.test")];
    let sent = with_query(requested, &params);
    let sent = Url::parse(&sent).unwrap_or_else(|e| panic!("{sent:?} is not a URL: {e}"));
    let want = reg.url();
    assert_eq!(sent.scheme(), want.scheme(), "{requested:?}");
    assert_eq!(sent.host(), want.host(), "{requested:?}");
    assert_eq!(sent.path(), want.path(), "{requested:?}");
    assert!(
        sent.username().is_empty() && sent.password().is_none(),
        "{requested:?}"
    );
    assert!(sent.fragment().is_none(), "{requested:?}");
}
