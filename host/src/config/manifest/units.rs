//! Validated newtypes for the manifest-only scalars: service names, route
//! prefixes, route hosts and listen addresses.
//!
//! Each type checks its value once, in `TryFrom`, and the rest of the host
//! only ever sees valid values. Each also implements `serde::Deserialize`
//! through that `TryFrom`, with an `expecting` text that tells the user what
//! to write. Error messages follow the manifest style: lowercase, no trailing
//! period, user values in backticks, a fix when we know one.
//!
//! The generic units (durations, sizes, fuel, counts) live in
//! `config/units.rs`, below both `limits` and `manifest`, and are
//! re-exported here; `OutboundRule` lives in `outbound_rule.rs` (re-exported
//! here too).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::de::{self, Deserialize, Deserializer, Visitor};

pub use crate::config::units::{ByteSize, Count, Fuel, HumanDuration, InvalidValue};
use crate::config::units::{deserialize_via_try_from, invalid};

pub use super::outbound_rule::OutboundRule;

// ---------------------------------------------------------------- names

/// A service name: `[a-z0-9-]+`. Used in routes' error messages, metrics
/// labels and logs, so it stays plain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceName(String);

impl ServiceName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ServiceName {
    type Error = InvalidValue;

    fn try_from(name: String) -> Result<Self, InvalidValue> {
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if name.is_empty() {
            return invalid("service name must not be empty");
        }
        if !name.chars().all(valid) {
            let suggestion: String = name
                .to_ascii_lowercase()
                .chars()
                .map(|c| if valid(c) { c } else { '-' })
                .collect();
            return invalid(format!(
                "invalid service name `{name}`: use only lowercase letters, digits and `-`, like `{suggestion}`"
            ));
        }
        Ok(ServiceName(name))
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

deserialize_via_try_from!(ServiceName, "a service name like `\"hello\"`");

// ---------------------------------------------------------------- routes

/// A route's path prefix: starts with `/`, no trailing `/` except for `/`
/// itself (`"/api/"` is stored as `"/api"`), no empty segments, no query or
/// fragment, no wildcards (a route already matches everything below it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoutePrefix(String);

impl RoutePrefix {
    /// The normalized prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalized prefix, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for RoutePrefix {
    type Error = InvalidValue;

    fn try_from(route: String) -> Result<Self, InvalidValue> {
        if !route.starts_with('/') {
            return invalid(format!(
                "route `{route}` must start with `/`: write `/{route}`"
            ));
        }
        for (wildcard, _) in route.match_indices(['*', '.']) {
            let rest = &route[wildcard..];
            if rest.starts_with('*') || rest.starts_with("...") {
                let fixed = route[..wildcard].trim_end_matches('/');
                let fixed = if fixed.is_empty() { "/" } else { fixed };
                return invalid(format!(
                    "route `{route}` has a wildcard: a route matches every path below it, so write `{fixed}`"
                ));
            }
        }
        if let Some(c) = route
            .chars()
            .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
        {
            return invalid(format!(
                "route `{route}` must not contain `{}`: give only the path",
                c.escape_default()
            ));
        }
        if route.contains("//") {
            return invalid(format!("route `{route}` has an empty segment (`//`)"));
        }
        let trimmed = route
            .strip_suffix('/')
            .filter(|t| !t.is_empty())
            .unwrap_or(&route);
        Ok(RoutePrefix(trimmed.to_owned()))
    }
}

impl fmt::Display for RoutePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

deserialize_via_try_from!(RoutePrefix, "a path prefix like `\"/api\"`");

/// The `host` a service's routes are restricted to: a DNS name or IP
/// address, stored lowercase, without port or trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteHost(String);

impl RouteHost {
    /// The normalized host name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalized host name, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for RouteHost {
    type Error = InvalidValue;

    fn try_from(host: String) -> Result<Self, InvalidValue> {
        if host.contains("://") || host.contains('/') {
            return invalid(format!(
                "host `{host}` must be a host name like `api.example.com`, not a URL"
            ));
        }
        let lower = host.to_ascii_lowercase();
        let lower = lower.strip_suffix('.').unwrap_or(&lower);
        if let Some(inner) = lower.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            if inner.parse::<std::net::Ipv6Addr>().is_ok() {
                return Ok(RouteHost(lower.to_owned()));
            }
        } else if lower.contains(':') {
            return invalid(format!(
                "host `{host}` must not include a port: the Host header's port is ignored when routing"
            ));
        } else if is_dns_name(lower) {
            return Ok(RouteHost(lower.to_owned()));
        }
        invalid(format!(
            "invalid host `{host}`: expected a name like `api.example.com`"
        ))
    }
}

pub(super) fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

impl fmt::Display for RouteHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

deserialize_via_try_from!(RouteHost, "a host name like `\"api.example.com\"`");

// ------------------------------------------------------------- addresses

/// A socket address to listen on: `IP:PORT` (port 0 = pick a free port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl TryFrom<String> for ListenAddr {
    type Error = InvalidValue;

    fn try_from(text: String) -> Result<Self, InvalidValue> {
        text.parse().map(ListenAddr).or_else(|_| {
            let hint = if text.starts_with("localhost") {
                ": use `127.0.0.1` instead of `localhost`"
            } else if text.parse::<IpAddr>().is_ok() {
                ": add a port, like `:8080`"
            } else {
                ""
            };
            invalid(format!(
                "invalid address `{text}`: expected an IP address and port, like `127.0.0.1:8080`{hint}"
            ))
        })
    }
}

deserialize_via_try_from!(ListenAddr, "an address like `\"127.0.0.1:8080\"`");

#[cfg(test)]
mod tests {
    use super::*;

    fn route(text: &str) -> Result<String, String> {
        RoutePrefix::try_from(text.to_owned())
            .map(|r| r.0)
            .map_err(|e| e.0)
    }

    #[test]
    fn service_names_are_lowercase_digits_and_dashes() {
        assert!(ServiceName::try_from("hello-2".to_owned()).is_ok());
        assert_eq!(
            ServiceName::try_from("Hello World".to_owned())
                .unwrap_err()
                .0,
            "invalid service name `Hello World`: use only lowercase letters, digits and `-`, like `hello-world`"
        );
        assert!(ServiceName::try_from(String::new()).is_err());
    }

    #[test]
    fn routes_lose_their_trailing_slash_except_the_root() {
        assert_eq!(route("/api/"), Ok("/api".into()));
        assert_eq!(route("/api"), Ok("/api".into()));
        assert_eq!(route("/"), Ok("/".into()));
    }

    #[test]
    fn routes_refuse_relative_paths_queries_and_wildcards() {
        assert_eq!(
            route("api").unwrap_err(),
            "route `api` must start with `/`: write `/api`"
        );
        assert!(route("/a?b=1").is_err());
        assert!(route("/a b").is_err());
        assert!(route("/a//b").is_err());
        assert!(route("//").is_err());
        assert!(route("/api/...").unwrap_err().contains("so write `/api`"));
        assert!(route("/*").unwrap_err().contains("so write `/`"));
        assert_eq!(route("/v1.2"), Ok("/v1.2".into()));
    }

    #[test]
    fn route_hosts_are_lowercased_and_refuse_ports() {
        let host = |h: &str| {
            RouteHost::try_from(h.to_owned())
                .map(|h| h.0)
                .map_err(|e| e.0)
        };
        assert_eq!(host("API.Example.com."), Ok("api.example.com".into()));
        assert_eq!(host("[::1]"), Ok("[::1]".into()));
        assert!(host("example.com:8080").unwrap_err().contains("port"));
        assert!(
            host("https://example.com")
                .unwrap_err()
                .contains("not a URL")
        );
        assert!(host("").is_err());
    }

    #[test]
    fn listen_addresses_need_an_ip_and_a_port() {
        assert!(ListenAddr::try_from("0.0.0.0:0".to_owned()).is_ok());
        assert!(ListenAddr::try_from("[::1]:80".to_owned()).is_ok());
        assert!(
            ListenAddr::try_from("localhost:80".to_owned())
                .unwrap_err()
                .0
                .contains("127.0.0.1")
        );
        assert!(
            ListenAddr::try_from("127.0.0.1".to_owned())
                .unwrap_err()
                .0
                .contains("add a port")
        );
    }
}
