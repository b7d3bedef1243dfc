//! Differential test of `Router` against a reference matcher written from
//! the routing contract (SPEC "Routing", `host/src/config/router.rs`), simple
//! enough to be obviously right and slow enough not to be the router:
//! - a route is a path prefix matched at segment boundaries (`/api` matches
//!   `/api`, `/api/`, `/api/x`, not `/apix`); `/` matches every path; a
//!   trailing `/` on a route is ignored (`/api/` is `/api`);
//! - the longest matching prefix wins; of identical routes, the first;
//! - a route with a `host` is tried first for that host; host-less routes
//!   only when none of the host's routes match;
//! - host names compare case-insensitively, ignoring a port and a trailing
//!   dot, in the Host header and in routes alike;
//! - the query string (from `?`) is not part of the path.
//!
//! Inputs are drawn from a tiny alphabet so that prefixes collide, nest and
//! repeat often. Hosts are one of a few names, each written with random
//! case, port and trailing dot: the reference compares the names
//! themselves, so it needs no normalization of its own.

#![no_main]

use std::cmp::Reverse;
use std::collections::HashSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wasmhost::config::router::{Route, Router};

const MAX_ROUTES: usize = 8;
const MAX_PIECES: usize = 8;

#[derive(Arbitrary, Debug)]
struct Input {
    routes: Vec<RouteSpec>,
    host: Option<HostSpec>,
    path: Vec<PathPiece>,
}

#[derive(Arbitrary, Debug)]
struct RouteSpec {
    host: Option<HostSpec>,
    /// After the leading `/`.
    prefix: Vec<PrefixPiece>,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Name {
    Example,
    SubExample,
    Ipv4,
    Ipv6,
}

impl Name {
    fn as_str(self) -> &'static str {
        match self {
            Name::Example => "example.com",
            Name::SubExample => "api.example.com",
            Name::Ipv4 => "10.0.0.1",
            Name::Ipv6 => "[fe80::ab]",
        }
    }
}

/// A host name as a client or a manifest author might write it.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct HostSpec {
    name: Name,
    /// Bit `i % 8` uppercases the `i`th character.
    upper: u8,
    trailing_dot: bool,
    port: Port,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Port {
    None,
    /// `host:` (an empty port is allowed by RFC 3986).
    Empty,
    Number(u16),
}

impl HostSpec {
    fn render(&self) -> String {
        let mut host: String = (self.name.as_str().chars().enumerate())
            .map(|(i, c)| {
                if self.upper & (1 << (i % 8)) != 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        // A trailing dot makes a fully qualified DNS name; an IP literal has none.
        if self.trailing_dot && self.name != Name::Ipv4 && self.name != Name::Ipv6 {
            host.push('.');
        }
        match self.port {
            Port::None => {}
            Port::Empty => host.push(':'),
            Port::Number(port) => host.push_str(&format!(":{port}")),
        }
        host
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PrefixPiece {
    Slash,
    A,
    B,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PathPiece {
    Slash,
    A,
    B,
    Dot,
    Query,
}

/// One route as the reference sees it.
struct Reference {
    host: Option<Name>,
    prefix: String,
}

fuzz_target!(|input: Input| {
    let (routes, reference): (Vec<Route>, Vec<Reference>) = input
        .routes
        .iter()
        .take(MAX_ROUTES)
        .map(|spec| {
            let prefix: String = std::iter::once('/')
                .chain(spec.prefix.iter().take(MAX_PIECES).map(|p| match p {
                    PrefixPiece::Slash => '/',
                    PrefixPiece::A => 'a',
                    PrefixPiece::B => 'b',
                }))
                .collect();
            let route = match &spec.host {
                Some(host) => Route::on_host(host.render(), prefix.clone()),
                None => Route::any_host(prefix.clone()),
            };
            let host = spec.host.map(|h| h.name);
            (route, Reference { host, prefix })
        })
        .unzip();
    let path: String = (input.path.iter().take(MAX_PIECES))
        .map(|p| match p {
            PathPiece::Slash => '/',
            PathPiece::A => 'a',
            PathPiece::B => 'b',
            PathPiece::Dot => '.',
            PathPiece::Query => '?',
        })
        .collect();
    let header = input.host.map(|h| h.render());

    let router = Router::new(routes.iter().cloned().zip(0..));

    let distinct: HashSet<(Option<Name>, &str)> = reference
        .iter()
        .map(|r| (r.host, normalize(&r.prefix)))
        .collect();
    assert_eq!(router.len(), distinct.len(), "len() of {routes:?}");

    let expected = lookup(&reference, input.host.map(|h| h.name), &path);
    let got = router.lookup(header.as_deref(), &path).copied();
    assert_eq!(
        got, expected,
        "routes {routes:?}, Host {header:?}, path {path:?}"
    );
});

/// `/api/` means `/api`; `/` (and `//`...) means the root, written `""`.
fn normalize(prefix: &str) -> &str {
    prefix.trim_end_matches('/')
}

/// The index of the route for a request, by the contract.
fn lookup(routes: &[Reference], host: Option<Name>, path: &str) -> Option<usize> {
    let path = path.split('?').next().unwrap_or_default();
    let best = |want: Option<Name>| {
        routes
            .iter()
            .enumerate()
            .filter(|(_, route)| route.host == want)
            .filter_map(|(i, route)| matched(normalize(&route.prefix), path).map(|len| (len, i)))
            // Longest prefix; among identical ones, the first listed.
            .max_by_key(|&(len, i)| (len, Reverse(i)))
            .map(|(_, i)| i)
    };
    host.and_then(|name| best(Some(name)))
        .or_else(|| best(None))
}

/// The length of `prefix` if it matches `path` at a segment boundary.
fn matched(prefix: &str, path: &str) -> Option<usize> {
    if prefix.is_empty() {
        return Some(0);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len())
}
