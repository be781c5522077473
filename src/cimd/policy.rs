//! The operator's policy on which documents are taken at all, judged on the
//! URL before anything is fetched: a deny list first, then an allow list
//! (empty: any host). An entry is a host (`claude.ai`, `*.example.com`) or
//! an `https://` URL pattern (`https://vscode.dev/oauth/*`), where `*`
//! matches any run of characters.

use crate::domain::{DocumentUrl, Glob};

/// One entry of the allow or deny list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlPattern {
    /// Matches the document URL's host (case-insensitive).
    Host(Glob),
    /// Matches the whole document URL, exactly as sent.
    Url(Glob),
}

impl UrlPattern {
    /// Reads one list entry; the text says why one is refused.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("an entry is empty".into());
        }
        if let Some((scheme, rest)) = raw.split_once("://") {
            if !scheme.eq_ignore_ascii_case("https") {
                return Err(format!(
                    "`{raw}`: documents are only fetched over https, so a URL pattern starts with https://"
                ));
            }
            if rest.is_empty() {
                return Err(format!("`{raw}`: the URL pattern has no host"));
            }
            return Ok(Self::Url(Glob::new(raw)));
        }
        let host_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*' | ':');
        if !raw.chars().all(host_chars) {
            return Err(format!(
                "`{raw}` is neither a host (claude.ai, *.example.com) nor an https:// URL pattern"
            ));
        }
        Ok(Self::Host(Glob::new(raw.to_ascii_lowercase())))
    }

    pub fn matches(&self, url: &DocumentUrl) -> bool {
        match self {
            Self::Host(glob) => glob.matches(&url.host().to_ascii_lowercase()),
            Self::Url(glob) => glob.matches(url.as_str()),
        }
    }
}

/// Why the policy refuses a document URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyRefusal {
    #[error("this server does not accept client metadata documents")]
    Disabled,
    #[error("this server does not accept client metadata documents from this host")]
    Denied,
    #[error(
        "this server only accepts client metadata documents from the hosts its operator allows"
    )]
    NotAllowed,
}

/// The allow and deny lists, and whether documents are taken at all.
#[derive(Debug, Clone)]
pub struct UrlPolicy {
    pub enabled: bool,
    pub allowed: Vec<UrlPattern>,
    pub denied: Vec<UrlPattern>,
}

impl UrlPolicy {
    /// Whether a document at `url` may be fetched and used.
    pub fn permits(&self, url: &DocumentUrl) -> Result<(), PolicyRefusal> {
        if !self.enabled {
            return Err(PolicyRefusal::Disabled);
        }
        if self.denied.iter().any(|p| p.matches(url)) {
            return Err(PolicyRefusal::Denied);
        }
        if !self.allowed.is_empty() && !self.allowed.iter().any(|p| p.matches(url)) {
            return Err(PolicyRefusal::NotAllowed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], denied: &[&str]) -> UrlPolicy {
        let list = |l: &[&str]| l.iter().map(|p| UrlPattern::parse(p).unwrap()).collect();
        UrlPolicy {
            enabled: true,
            allowed: list(allowed),
            denied: list(denied),
        }
    }

    fn url(raw: &str) -> DocumentUrl {
        DocumentUrl::parse(raw).unwrap()
    }

    #[test]
    fn an_empty_allow_list_takes_any_host_and_the_deny_list_wins() {
        let p = policy(&[], &["*.evil.example", "https://claude.ai/private/*"]);
        assert_eq!(
            p.permits(&url("https://vscode.dev/oauth/client-metadata.json")),
            Ok(())
        );
        assert_eq!(
            p.permits(&url("https://a.evil.example/c")),
            Err(PolicyRefusal::Denied)
        );
        assert_eq!(
            p.permits(&url("https://claude.ai/private/x")),
            Err(PolicyRefusal::Denied)
        );
        assert_eq!(
            p.permits(&url("https://claude.ai/oauth/mcp-oauth-client-metadata")),
            Ok(())
        );
    }

    #[test]
    fn an_allow_list_of_hosts_and_url_patterns_takes_only_those() {
        let p = policy(&["claude.ai", "https://vscode.dev/oauth/*"], &[]);
        for ok in [
            "https://claude.ai/oauth/mcp-oauth-client-metadata",
            "https://CLAUDE.ai/oauth/claude-code-client-metadata",
            "https://vscode.dev/oauth/client-metadata.json",
        ] {
            assert_eq!(p.permits(&url(ok)), Ok(()), "{ok}");
        }
        for refused in [
            "https://claude.ai.evil.example/x",
            "https://vscode.dev/other/client.json",
            "https://example.com/client",
        ] {
            assert_eq!(
                p.permits(&url(refused)),
                Err(PolicyRefusal::NotAllowed),
                "{refused}"
            );
        }
    }

    #[test]
    fn disabled_refuses_everything() {
        let mut p = policy(&[], &[]);
        p.enabled = false;
        assert_eq!(
            p.permits(&url("https://vscode.dev/oauth/client-metadata.json")),
            Err(PolicyRefusal::Disabled)
        );
    }

    #[test]
    fn entries_that_are_neither_hosts_nor_https_patterns_are_refused() {
        for bad in [
            "",
            "http://example.com/*",
            "https://",
            "example.com/path",
            "a b",
        ] {
            assert!(UrlPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
