//! Google's `credentials.json`, honoured as Google writes it.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

/// The real (upstream) client credentials Drawbridge signs in with.
#[derive(Clone, PartialEq, Eq)]
pub struct GoogleCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub auth_uri: Option<String>,
    pub token_uri: Option<String>,
    pub redirect_uris: Vec<String>,
}

impl fmt::Debug for GoogleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("auth_uri", &self.auth_uri)
            .field("token_uri", &self.token_uri)
            .finish()
    }
}

#[derive(Deserialize)]
struct File {
    web: Option<Inner>,
    installed: Option<Inner>,
}

#[derive(Deserialize)]
struct Inner {
    client_id: String,
    client_secret: Option<String>,
    auth_uri: Option<String>,
    token_uri: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

impl GoogleCredentials {
    /// Reads a `credentials.json` with a `web` or `installed` section.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = serde_json::from_str(text)
            .map_err(|e| format!("not a Google credentials file: {e}"))?;
        let inner = file
            .web
            .or(file.installed)
            .ok_or("expected a `web` or `installed` section")?;
        if inner.client_id.trim().is_empty() {
            return Err("client_id is empty".into());
        }
        Ok(Self {
            client_id: inner.client_id,
            client_secret: inner.client_secret.unwrap_or_default(),
            auth_uri: inner.auth_uri,
            token_uri: inner.token_uri,
            redirect_uris: inner.redirect_uris,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_and_installed_files_are_read() {
        let web = r#"{"web":{"client_id":"1.apps.googleusercontent.com","client_secret":"s","auth_uri":"https://a/x","token_uri":"https://a/t","redirect_uris":["http://localhost:8002/oauth/callback"]}}"#;
        let c = GoogleCredentials::parse(web).unwrap();
        assert_eq!(c.client_id, "1.apps.googleusercontent.com");
        assert_eq!(c.token_uri.as_deref(), Some("https://a/t"));
        assert!(!format!("{c:?}").contains("\"s\""));
        let installed = r#"{"installed":{"client_id":"2"}}"#;
        assert_eq!(
            GoogleCredentials::parse(installed).unwrap().client_secret,
            ""
        );
        assert!(GoogleCredentials::parse(r#"{"other":{}}"#).is_err());
        assert!(GoogleCredentials::parse("not json").is_err());
    }
}
