//! Server-side request forgery guard for webhook URLs.
//!
//! Webhook URLs are supplied by organisation admins, so the server must not become a proxy into
//! its own network. URLs are checked twice: syntactically when a subscription is saved
//! ([`check_url_syntax`]), and again at delivery time after DNS resolution
//! ([`resolve_checked`]), because a name that was public when saved can later resolve to an
//! internal address (DNS rebinding). The caller then connects only to the addresses returned.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

/// Longest webhook URL accepted; longer ones are almost certainly abuse or mistakes.
pub const MAX_URL_LEN: usize = 2048;

/// Upper bound on a DNS lookup at delivery time, so a slow resolver cannot stall the worker.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a URL failed the delivery-time check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The URL, or an address its host resolves to, is not allowed: retrying will not help.
    #[error("{0}")]
    Refused(String),
    /// The host could not be resolved; this may be temporary.
    #[error("{0}")]
    Lookup(String),
}

/// Parses a webhook URL and refuses anything that is obviously not a public HTTP(S) endpoint.
///
/// IP literals are checked after the `url` crate has normalised them, which defeats numeric
/// spellings such as `http://2130706433/`, `http://0x7f.1/` or `http://127.1/`.
/// With `allow_private` (development and tests) internal addresses and `localhost` are accepted.
pub fn check_url_syntax(raw: &str, allow_private: bool) -> Result<Url, String> {
    if raw.len() > MAX_URL_LEN {
        return Err(format!(
            "The webhook URL is too long (at most {MAX_URL_LEN} characters)."
        ));
    }
    let url =
        Url::parse(raw.trim()).map_err(|_| "The webhook URL is not a valid URL.".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("The webhook URL must use http or https.".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("The webhook URL must not contain a user name or password.".to_owned());
    }
    let host = url
        .host()
        .ok_or_else(|| "The webhook URL must include a host.".to_owned())?;
    if !allow_private {
        match host {
            Host::Ipv4(ip) => refuse_ip(IpAddr::V4(ip))?,
            Host::Ipv6(ip) => refuse_ip(IpAddr::V6(ip))?,
            Host::Domain(name) => {
                if is_localhost_name(name) {
                    return Err("The webhook URL must not point to this server.".to_owned());
                }
            }
        }
    }
    Ok(url)
}

fn refuse_ip(ip: IpAddr) -> Result<(), String> {
    if is_blocked_ip(ip) {
        Err("The webhook URL must point to a public address.".to_owned())
    } else {
        Ok(())
    }
}

/// `localhost` and its subdomains, which resolvers map to loopback (RFC 6761).
fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether an address is not a public unicast destination and must not be contacted.
///
/// IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the
/// embedded address, since that is where the packets end up.
pub fn is_blocked_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => is_blocked_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    const BLOCKED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", includes 0.0.0.0
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // carrier-grade NAT
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, includes cloud metadata 169.254.169.254
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation TEST-NET-1
        ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation TEST-NET-2
        ([203, 0, 113, 0], 24),  // documentation TEST-NET-3
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, includes broadcast 255.255.255.255
    ];
    BLOCKED.iter().any(|&(net, prefix)| in_v4(ip, net, prefix))
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

/// The IPv4 address in the low 32 bits.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    // Truncation is the point: the embedded address is the low 32 bits.
    Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32)
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_blocked_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 well-known prefix 64:ff9b::/96.
    if in_v6(ip, Ipv6Addr::UNSPECIFIED, 96)
        || in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
    {
        return is_blocked_v4(low_v4(ip));
    }
    // 6to4 (2002::/16) carries the IPv4 destination in bits 16..48.
    if in_v6(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        let s = ip.segments();
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return is_blocked_v4(v4);
    }
    const BLOCKED: &[(Ipv6Addr, u32)] = &[
        (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // NAT64 local-use
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),     // discard-only
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32),    // Teredo tunnels reach arbitrary IPv4
        (Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0), 48),  // benchmarking
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
        (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),    // documentation (RFC 9637)
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),     // unique local
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),    // link-local
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),    // site-local (deprecated)
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),     // multicast
    ];
    BLOCKED.iter().any(|&(net, prefix)| in_v6(ip, net, prefix))
}

/// Resolves the URL's host and refuses it if ANY resolved address is blocked.
///
/// Refusing on any (rather than filtering) is deliberate: a name that mixes public and internal
/// addresses is suspicious, and filtering would let an attacker keep probing. The returned
/// addresses carry the URL's port; the caller must connect only to them.
pub async fn resolve_checked(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    resolve_guarded(url, allow_private)
        .await
        .map_err(|e| e.to_string())
}

/// Like [`resolve_checked`], but tells a refusal apart from a (possibly temporary) DNS failure.
pub async fn resolve_guarded(
    url: &Url,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, GuardError> {
    resolve_with(url, allow_private, lookup).await
}

/// The checks of [`resolve_guarded`] with a pluggable resolver, so tests can simulate DNS
/// answers that no real resolver here would give.
async fn resolve_with<F, Fut>(
    url: &Url,
    allow_private: bool,
    lookup: F,
) -> Result<Vec<SocketAddr>, GuardError>
where
    F: FnOnce(String, u16) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<SocketAddr>, GuardError>>,
{
    // Re-run the syntax check: the URL may have been stored before the rules were tightened.
    check_url_syntax(url.as_str(), allow_private).map_err(GuardError::Refused)?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| GuardError::Refused("The webhook URL has no usable port.".to_owned()))?;
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(name)) => lookup(name.to_owned(), port).await?,
        None => {
            return Err(GuardError::Refused(
                "The webhook URL must include a host.".to_owned(),
            ))
        }
    };
    if !allow_private && addrs.iter().any(|a| is_blocked_ip(a.ip())) {
        return Err(GuardError::Refused(
            "The webhook host resolves to a non-public address.".to_owned(),
        ));
    }
    Ok(addrs)
}

async fn lookup(name: String, port: u16) -> Result<Vec<SocketAddr>, GuardError> {
    let found = tokio::time::timeout(
        LOOKUP_TIMEOUT,
        tokio::net::lookup_host((name.as_str(), port)),
    )
    .await
    .map_err(|_| GuardError::Lookup("The webhook host name lookup timed out.".to_owned()))?
    .map_err(|_| GuardError::Lookup("The webhook host name could not be resolved.".to_owned()))?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in found {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(GuardError::Lookup(
            "The webhook host name has no addresses.".to_owned(),
        ));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    #[test]
    fn blocks_non_public_ipv4() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.10",
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
            assert!(is_blocked_ip(v4(ip)), "{ip} should be blocked");
        }
    }

    #[test]
    fn allows_public_ipv4_next_to_blocked_ranges() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(!is_blocked_ip(v4(ip)), "{ip} should be allowed");
        }
    }

    #[test]
    fn blocks_non_public_ipv6() {
        for ip in [
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001::1",
            "64:ff9b:1::1",
            // IPv4 embedded in various ways.
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.1.2.3",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(is_blocked_ip(v6(ip)), "{ip} should be blocked");
        }
    }

    #[test]
    fn allows_public_ipv6() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert!(!is_blocked_ip(v6(ip)), "{ip} should be allowed");
        }
    }

    #[test]
    fn syntax_accepts_public_urls() {
        for raw in [
            "https://hooks.example.com/aftercare",
            "http://hooks.example.com:8080/x?y=z",
            "https://8.8.8.8/hook",
            "https://[2606:4700:4700::1111]/hook",
        ] {
            assert!(
                check_url_syntax(raw, false).is_ok(),
                "{raw} should be accepted"
            );
        }
    }

    #[test]
    fn syntax_refuses_bad_shapes() {
        for raw in [
            "not a url",
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "javascript:alert(1)",
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "https://:pass@example.com/",
            "http://",
            "https://",
        ] {
            assert!(
                check_url_syntax(raw, false).is_err(),
                "{raw} should be refused"
            );
            assert!(
                check_url_syntax(raw, true).is_err(),
                "{raw} should be refused even when private is allowed"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url_syntax(&long, false).is_err());
    }

    #[test]
    fn syntax_refuses_internal_hosts_including_numeric_tricks() {
        for raw in [
            "http://127.0.0.1/",
            "http://127.0.0.1:8080/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://017700000001/",
            "http://127.1/",
            "http://127.0.0.1./",
            "http://0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:ffff:169.254.169.254]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://192.168.0.1/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://localhost/",
            "http://LOCALHOST:3000/",
            "http://localhost./",
            "http://api.localhost/",
            "http://a.b.localhost./",
            "http://%6c%6f%63%61%6c%68%6f%73%74/",
            "http://ｌｏｃａｌｈｏｓｔ/",
        ] {
            let err = check_url_syntax(raw, false);
            assert!(err.is_err(), "{raw} should be refused, got {err:?}");
            assert!(
                check_url_syntax(raw, true).is_ok(),
                "{raw} should be allowed when private is allowed"
            );
        }
    }

    #[test]
    fn syntax_does_not_refuse_lookalikes() {
        for raw in [
            "http://localhost.example.com/",
            "http://mylocalhost/",
            "http://127.0.0.1.example.com/",
        ] {
            assert!(
                check_url_syntax(raw, false).is_ok(),
                "{raw} should be accepted"
            );
        }
    }

    #[test]
    fn errors_are_sentences_without_the_url() {
        let raw = "https://user:hunter2@example.com/?token=s3cret";
        let err = check_url_syntax(raw, false).unwrap_err();
        assert!(err.ends_with('.'));
        assert!(!err.contains("hunter2") && !err.contains("s3cret"));
    }

    #[tokio::test]
    async fn resolve_literal_addresses() {
        let url = check_url_syntax("http://8.8.8.8:8443/x", false).unwrap();
        let addrs = resolve_checked(&url, false).await.unwrap();
        assert_eq!(addrs, vec!["8.8.8.8:8443".parse().unwrap()]);
        let url = check_url_syntax("https://[2606:4700:4700::1111]/", false).unwrap();
        let addrs = resolve_checked(&url, false).await.unwrap();
        assert_eq!(addrs, vec!["[2606:4700:4700::1111]:443".parse().unwrap()]);
    }

    #[tokio::test]
    async fn resolve_refuses_loopback_unless_allowed() {
        let url = check_url_syntax("http://127.0.0.1:9/", true).unwrap();
        assert!(matches!(
            resolve_guarded(&url, false).await,
            Err(GuardError::Refused(_))
        ));
        assert_eq!(
            resolve_checked(&url, true).await.unwrap(),
            vec!["127.0.0.1:9".parse().unwrap()]
        );
    }

    #[tokio::test]
    async fn localhost_resolves_only_when_private_is_allowed() {
        let url = Url::parse("http://localhost:9/").unwrap();
        assert!(matches!(
            resolve_guarded(&url, false).await,
            Err(GuardError::Refused(_))
        ));
        let addrs = resolve_checked(&url, true).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
    }

    fn fake_dns(
        answer: &'static [&'static str],
    ) -> impl FnOnce(String, u16) -> std::future::Ready<Result<Vec<SocketAddr>, GuardError>> {
        move |_name, port| {
            let addrs = answer
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().unwrap(), port))
                .collect();
            std::future::ready(Ok(addrs))
        }
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        let url = Url::parse("https://rebind.example.com/hook").unwrap();
        for answer in [
            &["127.0.0.1"][..],
            &["169.254.169.254"][..],
            &["::ffff:10.0.0.1"][..],
            &["fd00::1"][..],
            // One bad address among good ones is enough to refuse.
            &["8.8.8.8", "192.168.1.10"][..],
            &["2606:4700:4700::1111", "::1"][..],
        ] {
            let result = resolve_with(&url, false, fake_dns(answer)).await;
            assert!(
                matches!(result, Err(GuardError::Refused(_))),
                "{answer:?} should be refused"
            );
            assert!(resolve_with(&url, true, fake_dns(answer)).await.is_ok());
        }
    }

    #[tokio::test]
    async fn names_resolving_to_public_addresses_pass_with_the_port() {
        let url = Url::parse("https://hooks.example.com/hook").unwrap();
        let addrs = resolve_with(&url, false, fake_dns(&["8.8.8.8", "2606:4700:4700::1111"]))
            .await
            .unwrap();
        assert_eq!(
            addrs,
            vec![
                "8.8.8.8:443".parse().unwrap(),
                "[2606:4700:4700::1111]:443".parse().unwrap()
            ]
        );
    }

    #[tokio::test]
    async fn unresolvable_names_are_lookup_errors() {
        let url = Url::parse("http://does-not-exist.invalid/").unwrap();
        assert!(matches!(
            resolve_guarded(&url, false).await,
            Err(GuardError::Lookup(_))
        ));
    }

    #[tokio::test]
    async fn resolve_rechecks_syntax() {
        let url = Url::parse("http://user:pw@8.8.8.8/").unwrap();
        assert!(matches!(
            resolve_guarded(&url, true).await,
            Err(GuardError::Refused(_))
        ));
    }
}
