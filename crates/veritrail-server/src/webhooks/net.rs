//! Where deliveries may go: the SSRF guard, and the HTTP client that applies it.
//!
//! A delivery may not reach any block of the IANA special-purpose address registries of
//! either family (loopback, private, link-local with the cloud metadata address
//! 169.254.169.254, shared, documentation, benchmarking, protocol assignments, ...),
//! multicast, broadcast, deprecated ranges (site-local, 6to4, IPv4-compatible), or IPv6
//! outside global unicast, unless the operator allows the address's network in
//! `webhooks.allow_networks`. Every IPv6 form that carries an IPv4 address (mapped,
//! compatible, SIIT, NAT64, 6to4, Teredo: [`embedded_v4`]) is judged by that address, so
//! `[::127.0.0.2]` is the loopback address it is. The check is made on the
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

    /// Whether `addr`, or the IPv4 address it carries, is in the network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let carried = match addr {
            IpAddr::V6(v6) => embedded_v4(v6).map(|(v4, _)| IpAddr::V4(v4)),
            IpAddr::V4(_) => None,
        };
        self.contains_exactly(addr) || carried.is_some_and(|v4| self.contains_exactly(v4))
    }

    fn contains_exactly(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
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

/// The IPv4 address an IPv6 address carries, with the name of the form that carries it:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated), SIIT
/// IPv4-translated (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`, and the local-use
/// `64:ff9b:1::/48` with the address in its last 32 bits), 6to4 (`2002:AABB:CCDD::`) and
/// Teredo (`2001:0:…`, the client's address inverted in the last 32 bits).
pub fn embedded_v4(addr: Ipv6Addr) -> Option<(Ipv4Addr, &'static str)> {
    let seg = addr.segments();
    let last32 = Ipv4Addr::new(
        seg[6].to_be_bytes()[0],
        seg[6].to_be_bytes()[1],
        seg[7].to_be_bytes()[0],
        seg[7].to_be_bytes()[1],
    );
    if let Some(v4) = addr.to_ipv4_mapped() {
        return Some((v4, "IPv4-mapped"));
    }
    match seg {
        [0, 0, 0, 0, 0, 0, _, _] if u32::from(last32) > 1 => Some((last32, "IPv4-compatible")),
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some((last32, "IPv4-translated (SIIT)")),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some((last32, "NAT64")),
        [0x64, 0xff9b, 1, ..] => Some((last32, "local-use NAT64")),
        [0x2002, a, b, ..] => {
            let [a1, a2] = a.to_be_bytes();
            let [b1, b2] = b.to_be_bytes();
            Some((Ipv4Addr::new(a1, a2, b1, b2), "6to4"))
        }
        [0x2001, 0, ..] => Some((!last32, "Teredo")),
        _ => None,
    }
}

/// A block of an IANA special-purpose address registry, or another range deliveries never
/// go to.
struct Block<A> {
    addr: A,
    prefix: u8,
    kind: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8, kind: &'static str) -> Block<Ipv4Addr> {
    Block {
        addr: Ipv4Addr::new(a, b, c, d),
        prefix,
        kind,
    }
}

const fn v6(segments: [u16; 8], prefix: u8, kind: &'static str) -> Block<Ipv6Addr> {
    let [a, b, c, d, e, f, g, h] = segments;
    Block {
        addr: Ipv6Addr::new(a, b, c, d, e, f, g, h),
        prefix,
        kind,
    }
}

/// Every block of the IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its
/// updates), multicast and the limited broadcast: including the few the registry calls
/// globally reachable (AS112, AMT, anycast relays), which are infrastructure, never a
/// webhook receiver.
const V4_BLOCKS: &[Block<Ipv4Addr>] = &[
    v4(0, 0, 0, 0, 8, "\"this network\" (unspecified)"),
    v4(10, 0, 0, 0, 8, "private"),
    v4(100, 64, 0, 0, 10, "shared (carrier-grade NAT)"),
    v4(127, 0, 0, 0, 8, "loopback"),
    v4(169, 254, 0, 0, 16, "link-local (cloud metadata)"),
    v4(172, 16, 0, 0, 12, "private"),
    v4(192, 0, 0, 0, 24, "reserved (IETF protocol assignments)"),
    v4(192, 0, 2, 0, 24, "reserved (documentation)"),
    v4(192, 31, 196, 0, 24, "reserved (AS112)"),
    v4(192, 52, 193, 0, 24, "reserved (AMT)"),
    v4(192, 88, 99, 0, 24, "deprecated (6to4 relay anycast)"),
    v4(192, 168, 0, 0, 16, "private"),
    v4(192, 175, 48, 0, 24, "reserved (AS112 direct delegation)"),
    v4(198, 18, 0, 0, 15, "reserved (benchmarking)"),
    v4(198, 51, 100, 0, 24, "reserved (documentation)"),
    v4(203, 0, 113, 0, 24, "reserved (documentation)"),
    v4(224, 0, 0, 0, 4, "multicast"),
    v4(240, 0, 0, 0, 4, "reserved"),
    v4(255, 255, 255, 255, 32, "broadcast"),
];

/// The blocks of the IANA IPv6 Special-Purpose Address Registry and the deprecated ranges,
/// for addresses that carry no IPv4 address (those are judged by it, see [`embedded_v4`]).
/// Whatever is outside global unicast (`2000::/3`) is refused as well.
const V6_BLOCKS: &[Block<Ipv6Addr>] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified"),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use NAT64"),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "reserved (discard-only)"),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, "reserved (dummy prefix)"),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "reserved (IETF protocol assignments)",
    ),
    v6(
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "reserved (documentation)",
    ),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "deprecated (6to4)"),
    v6(
        [0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0],
        48,
        "reserved (AS112 direct delegation)",
    ),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "reserved (documentation)",
    ),
    v6([0x3ffe, 0, 0, 0, 0, 0, 0, 0], 16, "reserved (former 6bone)"),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, "reserved (SRv6 SIDs)"),
    v6(
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        "private (unique local, including cloud metadata fd00:ec2::254)",
    ),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "deprecated (site-local)"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
];

/// Why an address is forbidden by default, or `None` for a public address. An IPv6 address
/// that carries an IPv4 address ([`embedded_v4`]) is judged by that address; the forms
/// that are deprecated or only ever reach a tunnel (IPv4-compatible, SIIT, 6to4, Teredo)
/// are refused even when it is public.
///
/// The answer completes "the address is …": `a loopback address`, `the IPv4-compatible
/// form of 127.0.0.2, a loopback address`.
pub fn forbidden_kind(addr: IpAddr) -> Option<String> {
    match addr {
        IpAddr::V4(v4) => forbidden_v4(v4).map(an_address),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some((v4, form)) => match forbidden_v4(v4) {
                Some(kind) => Some(format!("the {form} form of {v4}, {}", an_address(kind))),
                None if matches!(form, "IPv4-mapped" | "NAT64") => None,
                None => Some(format!("a deprecated {form} address (carrying {v4})")),
            },
            None => forbidden_v6(v6).map(an_address),
        },
    }
}

/// `a loopback address`, `an unspecified address`.
fn an_address(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind} address")
}

fn forbidden_v4(addr: Ipv4Addr) -> Option<&'static str> {
    V4_BLOCKS
        .iter()
        .find(|block| prefix_eq(&block.addr.octets(), &addr.octets(), block.prefix))
        .map(|block| block.kind)
}

fn forbidden_v6(addr: Ipv6Addr) -> Option<&'static str> {
    V6_BLOCKS
        .iter()
        .find(|block| prefix_eq(&block.addr.octets(), &addr.octets(), block.prefix))
        .map(|block| block.kind)
        .or_else(|| {
            (addr.segments()[0] & 0xe000 != 0x2000).then_some("reserved (not global unicast)")
        })
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
            Some(what) if !self.allowed.iter().any(|net| net.contains(addr)) => Err(format!(
                "{addr} is {what}; deliveries do not go there unless the server's webhooks.allow_networks allows it"
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
            // Every IPv6 form that carries an IPv4 address, around loopback.
            "::127.0.0.2",
            "::ffff:0:127.0.0.2",
            "2002:7f00:2::",
            "2002:a9fe:a9fe::1",
            // Teredo: the client's address is inverted in the last 32 bits.
            "2001:0:4136:e378:8000:63bf:80ff:fffd",
            "64:ff9b:1::7f00:1",
            // The deprecated forms, even around a public address.
            "::93.184.216.34",
            "::ffff:0:93.184.216.34",
            "2002:5db8:d822::1",
            // Special-purpose and deprecated IPv6 blocks.
            "fec0::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001:2::1",
            "5f00::1",
            "3ffe::1",
            "4000::1",
            "::2",
            // Special-purpose IPv4 blocks.
            "192.0.0.8",
            "192.0.2.10",
            "198.51.100.1",
            "203.0.113.9",
            "192.88.99.1",
            "192.31.196.1",
            "198.19.255.1",
            "240.0.0.1",
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
            "::ffff:93.184.216.34",
            "64:ff9b::93.184.216.34",
            "2a00:1450:4001:80b::200e",
        ] {
            assert_eq!(forbidden_kind(ip(addr)), None, "{addr} is public");
        }
    }

    #[test]
    fn carried_ipv4_addresses_are_named_in_the_refusal() {
        let teredo = embedded_v4("2001:0:4136:e378:8000:63bf:80ff:fffd".parse().expect("v6"));
        assert_eq!(teredo, Some((Ipv4Addr::new(127, 0, 0, 2), "Teredo")));
        let why = Guard::default()
            .check(ip("::127.0.0.2"))
            .expect_err("loopback");
        assert!(
            why.contains("the IPv4-compatible form of 127.0.0.2, a loopback address"),
            "{why}"
        );
        let why = Guard::default()
            .check(ip("0.0.0.0"))
            .expect_err("unspecified");
        assert!(why.contains("is a \"this network\""), "{why}");
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
