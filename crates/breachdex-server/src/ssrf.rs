//! The URL policy of webhook and callback URLs (SPEC §14), against server-side request
//! forgery: `https` only unless `--allow-http-webhooks`; no address that is loopback,
//! private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the
//! 169.254.169.254 cloud metadata address, fe80::/10), unspecified, shared (CGNAT
//! 100.64/10), multicast or broadcast, nor an IPv4-mapped or IPv4-compatible IPv6 form
//! of one of those, unless `--allow-private-webhooks`.
//!
//! The check is made on the addresses a name resolves to, at registration and again
//! before every delivery attempt; the delivery then connects to the very address that
//! was checked ([`CheckedUrl::addrs`]), never to a name resolved again, so a DNS answer
//! that changes between the check and the connection cannot reach a refused address.
//! Deliveries do not follow redirects (a `3xx` answer is a failed attempt).

use axum::http::Uri;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Longest URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// How long a name resolution may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the policy allows beyond public `https` addresses (the `serve` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// `http` URLs are accepted (`--allow-http-webhooks`).
    pub allow_http: bool,
    /// Loopback, private, link-local and the other refused addresses are accepted
    /// (`--allow-private-webhooks`; for tests and closed networks).
    pub allow_private: bool,
}

/// A URL whose syntax and scheme passed the policy, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// The URL as given.
    pub url: String,
    /// `true` for `https`.
    pub https: bool,
    /// The host name or address (IPv6 without brackets).
    pub host: String,
    /// The port (the scheme's default when none is given).
    pub port: u16,
    /// The path and query to request (`/` when empty).
    pub path_and_query: String,
}

/// A URL whose every resolved address passed the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    /// The URL.
    pub url: ParsedUrl,
    /// The checked addresses, to connect to (in resolver order).
    pub addrs: Vec<SocketAddr>,
}

/// Why an address is refused, or `None` when it is a public unicast address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4).map(|_| "an IPv4-mapped IPv6 form of a refused IPv4 address");
            }
            let s = v6.segments();
            // IPv4-compatible (::a.b.c.d, deprecated) forms, except :: and ::1 themselves.
            if s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback() {
                let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return forbidden_v4(v4).map(|_| "an IPv4-compatible IPv6 form of a refused IPv4 address");
            }
            forbidden_v6(v6)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(if ip == Ipv4Addr::new(169, 254, 169, 254) {
        "the cloud metadata address"
    } else if ip.is_unspecified() || a == 0 {
        "an unspecified address (0.0.0.0/8)"
    } else if ip.is_loopback() {
        "a loopback address (127.0.0.0/8)"
    } else if ip.is_private() {
        "a private address (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)"
    } else if ip.is_link_local() {
        "a link-local address (169.254.0.0/16)"
    } else if a == 100 && (64..128).contains(&b) {
        "a shared (carrier-grade NAT) address (100.64.0.0/10)"
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        "a multicast, broadcast or reserved address"
    } else {
        return None;
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(if ip.is_unspecified() {
        "the unspecified address (::)"
    } else if ip.is_loopback() {
        "the loopback address (::1)"
    } else if first & 0xfe00 == 0xfc00 {
        "a unique local (private) address (fc00::/7)"
    } else if first & 0xffc0 == 0xfe80 {
        "a link-local address (fe80::/10)"
    } else if ip.is_multicast() {
        "a multicast address (ff00::/8)"
    } else {
        return None;
    })
}

/// Checks a URL's syntax and scheme: an absolute `https` URL (or `http` when
/// allowed) with a host, no user name or password, at most [`MAX_URL_BYTES`].
pub fn parse(text: &str, policy: UrlPolicy) -> Result<ParsedUrl, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the URL is empty".into());
    }
    if text.len() > MAX_URL_BYTES {
        return Err(format!("the URL is longer than {MAX_URL_BYTES} bytes"));
    }
    let uri: Uri = text.parse().map_err(|e| format!("'{text}' is not a valid absolute URL: {e}"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if policy.allow_http => false,
        Some("http") => {
            return Err("the URL must use https (the server accepts http only with --allow-http-webhooks)".into());
        }
        Some(other) => return Err(format!("the URL's scheme '{other}' is not https")),
        None => return Err(format!("'{text}' is not an absolute URL (https://host/path)")),
    };
    let authority = uri.authority().ok_or_else(|| format!("'{text}' has no host"))?;
    if authority.as_str().contains('@') {
        return Err("the URL must not hold a user name or password".into());
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    if host.is_empty() {
        return Err(format!("'{text}' has no host"));
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    if port == 0 {
        return Err("the URL's port must not be 0".into());
    }
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let path_and_query = if path_and_query.is_empty() { "/".to_string() } else { path_and_query.to_string() };
    Ok(ParsedUrl { url: text.to_string(), https, host, port, path_and_query })
}

/// Checks resolved addresses: all of them must pass (a name with one refused address
/// is refused, whichever address a client would pick). Pure: the resolution is the
/// caller's.
pub fn check_addrs(url: ParsedUrl, addrs: Vec<SocketAddr>, policy: UrlPolicy) -> Result<CheckedUrl, String> {
    if addrs.is_empty() {
        return Err(format!("'{}' resolves to no address", url.host));
    }
    if !policy.allow_private {
        for a in &addrs {
            if let Some(why) = forbidden_reason(a.ip()) {
                let name = if url.host.parse::<IpAddr>().is_ok() {
                    format!("{} is", a.ip())
                } else {
                    format!("'{}' resolves to {}, which is", url.host, a.ip())
                };
                return Err(format!(
                    "{name} {why}; webhooks may only reach public addresses (unless the server runs with \
                     --allow-private-webhooks)"
                ));
            }
        }
    }
    Ok(CheckedUrl { url, addrs })
}

/// Parses, resolves (within [`RESOLVE_TIMEOUT`]) and checks a URL.
pub async fn resolve(text: &str, policy: UrlPolicy) -> Result<CheckedUrl, String> {
    let url = parse(text, policy)?;
    let addrs: Vec<SocketAddr> = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        Err(_) => {
            let lookup = tokio::net::lookup_host((url.host.as_str(), url.port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(e)) => return Err(format!("cannot resolve '{}': {e}", url.host)),
                Err(_) => return Err(format!("resolving '{}' took longer than {RESOLVE_TIMEOUT:?}", url.host)),
            }
        }
    };
    check_addrs(url, addrs, policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy { allow_http: false, allow_private: false };

    #[test]
    fn refused_ranges_and_their_ipv6_forms_are_named() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.5",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fdff::1",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::10.1.2.3",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(forbidden_reason(ip).is_some(), "{ip} must be refused");
        }
        assert_eq!(forbidden_reason("169.254.169.254".parse().unwrap()), Some("the cloud metadata address"));
        for ip in
            ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1", "2001:4860::8888", "::ffff:8.8.8.8"]
        {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_reason(ip), None, "{ip} is public");
        }
    }

    #[test]
    fn urls_need_https_a_host_and_no_credentials() {
        let u = parse("https://hooks.example.com/in?x=1", STRICT).unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path_and_query.as_str()),
            (true, "hooks.example.com", 443, "/in?x=1")
        );
        let u = parse("https://[2001:db8::1]:8443", STRICT).unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path_and_query.as_str()), ("2001:db8::1", 8443, "/"));
        assert!(parse("http://hooks.example.com/", STRICT).unwrap_err().contains("--allow-http-webhooks"));
        let u = parse("http://hooks.example.com/", UrlPolicy { allow_http: true, ..STRICT }).unwrap();
        assert_eq!((u.https, u.port), (false, 80));
        for bad in
            ["", "ftp://x.example/", "/relative", "https://user:pw@x.example/", "https://x.example:0/", "not a url"]
        {
            assert!(parse(bad, STRICT).is_err(), "{bad:?}");
        }
        assert!(parse(&format!("https://x.example/{}", "a".repeat(MAX_URL_BYTES)), STRICT).is_err());
    }

    #[test]
    fn every_resolved_address_must_pass_unless_private_ones_are_allowed() {
        let url = parse("https://hooks.example.com/", STRICT).unwrap();
        let public: SocketAddr = "93.184.215.14:443".parse().unwrap();
        let metadata: SocketAddr = "169.254.169.254:443".parse().unwrap();
        let e = check_addrs(url.clone(), vec![public, metadata], STRICT).unwrap_err();
        assert!(e.contains("resolves to 169.254.169.254") && e.contains("metadata"), "{e}");
        assert!(check_addrs(url.clone(), vec![], STRICT).is_err());
        assert_eq!(check_addrs(url.clone(), vec![public], STRICT).unwrap().addrs, [public]);
        let open = UrlPolicy { allow_private: true, ..STRICT };
        assert_eq!(check_addrs(url, vec![metadata], open).unwrap().addrs, [metadata]);
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused() {
        let e = resolve("https://localhost:9/hook", STRICT).await.unwrap_err();
        assert!(e.contains("'localhost' resolves to") && e.contains("loopback"), "{e}");
        let e = resolve("https://127.0.0.1/", STRICT).await.unwrap_err();
        assert!(e.starts_with("127.0.0.1 is a loopback"), "{e}");
    }
}
