//! Where deliveries may go: the SSRF guard, and the HTTP client that applies it.
//!
//! A delivery may not reach loopback, private, link-local (which holds the cloud metadata
//! address 169.254.169.254), shared, multicast, broadcast or reserved addresses, in IPv4 or
//! IPv6 (IPv4-mapped IPv6 addresses are judged as their IPv4 address), unless the operator
//! allows the address's network in `webhooks.allow_networks`. The check is made on the
//! address the client connects to: the client's resolver drops every forbidden address it
//! resolves, and a URL whose host is an address literal is checked before sending (the
//! client does not resolve those). So a name that resolves to a public address when the
//! subscription is made and to an internal one at delivery time (DNS rebinding) still
//! cannot reach the internal one. Redirects are not followed and proxies are not used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// An IP network in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `::1/128` or a bare address (a network of one).
    pub fn parse(text: &str) -> Result<Network, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP network like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }

    /// Whether `addr` is in the network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                prefix_eq(&net.octets(), &addr.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                prefix_eq(&net.octets(), &addr.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

/// Why an address is forbidden by default, or `None` for a public address.
pub fn forbidden_kind(addr: IpAddr) -> Option<&'static str> {
    match canonical(addr) {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(addr: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = addr.octets();
    if addr.is_loopback() {
        Some("loopback")
    } else if addr.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if addr.is_private() {
        Some("private")
    } else if addr.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if addr.is_multicast() {
        Some("multicast")
    } else if addr.is_broadcast() || a >= 240 {
        Some("reserved")
    } else if a == 192 && b == 0 && addr.octets()[2] == 0 {
        Some("reserved (IETF protocol assignments)")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("reserved (benchmarking)")
    } else {
        None
    }
}

fn forbidden_v6(addr: Ipv6Addr) -> Option<&'static str> {
    let first = addr.segments()[0];
    if addr.is_loopback() {
        Some("loopback")
    } else if addr.is_unspecified() {
        Some("unspecified")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local, including cloud metadata fd00:ec2::254)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if addr.is_multicast() {
        Some("multicast")
    } else if first == 0x64 && addr.segments()[1] == 0xff9b {
        // NAT64 embeds an IPv4 address: judge that one.
        let [.., c, d] = addr.segments();
        let [c1, c2] = c.to_be_bytes();
        let [d1, d2] = d.to_be_bytes();
        forbidden_v4(Ipv4Addr::new(c1, c2, d1, d2))
    } else {
        None
    }
}

/// The rule deliveries follow: the default refusals, minus the allowed networks.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Arc<[Network]>,
}

impl Guard {
    /// A guard allowing `networks` (already checked by the configuration).
    pub fn new(networks: &[String]) -> Result<Guard, String> {
        let allowed = networks
            .iter()
            .map(|net| Network::parse(net))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Guard {
            allowed: allowed.into(),
        })
    }

    /// `Err` with a sentence when deliveries may not go to `addr`.
    pub fn check(&self, addr: IpAddr) -> Result<(), String> {
        match forbidden_kind(addr) {
            Some(kind) if !self.allowed.iter().any(|net| net.contains(addr)) => Err(format!(
                "{addr} is a {kind} address; deliveries do not go there unless the server's webhooks.allow_networks allows it"
            )),
            _ => Ok(()),
        }
    }

    /// Checks a subscription's URL: its form, and every address its host resolves to now
    /// (the check is made again on every connection).
    pub async fn check_url(&self, text: &str) -> Result<reqwest::Url, UrlError> {
        let url = parse_url(text)?;
        let host = url
            .host_str()
            .ok_or_else(|| UrlError::Invalid("the URL has no host".into()))?;
        if let Some(addr) = literal(host) {
            return self
                .check(addr)
                .map(|()| url.clone())
                .map_err(UrlError::Forbidden);
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| UrlError::Invalid(format!("the host {host:?} does not resolve: {err}")))?
            .collect();
        if addrs.is_empty() {
            return Err(UrlError::Invalid(format!(
                "the host {host:?} has no address"
            )));
        }
        for addr in addrs {
            self.check(addr.ip())
                .map_err(|why| UrlError::Forbidden(format!("{host} resolves to {why}")))?;
        }
        Ok(url)
    }
}

/// Why a URL cannot be a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Not an absolute `http`/`https` URL with a host.
    Invalid(String),
    /// Its host is, or resolves to, a forbidden address.
    Forbidden(String),
}

/// An absolute `http` or `https` URL with a host, without credentials or a fragment.
pub fn parse_url(text: &str) -> Result<reqwest::Url, UrlError> {
    let url = reqwest::Url::parse(text)
        .map_err(|err| UrlError::Invalid(format!("{text:?} is not a URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Invalid(format!(
            "the URL's scheme must be http or https, not {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlError::Invalid("the URL has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Invalid(
            "the URL may not hold credentials; receivers authenticate deliveries by their signature".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(UrlError::Invalid("the URL may not have a #fragment".into()));
    }
    if text.len() > 2048 {
        return Err(UrlError::Invalid(
            "the URL is longer than 2,048 characters".into(),
        ));
    }
    Ok(url)
}

/// The address of a host that is an address literal (`[::1]` included).
fn literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The resolver of the delivery client: the system's, minus forbidden addresses.
#[derive(Debug)]
struct GuardedResolver {
    guard: Guard,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match guard.check(addr.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refused = Some(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or_else(|| "no address".to_owned());
                return Err(format!("forbidden target: {host} resolves to {why}").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client deliveries use: guarded resolver, no redirects, no proxy, the attempt
/// timeout.
pub fn client(guard: &Guard, attempt_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver {
            guard: guard.clone(),
        }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(attempt_timeout)
        .connect_timeout(attempt_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("veritrail-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Checks a target URL right before an attempt: an address literal is judged here (the
/// client's resolver sees only names).
pub fn check_before_send(guard: &Guard, url: &reqwest::Url) -> Result<(), String> {
    match url.host_str().and_then(literal) {
        Some(addr) => guard
            .check(addr)
            .map_err(|why| format!("forbidden target: {why}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn internal_addresses_are_forbidden_and_public_ones_are_not() {
        for addr in [
            "127.0.0.1",
            "127.8.9.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
        ] {
            assert!(
                forbidden_kind(ip(addr)).is_some(),
                "{addr} must be forbidden"
            );
        }
        for addr in [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "8.8.8.8",
        ] {
            assert_eq!(forbidden_kind(ip(addr)), None, "{addr} is public");
        }
    }

    #[test]
    fn allowed_networks_open_exactly_their_addresses() {
        let guard = Guard::new(&["127.0.0.0/8".into(), "10.1.0.0/16".into(), "::1".into()])
            .expect("valid networks");
        assert!(guard.check(ip("127.0.0.1")).is_ok());
        assert!(guard.check(ip("::ffff:127.0.0.1")).is_ok());
        assert!(guard.check(ip("::1")).is_ok());
        assert!(guard.check(ip("10.1.200.3")).is_ok());
        let err = guard
            .check(ip("10.2.0.1"))
            .expect_err("outside the allowed /16");
        assert!(err.contains("private"), "{err}");
        assert!(guard.check(ip("169.254.169.254")).is_err());
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("nonsense").is_err());
        assert!(
            Network::parse("10.0.0.0/9")
                .expect("valid")
                .contains(ip("10.127.0.1"))
        );
        assert!(
            !Network::parse("10.0.0.0/9")
                .expect("valid")
                .contains(ip("10.128.0.1"))
        );
    }

    #[tokio::test]
    async fn urls_are_checked_for_form_and_for_their_addresses() {
        let guard = Guard::default();
        for (url, forbidden) in [
            ("ftp://example.com/", false),
            ("not a url", false),
            ("http://user:pw@example.com/", false),
            ("http://127.0.0.1:9/hook", true),
            ("http://[::1]/hook", true),
            ("http://169.254.169.254/latest/meta-data", true),
            ("http://localhost:9/hook", true),
        ] {
            match guard.check_url(url).await {
                Err(UrlError::Forbidden(_)) => {
                    assert!(forbidden, "{url} is invalid, not forbidden");
                }
                Err(UrlError::Invalid(_)) => assert!(!forbidden, "{url} is forbidden, not invalid"),
                Ok(_) => panic!("{url} must be refused"),
            }
        }
        let open = Guard::new(&["127.0.0.0/8".into()]).expect("valid");
        assert!(open.check_url("http://127.0.0.1:9/hook").await.is_ok());
    }
}
