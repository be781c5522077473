//! Interoperability gaps of the MCP authorization revision 2026-07-28 and
//! the RFCs it builds on, each driven as a client would meet it.

use crate::helpers::{sample_registration, spawn_app_with};

#[actix_web::test]
async fn the_registration_burst_follows_the_per_minute_rate_unless_set_on_its_own() {
    // MAX_REGISTRATIONS_PER_MINUTE=5 used to allow a burst of 60.
    let app = spawn_app_with(&[("MAX_REGISTRATIONS_PER_MINUTE", "5")]).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(app.register(&sample_registration()).await.0);
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429, 429]);

    let app = spawn_app_with(&[
        ("MAX_REGISTRATIONS_PER_MINUTE", "5"),
        ("DRAWBRIDGE_RATE_LIMIT__REGISTRATION_BURST", "2"),
    ])
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.register(&sample_registration()).await.0);
    }
    assert_eq!(statuses, [201, 201, 429]);
}

#[actix_web::test]
async fn discovery_advertises_only_registered_client_authentication_methods() {
    let app = spawn_app_with(&[]).await;
    let (_, doc) = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_post", "client_secret_basic"])
    );
}

#[actix_web::test]
async fn offline_access_is_accepted_in_requests_and_advertised_only_by_the_authorization_server() {
    let f = crate::login_flow::setup(&[]).await;
    let (_, as_doc) = f
        .app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(as_doc["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("offline_access")));
    let (_, pr_doc) = f
        .app
        .get_json("/.well-known/oauth-protected-resource")
        .await;
    assert!(
        !pr_doc["scopes_supported"]
            .to_string()
            .contains("offline_access"),
        "{pr_doc}"
    );

    // A client registers with it and signs in asking for it.
    let client = f
        .register_with(serde_json::json!({
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "openid email offline_access",
        }))
        .await;
    let (res, verifier) = f
        .authorize(&client, &[("scope", "openid email offline_access")])
        .await;
    assert_eq!(res.status(), 200, "the consent page, not invalid_scope");
    let page = res.text().await.unwrap();
    let landed = f.consent(&page, "approve").await;
    let q: serde_json::Value = landed.json().await.unwrap();
    let login = crate::login_flow::Login {
        code: q["code"].as_str().unwrap_or_else(|| panic!("{q}")).into(),
        verifier,
    };
    let (status, tokens) = f.exchange(&client, &login).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid email");
    assert!(
        tokens["refresh_token"].is_string(),
        "Drawbridge still decides: {tokens}"
    );
    // Google was never asked for offline_access (it would refuse it).
    assert!(
        !f.google
            .with(|s| s.last_authorize_scope.clone())
            .contains("offline_access"),
        "offline_access reached the upstream"
    );
}

#[actix_web::test]
async fn the_resource_may_be_spelled_with_an_uppercase_scheme_or_host_or_a_trailing_slash() {
    let f = crate::login_flow::setup(&[("BASE_URL", "https://mcp.example.com")]).await;
    let client = f.register("client_secret_post").await;
    let ours = f.app.config.resource();
    assert_eq!(ours, "https://mcp.example.com/mcp");
    for (resource, expected) in [
        (ours.clone(), 200),
        (format!("{ours}/"), 200),
        ("HTTPS://MCP.Example.COM/mcp/".to_owned(), 200),
        ("https://mcp.example.com:443/mcp".to_owned(), 200),
        (format!("{ours}/other"), 302),
        (format!("{ours}//"), 302),
    ] {
        let (res, _) = f.authorize(&client, &[("resource", &resource)]).await;
        let landed = res.url().clone();
        let status = if landed.path() == "/client/callback" {
            302
        } else {
            res.status().as_u16()
        };
        assert_eq!(status, expected, "{resource} → {landed}");
        if expected == 302 {
            assert!(
                landed
                    .query()
                    .unwrap_or("")
                    .contains("error=invalid_target"),
                "{landed}"
            );
        }
    }
}

#[actix_web::test]
async fn the_gateways_challenge_names_the_realm_and_without_a_token_no_error() {
    let (f, access) = crate::gateway::signed_in_behind(
        &crate::gateway::fake_mcp(),
        &[("MCP_AUTH_REALM", "tools.example")],
    )
    .await;
    let res = f.app.client.post(f.app.url("/mcp")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let header = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        header.starts_with("Bearer resource_metadata=")
            && header.contains(", realm=\"tools.example\""),
        "{header}"
    );
    assert!(!header.contains("error="), "{header}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body.get("error").is_none(),
        "the body names an error the header does not: {body}"
    );
    assert_eq!(body["error_description"], "an access token is required");

    let res = f
        .app
        .client
        .post(f.app.url("/mcp"))
        .bearer_auth(format!("{access}x"))
        .send()
        .await
        .unwrap();
    let header = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        header.contains("realm=\"tools.example\"") && header.contains("error=\"invalid_token\""),
        "{header}"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[actix_web::test]
async fn an_issuer_with_a_path_is_discovered_at_every_location_clients_try() {
    let app = spawn_app_with(&[("BASE_URL", "https://host.example/drawbridge")]).await;
    for path in [
        "/.well-known/oauth-authorization-server/drawbridge",
        // A proxy that strips the path forwards this one.
        "/.well-known/oauth-authorization-server",
    ] {
        let (status, doc) = app.get_json(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(doc["issuer"], "https://host.example/drawbridge", "{path}");
        assert_eq!(
            doc["token_endpoint"],
            "https://host.example/drawbridge/oauth/token"
        );
    }
    // The resource is https://host.example/drawbridge/mcp: its metadata is
    // where RFC 9728 puts it, and the gateway's challenge points there.
    for path in [
        "/.well-known/oauth-protected-resource/drawbridge/mcp",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, doc) = app.get_json(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(doc["resource"], "https://host.example/drawbridge/mcp");
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!(["https://host.example/drawbridge"])
        );
        assert_eq!(
            doc["oauth_authorization_server"],
            "https://host.example/.well-known/oauth-authorization-server/drawbridge"
        );
    }
    let (status, _) = app
        .get_json("/.well-known/oauth-protected-resource/drawbridge/other")
        .await;
    assert_eq!(status, 404);
    let res = app.client.post(app.url("/mcp")).send().await.unwrap();
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(
            "Bearer resource_metadata=\"https://host.example/.well-known/oauth-protected-resource/drawbridge/mcp\""
        ),
        "{challenge}"
    );
}

#[actix_web::test]
async fn the_token_endpoint_takes_the_same_spellings_of_the_resource_as_authorize() {
    let f = crate::login_flow::setup(&[]).await;
    let client = f.register("client_secret_post").await;
    let ours = f.app.config.resource();
    let shouted = format!("{}/", ours.replacen("http://", "HTTP://", 1));
    for (resource, expected) in [
        (shouted.as_str(), 200),
        (&format!("{ours}//"), 400),
        (&format!("{ours}/other"), 400),
    ] {
        let login = f.login(&client).await;
        let (status, body) = f
            .token(
                &client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &login.code),
                    ("redirect_uri", &client.redirect),
                    ("code_verifier", &login.verifier),
                    ("resource", resource),
                ],
            )
            .await;
        assert_eq!(status, expected, "{resource}: {body}");
        if expected == 400 {
            assert_eq!(body["error"], "invalid_target", "{resource}");
        }
    }
}

#[actix_web::test]
async fn a_confidential_client_may_present_its_secret_by_either_standard_method() {
    let f = crate::login_flow::setup(&[]).await;
    for registered in ["client_secret_post", "client_secret_basic"] {
        let client = f.register(registered).await;
        let secret = client.secret.clone().unwrap();
        let login = f.login(&client).await;
        let exchange = [
            ("grant_type", "authorization_code"),
            ("code", login.code.as_str()),
            ("redirect_uri", client.redirect.as_str()),
            ("code_verifier", login.verifier.as_str()),
        ];
        // The other method than the registered one: Basic for a post
        // client, the form for a Basic client.
        let request = f.app.client.post(f.app.url("/oauth/token"));
        let res = if registered == "client_secret_post" {
            request
                .basic_auth(&client.id, Some(&secret))
                .form(&exchange)
        } else {
            let mut form = exchange.to_vec();
            form.extend([
                ("client_id", client.id.as_str()),
                ("client_secret", secret.as_str()),
            ]);
            request.form(&form)
        }
        .send()
        .await
        .unwrap();
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap();
        for t in ["access_token", "refresh_token"] {
            if let Some(s) = body[t].as_str() {
                crate::helpers::remember_secret(s);
            }
        }
        assert_eq!(
            status, 200,
            "{registered} client by the other method: {body}"
        );
        // A wrong secret by either method is still refused.
        let (status, _) = f
            .refresh(
                &crate::login_flow::Client {
                    id: client.id.clone(),
                    secret: Some(format!("{secret}x")),
                    redirect: String::new(),
                },
                body["refresh_token"].as_str().unwrap(),
            )
            .await;
        assert_eq!(status, 401);
    }
    // A public client has no secret to present: one sent is refused.
    let public = f.register("none").await;
    let login = f.login(&public).await;
    let (status, body) = f
        .token(
            &crate::login_flow::Client {
                secret: Some("mcp_cs_invented".into()),
                ..public
            },
            &[
                ("grant_type", "authorization_code"),
                ("code", &login.code),
                ("redirect_uri", &f.google.client_callback()),
                ("code_verifier", &login.verifier),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[actix_web::test]
async fn a_known_path_asked_with_another_method_is_405_with_allow() {
    use reqwest::Method;
    let app = spawn_app_with(&[]).await;
    for (method, path, allow) in [
        (Method::GET, "/oauth/token", "POST"),
        (Method::PUT, "/token", "POST"),
        (Method::POST, "/oauth/authorize", "GET"),
        (Method::GET, "/oauth/consent", "POST"),
        (Method::GET, "/oauth/register", "POST"),
        (
            Method::POST,
            "/oauth/register/mcp_AAAAAAAAAAAAAAAAAAAAAA",
            "GET, PUT, DELETE",
        ),
        (Method::POST, "/oauth/callback", "GET"),
        (Method::GET, "/oauth/revoke", "POST"),
        (Method::GET, "/oauth/introspect", "POST"),
        (
            Method::POST,
            "/.well-known/oauth-authorization-server",
            "GET",
        ),
        (
            Method::DELETE,
            "/.well-known/oauth-protected-resource",
            "GET",
        ),
        (Method::POST, "/health/live", "GET"),
        (Method::POST, "/metrics", "GET"),
        (Method::PUT, "/mcp", "GET, POST, DELETE"),
        (Method::PATCH, "/mcp/some/tail", "GET, POST, DELETE"),
        (Method::POST, "/admin/v1/clients", "GET"),
        (
            Method::PUT,
            "/admin/v1/clients/mcp_AAAAAAAAAAAAAAAAAAAAAA",
            "GET, DELETE",
        ),
        (Method::GET, "/admin/v1/tokens/revoke", "POST"),
        (Method::GET, "/admin/v1/janitor/run", "POST"),
    ] {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(
            res.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{method} {path}");
    }
    // An unknown path stays 404.
    let res = app
        .client
        .get(app.url("/oauth/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// The CORS headers of an answer to `method path` from `origin` (a
/// preflight when `preflight`).
async fn cors(
    app: &crate::helpers::TestApp,
    method: reqwest::Method,
    path: &str,
    origin: &str,
    preflight: bool,
) -> (u16, Option<String>, reqwest::header::HeaderMap) {
    let mut request = app.client.request(
        if preflight {
            reqwest::Method::OPTIONS
        } else {
            method.clone()
        },
        app.url(path),
    );
    request = request.header("origin", origin);
    if preflight {
        request = request
            .header("access-control-request-method", method.as_str())
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-protocol-version",
            );
    }
    let res = request.send().await.unwrap();
    let allowed = res
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), allowed, res.headers().clone())
}

#[actix_web::test]
async fn browser_clients_get_cors_on_the_public_endpoints_and_never_on_admin_or_consent() {
    use reqwest::Method;
    let (f, _) = crate::gateway::signed_in_behind(&crate::gateway::fake_mcp(), &[]).await;
    let app = &f.app;
    let origin = "http://localhost:6274";
    for (method, path) in [
        (Method::GET, "/.well-known/oauth-authorization-server"),
        (Method::GET, "/.well-known/oauth-protected-resource/mcp"),
        (Method::POST, "/oauth/register"),
        (Method::POST, "/oauth/token"),
        (Method::POST, "/oauth/revoke"),
        (Method::POST, "/mcp"),
    ] {
        let (status, allowed, headers) = cors(app, method.clone(), path, origin, true).await;
        assert_eq!(status, 200, "preflight {method} {path}");
        assert!(allowed.is_some(), "preflight {method} {path}: {headers:?}");
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains(method.as_str()), "{path}: {methods}");
        assert!(headers.get("access-control-allow-credentials").is_none());
        let (_, allowed, headers) = cors(app, method.clone(), path, origin, false).await;
        assert!(allowed.is_some(), "{method} {path}: {headers:?}");
    }
    // A browser client reads the gateway's challenge and session header.
    let (status, _, headers) = cors(app, Method::POST, "/mcp", origin, false).await;
    assert_eq!(status, 401);
    let exposed = headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"),
        "{exposed}"
    );
    // Never the admin API, the sign-in's browser pages or introspection.
    for (method, path) in [
        (Method::GET, "/admin/v1/clients"),
        (Method::GET, "/oauth/authorize"),
        (Method::POST, "/oauth/consent"),
        (Method::POST, "/oauth/introspect"),
    ] {
        for preflight in [true, false] {
            let (_, allowed, _) = cors(app, method.clone(), path, origin, preflight).await;
            assert_eq!(allowed, None, "{method} {path} (preflight: {preflight})");
        }
    }
}

#[actix_web::test]
async fn cors_can_be_narrowed_to_listed_origins_or_turned_off() {
    use reqwest::Method;
    let app = spawn_app_with(&[(
        "DRAWBRIDGE_SERVER__CORS_ALLOWED_ORIGINS",
        "https://inspector.example",
    )])
    .await;
    let path = "/.well-known/oauth-authorization-server";
    let (_, allowed, _) = cors(&app, Method::GET, path, "https://inspector.example", false).await;
    assert_eq!(allowed.as_deref(), Some("https://inspector.example"));
    let (status, allowed, _) = cors(&app, Method::GET, path, "https://evil.example", false).await;
    assert_eq!(
        (status, allowed),
        (200, None),
        "served, but not to the script"
    );
    let off = spawn_app_with(&[("DRAWBRIDGE_SERVER__CORS_ALLOWED_ORIGINS", "")]).await;
    let (_, allowed, _) = cors(&off, Method::GET, path, "https://inspector.example", false).await;
    assert_eq!(allowed, None);
}

#[actix_web::test]
async fn registration_takes_application_type_and_holds_web_clients_to_web_redirects() {
    let app = spawn_app_with(&[]).await;
    let reg = |uris: serde_json::Value, kind: Option<&str>| {
        let mut body = serde_json::json!({"client_name": "t", "redirect_uris": uris, "token_endpoint_auth_method": "none"});
        if let Some(kind) = kind {
            body["application_type"] = kind.into();
        }
        body
    };
    let loopback = serde_json::json!(["http://127.0.0.1:33418/cb"]);
    let web = serde_json::json!(["https://app.example/cb"]);
    for (uris, kind, status, shown) in [
        (&loopback, Some("native"), 201, Some("native")),
        (&web, Some("native"), 201, Some("native")),
        (&web, Some("web"), 201, Some("web")),
        (&web, None, 201, Some("web")),
        (&loopback, None, 201, Some("native")),
        (&loopback, Some("web"), 400, None),
        (
            &serde_json::json!(["https://localhost/cb"]),
            Some("web"),
            400,
            None,
        ),
    ] {
        let (got, body) = app.register(&reg(uris.clone(), kind)).await;
        assert_eq!(got, status, "{uris} {kind:?}: {body}");
        match shown {
            Some(shown) => {
                assert_eq!(body["application_type"], shown, "{body}");
                let (_, admin) = app
                    .get_json_as_admin(&format!(
                        "/admin/v1/clients/{}",
                        body["client_id"].as_str().unwrap()
                    ))
                    .await;
                assert_eq!(admin["application_type"], shown, "{admin}");
            }
            None => assert_eq!(body["error"], "invalid_redirect_uri", "{body}"),
        }
    }
    let (status, body) = app.register(&reg(web, Some("desktop"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
}

/// Drawbridge is not an OpenID provider (its ID tokens, when a client gets
/// one, are Google's), so it serves no OpenID discovery document at any of
/// the locations clients try; they fall back to RFC 8414's.
#[actix_web::test]
async fn no_openid_discovery_document_is_served_at_any_location() {
    let app = spawn_app_with(&[("BASE_URL", "https://host.example/drawbridge")]).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/openid-configuration/drawbridge",
        "/drawbridge/.well-known/openid-configuration",
    ] {
        let (status, _) = app.get_json(path).await;
        assert_eq!(status, 404, "{path}");
    }
    let (_, doc) = app
        .get_json("/.well-known/oauth-authorization-server/drawbridge")
        .await;
    assert_eq!(doc["client_id_metadata_document_supported"], true);
}

/// Behind a proxy that strips the issuer's path, the consent form must post
/// to the path the browser sees, and its CSRF cookie must be sent there:
/// otherwise Approve lands outside Drawbridge (found by the conformance
/// suite run against a path issuer).
#[actix_web::test]
async fn with_an_issuer_path_the_consent_form_and_its_cookie_use_the_path_the_browser_sees() {
    let flow = crate::login_flow::setup(&[("BASE_URL", "https://host.example/drawbridge")]).await;
    let client = flow.register("none").await;
    let (res, _) = flow.authorize(&client, &[]).await;
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("Path=/drawbridge/oauth/consent"),
        "{cookie}"
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains(r#"<form method="post" action="/drawbridge/oauth/consent">"#),
        "{page}"
    );
}
