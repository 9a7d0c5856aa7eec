//! Webhooks for integrations: where an app may ask to be called, which addresses a delivery
//! may never reach (server-side request forgery, OWASP API7:2023), and how a delivery is
//! signed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::{Host, Url};

/// The longest webhook URL accepted.
const MAX_URL: usize = 2_000;

/// A URL an app registered to receive events: `https`, a host name or a public address, no
/// credentials, no fragment. Where its name resolves is checked again at every delivery
/// ([`is_forbidden_address`]), since DNS can change after registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_URL {
            return Err(format!("a webhook URL has at most {MAX_URL} characters"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a webhook URL cannot hold spaces or control characters".into());
        }
        let url = Url::parse(text).map_err(|e| format!("not an absolute URL: {e}"))?;
        if url.scheme() != "https" {
            return Err("a webhook URL must use https".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a webhook URL cannot hold user information".into());
        }
        if url.fragment().is_some() {
            return Err("a webhook URL cannot have a fragment".into());
        }
        match url.host() {
            None => return Err("a webhook URL needs a host".into()),
            Some(Host::Ipv4(ip)) if is_forbidden_address(IpAddr::V4(ip)) => {
                return Err(forbidden(IpAddr::V4(ip)));
            }
            Some(Host::Ipv6(ip)) if is_forbidden_address(IpAddr::V6(ip)) => {
                return Err(forbidden(IpAddr::V6(ip)));
            }
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name == "localhost"
                    || name.ends_with(".localhost")
                    || name.ends_with(".local")
                    || name.ends_with(".internal")
                    || !name.contains('.')
                {
                    return Err(format!(
                        "`{name}` is not a public host name; a webhook must be reachable on \
                         the internet"
                    ));
                }
            }
            Some(_) => {}
        }
        Ok(Self(url))
    }

    /// A value read back from storage, which only holds parsed URLs.
    pub fn from_trusted(text: &str) -> Option<Self> {
        Url::parse(text).ok().map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }
}

fn forbidden(ip: IpAddr) -> String {
    format!("{ip} is a loopback, private, link-local or otherwise internal address")
}

/// Whether a delivery must never be sent to `ip`: loopback, private (RFC 1918, unique local),
/// link-local (which holds cloud metadata services), carrier-grade NAT, multicast, broadcast,
/// unspecified, documentation and benchmarking ranges, and IPv6 forms that embed such an IPv4
/// address.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let [first, second, third, fourth, fifth, sixth, _, _] = ip.segments();
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                // 2001:db8::/32 documentation; 64:ff9b::/96 NAT64 (may embed anything)
                || (first == 0x2001 && second == 0x0db8)
                || (first == 0x0064 && second == 0xff9b)
                // ::/96 IPv4-compatible (deprecated), and 2002::/16 6to4 of an internal v4
                || [first, second, third, fourth, fifth, sixth] == [0; 6]
                || (first == 0x2002 && {
                    let [a, b] = second.to_be_bytes();
                    let [c, d] = third.to_be_bytes();
                    forbidden_v4(Ipv4Addr::new(a, b, c, d))
                })
                || ip == Ipv6Addr::UNSPECIFIED
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10 carrier-grade NAT
        || (a == 100 && (b & 0xc0) == 64)
        // 192.0.0.0/24 IETF protocol assignments, 198.18.0.0/15 benchmarking
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b & 0xfe) == 18)
        // 240.0.0.0/4 reserved
        || a >= 240
}

/// The `Vicinity-Signature` header of a delivery: `t=<unix seconds>,v1=<hex>`, where the hex is
/// HMAC-SHA256 over `"<t>.<body>"` with the app's webhook secret. A receiver recomputes it,
/// compares in constant time, and refuses timestamps more than a few minutes old (replays).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("t={timestamp},v1={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_urls_are_accepted() {
        assert!(WebhookUrl::parse("https://hooks.trail.example/vicinity?x=1").is_ok());
        assert!(WebhookUrl::parse("https://93.184.216.34/hook").is_ok());
        for bad in [
            "http://hooks.trail.example/vicinity",
            "https://localhost/hook",
            "https://api.localhost/hook",
            "https://intranet/hook",
            "https://printer.local/hook",
            "https://127.0.0.1/hook",
            "https://10.0.0.8/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[fd00::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://user:pw@hooks.trail.example/",
            "https://hooks.trail.example/#frag",
            "ftp://hooks.trail.example/",
            "not a url",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn internal_addresses_are_forbidden_in_every_form() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd12:3456::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001:db8::1",
            "ff02::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_forbidden_address(ip), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2002:5db8:d822::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_forbidden_address(ip), "{ip}");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 does not cover this layout; computed independently with
        // `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`.
        assert_eq!(
            signature("whsec_test", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }
}
