//! The kind of client (OpenID Connect Dynamic Client Registration §2,
//! which the MCP authorization revision asks clients to send): a `web`
//! client runs on a server and may only be sent back to `https` URIs off
//! loopback; a `native` client runs on the user's device and may use
//! loopback `http`, its own scheme, or claimed `https` URIs (RFC 8252).

use serde::{Deserialize, Serialize};

use super::RedirectUri;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplicationType {
    Native,
    Web,
}

impl ApplicationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Web => "web",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Native, Self::Web]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }

    /// The kind a client that did not say is taken to be: `web` when every
    /// redirect URI is one a web client may use, else `native` (clients
    /// that predate the field register loopback URIs without it).
    pub fn inferred(redirect_uris: &[RedirectUri]) -> Self {
        if redirect_uris.iter().all(Self::web_may_use) {
            Self::Web
        } else {
            Self::Native
        }
    }

    /// Whether a client of this kind may be sent back to `uri`.
    pub fn allows(self, uri: &RedirectUri) -> bool {
        match self {
            Self::Web => Self::web_may_use(uri),
            Self::Native => true,
        }
    }

    fn web_may_use(uri: &RedirectUri) -> bool {
        uri.url().scheme() == "https" && !uri.is_on_loopback_host()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(raw: &str) -> RedirectUri {
        RedirectUri::parse(raw, &[]).unwrap()
    }

    #[test]
    fn a_web_client_is_sent_back_only_to_https_off_loopback() {
        assert!(ApplicationType::Web.allows(&uri("https://app.example/cb")));
        for raw in [
            "http://127.0.0.1:3000/cb",
            "http://localhost:3000/cb",
            "https://localhost/cb",
            "https://127.0.0.1/cb",
            "com.example.app:/cb",
        ] {
            assert!(!ApplicationType::Web.allows(&uri(raw)), "{raw}");
            assert!(ApplicationType::Native.allows(&uri(raw)), "{raw}");
        }
    }

    #[test]
    fn a_client_that_does_not_say_is_web_only_when_every_uri_is_a_web_one() {
        let web = [uri("https://a.example/cb"), uri("https://b.example/cb")];
        assert_eq!(ApplicationType::inferred(&web), ApplicationType::Web);
        let mixed = [uri("https://a.example/cb"), uri("http://127.0.0.1:1/cb")];
        assert_eq!(ApplicationType::inferred(&mixed), ApplicationType::Native);
        assert_eq!(
            ApplicationType::parse("native"),
            Some(ApplicationType::Native)
        );
        assert_eq!(ApplicationType::parse("Web"), None);
    }
}
