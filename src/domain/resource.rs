//! RFC 8707 resource indicators: whether a client's `resource` names this
//! server's protected resource. Compared after RFC 3986 §6.2.2's
//! syntax-based normalisation — scheme and host without regard to case, a
//! default port the same as none — with one trailing slash the same as
//! none. Anything else (another path, a query, a fragment, user info) is
//! another resource.

use url::Url;

/// Longest `resource` value looked at.
const MAX_RESOURCE_BYTES: usize = 2048;

/// Whether `presented` names `canonical` (this server's resource URL).
pub fn names_resource(presented: &str, canonical: &str) -> bool {
    if presented.len() > MAX_RESOURCE_BYTES || presented.contains('#') {
        return false;
    }
    let (Ok(p), Ok(c)) = (Url::parse(presented), Url::parse(canonical)) else {
        return false;
    };
    let path = |u: &Url| -> String {
        let path = u.path();
        path.strip_suffix('/').unwrap_or(path).to_owned()
    };
    p.scheme() == c.scheme()
        && p.host() == c.host()
        && p.port_or_known_default() == c.port_or_known_default()
        && p.username().is_empty()
        && p.password().is_none()
        && p.query() == c.query()
        && path(&p) == path(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "https://mcp.example.com/mcp";

    #[test]
    fn spellings_of_the_same_resource_match() {
        for presented in [
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp/",
            "HTTPS://MCP.Example.COM/mcp",
            "https://mcp.example.com:443/mcp",
        ] {
            assert!(names_resource(presented, OURS), "{presented}");
        }
        assert!(names_resource(
            "http://LOCALHOST:8002/",
            "http://localhost:8002"
        ));
        assert!(names_resource(
            "http://localhost:8002",
            "http://localhost:8002/"
        ));
    }

    #[test]
    fn other_resources_do_not() {
        for presented in [
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/mcp//",
            "https://mcp.example.com/mcp/x",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp#frag",
            "https://user@mcp.example.com/mcp",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "https://evil.example.com/mcp",
            "https://mcp.example.com.evil/mcp",
            "mcp.example.com/mcp",
            "",
        ] {
            assert!(!names_resource(presented, OURS), "{presented}");
        }
        let long = format!("{OURS}{}", "/".repeat(3000));
        assert!(!names_resource(&long, OURS));
    }
}
