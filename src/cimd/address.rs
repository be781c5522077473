//! Which addresses a metadata-document fetch may connect to: only public
//! unicast ones. Everything RFC 6890 (and its successors) sets aside —
//! loopback, private, shared (CGNAT), link-local, documentation,
//! benchmarking, multicast, reserved, unspecified — is refused, as are the
//! IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4, Teredo),
//! which are judged by the address they carry or refused outright.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether a fetch may connect to `ip`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// IPv4 special-use blocks (RFC 6890 and the IANA registry it set up).
const SPECIAL_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", unspecified
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation
    ([192, 31, 196, 0], 24), // AS112
    ([192, 52, 193, 0], 24), // AMT
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private
    ([192, 175, 48, 0], 24), // direct delegation AS112
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation
    ([203, 0, 113, 0], 24),  // documentation
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and the limited broadcast address
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !SPECIAL_V4
        .iter()
        .any(|(net, prefix)| in_v4(ip, *net, *prefix))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Forms that carry an IPv4 address: judged by it.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 well-known prefix 64:ff9b::/96.
        let o = ip.octets();
        return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    let special = ip.is_unspecified()
        || ip.is_loopback()
        // IPv4-compatible (deprecated) ::/96, and every other address in ::/8.
        || s[0] & 0xff00 == 0
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 64:ff9b:1::/48
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])      // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] < 0x0200)              // IETF protocol assignments 2001::/23 (Teredo incl.)
        || (s[0] == 0x2001 && s[1] == 0x0db8)             // documentation 2001:db8::/32
        || s[0] == 0x2002                                 // 6to4 2002::/16
        || s[0] == 0x3fff && s[1] < 0x1000               // documentation 3fff::/20
        || s[0] & 0xfe00 == 0xfc00                        // unique local fc00::/7
        || s[0] & 0xffc0 == 0xfe80                        // link-local fe80::/10
        || s[0] & 0xffc0 == 0xfec0                        // site-local (deprecated) fec0::/10
        || s[0] & 0xff00 == 0xff00; // multicast ff00::/8
    !special
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn special_use_ipv4_addresses_are_refused() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(ip), "{ip} counted as public");
        }
    }

    #[test]
    fn public_ipv4_addresses_are_allowed_up_to_the_edges_of_the_special_blocks() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(public(ip), "{ip} counted as special-use");
        }
    }

    #[test]
    fn special_use_ipv6_addresses_and_ipv4_carrying_forms_are_refused() {
        for ip in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(!public(ip), "{ip} counted as public");
        }
    }

    #[test]
    fn public_ipv6_addresses_and_mapped_public_ipv4_are_allowed() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:4860::8888",
        ] {
            assert!(public(ip), "{ip} counted as special-use");
        }
    }
}
