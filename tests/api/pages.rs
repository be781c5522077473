//! The pages a person sees carry the operator's name and logo (`[pages]`),
//! driven over HTTP as a browser would: the consent page, an error page,
//! the access-policy refusal; and a bad logo file stops the binary.

use crate::binary::drawbridge;
use crate::login_flow::{setup, Flow};

/// A small SVG logo, as an operator would ship one.
const LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#0a7"/></svg>"##;

/// An app named `Acme Tools` with [`LOGO`], signing in at the fake Google.
async fn branded(extra: &[(&str, &str)]) -> (Flow, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("logo.svg");
    std::fs::write(&logo, LOGO).unwrap();
    let logo = logo.display().to_string();
    let mut vars = vec![
        ("DRAWBRIDGE_PAGES__SERVICE_NAME", "Acme Tools"),
        ("DRAWBRIDGE_PAGES__LOGO_FILE", logo.as_str()),
    ];
    vars.extend_from_slice(extra);
    (setup(&vars).await, dir)
}

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[actix_web::test]
async fn the_consent_page_carries_the_operators_name_and_inline_logo_and_loads_nothing() {
    let (f, _dir) = branded(&[]).await;
    let client = f.register("none").await;
    let (res, _) = f.authorize(&client, &[]).await;
    assert_eq!(res.status(), 200);
    let csp = header(&res, "content-security-policy").to_owned();
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<title>Allow access? · Acme Tools</title>"),
        "{page}"
    );
    let logo = format!(
        "<img src=\"data:image/svg+xml;base64,{}\" alt=\"\"",
        base64_of(LOGO)
    );
    assert!(page.contains(&logo), "{page}");
    assert!(page.contains("<span>Acme Tools</span>"));
    assert!(page.contains("wants to use your account through Acme Tools."));
    assert!(page.contains("<span class=\"claim\">name not verified</span>"));
    // The logo is the only image, inline; nothing else may load.
    assert_eq!(
        csp,
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"
    );
    for external in [
        "src=\"http",
        "href=\"http",
        "url(",
        "@import",
        "<script",
        "<link",
    ] {
        assert!(!page.contains(external), "{external} in {page}");
    }
}

#[actix_web::test]
async fn error_and_refusal_pages_carry_the_operators_name_too() {
    let (f, _dir) = branded(&[("DRAWBRIDGE_ACCESS__ALLOWED_DOMAINS", "example.org")]).await;
    // An error shown, not redirected: no client_id.
    let res = f
        .browser
        .get(f.app.url("/oauth/authorize?response_type=code"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(header(&res, "content-security-policy").contains("img-src data:"));
    let page = res.text().await.unwrap();
    assert!(
        page.contains("<title>Sign-in cannot continue · Acme Tools</title>"),
        "{page}"
    );
    assert!(page.contains("<code>invalid_request</code>"));
    // The fake Google's user is not in example.org: the policy's refusal.
    let client = f.register("client_secret_post").await;
    let (res, _) = f.authorize(&client, &[]).await;
    let consent = res.text().await.unwrap();
    let landed = f.consent(&consent, "approve").await;
    assert_eq!(landed.status(), 403);
    let page = landed.text().await.unwrap();
    assert!(page.contains("<h1>Access refused</h1>"), "{page}");
    assert!(page.contains("<title>Access refused · Acme Tools</title>"));
    assert!(page.contains("<code>access_denied</code>"));
    assert!(page.contains("<footer>Sign-in gateway: Drawbridge</footer>"));
}

#[actix_web::test]
async fn without_a_logo_the_pages_allow_no_image_at_all() {
    let f = setup(&[]).await;
    let client = f.register("none").await;
    let (res, _) = f.authorize(&client, &[]).await;
    assert_eq!(
        header(&res, "content-security-policy"),
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("<title>Allow access? · Drawbridge</title>"));
    assert!(
        !page.contains("<img") && !page.contains("<footer>"),
        "{page}"
    );
}

#[test]
fn a_logo_file_that_is_missing_too_big_or_not_an_image_stops_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.svg");
    let mut svg = String::from("<svg xmlns=\"http://www.w3.org/2000/svg\">");
    svg.push_str(&" ".repeat(64 * 1024));
    svg.push_str("</svg>");
    std::fs::write(&big, svg).unwrap();
    let text = dir.path().join("logo.txt");
    std::fs::write(&text, "not an image").unwrap();
    let cases = [
        (dir.path().join("absent.png"), "cannot read"),
        (big, "a logo may be at most 65536 bytes"),
        (text, "is neither a PNG nor an SVG image"),
    ];
    for (file, problem) in cases {
        let file = file.display().to_string();
        let env = [
            ("CREDENTIAL_STORAGE_MODE", "MEMORY_ONLY"),
            ("MCP_PORT", "0"),
            ("DRAWBRIDGE_PAGES__LOGO_FILE", file.as_str()),
        ];
        let out = drawbridge(dir.path(), &env).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains("pages.logo_file") && stderr.contains(problem),
            "{stderr}"
        );
    }
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
