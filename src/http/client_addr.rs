//! The client's address: the peer, or — when the peer is a trusted proxy —
//! the nearest untrusted address in `X-Forwarded-For` / `Forwarded`.

use std::net::IpAddr;

use actix_web::HttpRequest;

pub use crate::domain::Cidr;

/// The address a request comes from, believing forwarding headers only
/// from `trusted` peers.
pub fn client_ip(req: &HttpRequest, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut chain: Vec<IpAddr> = forwarded_chain(req);
    if chain.is_empty() {
        return Some(peer);
    }
    // Right to left: the first address not of our own proxies is the client.
    while let Some(last) = chain.pop() {
        if !is_trusted(last) || chain.is_empty() {
            return Some(last);
        }
    }
    Some(peer)
}

/// The addresses in `X-Forwarded-For` (else `Forwarded`), left to right.
pub(crate) fn forwarded_chain(req: &HttpRequest) -> Vec<IpAddr> {
    let headers = req.headers();
    let xff: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| parse_node(s.trim()))
        .collect();
    if !xff.is_empty() {
        return xff;
    }
    headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.eq_ignore_ascii_case("for")
                    .then(|| parse_node(v.trim().trim_matches('"')))
                    .flatten()
            })
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[::1]`, `[::1]:80` or a bare IPv6 address.
fn parse_node(raw: &str) -> Option<IpAddr> {
    if let Ok(ip) = raw.parse() {
        return Some(ip);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    raw.rsplit_once(':').and_then(|(host, _)| host.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_what_they_should() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
    }

    #[test]
    fn forwarded_nodes_parse() {
        assert_eq!(parse_node("1.2.3.4:80"), "1.2.3.4".parse().ok());
        assert_eq!(parse_node("[2001:db8::1]:443"), "2001:db8::1".parse().ok());
        assert_eq!(parse_node("unknown"), None);
    }
}

/// The key under which per-address limits count a client address: the
/// address itself for IPv4 (and IPv4-mapped IPv6), the /64 network for
/// IPv6, since one subscriber holds a whole /64 and can rotate through it.
/// Anything that is not an address (`unknown`) is its own key.
pub fn address_key(ip: &str) -> String {
    match ip.parse::<IpAddr>().map(subscriber) {
        Ok(net @ IpAddr::V6(_)) => format!("{net}/64"),
        Ok(v4) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// The address per-address limits count: IPv4 (also IPv4-mapped IPv6) as
/// is, IPv6 as its /64 network.
pub fn subscriber(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod address_key_tests {
    use super::address_key;

    #[test]
    fn ipv6_addresses_of_one_subscriber_share_a_key() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            address_key("2001:db8:1:2::7")
        );
        assert_ne!(
            address_key("2001:db8:1:3::1"),
            address_key("2001:db8:1:2::1")
        );
        assert_eq!(address_key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(address_key("192.0.2.1"), "192.0.2.1");
        assert_eq!(address_key("unknown"), "unknown");
    }
}
