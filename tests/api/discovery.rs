use crate::helpers::spawn_app_with;

#[actix_web::test]
async fn authorization_server_metadata_advertises_registration_pkce_and_auth_methods() {
    let app = spawn_app_with(&[("BASE_URL", "https://mcp.example.com")]).await;
    {
        let path = "/.well-known/oauth-authorization-server";
        let (status, doc) = app.get_json(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(doc["issuer"], "https://mcp.example.com");
        assert_eq!(
            doc["registration_endpoint"],
            "https://mcp.example.com/oauth/register"
        );
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            serde_json::json!(["none", "client_secret_post", "client_secret_basic"])
        );
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            doc["grant_types_supported"],
            serde_json::json!(["authorization_code", "refresh_token"])
        );
        // offline_access is advertised by the authorization server only
        // (issue #14); the protected resource's list is in interop.rs.
        assert_eq!(
            doc["scopes_supported"],
            serde_json::json!(["openid", "email", "profile", "offline_access"])
        );
    }
}

#[actix_web::test]
async fn every_advertised_endpoint_exists_and_answers_its_method() {
    let app = spawn_app_with(&[]).await;
    let (_, doc) = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    let endpoints = [
        ("authorization_endpoint", reqwest::Method::GET),
        ("token_endpoint", reqwest::Method::POST),
        ("registration_endpoint", reqwest::Method::POST),
        ("revocation_endpoint", reqwest::Method::POST),
        ("introspection_endpoint", reqwest::Method::POST),
    ];
    let advertised: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with("_endpoint"))
        .map(String::as_str)
        .collect();
    assert_eq!(advertised.len(), endpoints.len(), "{advertised:?}");
    for (field, method) in endpoints {
        let url = doc[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} advertised"));
        let path = url
            .strip_prefix(&app.config.issuer())
            .expect("advertised on this server");
        let res = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        // A bare request is a client error at each endpoint, never "no such endpoint".
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert!(
            status != 404 && status != 405 && status < 500,
            "{field} {path}: {status} {body}"
        );
    }
}

#[actix_web::test]
async fn protected_resource_metadata_names_the_gateway_and_its_authorization_server() {
    let app = spawn_app_with(&[
        ("BASE_URL", "https://mcp.example.com"),
        ("GOOGLE_OAUTH_SCOPES", "openid email"),
    ])
    .await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, doc) = app.get_json(path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!(["https://mcp.example.com"])
        );
        assert_eq!(
            doc["oauth_authorization_server"],
            "https://mcp.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            doc["scopes_supported"],
            serde_json::json!(["openid", "email"])
        );
        assert_eq!(
            doc["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
    }
}

#[actix_web::test]
async fn protected_resource_metadata_for_an_unknown_resource_is_404() {
    let app = spawn_app_with(&[]).await;
    let (status, body) = app
        .get_json("/.well-known/oauth-protected-resource/other")
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

#[actix_web::test]
async fn a_configured_gateway_path_moves_the_resource() {
    let app = spawn_app_with(&[("GATEWAY_PATH", "/tools/mcp")]).await;
    let (status, doc) = app
        .get_json("/.well-known/oauth-protected-resource/tools/mcp")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["resource"],
        format!("{}/tools/mcp", app.config.issuer())
    );
    assert_eq!(
        app.get_json("/.well-known/oauth-protected-resource/mcp")
            .await
            .0,
        404
    );
}
