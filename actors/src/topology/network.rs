//! Which addresses belong to a private network (a corporate LAN, a VPN, a
//! lab) and which are on the internet: a client at an address no office
//! claims and no private range holds is off the corporate network (working
//! from home, on the road). Its automatic office never serves and takes the
//! origin directly, and it is given only the CDN origins, instead of
//! waiting for head-office peers and file storage it cannot reach.

use std::net::IpAddr;
use std::sync::LazyLock;

use ipnet::IpNet;

/// The ranges never routed on the internet.
static PRIVATE: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "198.18.0.0/15",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    ]
    .iter()
    .map(|net| net.parse().expect("a valid network"))
    .collect()
});

/// Whether `addr` lies in a range that is never routed on the internet:
/// RFC 1918 and loopback, link-local, carrier-grade NAT (100.64.0.0/10),
/// the benchmarking range (198.18.0.0/15), and IPv6 loopback, unique local
/// (fc00::/7) and link-local (fe80::/10). An IPv4-mapped IPv6 address is
/// judged as its IPv4 address.
pub fn is_private(addr: IpAddr) -> bool {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    PRIVATE.iter().any(|net| net.contains(&addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(s: &str) -> bool {
        is_private(s.parse().unwrap())
    }

    #[test]
    fn corporate_ranges_are_private_and_the_internet_is_not() {
        for inside in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.33.1.5",
            "169.254.0.9",
            "100.64.0.1",
            "100.127.255.255",
            "198.18.0.7",
            "198.19.255.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(private(inside), "{inside}");
        }
        for outside in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "203.0.113.9",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!private(outside), "{outside}");
        }
    }
}
