//! The few HTML pages Drawbridge shows a person (consent, errors, the dev
//! provider's sign-in). Every value is escaped; framing is refused.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;

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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.4rem}ul{padding-left:1.2rem}button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.6rem}\
.host{font-family:monospace}.muted{color:#666;font-size:.9rem}";

/// A complete page with the security headers every Drawbridge page carries.
pub fn page(status: u16, title: &str, body_html: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1>{body_html}</body></html>",
        t = escape(title)
    );
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

/// An error that must not be redirected (unknown client, unregistered
/// redirect URI, expired login): shown to the person instead.
pub fn error_page(status: u16, error: &str, description: &str) -> HttpResponse {
    page(
        status,
        "Sign-in cannot continue",
        &format!(
            "<p>{}</p><p class=\"muted\">Error: <code>{}</code>. Start the sign-in again from your application.</p>",
            escape(description),
            escape(error)
        ),
    )
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
}
