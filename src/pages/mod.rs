//! The few HTML pages Drawbridge shows a person (consent, refusals and
//! errors, the dev provider's sign-in), from the templates in
//! `src/pages/templates` (askama, compiled in). Every value is escaped by
//! [`escape`]; framing is refused; the pages load nothing (inline style,
//! an inline logo), so their Content-Security-Policy allows nothing else.
//! They carry the operator's name and logo ([`Branding`], `[pages]`), read
//! light or dark as the device prefers, and fit a phone's width.

mod branding;
mod scopes;

use std::fmt;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

pub use branding::{branded, current, Branding, DEFAULT_SERVICE_NAME};
pub use scopes::describe_scope;
/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// The escaper of every template here: [`escape`], so a value can never
/// add markup.
#[derive(Debug, Clone, Copy)]
pub struct Html;

impl askama::filters::Escaper for Html {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, string: &str) -> fmt::Result {
        dest.write_str(&escape(string))
    }
}

/// The error page: a sign-in that must not be redirected.
#[derive(Template)]
#[template(path = "error.html", config = "src/pages/askama.toml")]
struct ErrorPage<'a> {
    chrome: Arc<Branding>,
    title: &'a str,
    error: &'a str,
    description: &'a str,
    /// What the person can do next.
    hint: &'a str,
}

impl<'a> ErrorPage<'a> {
    /// The page for an RFC 6749 `error` code and its description, titled
    /// by what kind of problem it is.
    fn new(error: &'a str, description: &'a str) -> Self {
        let (title, hint) = match error {
            "access_denied" => (
                "Access refused",
                "Start the sign-in again from your application.",
            ),
            "temporarily_unavailable" => (
                "Try again in a moment",
                "Wait a moment, then start the sign-in again from your application.",
            ),
            _ => (
                "Sign-in cannot continue",
                "Start the sign-in again from your application.",
            ),
        };
        Self {
            chrome: current(),
            title,
            error,
            description,
            hint,
        }
    }
}

/// A page with one line of text.
#[derive(Template)]
#[template(path = "message.html", config = "src/pages/askama.toml")]
struct MessagePage<'a> {
    chrome: Arc<Branding>,
    title: &'a str,
    message: &'a str,
}

/// The consent page: who asks, for what, and the form that answers.
#[derive(Template)]
#[template(path = "consent.html", config = "src/pages/askama.toml")]
pub struct ConsentPage<'a> {
    chrome: Arc<Branding>,
    title: &'a str,
    /// The name the client gives itself (shown as its claim, unverified).
    pub name: &'a str,
    /// The host the browser is sent back to.
    pub host: &'a str,
    /// The host that published the client's metadata document (its
    /// `client_id` is the document's URL); `None` for registered clients.
    pub publisher: Option<&'a str>,
    /// The browser is sent back to this computer (a loopback address).
    pub loopback: bool,
    /// What each scope allows, in words: the scopes this sign-in asks for
    /// that the person has not granted this client before.
    pub scopes: Vec<String>,
    /// The scopes asked for that the person already granted this client
    /// (a step-up asks for these again with the new ones), in words.
    pub granted: Vec<String>,
    pub client_id: &'a str,
    /// The sign-in's state and the form's CSRF token (hidden fields).
    pub state: &'a str,
    pub csrf: &'a str,
    /// Where the form posts (`/oauth/consent` under `BASE_URL`'s path).
    pub action: String,
}

impl<'a> ConsentPage<'a> {
    /// The consent page for a client asking for `scopes` (raw scope names).
    pub fn new(
        name: &'a str,
        host: &'a str,
        scopes: &[String],
        client_id: &'a str,
        state: &'a str,
        csrf: &'a str,
    ) -> Self {
        Self {
            chrome: current(),
            title: "Allow access?",
            name,
            host,
            publisher: None,
            loopback: false,
            scopes: scopes.iter().map(|s| describe_scope(s)).collect(),
            granted: Vec::new(),
            client_id,
            state,
            csrf,
            action: "/oauth/consent".into(),
        }
    }
}

impl<'a> ConsentPage<'a> {
    /// Names the host that published the client's metadata document.
    pub fn published_by(mut self, host: Option<&'a str>) -> Self {
        self.publisher = host;
        self
    }

    /// Posts the form to `action` (an issuer with a path).
    pub fn posting_to(mut self, action: String) -> Self {
        self.action = action;
        self
    }

    /// Marks `granted` (raw scope names, among those asked for) as granted
    /// before: the page lists only the others as new.
    pub fn already_granted(mut self, asked: &[String], granted: &[String]) -> Self {
        let new = asked.iter().filter(|s| !granted.contains(s));
        self.scopes = new.map(|s| describe_scope(s)).collect();
        self.granted = asked
            .iter()
            .filter(|s| granted.contains(s))
            .map(|s| describe_scope(s))
            .collect();
        self
    }

    /// Warns that the browser is sent back to this computer.
    pub fn loopback(mut self, loopback: bool) -> Self {
        self.loopback = loopback;
        self
    }
}

/// The development identity provider's sign-in page (its own header: it
/// stands in for Google, not for the operator's service).
#[derive(Template)]
#[template(path = "dev_signin.html", config = "src/pages/askama.toml")]
pub struct DevSignInPage<'a> {
    chrome: Arc<Branding>,
    title: &'a str,
    /// Where the form posts.
    pub action: &'a str,
    /// The authorization request's parameters, carried as hidden fields.
    pub fields: Vec<(&'a str, &'a str)>,
    /// The demo user's email.
    pub email: &'a str,
}

/// The title of the development identity provider's pages.
pub const DEV_TITLE: &str = "Development sign-in";

impl<'a> DevSignInPage<'a> {
    /// The sign-in page posting `fields` (hidden) to `action`.
    pub fn new(action: &'a str, fields: Vec<(&'a str, &'a str)>, email: &'a str) -> Self {
        Self {
            chrome: Arc::new(Branding::development()),
            title: DEV_TITLE,
            action,
            fields,
            email,
        }
    }
}

/// The Content-Security-Policy of every page: nothing may load, except
/// the inline style and, with a logo configured, the inline (`data:`) image.
fn content_security_policy(with_logo: bool) -> String {
    let images = if with_logo { " img-src data:;" } else { "" };
    format!(
        "default-src 'none'; style-src 'unsafe-inline';{images} frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A rendered page with the security headers every Drawbridge page carries.
pub fn render(status: u16, page: &impl Template) -> HttpResponse {
    let Ok(html) = page.render() else {
        tracing::error!("a page could not be rendered");
        return HttpResponse::InternalServerError().finish();
    };
    let csp = content_security_policy(current().logo.is_some());
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type("text/html; charset=utf-8")
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Content-Security-Policy", csp))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(html)
}

/// A page saying one thing, e.g. why a request cannot be served.
pub fn message_page(status: u16, title: &str, message: &str) -> HttpResponse {
    let page = MessagePage {
        chrome: current(),
        title,
        message,
    };
    render(status, &page)
}

/// An error that must not be redirected (unknown client, unregistered
/// redirect URI, expired login, a refusal by the access policy): shown to
/// the person instead.
pub fn error_page(status: u16, error: &str, description: &str) -> HttpResponse {
    render(status, &ErrorPage::new(error, description))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branded(name: &str, logo: Option<&str>) -> Arc<Branding> {
        Arc::new(Branding {
            service_name: name.into(),
            logo: logo.map(str::to_owned),
            development: false,
        })
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<script>"x"&'y'</script>"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#x27;y&#x27;&lt;/script&gt;"
        );
        assert!(describe_scope("custom:thing").contains("custom:thing"));
    }

    #[test]
    fn the_error_page_is_the_layout_around_its_escaped_text() {
        let page = ErrorPage::new("invalid_request", "a <b>");
        let html = page.render().unwrap();
        assert!(html.starts_with("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"color-scheme\" content=\"light dark\"><title>Sign-in cannot continue · Drawbridge</title><style>"));
        assert!(html.contains("@media (prefers-color-scheme:dark)"));
        assert!(html.ends_with(
            "</style></head><body><header class=\"brand\"><span>Drawbridge</span></header><main><h1>Sign-in cannot continue</h1><p class=\"error\">a &lt;b&gt;</p><p class=\"muted\">Start the sign-in again from your application. Error: <code>invalid_request</code>.</p></main></body></html>"
        ), "{html}");
    }

    #[test]
    fn refusals_and_outages_are_titled_for_what_they_are() {
        let refused = ErrorPage::new("access_denied", "You signed in, but no.");
        assert!(refused
            .render()
            .unwrap()
            .contains("<h1>Access refused</h1>"));
        let busy = ErrorPage::new("temporarily_unavailable", "Busy.");
        let html = busy.render().unwrap();
        assert!(html.contains("<h1>Try again in a moment</h1>"));
        assert!(html.contains("Wait a moment, then start the sign-in again"));
    }

    #[test]
    fn the_operators_name_and_logo_head_every_page_escaped() {
        let mut page = ErrorPage::new("invalid_request", "x");
        page.chrome = branded("Acme <Tools>", Some("data:image/png;base64,iVBORw0KGgo="));
        let html = page.render().unwrap();
        assert!(html.contains("<title>Sign-in cannot continue · Acme &lt;Tools&gt;</title>"));
        assert!(html.contains(
            "<header class=\"brand\"><img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"\" width=\"32\" height=\"32\"><span>Acme &lt;Tools&gt;</span></header>"
        ));
        assert!(html.contains("<footer>Sign-in gateway: Drawbridge</footer>"));
        assert!(!html.contains("<Tools>"));
        // The default name is not credited twice.
        let plain = ErrorPage::new("invalid_request", "x").render().unwrap();
        assert!(!plain.contains("<footer>") && !plain.contains("<img"));
    }

    #[test]
    fn the_policy_allows_an_inline_image_only_with_a_logo() {
        assert_eq!(
            content_security_policy(false),
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(
            content_security_policy(true),
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"
        );
    }

    #[test]
    fn the_dev_providers_page_carries_its_own_header_not_the_operators() {
        let page = DevSignInPage::new("/dev/authorize", vec![("state", "a\"b")], "demo@x");
        let html = page.render().unwrap();
        assert!(html.contains("<span>Development identity provider</span><span class=\"badge\">not for production</span>"));
        assert!(html.contains(r#"<input type="hidden" name="state" value="a&quot;b">"#));
        assert!(html.contains("class=\"approve\">Sign in as demo@x</button>"));
    }

    #[test]
    fn the_consent_page_escapes_the_client_and_carries_the_form_secrets() {
        let scopes = ["openid".to_owned(), "x:<y>".to_owned()];
        let page = ConsentPage::new(
            "<b>Evil</b> & Co",
            "example.com",
            &scopes,
            "mcp_x",
            "s\"t",
            "c'f",
        );
        let html = page.render().unwrap();
        assert!(html.contains("<title>Allow access? · Drawbridge</title>"));
        assert!(html.contains(
            "An application that calls itself <strong>&lt;b&gt;Evil&lt;/b&gt; &amp; Co</strong> <span class=\"claim\">name not verified</span> wants to use your account through Drawbridge."
        ));
        assert!(html.contains(
            "<h2>It will be able to:</h2><ul class=\"scopes\"><li>Sign you in with your account</li><li>Use the permission “x:&lt;y&gt;” (no description available)</li></ul>"
        ), "{html}");
        assert!(html.contains(r#"<input type="hidden" name="state" value="s&quot;t"><input type="hidden" name="csrf" value="c&#x27;f">"#));
        // Approve comes first (Enter approves) and is the primary button.
        let approve = html.find("value=\"approve\" class=\"approve\">Approve</button>");
        let deny = html.find("value=\"deny\" class=\"deny\">Deny</button>");
        assert!(
            approve.is_some() && deny.is_some() && approve < deny,
            "{html}"
        );
        assert!(!html.contains("<b>"));
        assert!(!html.contains("published by") && !html.contains("loopback"));
        assert!(html.contains("sent back to <strong class=\"host\">example.com</strong>"));
    }

    #[test]
    fn the_consent_page_names_the_documents_publisher_and_warns_of_a_loopback_redirect() {
        let page = ConsentPage::new(
            "Visual Studio Code",
            "127.0.0.1",
            &["openid".to_owned()],
            "https://vscode.dev/oauth/client-metadata.json",
            "s",
            "c",
        )
        .published_by(Some("vscode.dev"))
        .loopback(true);
        let html = page.render().unwrap();
        assert!(html.contains("published by <strong class=\"host\">vscode.dev</strong>"));
        assert!(html.contains("sent back to <strong class=\"host\">127.0.0.1</strong>"));
        assert!(html.contains("<p class=\"warn\">That address is on this computer (loopback)"));
    }

    #[test]
    fn at_a_step_up_the_consent_page_lists_only_the_new_scopes_as_new() {
        let asked = [
            "openid".to_owned(),
            "email".to_owned(),
            "https://www.googleapis.com/auth/gmail.send".to_owned(),
        ];
        let granted = ["openid".to_owned(), "email".to_owned()];
        let page = ConsentPage::new("App", "example.com", &asked, "mcp_x", "s", "c")
            .already_granted(&asked, &granted);
        let html = page.render().unwrap();
        assert!(
            html.contains("New:</h2><ul class=\"scopes\"><li>Send email on your behalf</li></ul>"),
            "{html}"
        );
        assert!(html.contains(
            "<summary>Already allowed (2)</summary><ul class=\"scopes\"><li>Sign you in with your account</li><li>See your email address</li></ul>"
        ));
        assert!(!html.contains("It will be able to:"));
        let again = ConsentPage::new("App", "example.com", &granted, "mcp_x", "s", "c")
            .already_granted(&granted, &granted);
        assert!(again.render().unwrap().contains("nothing new"));
    }
}
