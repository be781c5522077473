//! `[pages]`: the service name must be short plain text, and the logo a
//! small PNG or SVG file, read once here and carried as a `data:` URI (the
//! pages load nothing else, so their Content-Security-Policy stays strict).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::rules::err;
use crate::configuration::{ConfigError, PagesConfig, Settings};

/// The longest service name shown (characters).
pub const MAX_SERVICE_NAME: usize = 60;
/// The largest logo file accepted (bytes): a logo is an icon, not a photo.
pub const MAX_LOGO_BYTES: usize = 64 * 1024;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

pub(super) fn validate(s: &Settings) -> Result<PagesConfig, ConfigError> {
    let p = &s.pages;
    Ok(PagesConfig {
        service_name: service_name(&p.service_name)?,
        logo: logo("pages.logo_file", &p.logo_file)?,
    })
}

fn service_name(raw: &str) -> Result<String, ConfigError> {
    const KEY: &str = "pages.service_name";
    let name = raw.trim();
    if name.is_empty() {
        return Err(err(KEY, "must not be empty"));
    }
    if name.chars().count() > MAX_SERVICE_NAME {
        return Err(err(
            KEY,
            format!("must be at most {MAX_SERVICE_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(err(KEY, "must be one line of text (no control characters)"));
    }
    Ok(name.to_owned())
}

/// The logo file as a `data:` URI, or `None` when no file is named.
fn logo(key: &str, path: &str) -> Result<Option<String>, ConfigError> {
    let path = path.trim();
    if path.is_empty() {
        return Ok(None);
    }
    let size = std::fs::metadata(path)
        .map_err(|e| err(key, format!("cannot read {path}: {e}")))?
        .len();
    if size > MAX_LOGO_BYTES as u64 {
        return Err(err(
            key,
            format!(
                "{path} is {size} bytes; a logo may be at most {MAX_LOGO_BYTES} bytes (64 KiB)"
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| err(key, format!("cannot read {path}: {e}")))?;
    let media_type = image_type(&bytes).ok_or_else(|| {
        err(
            key,
            format!("{path} is neither a PNG nor an SVG image (a logo must be one of them)"),
        )
    })?;
    Ok(Some(format!(
        "data:{media_type};base64,{}",
        STANDARD.encode(&bytes)
    )))
}

/// `image/png` or `image/svg+xml`, judged by the content (not the name).
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(PNG_SIGNATURE) {
        return Some("image/png");
    }
    let text = std::str::from_utf8(bytes).ok()?;
    is_svg(text).then_some("image/svg+xml")
}

/// Whether `text` is an SVG document: its first element (after an XML
/// declaration, comments and a doctype) is `<svg`.
fn is_svg(text: &str) -> bool {
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        let skipped = if rest.starts_with("<?") {
            rest.find("?>").map(|i| i + 2)
        } else if rest.starts_with("<!--") {
            rest.find("-->").map(|i| i + 3)
        } else if rest.starts_with("<!") {
            rest.find('>').map(|i| i + 1)
        } else {
            break;
        };
        let Some(end) = skipped else { return false };
        rest = rest[end..].trim_start();
    }
    rest.strip_prefix("<svg")
        .and_then(|r| r.chars().next())
        .is_some_and(|c| c.is_whitespace() || c == '>' || c == '/')
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::configuration::{load_from, Config};

    fn load(file: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_from(Some(file), &vars).map(|(c, _)| c)
    }

    const SVG: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8"/></svg>"#;

    #[test]
    fn the_service_name_and_logo_come_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let logo = dir.path().join("logo.svg");
        std::fs::write(&logo, SVG).unwrap();
        let c = load("", &[]).unwrap();
        assert_eq!(c.pages.service_name, "Drawbridge");
        assert_eq!(c.pages.logo, None);
        let file = format!(
            "[pages]\nservice_name = \"  Acme Tools \"\nlogo_file = {:?}\n",
            logo.display().to_string()
        );
        let c = load(&file, &[]).unwrap();
        assert_eq!(c.pages.service_name, "Acme Tools");
        let expected = format!("data:image/svg+xml;base64,{}", STANDARD.encode(SVG));
        assert_eq!(c.pages.logo.as_deref(), Some(expected.as_str()));
        let c = load(
            &file,
            &[
                ("DRAWBRIDGE_PAGES__SERVICE_NAME", "Beta Gateway"),
                ("DRAWBRIDGE_PAGES__LOGO_FILE", ""),
            ],
        )
        .unwrap();
        assert_eq!(c.pages.service_name, "Beta Gateway");
        assert_eq!(c.pages.logo, None);
    }

    #[test]
    fn a_missing_oversized_or_foreign_logo_file_stops_start_up_naming_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let big = path("big.png");
        let mut png = PNG_SIGNATURE.to_vec();
        png.resize(MAX_LOGO_BYTES + 1, 0);
        std::fs::write(&big, &png).unwrap();
        let just_fits = path("fits.png");
        png.truncate(MAX_LOGO_BYTES);
        std::fs::write(&just_fits, &png).unwrap();
        let gif = path("logo.gif");
        std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00").unwrap();
        let html = path("page.svg");
        std::fs::write(&html, "<html><body><svg></svg></body></html>").unwrap();
        let cases = [
            (path("absent.png"), "cannot read"),
            (big, "is 65537 bytes; a logo may be at most 65536 bytes"),
            (gif, "is neither a PNG nor an SVG image"),
            (html, "is neither a PNG nor an SVG image"),
        ];
        for (file, problem) in cases {
            let e = load("", &[("DRAWBRIDGE_PAGES__LOGO_FILE", &file)]).unwrap_err();
            assert_eq!(e.key, "pages.logo_file");
            assert!(
                e.problem.contains(problem) && e.problem.contains(&file),
                "{e}"
            );
        }
        let c = load("", &[("DRAWBRIDGE_PAGES__LOGO_FILE", &just_fits)]).unwrap();
        assert!(c
            .pages
            .logo
            .unwrap()
            .starts_with("data:image/png;base64,iVBORw0KGgo"));
    }

    #[test]
    fn the_service_name_is_one_short_line() {
        for (name, problem) in [
            ("   ", "must not be empty"),
            ("a\nb", "one line"),
            (&"x".repeat(61), "at most 60 characters"),
        ] {
            let e = service_name(name).unwrap_err();
            assert_eq!(e.key, "pages.service_name");
            assert!(e.problem.contains(problem), "{name:?}: {e}");
        }
        assert_eq!(
            service_name("Ünïcode Gateway ✓").unwrap(),
            "Ünïcode Gateway ✓"
        );
        let e = load("", &[("DRAWBRIDGE_PAGES__SERVICE_NAME", " ")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "configuration error: pages.service_name: must not be empty"
        );
    }

    #[test]
    fn svg_is_recognised_after_a_declaration_comments_and_a_doctype() {
        assert!(is_svg("<svg xmlns=\"http://www.w3.org/2000/svg\"/>"));
        assert!(is_svg(
            "\u{feff}<?xml version=\"1.0\"?>\n<!-- logo -->\n<!DOCTYPE svg>\n<svg>"
        ));
        assert!(!is_svg("<html><svg></svg></html>"));
        assert!(!is_svg("<svgfoo>"));
        assert!(!is_svg("<!-- never closed <svg>"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(b"GIF89a"), None);
        assert_eq!(image_type(&[0xff, 0xd8, 0xff]), None);
    }
}
