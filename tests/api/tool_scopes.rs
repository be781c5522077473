//! Which tools a token may call (`gateway.tool_scopes`,
//! `gateway.method_scopes`), driven with raw JSON-RPC as an MCP client
//! sends it: refusals never reach the MCP server, and each call leaves an
//! audit record and a metric.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::helpers::captured_logs;
use crate::login_flow::{setup, Client, Flow, Login, INTROSPECTION_SECRET};

const G: &str = "https://www.googleapis.com/auth/";

/// A stand-in MCP server that counts the requests it receives: `tools/list`
/// lists three tools (as JSON, or as one event under `/sse`); anything else
/// gets an empty result.
fn counting_mcp() -> (String, Arc<AtomicUsize>) {
    let contacts = Arc::new(AtomicUsize::new(0));
    let counter = contacts.clone();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let body = String::from_utf8_lossy(&body);
                if !body.contains("tools/list") {
                    return HttpResponse::Ok()
                        .json(json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
                }
                let list = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
                    {"name": "read_file"}, {"name": "delete_file"}, {"name": "send_email"}]}});
                if req.path() == "/sse" {
                    return HttpResponse::Ok()
                        .content_type("text/event-stream")
                        .body(format!("event: message\ndata: {list}\n\n"));
                }
                HttpResponse::Ok().json(list)
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    (format!("http://127.0.0.1:{port}"), contacts)
}

/// Reading tools need `drive.readonly` (every sign-in has it); sending and
/// deleting need `gmail.send`, which a client only gets by asking for it;
/// so does reading resources.
const TABLE: &[(&str, &str)] = &[
    (
        "GOOGLE_OAUTH_SCOPES",
        "openid email profile drive.readonly gmail.send",
    ),
    (
        "DRAWBRIDGE_OAUTH__DEFAULT_SCOPES",
        "openid email profile drive.readonly",
    ),
    (
        "DRAWBRIDGE_GATEWAY__TOOL_SCOPES",
        "read_*=drive.readonly; send_email=gmail.send drive.readonly; delete_file=gmail.send",
    ),
    (
        "DRAWBRIDGE_GATEWAY__METHOD_SCOPES",
        "resources/read=gmail.send",
    ),
    ("DRAWBRIDGE_GATEWAY__FILTER_TOOLS_LIST", "true"),
];

struct Mcp {
    f: Flow,
    client: Client,
    access: String,
    contacts: Arc<AtomicUsize>,
}

async fn signed_in() -> Mcp {
    let (upstream, contacts) = counting_mcp();
    let mut vars = vec![
        ("GATEWAY_UPSTREAM_URL", upstream.as_str()),
        (
            "DRAWBRIDGE_OAUTH__INTROSPECTION_SECRET",
            INTROSPECTION_SECRET,
        ),
    ];
    vars.extend_from_slice(TABLE);
    let f = setup(&vars).await;
    let client = f.register("client_secret_post").await;
    let login = f.login(&client).await;
    let (status, tokens) = f.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        tokens["scope"],
        format!("openid email profile {G}drive.readonly")
    );
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    crate::helpers::remember_secret(&access);
    Mcp {
        f,
        client,
        access,
        contacts,
    }
}

impl Mcp {
    async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self
            .f
            .app
            .client
            .post(self.f.app.url(path))
            .bearer_auth(&self.access)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    async fn call(&self, body: &str) -> reqwest::Response {
        self.post("/mcp", body, &[]).await
    }

    fn contacts(&self) -> usize {
        self.contacts.load(Ordering::SeqCst)
    }

    /// Sends `body` and expects a 400 JSON-RPC error with `code`, the MCP
    /// server not contacted.
    async fn malformed(&self, body: &str, headers: &[(&str, &str)], code: i64) {
        let before = self.contacts();
        let res = self.post("/mcp", body, headers).await;
        assert_eq!(res.status(), 400, "{body}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["id"], Value::Null);
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        assert_eq!(self.contacts(), before, "{body} reached the MCP server");
    }
}

fn tool_call(id: u32, name: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": {"secret_argument": "never-logged-8213"}}}).to_string()
}

/// Asserts a 403 `insufficient_scope` naming exactly `scope`.
async fn refused(res: reqwest::Response, scope: &str, f: &Flow) {
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!("scope=\"{scope}\"")),
        "{challenge}"
    );
    let metadata = f.app.config.resource_metadata_url();
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata}\"")),
        "{challenge}"
    );
}

#[actix_web::test]
async fn a_call_within_the_token_scopes_passes_and_one_beyond_them_is_403_without_reaching_the_mcp_server(
) {
    let m = signed_in().await;
    let res = m.call(&tool_call(1, "read_file")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(m.contacts(), 1);
    // Tools no rule names, and methods without a rule, pass.
    assert_eq!(m.call(&tool_call(2, "unlisted")).await.status(), 200);
    let init = r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{}}"#;
    assert_eq!(m.call(init).await.status(), 200);
    assert_eq!(m.contacts(), 3);

    // send_email needs gmail.send besides drive.readonly: the challenge
    // names both (everything the call needs, not only what is missing).
    let res = m.call(&tool_call(4, "send_email")).await;
    refused(res, &format!("{G}drive.readonly {G}gmail.send"), &m.f).await;
    // An exact rule and a method rule refuse just the same.
    refused(
        m.call(&tool_call(5, "delete_file")).await,
        &format!("{G}gmail.send"),
        &m.f,
    )
    .await;
    let read =
        r#"{"jsonrpc":"2.0","id":6,"method":"resources/read","params":{"uri":"file:///etc/motd"}}"#;
    refused(m.call(read).await, &format!("{G}gmail.send"), &m.f).await;
    assert_eq!(m.contacts(), 3, "no refused call reached the MCP server");

    // A batch needs the union of its calls' scopes: one call beyond the
    // token refuses the whole batch.
    let batch = format!(
        "[{},{},{}]",
        tool_call(7, "read_file"),
        tool_call(8, "delete_file"),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
    );
    refused(
        m.call(&batch).await,
        &format!("{G}drive.readonly {G}gmail.send"),
        &m.f,
    )
    .await;
    assert_eq!(m.contacts(), 3);
    // Notifications (alone or with allowed calls) pass.
    let batch = format!(
        "[{},{}]",
        tool_call(9, "read_report"),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
    );
    assert_eq!(m.call(&batch).await.status(), 200);
    let note = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#;
    assert_eq!(m.call(note).await.status(), 200);
    assert_eq!(m.contacts(), 5);
}

#[actix_web::test]
async fn malformed_bodies_and_disagreeing_headers_are_400_without_reaching_the_mcp_server() {
    let m = signed_in().await;
    m.malformed("{not json", &[], -32700).await;
    m.malformed("", &[], -32700).await;
    let twice = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"delete_file"}}"#;
    m.malformed(twice, &[], -32700).await;
    m.malformed("[]", &[], -32600).await;
    m.malformed(r#"{"id":1,"method":"tools/call"}"#, &[], -32600)
        .await;
    m.malformed(
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
        &[],
        -32600,
    )
    .await;
    let call = tool_call(1, "read_file");
    m.malformed(&call, &[("Mcp-Method", "tools/list")], -32600)
        .await;
    m.malformed(
        &call,
        &[("Mcp-Method", "tools/call"), ("Mcp-Name", "delete_file")],
        -32600,
    )
    .await;
    m.malformed(&call, &[("Mcp-Name", "read_file")], -32600)
        .await;
    // Headers that agree pass.
    let agree = [("Mcp-Method", "tools/call"), ("Mcp-Name", "read_file")];
    assert_eq!(m.post("/mcp", &call, &agree).await.status(), 200);
    assert_eq!(m.contacts(), 1);
}

#[actix_web::test]
async fn re_authorizing_for_the_union_of_scopes_gives_a_token_that_passes() {
    let m = signed_in().await;
    let res = m.call(&tool_call(1, "send_email")).await;
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let needed = challenge
        .split("scope=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    // The client asks for what it had and what the challenge names.
    let union = format!("openid email profile {needed}");
    let (res, verifier) = m.f.authorize(&m.client, &[("scope", union.as_str())]).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    // This browser signed in before: the consent page lists only the new
    // scope as new, the four granted ones apart.
    let (new, before) = page
        .split_once("Already allowed (4)")
        .unwrap_or_else(|| panic!("{page}"));
    assert!(new.contains("Send email on your behalf"), "{page}");
    assert!(!new.contains("See your email address"), "{page}");
    assert!(before.contains("See your email address"), "{page}");
    assert!(!before.contains("Send email on your behalf"), "{page}");
    // Another browser, or one whose cookie is not this server's, sees
    // every scope as new.
    for cookie in [
        None,
        Some(format!(
            "drawbridge_user=u_AAAAAAAAAAAAAAAA.9999999999.{}",
            "0".repeat(64)
        )),
    ] {
        let other = reqwest::Client::new();
        let mut req = other.get(m.f.app.url("/oauth/authorize")).query(&[
            ("response_type", "code"),
            ("client_id", m.client.id.as_str()),
            ("redirect_uri", m.client.redirect.as_str()),
            ("code_challenge", &"a".repeat(43)),
            ("code_challenge_method", "S256"),
            ("scope", union.as_str()),
        ]);
        if let Some(cookie) = &cookie {
            req = req.header("cookie", cookie);
        }
        let elsewhere = req.send().await.unwrap().text().await.unwrap();
        assert!(
            elsewhere.contains("Send email on your behalf"),
            "{elsewhere}"
        );
        assert!(
            !elsewhere.contains("Already allowed"),
            "{cookie:?}: {elsewhere}"
        );
    }
    let landed = m.f.consent(&page, "approve").await;
    let q: Value = landed.json().await.unwrap();
    let login = Login {
        code: q["code"].as_str().unwrap().to_owned(),
        verifier,
    };
    let (status, tokens) = m.f.exchange(&m.client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    let stepped_up = tokens["access_token"].as_str().unwrap();
    crate::helpers::remember_secret(stepped_up);
    let res =
        m.f.app
            .client
            .post(m.f.app.url("/mcp"))
            .bearer_auth(stepped_up)
            .header("content-type", "application/json")
            .body(tool_call(2, "send_email"))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(m.contacts(), 1);
}

fn listed(answer: &Value) -> Vec<&str> {
    answer["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn tools_list_answers_keep_only_the_tools_the_token_may_call() {
    let m = signed_in().await;
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    let res = m.call(list).await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(listed(&answer), ["read_file"]);
    // The same answer as one Server-Sent Event.
    let res = m.post("/mcp/sse", list, &[]).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let answer: Value = serde_json::from_str(data).unwrap();
    assert_eq!(listed(&answer), ["read_file"], "{text}");
    assert!(text.starts_with("event: message\n"), "{text}");
}

#[actix_web::test]
async fn each_call_is_audited_and_counted_with_bounded_labels_never_with_its_arguments() {
    let m = signed_in().await;
    let count = |metrics: &str, labels: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("drawbridge_mcp_requests_total{{{labels}}}")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let allowed = r#"method="tools/call",outcome="allowed",tool="other""#;
    let refused_send = r#"method="tools/call",outcome="refused_scope",tool="send_email""#;
    let bad = r#"method="other",outcome="bad_request",tool="other""#;
    let before = m.f.app.metrics().await;
    assert_eq!(m.call(&tool_call(1, "read_file")).await.status(), 200);
    assert_eq!(m.call(&tool_call(2, "send_email")).await.status(), 403);
    assert_eq!(m.call("{oops").await.status(), 400);
    let after = m.f.app.metrics().await;
    // Other tests count too (one process): each count rose. read_file
    // matches only a glob: its name is not a label.
    assert!(count(&after, allowed) > count(&before, allowed), "{after}");
    assert!(
        count(&after, refused_send) > count(&before, refused_send),
        "{after}"
    );
    assert!(count(&after, bad) > count(&before, bad), "{after}");

    let logs = captured_logs();
    let events: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event_type"] == "mcp_request" && e["client_id"] == m.client.id.as_str())
        .collect();
    let find = |outcome: &str| {
        events
            .iter()
            .find(|e| e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {outcome} event: {events:?}"))
    };
    let ok = find("allowed");
    assert_eq!(ok["method"], "tools/call");
    assert_eq!(ok["mcp_name"], "read_file");
    assert_eq!(ok["status"], 200);
    assert!(ok["duration_ms"].is_u64() && ok["user"].is_string(), "{ok}");
    assert_eq!(ok["ip"], "127.0.0.1", "{ok}");
    let no = find("refused_scope");
    assert_eq!(no["mcp_name"], "send_email");
    assert_eq!(no["status"], 403);
    assert!(
        no["user"].is_string(),
        "the refused call names its user: {no}"
    );
    assert_eq!(find("bad_request")["status"], 400);
    assert!(
        !logs.contains("never-logged-8213"),
        "arguments are never logged"
    );
}
