//! Who may sign in (`access.*`): allowed addresses, allowed email domains,
//! Google Workspace domains (the ID token's `hd` claim) and denied
//! addresses. Only a verified email counts; domains match exactly (no
//! subdomains); addresses compare without regard to case. Empty allow
//! lists mean anyone may sign in; a denied address is refused whatever the
//! allow lists say.

use std::collections::HashSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    allowed_emails: HashSet<String>,
    allowed_domains: HashSet<String>,
    workspace_domains: HashSet<String>,
    denied_emails: HashSet<String>,
}

/// What the identity provider said about the person signing in.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    pub email: Option<&'a str>,
    pub email_verified: bool,
    /// Google's `hd` claim (from a validated ID token).
    pub hosted_domain: Option<&'a str>,
}

/// Why a person may not sign in. Shown to them without the lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this account is not allowed to use this service")]
    Denied,
    #[error("this account is not on the list of accounts allowed to use this service")]
    NotAllowed,
    #[error("this service needs an account with a verified email address")]
    NoVerifiedEmail,
}

impl Refusal {
    /// A fixed label for audit events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Denied => "denied",
            Refusal::NotAllowed => "not_allowed",
            Refusal::NoVerifiedEmail => "no_verified_email",
        }
    }
}

fn normalized(items: impl IntoIterator<Item = impl AsRef<str>>) -> HashSet<String> {
    items
        .into_iter()
        .map(|s| s.as_ref().trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Checks one entry of an address list: one `@` with something on each
/// side, no spaces. Answers why not, for the operator.
pub fn check_address(entry: &str) -> Result<(), String> {
    let entry = entry.trim();
    let ok = match entry.split_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !domain.contains('@'),
        None => false,
    };
    if ok && !entry.contains(char::is_whitespace) {
        Ok(())
    } else {
        Err(format!(
            "`{entry}` is not an email address (one @, e.g. alice@example.com)"
        ))
    }
}

/// Checks one entry of a domain list: a bare domain (`example.com`), no
/// `@`, no spaces, no scheme or path.
pub fn check_domain(entry: &str) -> Result<(), String> {
    let entry = entry.trim();
    if entry.is_empty() || entry.contains(['@', '/', ':']) || entry.contains(char::is_whitespace) {
        return Err(format!(
            "`{entry}` is not a domain (write example.com, without @)"
        ));
    }
    Ok(())
}

/// The entries of a list file: one per line, `#` starts a comment.
pub fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

impl AccessPolicy {
    pub fn new(
        allowed_emails: impl IntoIterator<Item = impl AsRef<str>>,
        allowed_domains: impl IntoIterator<Item = impl AsRef<str>>,
        workspace_domains: impl IntoIterator<Item = impl AsRef<str>>,
        denied_emails: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Self {
        let domains = |d: HashSet<String>| {
            d.into_iter()
                .map(|d| d.trim_start_matches('@').to_owned())
                .collect()
        };
        Self {
            allowed_emails: normalized(allowed_emails),
            allowed_domains: domains(normalized(allowed_domains)),
            workspace_domains: domains(normalized(workspace_domains)),
            denied_emails: normalized(denied_emails),
        }
    }

    /// Whether anyone may sign in (no allow list set).
    pub fn is_open(&self) -> bool {
        self.allowed_emails.is_empty()
            && self.allowed_domains.is_empty()
            && self.workspace_domains.is_empty()
    }

    /// Whether a check needs the person's `hd` claim (Workspace domains
    /// are configured).
    pub fn needs_hosted_domain(&self) -> bool {
        !self.workspace_domains.is_empty()
    }

    /// The Workspace domain to send Google as the `hd` hint (only when
    /// exactly one is configured: the hint names one domain).
    pub fn hd_hint(&self) -> Option<&str> {
        match self.workspace_domains.len() {
            1 => self.workspace_domains.iter().next().map(String::as_str),
            _ => None,
        }
    }

    pub fn check(&self, person: Person<'_>) -> Result<(), Refusal> {
        let email = person
            .email
            .filter(|_| person.email_verified)
            .map(|e| e.trim().to_ascii_lowercase());
        if let Some(email) = &email {
            if self.denied_emails.contains(email) {
                return Err(Refusal::Denied);
            }
        }
        if self.is_open() {
            return Ok(());
        }
        if let Some(hd) = person.hosted_domain {
            if self.workspace_domains.contains(&hd.to_ascii_lowercase()) {
                return Ok(());
            }
        }
        let Some(email) = email else {
            return Err(Refusal::NoVerifiedEmail);
        };
        let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if self.allowed_emails.contains(&email) || self.allowed_domains.contains(domain) {
            Ok(())
        } else {
            Err(Refusal::NotAllowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(email: &'static str, verified: bool, hd: Option<&'static str>) -> Person<'static> {
        Person {
            email: Some(email),
            email_verified: verified,
            hosted_domain: hd,
        }
    }

    const NONE: [&str; 0] = [];

    #[test]
    fn with_no_allow_list_anyone_signs_in_but_the_denied() {
        let p = AccessPolicy::new(NONE, NONE, NONE, ["Mallory@Example.com"]);
        assert!(p.is_open());
        assert_eq!(p.check(person("alice@example.com", true, None)), Ok(()));
        assert_eq!(
            p.check(person("mallory@example.com", true, None)),
            Err(Refusal::Denied)
        );
        // An unverified copy of a denied address is not that person, and
        // with no allow list it signs in like anyone (it is not an email).
        assert_eq!(p.check(person("mallory@example.com", false, None)), Ok(()));
    }

    #[test]
    fn allowed_addresses_and_domains_match_exactly_and_only_when_verified() {
        let p = AccessPolicy::new(
            ["bob@other.org"],
            ["@example.com"],
            NONE,
            ["eve@example.com"],
        );
        assert_eq!(p.check(person("Bob@Other.org", true, None)), Ok(()));
        assert_eq!(p.check(person("alice@example.com", true, None)), Ok(()));
        assert_eq!(
            p.check(person("alice@sub.example.com", true, None)),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            p.check(person("alice@evilexample.com", true, None)),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            p.check(person("alice@example.com.evil", true, None)),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            p.check(person("alice@example.com", false, None)),
            Err(Refusal::NoVerifiedEmail)
        );
        assert_eq!(
            p.check(person("eve@example.com", true, None)),
            Err(Refusal::Denied)
        );
    }

    #[test]
    fn a_workspace_domain_admits_its_accounts_by_the_hd_claim() {
        let p = AccessPolicy::new(NONE, NONE, ["corp.example"], NONE);
        assert_eq!(p.hd_hint(), Some("corp.example"));
        assert_eq!(
            p.check(person("a@corp.example", true, Some("corp.example"))),
            Ok(())
        );
        // The email's domain alone is not the Workspace claim.
        assert_eq!(
            p.check(person("a@corp.example", true, None)),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            p.check(person("a@gmail.com", true, Some("other.example"))),
            Err(Refusal::NotAllowed)
        );
    }

    #[test]
    fn entries_are_checked_as_addresses_or_domains() {
        assert!(check_address("alice@example.com").is_ok());
        for bad in ["alice", "@example.com", "alice@", "a@b@c", "a b@c.d", ""] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
        assert!(check_domain("example.com").is_ok());
        for bad in [
            "@example.com",
            "a@example.com",
            "https://example.com",
            "",
            "a b",
        ] {
            assert!(check_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_files_take_one_entry_per_line_with_comments() {
        let text =
            "# staff\nalice@example.com\n\n  bob@example.com  # on leave\n#carol@example.com\n";
        assert_eq!(
            parse_list(text),
            vec!["alice@example.com", "bob@example.com"]
        );
    }
}
