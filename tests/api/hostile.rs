//! Hostile requests against the real app, as one table. Each row is a
//! request an attacker (or a broken client) could send and what the server
//! must answer: a specific 4xx with the RFC 6749 / 7591 error body, an error
//! page that redirects nowhere, or, for input that is legitimately accepted,
//! an explicit check that it was handled safely. After the table the server
//! must still be up and the refused requests must have stored nothing.

use std::fmt::Write as _;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::ADMIN_TOKEN;
use crate::login_flow::{hidden, setup, Client, Flow, INTROSPECTION_SECRET};

/// A `state` carrying a CR LF header injection, exactly as it sits in the query.
const INJECTED_STATE_RAW: &str = "abc%0d%0aSet-Cookie:%20x=1";
const INJECTED_STATE: &str = "abc\r\nSet-Cookie: x=1";
const XSS_NAME: &str = "<script>alert(1)</script>' OR 1=1 --";
/// A redirect URI with an upper-case scheme and host: a legitimate loopback URI.
const UPPER_LOOPBACK: &str = "HTTP://LOCALHOST:8080/cb";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// What a row must get back.
enum Expect {
    /// An OAuth JSON error: this status and this `error` code.
    Json(u16, &'static str),
    /// A refused authorization request: an HTML error page with this error
    /// code, and no `Location` (never a redirect to an unverified URI).
    Page(u16, &'static str),
    /// A limit of the HTTP layer (header sizes): exactly this status.
    Status(u16),
    /// Legitimately accepted, then checked to be handled safely.
    Safe(Handled),
}

enum Handled {
    /// Registration succeeds; the consent page shows the name escaped.
    EscapedName,
    /// Registration succeeds with the URI stored exactly as sent; URIs that
    /// differ from it (case, slash, dot segments, userinfo, host) are refused
    /// at /oauth/authorize without a redirect.
    StoredAsSent,
    /// An error redirect to the client carries the state percent-encoded.
    StateEncoded,
    /// The consent page, then Deny: back to the client with the state
    /// percent-encoded.
    StateEncodedAfterConsent,
    /// RFC 7662 §2.2: an unknown token is `{"active": false}` with 200.
    Inactive,
    /// Registration succeeds; the unknown member is ignored, not echoed.
    UnknownIgnored,
}

impl Handled {
    fn stores_a_client(&self) -> bool {
        matches!(
            self,
            Handled::EscapedName | Handled::StoredAsSent | Handled::UnknownIgnored
        )
    }
}

struct Row {
    name: String,
    method: Method,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<(Option<&'static str>, Vec<u8>)>,
    expect: Expect,
}

impl Row {
    fn get(name: impl Into<String>, path: impl Into<String>, expect: Expect) -> Self {
        Row {
            name: name.into(),
            method: Method::GET,
            path: path.into(),
            headers: vec![],
            body: None,
            expect,
        }
    }

    fn post(
        name: impl Into<String>,
        path: &str,
        content_type: Option<&'static str>,
        body: impl Into<Vec<u8>>,
        expect: Expect,
    ) -> Self {
        Row {
            name: name.into(),
            method: Method::POST,
            path: path.into(),
            headers: vec![],
            body: Some((content_type, body.into())),
            expect,
        }
    }

    fn form(name: impl Into<String>, path: &str, body: impl Into<Vec<u8>>, expect: Expect) -> Self {
        Self::post(
            name,
            path,
            Some("application/x-www-form-urlencoded"),
            body,
            expect,
        )
    }

    fn json(name: impl Into<String>, path: &str, body: impl Into<Vec<u8>>, expect: Expect) -> Self {
        Self::post(name, path, Some("application/json"), body, expect)
    }

    fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

struct Outcome {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Outcome {
    fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("body is not JSON ({e}): {}", self.text()))
    }

    fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        text.chars().take(300).collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// An authorization request; `over` replaces (or, with "", drops) defaults.
fn authorize(client_id: &str, redirect_uri: &str, over: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", "s"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in over {
        pairs.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    format!("/oauth/authorize?{}", query(&pairs))
}

fn registration(uri: &str) -> Vec<u8> {
    json!({"client_name": "trick", "redirect_uris": [uri]})
        .to_string()
        .into_bytes()
}

fn rows(client: &Client) -> Vec<Row> {
    use Expect::*;
    let id = client.id.as_str();
    let cb = client.redirect.as_str();
    let port = url::Url::parse(cb).unwrap().port().unwrap();
    let big = |n: usize, c: char| c.to_string().repeat(n);
    let mut rows = vec![];

    // Sizes: headers, bodies, values.
    rows.push(
        Row::get(
            "64 KiB header value",
            "/health/live",
            Json(431, "invalid_request"),
        )
        .header("x-junk", big(64 * 1024, 'h')),
    );
    rows.push(
        Row::form(
            "64 KiB header value at /oauth/token",
            "/oauth/token",
            query(&[("grant_type", "refresh_token")]),
            Json(431, "invalid_request"),
        )
        .header("x-junk", big(64 * 1024, 'h')),
    );
    let mut many = Row::get("200 headers", "/health/live", Status(431));
    for i in 0..200 {
        many = many.header(&format!("x-h-{i}"), "v");
    }
    rows.push(many);
    rows.push(
        Row::form(
            "100 KB Basic credentials at /oauth/token",
            "/oauth/token",
            query(&[("grant_type", "refresh_token"), ("refresh_token", "x")]),
            Json(431, "invalid_request"),
        )
        .header("authorization", format!("Basic {}", big(100 * 1024, 'Q'))),
    );
    // (64 KiB is more than a client's URI type can even hold.)
    rows.push(Row::get(
        "60 KB query string at /oauth/authorize",
        format!("/oauth/authorize?client_id=mcp_{}", big(60_000, 'a')),
        Page(414, "invalid_request"),
    ));
    rows.push(Row::json(
        "128 KiB body at /oauth/register",
        "/oauth/register",
        json!({"redirect_uris": ["https://a.example/cb"], "client_name": big(128 * 1024, 'n')})
            .to_string(),
        Json(413, "invalid_request"),
    ));
    rows.push(Row::form(
        "128 KiB body at /oauth/token",
        "/oauth/token",
        query(&[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", &big(128 * 1024, 'c')),
        ]),
        Json(413, "invalid_request"),
    ));
    rows.push(Row::form(
        "100 KB client_id at /oauth/token",
        "/oauth/token",
        query(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &format!("mcp_{}", big(100 * 1024, 'B'))),
        ]),
        Json(413, "invalid_request"),
    ));
    rows.push(
        Row::form(
            "100 KB token at /oauth/introspect",
            "/oauth/introspect",
            query(&[("token", &format!("mcp_at_{}", big(100 * 1024, 'T')))]),
            Json(413, "invalid_request"),
        )
        .header("authorization", format!("Bearer {INTROSPECTION_SECRET}")),
    );
    rows.push(Row::form(
        "100 KB token at /oauth/revoke",
        "/oauth/revoke",
        query(&[("client_id", id), ("token", &big(100 * 1024, 'R'))]),
        Json(413, "invalid_request"),
    ));
    // Just under the 64 KiB body limit: the values themselves are refused.
    rows.push(Row::form(
        "60 KB client_id at /oauth/token",
        "/oauth/token",
        query(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &format!("mcp_{}", big(60_000, 'C'))),
        ]),
        Json(401, "invalid_client"),
    ));
    rows.push(Row::form(
        "60 KB refresh_token at /oauth/token",
        "/oauth/token",
        query(&[
            ("grant_type", "refresh_token"),
            ("client_id", id),
            ("refresh_token", &format!("mcp_rt_{}", big(60_000, 'r'))),
        ]),
        Json(400, "invalid_grant"),
    ));
    rows.push(Row::form(
        "60 KB code at /oauth/token",
        "/oauth/token",
        query(&[
            ("grant_type", "authorization_code"),
            ("client_id", id),
            ("code", &big(60_000, 'k')),
            ("redirect_uri", cb),
            ("code_verifier", &big(43, 'v')),
        ]),
        Json(400, "invalid_grant"),
    ));
    rows.push(
        Row::form(
            "60 KB token at /oauth/introspect",
            "/oauth/introspect",
            query(&[("token", &format!("mcp_at_{}", big(60_000, 't')))]),
            Safe(Handled::Inactive),
        )
        .header("authorization", format!("Bearer {INTROSPECTION_SECRET}")),
    );
    rows.push(Row::form(
        "60 KB client_id at /oauth/introspect",
        "/oauth/introspect",
        query(&[
            ("token", "mcp_at_x"),
            ("client_id", &format!("mcp_{}", big(60_000, 'D'))),
        ]),
        Json(401, "invalid_client"),
    ));
    rows.push(Row::form(
        "5 000 junk form parameters at /oauth/token",
        "/oauth/token",
        (0..5_000).map(|i| format!("p{i}=1&")).collect::<String>(),
        Json(400, "invalid_request"),
    ));

    // Deep nesting: serde_json's recursion limit, never a stack overflow.
    let deep = big(10_000, '[');
    rows.push(Row::json(
        "10 000 unclosed [ at /oauth/register",
        "/oauth/register",
        deep.clone(),
        Json(400, "invalid_client_metadata"),
    ));
    rows.push(Row::json(
        "10 000 nested arrays at /oauth/register",
        "/oauth/register",
        format!("{deep}{}", big(10_000, ']')),
        Json(400, "invalid_client_metadata"),
    ));
    // Unknown members are ignored (RFC 7591 §2); serde_json skips them
    // without recursion, so even the deepest that fits in a body is safe.
    for depth in [10_000, 32_000] {
        rows.push(Row::json(
            format!("{depth} nested arrays in an unknown member at /oauth/register"),
            "/oauth/register",
            format!(
                r#"{{"redirect_uris": ["https://a.example/cb"], "junk": {}{}}}"#,
                big(depth, '['),
                big(depth, ']')
            ),
            Safe(Handled::UnknownIgnored),
        ));
    }
    rows.push(Row::json(
        "10 000 nested objects (and no redirect_uris) at /oauth/register",
        "/oauth/register",
        format!("{}1{}", r#"{"a":"#.repeat(10_000), big(10_000, '}')),
        Json(400, "invalid_redirect_uri"),
    ));

    // Repeated parameters (RFC 6749 §3.1, §3.2).
    rows.push(Row::form(
        "grant_type twice at /oauth/token",
        "/oauth/token",
        format!(
            "grant_type=authorization_code&grant_type=refresh_token&client_id={id}&refresh_token=x"
        ),
        Json(400, "invalid_request"),
    ));
    rows.push(Row::form(
        "client_id twice at /oauth/token",
        "/oauth/token",
        format!("grant_type=refresh_token&refresh_token=x&client_id={id}&client_id=mcp_other"),
        Json(400, "invalid_request"),
    ));
    rows.push(
        Row::form(
            "token twice at /oauth/introspect",
            "/oauth/introspect",
            "token=a&token=b",
            Json(400, "invalid_request"),
        )
        .header("authorization", format!("Bearer {INTROSPECTION_SECRET}")),
    );
    rows.push(Row::form(
        "token twice at /oauth/revoke",
        "/oauth/revoke",
        format!("client_id={id}&token=a&token=b"),
        Json(400, "invalid_request"),
    ));
    rows.push(Row::get(
        "client_id twice at /oauth/authorize",
        format!("{}&client_id=mcp_other", authorize(id, cb, &[])),
        Page(400, "invalid_request"),
    ));
    rows.push(Row::get(
        "redirect_uri twice at /oauth/authorize",
        format!(
            "{}&{}",
            authorize(id, cb, &[]),
            query(&[("redirect_uri", "https://evil.test/cb")])
        ),
        Page(400, "invalid_request"),
    ));

    // Redirect URI tricks at registration (no allowlist: the default).
    for uri in [
        "http://127.0.0.1.evil.test/cb",
        "http://localhost@evil.test/cb",
        "http://[::1]@evil.test/cb",
        "http://[::1]:8080@evil.test/cb",
        "http://LOCALHOST.evil.test/cb",
        "HTTP://LocalHost.Evil.Test/cb",
        "hTTp://127.0.0.1.EVIL.test:8080/cb",
        "http://localhost./cb",
        "http://127.0.0.1/%2e%2e/cb",
        "http://127.0.0.1/app/%2E%2e/cb",
        "http://127.0.0.1/app/../cb",
        "http://127.0.0.1/./cb",
        "http://127.0.0.1:8080/cb#frag",
        "http://127.0.0.1:8080/cb#",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "http://1\u{ff12}7.0.0.1/cb",
        "https://\u{430}pple.com/cb",
        "http://127.1/cb",
        "http://2130706433/cb",
        "http://0x7f.0.0.1/cb",
        "http://[0:0:0:0:0:0:0:1]/cb",
        "http://127.0.0.1%40evil.test/cb",
        "http://localhost%2eevil.test/cb",
        "http://evil.test%2f@127.0.0.1/cb",
        "http://127.0.0.1\\@evil.test/cb",
        "http://127.0.0.1:99999/cb",
    ] {
        rows.push(Row::json(
            format!("register redirect URI {uri}"),
            "/oauth/register",
            registration(uri),
            Json(400, "invalid_redirect_uri"),
        ));
    }
    rows.push(Row::json(
        format!("register redirect URI {UPPER_LOOPBACK} (loopback, accepted)"),
        "/oauth/register",
        registration(UPPER_LOOPBACK),
        Safe(Handled::StoredAsSent),
    ));

    // At /oauth/authorize, a redirect URI that differs from the registered one.
    let tail = "/client/callback";
    for variant in [
        format!("HTTP://127.0.0.1:{port}{tail}"),
        format!("http://127.0.0.1:{port}/Client/callback"),
        format!("http://127.0.0.1:{port}{tail}/"),
        format!("http://127.0.0.1:{port}/client/x/%2e%2e/callback"),
        format!("http://127.0.0.1:{port}/client/./callback"),
        format!("http://evil@127.0.0.1:{port}{tail}"),
        format!("http://127.0.0.1:{port}@evil.test{tail}"),
        format!("http://127.0.0.1.evil.test:{port}{tail}"),
        format!("http://2130706433:{port}{tail}"),
        format!("http://localhost:{port}{tail}"),
        format!("http://127.0.0.1:{port}{tail}?x=1"),
        format!("http://127.0.0.1:{port}{tail}#frag"),
        format!("https://127.0.0.1:{port}{tail}"),
    ] {
        rows.push(Row::get(
            format!("authorize with redirect_uri {variant}"),
            authorize(id, &variant, &[]),
            Page(400, "invalid_request"),
        ));
    }
    rows.push(Row::get(
        "authorize with an unknown client_id holding markup",
        authorize("mcp_<script>alert(1)</script>", cb, &[]),
        Page(400, "invalid_client"),
    ));

    // Header injection through `state`.
    rows.push(Row::get(
        "CR LF in state, error redirect",
        format!(
            "{}&state={INJECTED_STATE_RAW}",
            authorize(id, cb, &[("state", ""), ("response_type", "token")])
        ),
        Safe(Handled::StateEncoded),
    ));
    rows.push(Row::get(
        "CR LF in state, consent then deny",
        format!(
            "{}&state={INJECTED_STATE_RAW}",
            authorize(id, cb, &[("state", "")])
        ),
        Safe(Handled::StateEncodedAfterConsent),
    ));

    // Markup and SQL in the client name.
    rows.push(Row::json(
        "markup and SQL in client_name",
        "/oauth/register",
        json!({"client_name": XSS_NAME, "redirect_uris": [cb], "token_endpoint_auth_method": "none"})
            .to_string(),
        Safe(Handled::EscapedName),
    ));

    // Invalid UTF-8, NUL bytes, surrogates.
    let mut bad_utf8 = br#"{"redirect_uris": ["https://a.example/cb"], "client_name": ""#.to_vec();
    bad_utf8.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    bad_utf8.extend_from_slice(br#""}"#);
    rows.push(Row::json(
        "invalid UTF-8 inside a JSON string",
        "/oauth/register",
        bad_utf8,
        Json(400, "invalid_client_metadata"),
    ));
    rows.push(Row::json(
        "lone surrogate escape in a JSON string",
        "/oauth/register",
        r#"{"redirect_uris": ["https://a.example/cb"], "client_name": "\ud800"}"#,
        Json(400, "invalid_client_metadata"),
    ));
    rows.push(Row::json(
        "NUL in client_name",
        "/oauth/register",
        r#"{"redirect_uris": ["https://a.example/cb"], "client_name": "a\u0000b"}"#,
        Json(400, "invalid_client_metadata"),
    ));
    rows.push(Row::json(
        "NUL in a redirect URI",
        "/oauth/register",
        r#"{"redirect_uris": ["http://127.0.0.1/cb\u0000.evil.test"]}"#,
        Json(400, "invalid_redirect_uri"),
    ));
    rows.push(Row::json(
        "raw NUL byte in the JSON body",
        "/oauth/register",
        b"{\"redirect_uris\": [\"https://a.example/cb\"], \"client_name\": \"a\x00b\"}".to_vec(),
        Json(400, "invalid_client_metadata"),
    ));
    rows.push(Row::form(
        "NUL in grant_type",
        "/oauth/token",
        format!("grant_type=refresh_token%00&client_id={id}&refresh_token=x"),
        Json(400, "unsupported_grant_type"),
    ));
    rows.push(Row::form(
        "NUL and invalid UTF-8 in client_id",
        "/oauth/token",
        "grant_type=refresh_token&refresh_token=x&client_id=mcp_%00%ff%fe",
        Json(401, "invalid_client"),
    ));
    let mut raw_form = b"grant_type=refresh_token&refresh_token=x&client_id=mcp_".to_vec();
    raw_form.extend_from_slice(&[0xff, 0x00, 0xc3]);
    rows.push(Row::form(
        "raw invalid UTF-8 bytes in a form body",
        "/oauth/token",
        raw_form,
        Json(401, "invalid_client"),
    ));
    rows.push(Row::get(
        "NUL in client_id at /oauth/authorize",
        authorize("mcp_\0", cb, &[]),
        Page(400, "invalid_client"),
    ));

    // Wrong content types and JSON that is not an object.
    let good = r#"{"redirect_uris": ["https://a.example/cb"]}"#;
    rows.push(Row::post(
        "text/plain JSON body at /oauth/register",
        "/oauth/register",
        Some("text/plain"),
        good,
        Json(415, "invalid_request"),
    ));
    rows.push(Row::post(
        "no Content-Type at /oauth/register",
        "/oauth/register",
        None,
        good,
        Json(415, "invalid_request"),
    ));
    rows.push(Row::form(
        "form body at /oauth/register",
        "/oauth/register",
        "redirect_uris=https%3A%2F%2Fa.example%2Fcb",
        Json(415, "invalid_request"),
    ));
    rows.push(Row::post(
        "text/plain form body at /oauth/token",
        "/oauth/token",
        Some("text/plain"),
        format!("grant_type=refresh_token&client_id={id}&refresh_token=x"),
        Json(400, "invalid_request"),
    ));
    rows.push(Row::json(
        "JSON body at /oauth/token",
        "/oauth/token",
        json!({"grant_type": "refresh_token", "client_id": id, "refresh_token": "x"}).to_string(),
        Json(400, "invalid_request"),
    ));
    rows.push(
        Row::json(
            "JSON body at /oauth/introspect",
            "/oauth/introspect",
            r#"{"token": "x"}"#,
            Json(400, "invalid_request"),
        )
        .header("authorization", format!("Bearer {INTROSPECTION_SECRET}")),
    );
    for (what, body) in [
        ("an array", r#"[1, 2, 3]"#.to_owned()),
        ("an empty array", "[]".to_owned()),
        ("a number", "42".to_owned()),
        ("a string", r#""https://a.example/cb""#.to_owned()),
        ("null", "null".to_owned()),
        ("true", "true".to_owned()),
        // serde reads a struct from a sequence of its fields, in order.
        (
            "an array of the fields in order",
            json!([
                null,
                null,
                "positional",
                ["https://a.example/cb"],
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null,
                null
            ])
            .to_string(),
        ),
    ] {
        rows.push(Row::json(
            format!("JSON body that is {what} at /oauth/register"),
            "/oauth/register",
            body,
            Json(400, "invalid_client_metadata"),
        ));
    }
    rows
}

async fn send(http: &reqwest::Client, base: &str, row: &Row) -> Result<Outcome, String> {
    let mut req = http.request(row.method.clone(), format!("{base}{}", row.path));
    let mut headers = HeaderMap::new();
    for (k, v) in &row.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_bytes(v).map_err(|e| e.to_string())?;
        headers.append(name, value);
    }
    if let Some((content_type, body)) = &row.body {
        if let Some(ct) = content_type {
            headers.insert("content-type", HeaderValue::from_static(ct));
        }
        req = req.body(body.clone());
    }
    let res = req
        .headers(headers)
        .send()
        .await
        .map_err(|e| format!("no response: {}", short(&e.to_string())))?;
    Ok(Outcome {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res
            .bytes()
            .await
            .map_err(|e| format!("body unreadable: {e}"))?
            .to_vec(),
    })
}

fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// Checks every answer gets, whatever the row.
fn baseline(out: &Outcome) -> Result<(), String> {
    ensure!(out.status < 500, "a {} for a client's mistake", out.status);
    for cookie in out.headers.get_all("set-cookie") {
        let cookie = String::from_utf8_lossy(cookie.as_bytes());
        ensure!(
            !cookie.trim_start().starts_with("x="),
            "an injected cookie was set: {cookie}"
        );
    }
    for (name, value) in &out.headers {
        ensure!(
            !value.as_bytes().iter().any(|b| *b == b'\r' || *b == b'\n'),
            "header {name} holds CR/LF"
        );
    }
    Ok(())
}

fn oauth_error(out: &Outcome, status: u16, error: &str) -> Result<(), String> {
    ensure!(
        out.status == status,
        "status {} (want {status}): {}",
        out.status,
        out.text()
    );
    let ct = out.header("content-type").unwrap_or("");
    ensure!(ct.starts_with("application/json"), "content-type `{ct}`");
    let body = out.json()?;
    ensure!(
        body["error"] == error,
        "error {} (want {error})",
        body["error"]
    );
    ensure!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "no error_description: {body}"
    );
    Ok(())
}

fn error_page(out: &Outcome, status: u16, error: &str) -> Result<(), String> {
    ensure!(
        out.status == status,
        "status {} (want {status}), location {:?}",
        out.status,
        out.header("location")
    );
    ensure!(
        out.header("location").is_none(),
        "redirected to {:?}",
        out.header("location")
    );
    ensure!(
        out.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "not an HTML page"
    );
    ensure!(
        out.header("x-frame-options") == Some("DENY"),
        "framing allowed"
    );
    let page = String::from_utf8_lossy(&out.body);
    ensure!(
        page.contains(&format!("<code>{error}</code>")),
        "page does not name `{error}`: {}",
        out.text()
    );
    ensure!(!page.contains("<script>"), "raw markup in the page");
    Ok(())
}

/// The `state` of a redirect to the client, checked to be the injected one,
/// percent-encoded.
fn state_returned_encoded(out: &Outcome, cb: &str, error: &str) -> Result<(), String> {
    ensure!(out.status == 302, "status {} (want 302)", out.status);
    let location = out.header("location").ok_or("no Location")?;
    ensure!(location.starts_with(cb), "Location {location} is not {cb}");
    ensure!(
        location.contains("state=abc%0D%0ASet-Cookie%3A+x%3D1"),
        "state not percent-encoded in {location}"
    );
    let url = url::Url::parse(location).map_err(|e| e.to_string())?;
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    ensure!(
        q.get("state").map(String::as_str) == Some(INJECTED_STATE),
        "state is {:?}",
        q.get("state")
    );
    ensure!(
        q.get("error").map(String::as_str) == Some(error),
        "error {:?}",
        q.get("error")
    );
    Ok(())
}

async fn check(
    f: &Flow,
    http: &reqwest::Client,
    client: &Client,
    row: &Row,
    out: &Outcome,
) -> Result<(), String> {
    baseline(out)?;
    let base = &f.app.address;
    match &row.expect {
        Expect::Json(status, error) => oauth_error(out, *status, error),
        Expect::Page(status, error) => error_page(out, *status, error),
        Expect::Status(status) => {
            ensure!(
                out.status == *status,
                "status {} (want {status}): {}",
                out.status,
                out.text()
            );
            Ok(())
        }
        Expect::Safe(Handled::Inactive) => {
            ensure!(out.status == 200, "status {}: {}", out.status, out.text());
            ensure!(out.json()? == json!({"active": false}), "{}", out.text());
            Ok(())
        }
        Expect::Safe(Handled::UnknownIgnored) => {
            ensure!(out.status == 201, "status {}: {}", out.status, out.text());
            let reg = out.json()?;
            ensure!(reg.get("junk").is_none(), "the unknown member was echoed");
            ensure!(
                reg["redirect_uris"] == json!(["https://a.example/cb"]),
                "{reg}"
            );
            Ok(())
        }
        Expect::Safe(Handled::StateEncoded) => {
            state_returned_encoded(out, &client.redirect, "unsupported_response_type")
        }
        Expect::Safe(Handled::StateEncodedAfterConsent) => {
            ensure!(out.status == 200, "consent page status {}", out.status);
            let page = String::from_utf8_lossy(&out.body).into_owned();
            let cookie = out
                .header("set-cookie")
                .and_then(|c| c.split(';').next())
                .ok_or("no consent cookie")?
                .to_owned();
            let form = [
                ("state", hidden(&page, "state")),
                ("csrf", hidden(&page, "csrf")),
                ("decision", "deny".to_owned()),
            ];
            let res = http
                .post(format!("{base}/oauth/consent"))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let denied = Outcome {
                status: res.status().as_u16(),
                headers: res.headers().clone(),
                body: vec![],
            };
            baseline(&denied)?;
            state_returned_encoded(&denied, &client.redirect, "access_denied")
        }
        Expect::Safe(Handled::EscapedName) => {
            ensure!(out.status == 201, "status {}: {}", out.status, out.text());
            let reg = out.json()?;
            ensure!(
                reg["client_name"] == XSS_NAME,
                "name stored as {}",
                reg["client_name"]
            );
            let id = reg["client_id"].as_str().ok_or("no client_id")?;
            let res = http
                .get(format!("{base}{}", authorize(id, &client.redirect, &[])))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            ensure!(res.status() == 200, "consent page status {}", res.status());
            let page = res.text().await.map_err(|e| e.to_string())?;
            ensure!(
                page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&#x27; OR 1=1 --"),
                "the name is not shown escaped"
            );
            ensure!(
                !page.contains("<script>alert(1)</script>"),
                "the raw name is in the page"
            );
            Ok(())
        }
        Expect::Safe(Handled::StoredAsSent) => {
            ensure!(out.status == 201, "status {}: {}", out.status, out.text());
            let reg = out.json()?;
            ensure!(
                reg["redirect_uris"] == json!([UPPER_LOOPBACK]),
                "stored as {}",
                reg["redirect_uris"]
            );
            let id = reg["client_id"].as_str().ok_or("no client_id")?;
            let get = |uri: String| {
                http.get(format!("{base}{}", authorize(id, &uri, &[])))
                    .send()
            };
            let exact = get(UPPER_LOOPBACK.to_owned())
                .await
                .map_err(|e| e.to_string())?;
            ensure!(
                exact.status() == 200,
                "the registered URI: {}",
                exact.status()
            );
            // RFC 8252 §7.3: a loopback URI may change its port, nothing else.
            let other_port = get("HTTP://LOCALHOST:51234/cb".into())
                .await
                .map_err(|e| e.to_string())?;
            ensure!(
                other_port.status() == 200,
                "another port: {}",
                other_port.status()
            );
            for trick in [
                "http://localhost:8080/cb",
                "HTTP://LOCALHOST:8080/CB",
                "HTTP://LOCALHOST:8080/cb/",
                "HTTP://LOCALHOST:8080/x/%2e%2e/cb",
                "HTTP://evil@LOCALHOST:8080/cb",
                "HTTP://LOCALHOST.evil.test:8080/cb",
                "HTTP://127.0.0.1:8080/cb",
            ] {
                let res = get(trick.to_owned()).await.map_err(|e| e.to_string())?;
                let o = Outcome {
                    status: res.status().as_u16(),
                    headers: res.headers().clone(),
                    body: res.bytes().await.map_err(|e| e.to_string())?.to_vec(),
                };
                error_page(&o, 400, "invalid_request").map_err(|e| format!("{trick}: {e}"))?;
            }
            Ok(())
        }
    }
}

async fn stats(f: &Flow) -> Value {
    let res = f
        .app
        .client
        .get(f.app.url("/admin/v1/stats"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[actix_web::test]
async fn hostile_requests_get_clear_4xx_answers_and_change_nothing() {
    let f = setup(&[(
        "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
        INTROSPECTION_SECRET,
    )])
    .await;
    let client = f.register("none").await;
    // No connection reuse: a row may leave its connection closed.
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let before = stats(&f).await;
    let table = rows(&client);
    let mut failures = String::new();
    let mut report = String::new();
    for row in &table {
        let result = match send(&http, &f.app.address, row).await {
            Ok(out) => {
                let _ = writeln!(report, "{:>5}  {}", out.status, row.name);
                check(&f, &http, &client, row, &out).await
            }
            Err(e) => {
                let _ = writeln!(report, "  ---  {}", row.name);
                Err(e)
            }
        };
        if let Err(e) = result {
            let _ = writeln!(failures, "row `{}`: {e}", row.name);
        }
    }
    println!("{report}");
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{failures}",
        failures.lines().count(),
        table.len()
    );

    // Still up, and the refused requests stored nothing.
    let live = http.get(f.app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200, "the server is still up");
    let created = table
        .iter()
        .filter(|r| matches!(&r.expect, Expect::Safe(s) if s.stores_a_client()))
        .count() as u64;
    let after = stats(&f).await;
    assert_eq!(
        after["clients"].as_u64(),
        before["clients"].as_u64().map(|n| n + created),
        "only the accepted registrations were stored"
    );
    for tree in ["grants", "tokens", "users"] {
        assert_eq!(after[tree], before[tree], "{tree} changed");
    }
    assert_eq!(f.app.client_count().await, 1 + created);
}
