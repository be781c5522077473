//! Where a gateway request is forwarded: the request's path tail under the
//! upstream MCP server's URL, refused when it could leave that path.

use url::Url;

/// The part of the raw request path (as the client wrote it, before any
/// decoding) after the gateway path: `/mcp/a/b` → `a/b`. The router decodes
/// everything but `%2F` (and `%25`, `%2B`), so the raw path has exactly as
/// many `/` before the tail as the gateway path.
pub(super) fn raw_tail<'a>(raw_path: &'a str, gateway_path: &str) -> &'a str {
    let depth = gateway_path.matches('/').count();
    raw_path.splitn(depth + 2, '/').nth(depth + 1).unwrap_or("")
}

/// Decodes `%XX` escapes once (invalid escapes stay as they are).
fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a path tail could leave the upstream path at the MCP server or
/// anything between: a dot segment (`.`, `..`, also `...`, `.. ` and `..;x`,
/// which some servers read as `..`), a backslash (read as `/` by some) or a
/// control character — raw or percent-encoded, any case, encoded several
/// times over (a server that decodes twice reads `%252e` as `.`).
pub(super) fn escapes_upstream_path(tail: &str) -> bool {
    let bad = |s: &str| {
        s.bytes().any(|b| b == b'\\' || b.is_ascii_control())
            || s.split('/').any(|segment| {
                let segment = segment.split(';').next().unwrap_or("").trim();
                !segment.is_empty() && segment.bytes().all(|b| b == b'.')
            })
    };
    let mut current = tail.to_owned();
    for _ in 0..4 {
        if bad(&current) {
            return true;
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    // Still decoding after four rounds: no honest path is encoded like this.
    true
}

/// The URL a request is forwarded to: the upstream URL's path, then the
/// request's tail and query. `None` when the result would not stay under
/// the upstream URL's path and origin (checked on the parsed URL, as the
/// HTTP client will send it).
pub(super) fn target_url(upstream: &Url, tail: &str, query: &str) -> Option<Url> {
    let base = upstream.path().trim_end_matches('/').to_owned();
    let mut url = upstream.clone();
    let mut path = base.clone();
    if !tail.is_empty() {
        path.push('/');
        path.push_str(tail);
    }
    url.set_path(&path);
    let query = match (upstream.query().filter(|q| !q.is_empty()), query) {
        (Some(own), "") => Some(own.to_owned()),
        (Some(own), q) => Some(format!("{own}&{q}")),
        (None, "") => None,
        (None, q) => Some(q.to_owned()),
    };
    url.set_query(query.as_deref());
    url.set_fragment(None);
    let p = url.path();
    let inside = base.is_empty() || p == base || p.starts_with(&format!("{base}/"));
    (inside && url.origin() == upstream.origin()).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_cut_from_the_raw_path_after_the_gateway_path() {
        assert_eq!(raw_tail("/mcp", "/mcp"), "");
        assert_eq!(raw_tail("/mcp/", "/mcp"), "");
        assert_eq!(raw_tail("/mcp/a/b", "/mcp"), "a/b");
        assert_eq!(raw_tail("/%6dcp/../x", "/mcp"), "../x");
        assert_eq!(raw_tail("/api/mcp/a", "/api/mcp"), "a");
    }

    #[test]
    fn dot_segments_and_backslashes_are_found_however_encoded() {
        for bad in [
            "..",
            "../x",
            "a/../../x",
            "./x",
            "%2e%2e/x",
            "%2E%2E/%2E%2E/etc",
            ".%2e/x",
            "..%5c..%5cx",
            "..%5C",
            "a\\b",
            "%252e%252e/x",
            "%25252e%25252e/x",
            "..;/x",
            "...",
            "..%20/x",
            "a%00b",
            "%2e%2e%2fx",
        ] {
            assert!(escapes_upstream_path(bad), "{bad}");
        }
        for good in [
            "",
            "messages",
            "a..b",
            "a/b.c",
            ".well-known/x",
            "a%20b",
            "%41",
        ] {
            assert!(!escapes_upstream_path(good), "{good}");
        }
    }

    #[test]
    fn the_target_stays_under_the_upstream_path() {
        let up = Url::parse("http://up.example/base").unwrap();
        let t = |tail, q| target_url(&up, tail, q).map(|u| u.to_string());
        assert_eq!(t("", "").as_deref(), Some("http://up.example/base"));
        assert_eq!(
            t("messages", "x=1").as_deref(),
            Some("http://up.example/base/messages?x=1")
        );
        assert_eq!(t("../x", ""), None);
        assert_eq!(t("%2e%2e/x", ""), None);
        let root = Url::parse("http://up.example").unwrap();
        assert_eq!(
            target_url(&root, "tools", "")
                .map(|u| u.to_string())
                .as_deref(),
            Some("http://up.example/tools")
        );
    }
}
