use std::collections::BTreeMap;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    load_from(file, &vars(env)).map(|(c, _)| c)
}

#[test]
fn embedded_defaults_make_a_working_configuration() {
    let c = load(None, &[]).unwrap();
    assert_eq!(c.settings().server.port, 8002);
    assert_eq!(c.clients.max_clients, 100);
    assert_eq!(c.clients.expiry.as_secs(), 24 * 3600);
    assert_eq!(c.clients.unused_expiry.as_secs(), 3600);
    assert_eq!(c.storage.mode, StorageMode::FileEncrypted);
    assert_eq!(c.issuer(), "http://127.0.0.1:8002");
}

#[test]
fn the_named_variables_override_the_file() {
    let file = "[server]\nport = 9000\n[clients]\nmax_clients = 5\n";
    let c = load(
        Some(file),
        &[
            ("MCP_PORT", "9100"),
            ("BASE_URL", "https://mcp.example.com"),
            ("MAX_PROXY_CLIENTS", "7"),
            ("CREDENTIAL_STORAGE_MODE", "MEMORY_ONLY"),
            ("PROXY_CLIENT_EXPIRY_HOURS", "2"),
            ("DRAWBRIDGE_CLIENTS__UNUSED_EXPIRY_MINUTES", "5"),
            (
                "DRAWBRIDGE_OAUTH__ALLOWED_REDIRECT_URIS",
                "https://claude.ai/*,http://127.0.0.1:*",
            ),
        ],
    )
    .unwrap();
    assert_eq!(c.settings().server.port, 9100);
    assert_eq!(c.issuer(), "https://mcp.example.com");
    assert_eq!(c.clients.max_clients, 7);
    assert_eq!(c.storage.mode, StorageMode::MemoryOnly);
    assert_eq!(c.clients.expiry.as_secs(), 7200);
    assert_eq!(c.clients.unused_expiry.as_secs(), 300);
    assert_eq!(c.registration.allowed_redirect_uris.len(), 2);
}

#[test]
fn problems_name_the_key_and_what_is_wrong() {
    type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (Some("[server]\nprot = 1\n"), &[], "server.prot"),
        (Some("[nonsense]\n"), &[], "nonsense"),
        (Some("[server]\nport = \"x\"\n"), &[], "server.port"),
        (Some("[server\n"), &[], "config.toml"),
        (None, &[("MCP_PORT", "70000")], "server.port"),
        (None, &[("MCP_PORT", "eighty")], "server.port (MCP_PORT)"),
        (None, &[("BASE_URL", "not a url")], "server.base_url"),
        (
            None,
            &[("CREDENTIAL_STORAGE_MODE", "CLOUD")],
            "storage.mode",
        ),
        (
            None,
            &[(
                "GOOGLE_OAUTH_CREDENTIALS_FILE",
                "/nonexistent/credentials.json",
            )],
            "google.credentials_file",
        ),
        (
            None,
            &[("UPSTREAM_PROVIDER", "google")],
            "upstream.provider",
        ),
        (
            None,
            &[("DRAWBRIDGE_SERVER__NOPE", "1")],
            "DRAWBRIDGE_SERVER__NOPE",
        ),
        (
            None,
            &[("DRAWBRIDGE_JUNK__KEY", "1")],
            "DRAWBRIDGE_JUNK__KEY",
        ),
        (
            None,
            &[("MCP_AUTH_ENABLED", "maybe")],
            "auth.enabled (MCP_AUTH_ENABLED)",
        ),
        (None, &[("MCP_AUTH_ENABLED", "false")], "auth.enabled"),
        (None, &[("DRAWBRIDGE_GATEWAY__PATH", "mcp")], "gateway.path"),
        (None, &[("MCP_HOST", "0.0.0.0")], "upstream.provider"),
        (None, &[("TOKEN_MODE", "mirror")], "oauth.token_mode"),
        (Some("[oauth.cimd]\nnope = 1\n"), &[], "oauth.cimd.nope"),
        (
            None,
            &[("DRAWBRIDGE_SERVER__HTTP_REDIRECT_PORT", "8080")],
            "server.http_redirect_port",
        ),
        (
            None,
            &[("DRAWBRIDGE_TLS__ACME__DOMAINS", "mcp.example.com")],
            "tls.acme.domains",
        ),
        (
            None,
            &[
                ("ENABLE_HTTPS", "true"),
                ("DRAWBRIDGE_TLS__ACME__DOMAINS", "mcp.example.com"),
            ],
            "tls.acme.domains",
        ),
        (
            None,
            &[
                ("ENABLE_HTTPS", "true"),
                ("DRAWBRIDGE_SERVER__HTTP_REDIRECT_PORT", "8080"),
                ("DRAWBRIDGE_TLS__ACME__DOMAINS", "*.example.com"),
            ],
            "tls.acme.domains",
        ),
        (
            None,
            &[
                ("ENABLE_HTTPS", "true"),
                ("DRAWBRIDGE_SERVER__HTTP_REDIRECT_PORT", "8080"),
                ("DRAWBRIDGE_TLS__ACME__DOMAINS", "mcp.example.com"),
                ("DRAWBRIDGE_TLS__ACME__CONTACT", "ops@example.com"),
            ],
            "tls.acme.contact",
        ),
        (
            None,
            &[("DRAWBRIDGE_ADMIN__ENABLE_HTTPS", "true")],
            "admin.enable_https",
        ),
        (
            None,
            &[("DRAWBRIDGE_UPSTREAM__CA_FILE", "/nonexistent/ca.pem")],
            "upstream.ca_file",
        ),
        (
            None,
            &[
                ("DRAWBRIDGE_ADMIN__ENABLE_HTTPS", "true"),
                ("DRAWBRIDGE_ADMIN__LISTEN", "127.0.0.1:8003"),
            ],
            "admin.ssl_cert_file",
        ),
        (
            Some("[oauth.cimd]\nenabled = \"yes\"\n"),
            &[],
            "oauth.cimd.enabled",
        ),
        (
            None,
            &[("DRAWBRIDGE_OAUTH__CIMD__ENABLED", "maybe")],
            "oauth.cimd.enabled (DRAWBRIDGE_OAUTH__CIMD__ENABLED)",
        ),
        (
            None,
            &[("DRAWBRIDGE_OAUTH__CIMD__NOPE", "1")],
            "DRAWBRIDGE_OAUTH__CIMD__NOPE",
        ),
        (
            None,
            &[("DRAWBRIDGE_OAUTH__CIMD", "1")],
            "DRAWBRIDGE_OAUTH__CIMD",
        ),
        (
            None,
            &[("DRAWBRIDGE_OAUTH__CIMD__ALLOWED", "http://example.com/*")],
            "oauth.cimd.allowed",
        ),
        (
            None,
            &[
                ("DRAWBRIDGE_OAUTH__CIMD__MIN_CACHE_SECONDS", "600"),
                ("DRAWBRIDGE_OAUTH__CIMD__MAX_CACHE_SECONDS", "60"),
            ],
            "oauth.cimd.max_cache_seconds",
        ),
        (
            None,
            &[(
                "DRAWBRIDGE_OAUTH__CIMD__EXTRA_CA_FILE",
                "/nonexistent/ca.pem",
            )],
            "oauth.cimd.extra_ca_file",
        ),
        (
            None,
            &[("UPSTREAM_PROVIDER", "oidc"), ("GOOGLE_CLIENT_ID", "x")],
            "upstream.issuer",
        ),
    ];
    for (file, env, key) in cases {
        let err = load(*file, env).expect_err(key);
        assert_eq!(&err.key, key, "{err}");
        assert!(!err.problem.is_empty());
    }
}

#[test]
fn client_metadata_document_settings_nest_under_oauth_in_the_file_and_the_environment() {
    let file = "[oauth]\ntoken_mode = \"proxy\"\n[oauth.cimd]\nallowed = [\"claude.ai\"]\nmax_document_bytes = 4096\n";
    let config = load(
        Some(file),
        &[
            ("DRAWBRIDGE_OAUTH__CIMD__ENABLED", "false"),
            (
                "DRAWBRIDGE_OAUTH__CIMD__DENIED",
                "evil.example,*.evil.example",
            ),
        ],
    )
    .unwrap();
    let cimd = &config.oauth.cimd;
    assert!(!cimd.policy.enabled);
    assert_eq!(cimd.policy.allowed.len(), 1);
    assert_eq!(cimd.policy.denied.len(), 2);
    assert_eq!(cimd.fetch.max_bytes, 4096);
    assert_eq!(
        config.settings().oauth.cimd.timeout_ms,
        5000,
        "a default kept"
    );
    let defaults = load(None, &[]).unwrap();
    assert!(defaults.oauth.cimd.policy.enabled);
    assert!(!defaults.oauth.cimd.fetch.allow_special_use_addresses);
}

#[test]
fn reserved_drawbridge_variables_are_not_keys() {
    assert!(load(
        None,
        &[
            ("DRAWBRIDGE_CONFIG", "x.toml"),
            ("DRAWBRIDGE_ADMIN_TOKEN", "an-admin-token-of-16+"),
            // The operator scripts' own variables, set in the same shell.
            ("DRAWBRIDGE_URL", "http://127.0.0.1:8002"),
            ("DRAWBRIDGE_TEST_BIN", "target/release/drawbridge"),
        ]
    )
    .is_ok());
    // The SECTION__KEY form stays checked.
    let e = load(None, &[("DRAWBRIDGE_SERVER__NO_SUCH_KEY", "1")]).unwrap_err();
    assert!(e.to_string().contains("server.no_such_key"), "{e}");
}

#[test]
fn a_google_credentials_file_configures_google() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials.json");
    std::fs::write(&path, r#"{"web":{"client_id":"abc.apps.googleusercontent.com","client_secret":"shh","token_uri":"http://127.0.0.1:9/token"}}"#).unwrap();
    let c = load(
        None,
        &[
            ("GOOGLE_OAUTH_CREDENTIALS_FILE", path.to_str().unwrap()),
            ("UPSTREAM_PROVIDER", "google"),
        ],
    )
    .unwrap();
    let g = c.upstream.google.unwrap();
    assert_eq!(g.client_id, "abc.apps.googleusercontent.com");
    assert_eq!(g.token_uri.as_deref(), Some("http://127.0.0.1:9/token"));
    // A token endpoint over plain http beyond loopback would carry the real
    // client secret and users' tokens in the clear.
    std::fs::write(&path, r#"{"web":{"client_id":"abc.apps.googleusercontent.com","client_secret":"shh","token_uri":"http://oauth.example.com/token"}}"#).unwrap();
    let e = load(
        None,
        &[
            ("GOOGLE_OAUTH_CREDENTIALS_FILE", path.to_str().unwrap()),
            ("UPSTREAM_PROVIDER", "google"),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("token_uri") && e.contains("https://"), "{e}");
    // Google presets expand scope aliases.
    let c = load(
        None,
        &[
            ("GOOGLE_CLIENT_ID", "x"),
            ("GOOGLE_CLIENT_SECRET", "y"),
            ("UPSTREAM_PROVIDER", "google"),
            ("GOOGLE_OAUTH_SCOPES", "openid drive.file"),
        ],
    )
    .unwrap();
    assert_eq!(
        c.registration.supported_scopes.to_string(),
        "openid https://www.googleapis.com/auth/drive.file"
    );
}

#[test]
fn masking_hides_secrets() {
    let c = load(
        None,
        &[
            ("GOOGLE_CLIENT_ID", "x"),
            ("GOOGLE_CLIENT_SECRET", "very-secret"),
        ],
    )
    .unwrap();
    let text = toml::to_string(&c.settings().masked()).unwrap();
    assert!(!text.contains("very-secret"));
    assert!(text.contains("***"));
    assert!(!format!("{:?}", c).contains("very-secret"));
}

/// `config.toml` at the repository root documents every key with its
/// default and loads to exactly the embedded defaults.
#[test]
fn the_shipped_config_toml_documents_every_key_with_its_default() {
    let text = include_str!("../../config.toml");
    let shipped = load(Some(text), &[]).unwrap();
    assert_eq!(*shipped.settings(), Settings::default());
    let defaults = toml::Value::try_from(Settings::default()).unwrap();
    let mut sections: Vec<(String, &toml::Value)> = defaults
        .as_table()
        .unwrap()
        .iter()
        .map(|(s, v)| (s.clone(), v))
        .collect();
    while let Some((section, keys)) = sections.pop() {
        // A section of sub-tables only (`[tls]`) needs no header of its own.
        let has_keys = keys.as_table().unwrap().values().any(|v| !v.is_table());
        assert!(
            !has_keys || text.contains(&format!("[{section}]")),
            "section [{section}] missing from config.toml"
        );
        for (key, value) in keys.as_table().unwrap() {
            if value.is_table() {
                sections.push((format!("{section}.{key}"), value));
                continue;
            }
            let documented = text.lines().any(|l| {
                let l = l.trim_start_matches('#').trim_start();
                l.starts_with(&format!("{key} =")) || l.starts_with(&format!("{key}="))
            });
            assert!(documented, "{section}.{key} missing from config.toml");
        }
    }
    let reference = include_str!("../../docs/configuration.md");
    for (var, key) in env::NAMED {
        assert!(text.contains(var), "${var} is not mentioned in config.toml");
        assert!(
            reference.contains(&format!("`{key}`")),
            "{key} is not in docs/configuration.md's table"
        );
    }
}

#[test]
fn log_format_is_human_on_a_terminal_unless_forced() {
    let auto = load(None, &[]).unwrap().telemetry.log_format;
    assert_eq!(auto, LogFormat::Auto);
    assert!(auto.human(true) && !auto.human(false));
    let json = load(None, &[("LOG_FORMAT", "json")])
        .unwrap()
        .telemetry
        .log_format;
    assert!(!json.human(true));
    let pretty = load(None, &[("LOG_FORMAT", "pretty")])
        .unwrap()
        .telemetry
        .log_format;
    assert!(pretty.human(false));
    let e = load(None, &[("LOG_FORMAT", "yaml")]).unwrap_err();
    assert_eq!(e.key, "telemetry.log_format", "{e}");
}

#[test]
fn access_lists_come_from_the_file_the_environment_and_list_files_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allowed");
    std::fs::write(&file, "# staff\nada@example.org\n").unwrap();
    let path = file.display().to_string();
    let c = load(
        Some("[access]\ndenied_emails = [\"eve@example.com\"]\n"),
        &[
            (
                "DRAWBRIDGE_ACCESS__ALLOWED_DOMAINS",
                "example.com,example.net",
            ),
            ("DRAWBRIDGE_ACCESS__ALLOWED_EMAILS_FILE", &path),
        ],
    )
    .unwrap();
    assert_eq!(c.access.allowed_domains, ["example.com", "example.net"]);
    assert_eq!(c.access.denied_emails, ["eve@example.com"]);
    assert_eq!(
        c.access.allowed_emails_file.as_deref(),
        Some(file.as_path())
    );
    std::fs::write(&file, "ada@example.org\nnot-an-address\n").unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "DRAWBRIDGE_ACCESS__ALLOWED_DOMAINS",
            "@example.com",
            "access.allowed_domains",
        ),
        (
            "DRAWBRIDGE_ACCESS__ALLOWED_EMAILS",
            "example.com",
            "access.allowed_emails",
        ),
        (
            "DRAWBRIDGE_ACCESS__DENIED_EMAILS",
            "a@b@c",
            "access.denied_emails",
        ),
        (
            "DRAWBRIDGE_ACCESS__GOOGLE_WORKSPACE_DOMAINS",
            "a@corp.example",
            "access.google_workspace_domains",
        ),
        (
            "DRAWBRIDGE_ACCESS__ALLOWED_EMAILS_FILE",
            &path,
            "access.allowed_emails_file",
        ),
        (
            "DRAWBRIDGE_ACCESS__DENIED_EMAILS_FILE",
            "/nonexistent/denied",
            "access.denied_emails_file",
        ),
    ];
    for (var, value, key) in cases {
        let e = load(None, &[(var, value)]).unwrap_err();
        assert_eq!(e.key, *key, "{e}");
    }
}

#[test]
fn tool_scopes_are_tables_in_the_file_and_name_value_lists_in_the_environment() {
    let scopes = [("GOOGLE_OAUTH_SCOPES", "openid email mcp:read mcp:write")];
    let file = "[gateway.tool_scopes]\n\"delete_*\" = [\"mcp:write\"]\nread_file = [\"mcp:read\", \"mcp:write\"]\n[gateway.method_scopes]\n\"resources/read\" = [\"mcp:read\"]\n";
    let c = load(Some(file), &scopes).unwrap();
    let t = &c.gateway.tool_scopes;
    assert_eq!(t.tools.len(), 2);
    assert_eq!(t.tools[0].0.as_str(), "delete_*");
    assert_eq!(t.tools[1].1, ["mcp:read", "mcp:write"]);
    assert_eq!(
        t.methods,
        [("resources/read".to_owned(), vec!["mcp:read".to_owned()])]
    );
    let mut env = scopes.to_vec();
    env.push((
        "DRAWBRIDGE_GATEWAY__TOOL_SCOPES",
        "delete_*=mcp:write; send=mcp:read mcp:write",
    ));
    let c = load(None, &env).unwrap();
    let tools = &c.gateway.tool_scopes.tools;
    assert_eq!(tools[1].0.as_str(), "send");
    assert_eq!(tools[1].1, ["mcp:read", "mcp:write"]);
    assert!(load(None, &[]).unwrap().gateway.tool_scopes.is_empty());
    // A scope this server does not offer could never be granted.
    let mut env = scopes.to_vec();
    env.push(("DRAWBRIDGE_GATEWAY__TOOL_SCOPES", "x=mcp:admin"));
    let e = load(None, &env).unwrap_err();
    assert!(e.key.starts_with("gateway.tool_scopes"), "{e}");
    let e = load(Some("[gateway.method_scopes]\n\"\" = [\"openid\"]\n"), &[]).unwrap_err();
    assert_eq!(e.key, "gateway.method_scopes", "{e}");
    let e = load(None, &[("DRAWBRIDGE_GATEWAY__TOOL_SCOPES", "no-equals")]).unwrap_err();
    assert!(e.to_string().contains("name=value"), "{e}");
    let e = load(Some("[gateway]\ntool_scopes = [\"x\"]\n"), &[]).unwrap_err();
    assert_eq!(e.key, "gateway.tool_scopes", "{e}");
}

#[test]
fn the_timeline_settings_come_from_the_environment_and_are_checked() {
    let c = load(
        None,
        &[
            ("DRAWBRIDGE_ADMIN__TIMELINE_DAYS", "30"),
            ("DRAWBRIDGE_ADMIN__TIMELINE_GATEWAY_INTERVAL_SECONDS", "5"),
        ],
    )
    .unwrap();
    assert_eq!(c.admin.timeline_keep_seconds(), 30 * 86_400);
    assert_eq!(c.admin.timeline_gateway_interval_seconds, 5);
    for (var, value, key) in [
        (
            "DRAWBRIDGE_ADMIN__TIMELINE_DAYS",
            "0",
            "admin.timeline_days",
        ),
        (
            "DRAWBRIDGE_ADMIN__TIMELINE_DAYS",
            "366",
            "admin.timeline_days",
        ),
        (
            "DRAWBRIDGE_ADMIN__TIMELINE_GATEWAY_INTERVAL_SECONDS",
            "0",
            "admin.timeline_gateway_interval_seconds",
        ),
    ] {
        let e = load(None, &[(var, value)]).unwrap_err();
        assert_eq!(e.key, key, "{e}");
    }
}

#[test]
fn the_postgres_backend_takes_its_url_from_database_url_and_masks_its_password() {
    let url = "postgres://drawbridge:pg-pass-0123@db.internal:5432/drawbridge?sslmode=require";
    let c = load(
        Some("[storage]\nbackend = \"postgres\"\nstatement_timeout_ms = 1500\n"),
        &[("DATABASE_URL", url)],
    )
    .unwrap();
    assert_eq!(c.storage.backend, StorageBackend::Postgres);
    let pg = c.storage.postgres.as_ref().expect("postgres options");
    assert_eq!(pg.url, url);
    assert_eq!(pg.pool_size, 16);
    assert_eq!(pg.statement_timeout.as_millis(), 1500);
    let printed = toml::to_string(&c.settings().masked()).unwrap();
    assert!(!printed.contains("pg-pass-0123"), "{printed}");
    assert!(printed.contains("db.internal:5432"), "{printed}");
    assert!(!format!("{c:?}").contains("pg-pass-0123"));
    // The default backend stays sled; the URL is kept for a migration.
    let sled = load(None, &[("DATABASE_URL", url)]).unwrap();
    assert_eq!(sled.storage.backend, StorageBackend::Sled);
    assert!(sled.storage.postgres.is_some());
    let garbage = load(None, &[("DATABASE_URL", "not a url")]).unwrap();
    assert!(garbage.storage.postgres.is_none());
}

#[test]
fn the_postgres_backend_needs_a_url_and_an_on_disk_mode() {
    let postgres = ("DRAWBRIDGE_STORAGE__BACKEND", "postgres");
    let url = ("DATABASE_URL", "postgres://u:p@db/x");
    let e = load(None, &[postgres]).unwrap_err();
    assert_eq!(e.key, "storage.database_url");
    for mode in ["MEMORY_ONLY", "MEMORY_WITH_BACKUP"] {
        let e = load(None, &[postgres, url, ("CREDENTIAL_STORAGE_MODE", mode)]).unwrap_err();
        assert_eq!(e.key, "storage.backend");
        assert!(e.problem.contains(mode), "{}", e.problem);
    }
    assert!(load(
        None,
        &[postgres, url, ("CREDENTIAL_STORAGE_MODE", "FILE_PLAINTEXT")]
    )
    .is_ok());
    let e = load(None, &[("DRAWBRIDGE_STORAGE__BACKEND", "mysql")]).unwrap_err();
    assert_eq!(e.key, "storage.backend");
    let e = load(None, &[postgres, ("DATABASE_URL", "mysql://u@db/x")]).unwrap_err();
    assert_eq!(e.key, "storage.database_url");
    assert!(!e.problem.contains("mysql://"), "{}", e.problem);
}
