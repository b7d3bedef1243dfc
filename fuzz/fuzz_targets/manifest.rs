//! Fuzzes `Manifest::from_str` with arbitrary text (input that is not UTF-8
//! is skipped: `Manifest::load` refuses it before parsing).
//!
//! Checks that it never panics, and:
//! - on error: there is at least one problem, in file order, each naming
//!   the manifest and carrying a real position (line and column >= 1,
//!   inside the text). `Problem::whole_file` (line 0) is only used by
//!   `Manifest::load` for an unreadable file, never for text;
//! - on success: every service has routes, each normalized (starts with
//!   `/`, no trailing `/`, lowercase host), names are unique, and the router
//!   built from the manifest sends each route's own prefix to its service
//!   (validation refuses clashes, so no route may shadow another).
//!
//! The manifest is read as if from `fuzz/manifest.toml`: relative paths
//! resolve against `fuzz/` in the current directory (`scripts/fuzz.sh` runs
//! from the repo root, so `component = "Cargo.toml"` exists). Checking only
//! stats paths; nothing is written.

#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wasmhost::config::manifest::{Manifest, Problems};
use wasmhost::config::router::Router;

const PATH: &str = "fuzz/manifest.toml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::from_str(text, Path::new(PATH)) {
        Ok(manifest) => check_manifest(&manifest),
        Err(problems) => check_problems(text, &problems),
    }
});

fn check_problems(text: &str, problems: &Problems) {
    assert!(!problems.is_empty(), "an error without problems");
    let lines: Vec<&str> = text.split('\n').collect();
    for problem in problems.iter() {
        assert_eq!(problem.file, Path::new(PATH), "{problem:?}");
        assert!(
            (1..=lines.len()).contains(&problem.line),
            "problem outside the text's {} lines: {problem:?}",
            lines.len()
        );
        let width = lines[problem.line - 1].chars().count();
        assert!(
            (1..=width + 1).contains(&problem.col),
            "problem outside its line's {width} characters: {problem:?}"
        );
        let shown = problem.to_string();
        let located = format!("{PATH}:{}:{}:", problem.line, problem.col);
        assert!(shown.starts_with(&located), "{shown:?} is not located");
    }
    assert!(
        problems
            .iter()
            .zip(problems.iter().skip(1))
            .all(|(a, b)| (a.line, a.col) <= (b.line, b.col)),
        "problems not in file order: {problems:?}"
    );
}

fn check_manifest(manifest: &Manifest) {
    let mut names = HashSet::new();
    for service in &manifest.services {
        assert!(names.insert(&service.name), "duplicate name {service:?}");
        // A service without routes is private (reachable by chained calls).
        for route in &service.routes {
            let prefix = &route.prefix;
            assert!(prefix.starts_with('/'), "{route:?}");
            assert!(prefix == "/" || !prefix.ends_with('/'), "{route:?}");
            if let Some(host) = &route.host {
                assert_eq!(*host, host.to_ascii_lowercase(), "{route:?}");
            }
        }
    }
    let router = Router::new(manifest.routes());
    for (route, service) in manifest.routes() {
        assert_eq!(
            router.lookup(route.host.as_deref(), &route.prefix),
            Some(&service),
            "route {route:?} of service {service} is shadowed"
        );
    }
}
