//! The route table: which service gets a request, from its Host header and
//! path. Pure: no I/O, no allocation per lookup beyond lowercasing a
//! mixed-case Host header.
//!
//! Rules (SPEC "Routing"):
//! - a route is a path prefix matched at segment boundaries: `/api` matches
//!   `/api`, `/api/` and `/api/x`, not `/apix`; `/` matches every path;
//! - the longest matching prefix wins;
//! - routes with a `host` are virtual hosts: for a request to that host they
//!   are tried first, and a host-less route is used only when none of that
//!   host's routes matches (so a `host` route beats a host-less one for that
//!   host, even a longer host-less one);
//! - the Host header's port is ignored, host names compare
//!   case-insensitively and a trailing dot is ignored;
//! - paths compare byte for byte, case-sensitively, without percent-decoding.
//!
//! Lookups cost O(segments of the path) hash lookups, whatever the number
//! of routes: the path's own segment boundaries are walked from the longest
//! prefix to `/`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

/// Where a service is reachable: a path prefix, optionally for one host.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Route {
    /// Only requests for this host (lowercase, no port); `None` = any host.
    pub host: Option<String>,
    /// Path prefix: starts with `/`, no trailing `/` except `/` itself.
    pub prefix: String,
}

impl Route {
    /// A route for any host.
    pub fn any_host(prefix: impl Into<String>) -> Route {
        Route {
            host: None,
            prefix: prefix.into(),
        }
    }

    /// A route for one host.
    pub fn on_host(host: impl Into<String>, prefix: impl Into<String>) -> Route {
        Route {
            host: Some(host.into()),
            prefix: prefix.into(),
        }
    }
}

impl fmt::Display for Route {
    /// `api.example.com/v1` or `/v1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(host) = &self.host {
            f.write_str(host)?;
        }
        f.write_str(&self.prefix)
    }
}

/// A route table mapping requests to `T` (typically a service handle).
#[derive(Debug, Clone)]
pub struct Router<T> {
    /// Routes with a `host`: host → prefix → target.
    by_host: HashMap<String, HashMap<String, T>>,
    /// Routes without a `host`: prefix → target.
    any_host: HashMap<String, T>,
    /// Number of distinct routes, for `len`.
    len: usize,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            by_host: HashMap::new(),
            any_host: HashMap::new(),
            len: 0,
        }
    }
}

impl<T> Router<T> {
    /// Builds the table. Hosts and prefixes are normalized again (lowercase
    /// host without port, no trailing `/`), so hand-written routes work too.
    /// If two entries have the same host and prefix, the first one wins; the
    /// manifest validation reports that as a clash before it gets here.
    pub fn new(entries: impl IntoIterator<Item = (Route, T)>) -> Self {
        let mut router = Router::default();
        for (route, target) in entries {
            let prefix = normalize_prefix(&route.prefix).to_owned();
            let table = match route.host.as_deref() {
                Some(host) => router
                    .by_host
                    .entry(normalize_host(host).into_owned())
                    .or_default(),
                None => &mut router.any_host,
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = table.entry(prefix) {
                slot.insert(target);
                router.len += 1;
            }
        }
        router
    }

    /// The target for a request. `host` is the raw Host header (or URI
    /// authority): any case, possibly with `:port`. `path` is the request
    /// path; anything from `?` on is ignored.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<&T> {
        self.route(host, path).map(|(_, target)| target)
    }

    /// Like [`Router::lookup`], with the matched prefix (normalized: no
    /// trailing `/`, `/` for the root).
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<(&str, &T)> {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let host_hit = host
            .filter(|_| !self.by_host.is_empty())
            .and_then(|host| self.by_host.get(normalize_host(host).as_ref()))
            .and_then(|table| longest_prefix(table, path));
        host_hit.or_else(|| longest_prefix(&self.any_host, path))
    }

    /// Number of routes in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no routes (every lookup misses).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Tries `path` and each of its prefixes that ends at a segment boundary,
/// longest first, ending with `/`.
fn longest_prefix<'t, T>(table: &'t HashMap<String, T>, path: &str) -> Option<(&'t str, &'t T)> {
    if table.is_empty() {
        return None;
    }
    let root = || table.get_key_value("/").map(|(k, v)| (k.as_str(), v));
    let mut candidate = path.trim_end_matches('/');
    loop {
        if candidate.is_empty() {
            return root();
        }
        if let Some((prefix, hit)) = table.get_key_value(candidate) {
            return Some((prefix, hit));
        }
        match candidate.rfind('/') {
            Some(cut) => candidate = &candidate[..cut],
            None => return root(),
        }
    }
}

fn normalize_prefix(prefix: &str) -> &str {
    match prefix.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// Lowercase, without `:port` or a trailing dot; IPv6 keeps its brackets.
fn normalize_host(host: &str) -> Cow<'_, str> {
    let host = host.trim();
    let without_port = if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.split(':').next().unwrap_or(host)
    };
    let name = without_port.strip_suffix('.').unwrap_or(without_port);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `router(&[("a", "/api"), ("b", "example.com/api")])`: a route is a
    /// prefix, or a host immediately followed by a prefix.
    fn router(routes: &[(&'static str, &str)]) -> Router<&'static str> {
        Router::new(routes.iter().map(|(name, route)| {
            let route = match route.find('/') {
                Some(0) => Route::any_host(*route),
                Some(i) => Route::on_host(&route[..i], &route[i..]),
                None => panic!("route `{route}` has no path"),
            };
            (route, *name)
        }))
    }

    fn get(router: &Router<&'static str>, path: &str) -> Option<&'static str> {
        router.lookup(None, path).copied()
    }

    fn get_on(router: &Router<&'static str>, host: &str, path: &str) -> Option<&'static str> {
        router.lookup(Some(host), path).copied()
    }

    #[test]
    fn a_prefix_matches_itself_a_trailing_slash_and_deeper_paths() {
        let r = router(&[("a", "/api")]);
        assert_eq!(get(&r, "/api"), Some("a"));
        assert_eq!(get(&r, "/api/"), Some("a"));
        assert_eq!(get(&r, "/api/x/y"), Some("a"));
    }

    #[test]
    fn a_prefix_does_not_match_inside_a_segment() {
        let r = router(&[("a", "/api")]);
        assert_eq!(get(&r, "/apix"), None);
        assert_eq!(get(&r, "/ap"), None);
        assert_eq!(get(&r, "/"), None);
    }

    #[test]
    fn the_root_route_matches_every_path() {
        let r = router(&[("root", "/")]);
        assert_eq!(get(&r, "/"), Some("root"));
        assert_eq!(get(&r, "/anything/at/all"), Some("root"));
        assert_eq!(get(&r, ""), Some("root"));
        assert_eq!(get(&r, "*"), Some("root"));
    }

    #[test]
    fn the_longest_matching_prefix_wins() {
        let r = router(&[("root", "/"), ("api", "/api"), ("v1", "/api/v1")]);
        assert_eq!(get(&r, "/api/v1/users"), Some("v1"));
        assert_eq!(get(&r, "/api/v2/users"), Some("api"));
        assert_eq!(get(&r, "/api/v1x"), Some("api"));
        assert_eq!(get(&r, "/other"), Some("root"));
    }

    #[test]
    fn a_query_string_is_not_part_of_the_path() {
        let r = router(&[("a", "/api")]);
        assert_eq!(get(&r, "/api?x=/y"), Some("a"));
        assert_eq!(get(&r, "/apix?/api"), None);
    }

    #[test]
    fn paths_are_case_sensitive() {
        let r = router(&[("a", "/api")]);
        assert_eq!(get(&r, "/API"), None);
    }

    #[test]
    fn a_host_route_beats_a_hostless_route_for_its_host() {
        let r = router(&[("any", "/api"), ("host", "example.com/api")]);
        assert_eq!(get_on(&r, "example.com", "/api/x"), Some("host"));
        assert_eq!(get_on(&r, "other.com", "/api/x"), Some("any"));
        assert_eq!(get(&r, "/api/x"), Some("any"));
    }

    #[test]
    fn a_host_route_beats_even_a_longer_hostless_route_for_its_host() {
        let r = router(&[("site", "example.com/"), ("api", "/api")]);
        assert_eq!(get_on(&r, "example.com", "/api/x"), Some("site"));
        assert_eq!(get_on(&r, "other.com", "/api/x"), Some("api"));
    }

    #[test]
    fn a_host_without_a_matching_route_falls_back_to_hostless_routes() {
        let r = router(&[("host", "example.com/admin"), ("any", "/")]);
        assert_eq!(get_on(&r, "example.com", "/admin"), Some("host"));
        assert_eq!(get_on(&r, "example.com", "/public"), Some("any"));
    }

    #[test]
    fn host_routes_never_match_other_hosts_or_hostless_requests() {
        let r = router(&[("host", "example.com/")]);
        assert_eq!(get_on(&r, "example.org", "/"), None);
        assert_eq!(get(&r, "/"), None);
    }

    #[test]
    fn the_host_header_port_case_and_trailing_dot_are_ignored() {
        let r = router(&[("host", "example.com/")]);
        assert_eq!(get_on(&r, "example.com:8080", "/"), Some("host"));
        assert_eq!(get_on(&r, "EXAMPLE.Com", "/"), Some("host"));
        assert_eq!(get_on(&r, "Example.COM.:443", "/"), Some("host"));
    }

    #[test]
    fn route_hosts_are_normalized_too() {
        let r = router(&[("host", "Example.COM:80/api/")]);
        assert_eq!(get_on(&r, "example.com", "/api"), Some("host"));
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets_and_lose_their_port() {
        let r = router(&[("v6", "[::1]/")]);
        assert_eq!(get_on(&r, "[::1]:8080", "/x"), Some("v6"));
        assert_eq!(get_on(&r, "[::1]", "/x"), Some("v6"));
    }

    #[test]
    fn a_trailing_slash_on_a_route_is_ignored() {
        let r = router(&[("a", "/api/")]);
        assert_eq!(get(&r, "/api"), Some("a"));
        assert_eq!(get(&r, "/apix"), None);
    }

    #[test]
    fn the_first_of_two_identical_routes_wins() {
        let r = router(&[("first", "/a"), ("second", "/a")]);
        assert_eq!(get(&r, "/a"), Some("first"));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn an_empty_router_matches_nothing() {
        let r = router(&[]);
        assert!(r.is_empty());
        assert_eq!(get(&r, "/"), None);
        assert_eq!(get_on(&r, "example.com", "/"), None);
    }

    #[test]
    fn a_thousand_routes_still_pick_the_right_one() {
        let routes: Vec<(Route, usize)> = (0..1000)
            .map(|i| (Route::any_host(format!("/svc{i}/api")), i))
            .collect();
        let r = Router::new(routes);
        assert_eq!(r.len(), 1000);
        assert_eq!(r.lookup(None, "/svc999/api/x"), Some(&999));
        assert_eq!(r.lookup(None, "/svc5/api"), Some(&5));
        assert_eq!(r.lookup(None, "/svc5"), None);
    }
}
