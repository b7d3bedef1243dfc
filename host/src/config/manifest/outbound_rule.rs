//! `OutboundRule`: one entry of a service's `allowed_outbound_hosts`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::units::is_dns_name;
use crate::config::units::{InvalidValue, deserialize_via_try_from, invalid};

/// One entry of `allowed_outbound_hosts`: `scheme://host[:port]`.
///
/// - scheme: `http`, `https` or `*`;
/// - host: a name, an IPv4 address, a bracketed IPv6 address, `*` (any
///   host) or `*.example.com` (any subdomain of `example.com`, not
///   `example.com` itself);
/// - port: a number or `*`; when left out, the scheme's default port (80 for
///   `http`, 443 for `https`; with `*://`, whichever fits the request).
///
/// Examples: `"http://127.0.0.1:9000"`, `"https://api.example.com"`,
/// `"http://*:*"`, `"*://example.com:*"`, `"http://localhost:8080"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    /// The rule as written (lowercased), for messages and the admin API.
    text: String,
    /// `None` = any scheme.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Subdomain(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exact(u16),
    /// No port written: 80 for http, 443 for https.
    SchemeDefault,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl OutboundRule {
    /// Whether a request to `scheme://host:port` is allowed by this rule.
    /// Scheme and host compare case-insensitively; IPv6 hosts may be given
    /// with or without brackets.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        if self.scheme.as_ref().is_some_and(|s| *s != scheme) {
            return false;
        }
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Exact(p) => p == port,
            PortPattern::SchemeDefault => default_port(&scheme) == Some(port),
        };
        let host = host.to_ascii_lowercase();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.');
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h.trim_start_matches('[').trim_end_matches(']') == host,
            HostPattern::Subdomain(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        };
        port_ok && host_ok
    }

    /// Whether the rule allows any host (`*`): such a rule does not allow
    /// chained calls to `.internal` services, which must be named.
    pub fn is_any_host(&self) -> bool {
        self.host == HostPattern::Any
    }

    /// The rule as written (lowercased).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl TryFrom<String> for OutboundRule {
    type Error = InvalidValue;

    fn try_from(rule: String) -> Result<Self, InvalidValue> {
        let text = rule.to_ascii_lowercase();
        let Some((scheme, rest)) = text.split_once("://") else {
            return invalid(format!(
                "outbound rule `{rule}` has no scheme: write it like `https://{rule}`"
            ));
        };
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_owned()),
            other => {
                return invalid(format!(
                    "outbound rule `{rule}` has unsupported scheme `{other}`: use `http`, `https` or `*`"
                ));
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return invalid(format!(
                "outbound rule `{rule}` must not have a path: write just `scheme://host:port`"
            ));
        }
        if authority.contains('@') {
            return invalid(format!(
                "outbound rule `{rule}` must not contain a user name"
            ));
        }
        let (host, port) = if authority.starts_with('[') {
            match authority.split_once(']') {
                Some((h, p)) => (
                    &authority[..h.len() + 1],
                    p.strip_prefix(':').or(Some(p).filter(|p| !p.is_empty())),
                ),
                None => return invalid(format!("outbound rule `{rule}` has an unclosed `[`")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            None => PortPattern::SchemeDefault,
            Some("*") => PortPattern::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && !p.starts_with('+') => PortPattern::Exact(n),
                _ => {
                    return invalid(format!(
                        "outbound rule `{rule}` has invalid port `{p}`: use a number from `1` to `65535` or `*`"
                    ));
                }
            },
        };
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(domain) = host.strip_prefix("*.") {
            if !is_dns_name(domain) {
                return invalid(format!("outbound rule `{rule}` has invalid host `{host}`"));
            }
            HostPattern::Subdomain(format!(".{domain}"))
        } else {
            let ipv6_ok = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
            if !(ipv6_ok || is_dns_name(host)) {
                let why = if host.is_empty() {
                    "no host"
                } else {
                    "an invalid host"
                };
                return invalid(format!(
                    "outbound rule `{rule}` has {why}: use a name, an IP address, `*` or `*.example.com`"
                ));
            }
            HostPattern::Exact(host.trim_end_matches('.').to_owned())
        };
        Ok(OutboundRule {
            text,
            scheme,
            host,
            port,
        })
    }
}

impl fmt::Display for OutboundRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for OutboundRule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

deserialize_via_try_from!(OutboundRule, "a rule like `\"https://api.example.com\"`");

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> OutboundRule {
        OutboundRule::try_from(text.to_owned()).unwrap()
    }

    fn bad_rule(text: &str) -> String {
        OutboundRule::try_from(text.to_owned()).unwrap_err().0
    }

    #[test]
    fn outbound_rule_with_explicit_port_allows_only_that_port() {
        let r = rule("http://127.0.0.1:9000");
        assert!(r.allows("http", "127.0.0.1", 9000));
        assert!(!r.allows("http", "127.0.0.1", 9001));
        assert!(!r.allows("https", "127.0.0.1", 9000));
    }

    #[test]
    fn outbound_rule_without_port_uses_the_scheme_default() {
        let r = rule("https://API.example.com");
        assert!(r.allows("https", "api.example.com", 443));
        assert!(r.allows("HTTPS", "Api.Example.Com", 443));
        assert!(!r.allows("https", "api.example.com", 8443));
        assert!(!r.allows("http", "api.example.com", 80));
        let any_scheme = rule("*://example.com");
        assert!(any_scheme.allows("http", "example.com", 80));
        assert!(any_scheme.allows("https", "example.com", 443));
        assert!(!any_scheme.allows("http", "example.com", 443));
    }

    #[test]
    fn outbound_rule_wildcards_match_any_host_port_or_scheme() {
        assert!(rule("http://*:*").allows("http", "anything.example", 1234));
        assert!(!rule("http://*:*").allows("https", "anything.example", 1234));
        assert!(rule("*://example.com:*").allows("https", "example.com", 8443));
        assert!(rule("http://localhost:8080").allows("http", "LOCALHOST", 8080));
        let sub = rule("https://*.example.com");
        assert!(sub.allows("https", "a.b.example.com", 443));
        assert!(!sub.allows("https", "example.com", 443));
        assert!(!sub.allows("https", "badexample.com", 443));
    }

    #[test]
    fn outbound_rule_accepts_bracketed_ipv6() {
        let r = rule("http://[::1]:8080");
        assert!(r.allows("http", "[::1]", 8080));
        assert!(r.allows("http", "::1", 8080));
        assert!(rule("https://[::1]").allows("https", "::1", 443));
    }

    #[test]
    fn outbound_rule_refuses_missing_scheme_paths_and_bad_ports() {
        assert!(bad_rule("example.com").contains("write it like `https://example.com`"));
        assert!(bad_rule("ftp://example.com").contains("unsupported scheme `ftp`"));
        assert!(bad_rule("https://example.com/api").contains("must not have a path"));
        assert!(bad_rule("http://example.com:0").contains("invalid port `0`"));
        assert!(bad_rule("http://example.com:http").contains("invalid port"));
        assert!(bad_rule("http://:80").contains("no host"));
        assert!(bad_rule("http://exa mple.com").contains("invalid host"));
        assert!(bad_rule("http://[::1").contains("unclosed"));
        assert!(rule("https://example.com/").allows("https", "example.com", 443));
    }
}
