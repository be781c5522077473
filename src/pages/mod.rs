//! The few HTML pages Drawbridge shows a person (consent, errors, the dev
//! provider's sign-in), from the templates in `src/pages/templates` (askama,
//! compiled in). Every value is escaped by [`escape`]; framing is refused.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

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
    title: &'a str,
    error: &'a str,
    description: &'a str,
}

/// A page with one line of text.
#[derive(Template)]
#[template(path = "message.html", config = "src/pages/askama.toml")]
struct MessagePage<'a> {
    title: &'a str,
    message: &'a str,
}

/// The consent page: who asks, for what, and the form that answers.
#[derive(Template)]
#[template(path = "consent.html", config = "src/pages/askama.toml")]
pub struct ConsentPage<'a> {
    title: &'a str,
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

/// The development identity provider's sign-in page.
#[derive(Template)]
#[template(path = "dev_signin.html", config = "src/pages/askama.toml")]
pub struct DevSignInPage<'a> {
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
    pub fn new(action: &'a str, fields: Vec<(&'a str, &'a str)>, email: &'a str) -> Self {
        Self {
            title: DEV_TITLE,
            action,
            fields,
            email,
        }
    }
}

/// A rendered page with the security headers every Drawbridge page carries.
pub fn render(status: u16, page: &impl Template) -> HttpResponse {
    let Ok(html) = page.render() else {
        tracing::error!("a page could not be rendered");
        return HttpResponse::InternalServerError().finish();
    };
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type("text/html; charset=utf-8")
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(html)
}

/// A page saying one thing, e.g. why a request cannot be served.
pub fn message_page(status: u16, title: &str, message: &str) -> HttpResponse {
    render(status, &MessagePage { title, message })
}

/// An error that must not be redirected (unknown client, unregistered
/// redirect URI, expired login): shown to the person instead.
pub fn error_page(status: u16, error: &str, description: &str) -> HttpResponse {
    let page = ErrorPage {
        title: "Sign-in cannot continue",
        error,
        description,
    };
    render(status, &page)
}

/// Words for scopes a person is asked to grant.
pub fn describe_scope(scope: &str) -> String {
    let short = scope
        .strip_prefix("https://www.googleapis.com/auth/")
        .unwrap_or(scope);
    let words = match short {
        "openid" => "Sign you in with your account",
        "email" | "userinfo.email" => "See your email address",
        "profile" | "userinfo.profile" => "See your basic profile information",
        "drive.file" => {
            "See, edit, create and delete only the Google Drive files used with this app"
        }
        "drive" => "See, edit, create and delete all of your Google Drive files",
        "drive.readonly" => "See and download all your Google Drive files",
        "gmail.send" => "Send email on your behalf",
        "gmail.readonly" => "Read your email messages and settings",
        "gmail.modify" => "Read, compose and send email from your Gmail account",
        "calendar" => "See, edit, share and delete all your calendars",
        "calendar.events" => "View and edit events on all your calendars",
        "calendar.readonly" => "See and download any calendar you can access",
        "documents" => "See, edit, create and delete your Google Docs documents",
        "spreadsheets" => "See, edit, create and delete your Google Sheets spreadsheets",
        "offline_access" => "Stay signed in when you are not using the app",
        _ => return format!("Access: {scope}"),
    };
    words.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<script>"x"&'y'</script>"#),
            "&lt;script&gt;&quot;x&quot;&amp;&#x27;y&#x27;&lt;/script&gt;"
        );
        assert_eq!(
            describe_scope("https://www.googleapis.com/auth/drive.file"),
            describe_scope("drive.file")
        );
        assert!(describe_scope("custom:thing").contains("custom:thing"));
    }

    #[test]
    fn the_error_page_is_the_layout_around_its_escaped_text() {
        let page = ErrorPage {
            title: "Sign-in cannot continue",
            error: "invalid_request",
            description: "a <b>",
        };
        let html = page.render().unwrap();
        assert!(html.starts_with("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"));
        assert!(html.ends_with(
            "<body><h1>Sign-in cannot continue</h1><p>a &lt;b&gt;</p><p class=\"muted\">Error: <code>invalid_request</code>. Start the sign-in again from your application.</p></body></html>"
        ));
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
        assert!(html.contains("<strong>&lt;b&gt;Evil&lt;/b&gt; &amp; Co</strong>"));
        assert!(html.contains(
            "<ul><li>Sign you in with your account</li><li>Access: x:&lt;y&gt;</li></ul>"
        ));
        assert!(html.contains(r#"<input type="hidden" name="state" value="s&quot;t"><input type="hidden" name="csrf" value="c&#x27;f">"#));
        assert!(!html.contains("<b>"));
        assert!(!html.contains("published by") && !html.contains("loopback"));
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
            html.contains("New:</p><ul><li>Send email on your behalf</li></ul>"),
            "{html}"
        );
        assert!(html.contains(
            "<summary>Already allowed (2)</summary><ul><li>Sign you in with your account</li><li>See your email address</li></ul>"
        ));
        let again = ConsentPage::new("App", "example.com", &granted, "mcp_x", "s", "c")
            .already_granted(&granted, &granted);
        assert!(again.render().unwrap().contains("nothing new"));
    }
}
