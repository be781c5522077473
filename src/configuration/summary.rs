//! What the start-up line tells an operator: where the service listens,
//! where Swagger UI is, and where the admin token is (never the token).

use super::{Config, StorageMode};

impl Config {
    /// The URL the listener answers on locally (`server.host`, the bound port).
    pub fn listen_url(&self, port: u16) -> String {
        let host = &self.server.host;
        let scheme = if self.server.https() { "https" } else { "http" };
        if host.contains(':') {
            format!("{scheme}://[{host}]:{port}")
        } else {
            format!("{scheme}://{host}:{port}")
        }
    }

    /// Where the admin API's token comes from: the variable, the file it is
    /// kept in, or why the admin API is off. Never the token itself.
    pub fn admin_token_location(&self) -> String {
        let admin = &self.admin;
        if !admin.enabled {
            return "admin API off (admin.enabled = false)".into();
        }
        if !admin.token.0.is_empty() {
            return "admin token from DRAWBRIDGE_ADMIN_TOKEN (admin.token)".into();
        }
        if self.storage.mode == StorageMode::MemoryOnly {
            return "admin API off (MEMORY_ONLY keeps no token file; set DRAWBRIDGE_ADMIN_TOKEN)"
                .into();
        }
        let file = std::path::Path::new(&admin.token_file);
        let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        format!("admin token in {}", file.display())
    }

    /// The start-up line: `listening on URL; Swagger UI at URL; admin token …`.
    pub fn ready_message(&self, port: u16) -> String {
        let url = self.listen_url(port);
        format!(
            "listening on {url}; Swagger UI at {url}/swagger-ui/; {}",
            self.admin_token_location()
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::configuration::load_from;
    use std::collections::BTreeMap;

    fn config(vars: &[(&str, &str)]) -> crate::configuration::Config {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_from(None, &vars).unwrap().0
    }

    #[test]
    fn the_start_up_line_names_the_listener_swagger_ui_and_the_token_file() {
        let message = config(&[]).ready_message(8002);
        assert!(
            message.starts_with(
                "listening on http://127.0.0.1:8002; Swagger UI at http://127.0.0.1:8002/swagger-ui/; admin token in /"
            ),
            "{message}"
        );
        assert!(message.ends_with("/.drawbridge_admin_token"), "{message}");
    }

    #[test]
    fn a_configured_admin_token_is_named_by_its_variable_never_shown() {
        let token = "configured-admin-token-0123456789";
        let message = config(&[("DRAWBRIDGE_ADMIN_TOKEN", token)]).ready_message(1);
        assert!(message.contains("from DRAWBRIDGE_ADMIN_TOKEN"), "{message}");
        assert!(!message.contains(token));
    }

    #[test]
    fn an_ipv6_listener_is_bracketed() {
        assert_eq!(
            config(&[("MCP_HOST", "::1")]).listen_url(80),
            "http://[::1]:80"
        );
    }
}
