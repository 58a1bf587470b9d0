//! The client's address behind trusted proxies (`X-Forwarded-For`).
//!
//! Throttling and the audit trail key on the client's IP address. Behind a load balancer
//! the TCP peer is the balancer, so every client would share one throttle and one audit
//! address. When the peer is a configured trusted proxy, the address is taken from
//! `X-Forwarded-For` instead: the right-most entry that is not itself a trusted proxy
//! (entries to its left were written by the client and prove nothing). Without trusted
//! proxies (the default) the header is ignored: anyone could write it.

use std::net::IpAddr;

use http::HeaderMap;

/// Networks whose connections may tell the client's address in `X-Forwarded-For`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses addresses and CIDR networks (`10.0.0.0/8`, `127.0.0.1`, `fd00::/8`). The
    /// error names the entry that is not one.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                let (addr, bits) = match e.split_once('/') {
                    Some((a, b)) => (a, Some(b)),
                    None => (e, None),
                };
                let addr: IpAddr = addr.parse().map_err(|_| e.to_owned())?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let bits = match bits {
                    Some(b) => b
                        .parse::<u8>()
                        .ok()
                        .filter(|b| *b <= max)
                        .ok_or(e.to_owned())?,
                    None => max,
                };
                Ok((addr, bits))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0
            .iter()
            .any(|(net, bits)| match (canonical(*net), ip) {
                (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
                _ => false,
            })
    }

    /// The client's address for a connection from `peer` with these headers.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            match entry.parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !self.contains(client) {
                        break;
                    }
                }
                // A garbled entry ends the chain of trust: keep the last good hop.
                Err(_) => break,
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        (a[full] & mask) == (b[full] & mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn networks_parse_and_match() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.7", "fd00::/8"]).unwrap();
        assert!(t.contains(ip("10.200.3.4")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(t.contains(ip("192.168.1.7")));
        assert!(!t.contains(ip("192.168.1.8")));
        assert!(t.contains(ip("fd12::1")));
        assert!(!t.contains(ip("fe80::1")));
        assert!(t.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        let odd = TrustedProxies::parse(&["172.16.0.0/12"]).unwrap();
        assert!(odd.contains(ip("172.31.255.255")));
        assert!(!odd.contains(ip("172.32.0.0")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/", "::/129", ""] {
            assert_eq!(TrustedProxies::parse(&[bad]), Err(bad.to_owned()), "{bad}");
        }
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        let lb = ip("10.0.0.2");
        // Not from a trusted proxy: the header is anyone's word.
        assert_eq!(
            t.client_ip(ip("203.0.113.9"), &xff(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
        assert_eq!(t.client_ip(lb, &xff(&["198.51.100.4"])), ip("198.51.100.4"));
        // A client-written entry to the left of the real one is ignored.
        assert_eq!(
            t.client_ip(lb, &xff(&["6.6.6.6, 198.51.100.4"])),
            ip("198.51.100.4")
        );
        // Chains of trusted proxies, over several headers.
        assert_eq!(
            t.client_ip(lb, &xff(&["198.51.100.4, 10.1.1.1", "10.0.0.9"])),
            ip("198.51.100.4")
        );
        // Garbage ends the chain; no header leaves the peer.
        assert_eq!(t.client_ip(lb, &xff(&["198.51.100.4, junk"])), lb);
        assert_eq!(t.client_ip(lb, &HeaderMap::new()), lb);
        // Nothing trusted: ignored.
        assert_eq!(
            TrustedProxies::default().client_ip(lb, &xff(&["198.51.100.4"])),
            lb
        );
    }
}
