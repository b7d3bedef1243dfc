//! Route patterns: checking them, matching them against a path, and ranking
//! them by specificity. Pure byte-level string code, no allocation on the
//! matching path.

use std::cmp::Ordering;

/// Segments of a path or pattern: `/a/b` → `a`, `b`; `/` → `""`.
///
/// A byte scan rather than `str::split`: routers are built and matched on
/// every request, and this is several times cheaper in wasm fuel.
fn segments(s: &str) -> Segments<'_> {
    Segments {
        rest: Some(s.strip_prefix('/').unwrap_or(s)),
    }
}

struct Segments<'a> {
    rest: Option<&'a str>,
}

impl<'a> Segments<'a> {
    /// What is left after the segments returned so far (`None` at the end).
    fn rest(&self) -> Option<&'a str> {
        self.rest
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.as_bytes().iter().position(|&b| b == b'/') {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Whether `pattern` matches `path`; `capture` gets every `(name, raw value)`.
///
/// One pass over the bytes of both (the hot path of every routed request);
/// the segment rules are those in [`Router`](crate::Router)'s docs.
pub(super) fn matches(pattern: &str, path: &str, capture: &mut dyn FnMut(&str, &str)) -> bool {
    let p = pattern.as_bytes();
    let s = path.as_bytes();
    let mut i = usize::from(p.first() == Some(&b'/'));
    let mut j = usize::from(s.first() == Some(&b'/'));
    loop {
        // `i` and `j` are at the start of a segment of each.
        match p.get(i) {
            Some(b'*') => {
                capture(&pattern[i + 1..], path.get(j..).unwrap_or(""));
                return true;
            }
            Some(b':') => {
                let name_end = segment_end(p, i);
                let value_end = segment_end(s, j.min(s.len()));
                if value_end <= j {
                    return false;
                }
                capture(&pattern[i + 1..name_end], &path[j..value_end]);
                i = name_end;
                j = value_end;
            }
            _ => {
                let end = segment_end(p, i);
                let len = end - i;
                if s.get(j..j + len) != Some(&p[i..end]) {
                    return false;
                }
                i = end;
                j += len;
                if j < s.len() && s[j] != b'/' {
                    return false;
                }
            }
        }
        // Both are at a `/` or at their end.
        match (i >= p.len(), j >= s.len()) {
            (true, true) => return true,
            (false, false) => {
                i += 1;
                j += 1;
            }
            // The path ended: only a `*tail` segment can still match (empty).
            (false, true) => {
                return match p.get(i + 1) {
                    Some(b'*') => {
                        capture(&pattern[i + 2..], "");
                        true
                    }
                    _ => false,
                };
            }
            (true, false) => return false,
        }
    }
}

/// The index of the `/` ending the segment that starts at `start`, or the length.
fn segment_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b == b'/')
        .map_or(bytes.len(), |n| start + n)
}

/// `Less` if pattern `a` is more specific than `b`.
pub(super) fn specificity(a: &str, b: &str) -> Ordering {
    fn rank(part: &str) -> u8 {
        match part.as_bytes().first() {
            Some(b':') => 1,
            Some(b'*') => 2,
            _ => 0,
        }
    }
    let mut a = segments(a);
    let mut b = segments(b);
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) => match rank(x).cmp(&rank(y)) {
                Ordering::Equal => continue,
                other => return other,
            },
            // Both matched the same path: the longer one (no tail) is more specific.
            (Some(_), None) => return Ordering::Less,
            (None, Some(_)) => return Ordering::Greater,
            (None, None) => return Ordering::Equal,
        }
    }
}

/// Check a pattern without allocating: routers are built on every request.
pub(super) fn validate(pattern: &str) -> Result<(), String> {
    if !pattern.starts_with('/') {
        return Err("it must start with `/`".to_owned());
    }
    let mut parts = segments(pattern);
    let mut params = 0;
    while let Some(part) = parts.next() {
        let Some(name) = param_name(part) else {
            continue;
        };
        if part.starts_with('*') && parts.rest().is_some() {
            return Err(format!("`{part}` must be the last segment"));
        }
        if name.is_empty() {
            return Err(format!("segment `{part}` needs a name, e.g. `{part}id`"));
        }
        // Only patterns with two or more parameters pay for this rescan.
        if params > 0
            && segments(pattern)
                .filter_map(param_name)
                .take(params)
                .any(|earlier| earlier == name)
        {
            return Err(format!("parameter `{name}` appears twice"));
        }
        params += 1;
    }
    Ok(())
}

/// The name of a `:name` or `*name` segment.
fn param_name(part: &str) -> Option<&str> {
    part.strip_prefix(':').or_else(|| part.strip_prefix('*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_edge_cases() {
        let check = |pattern: &str, path: &str| {
            let mut params = Vec::new();
            matches(pattern, path, &mut |n, v| params.push(format!("{n}={v}")))
                .then(|| params.join(","))
        };
        assert_eq!(check("/", "/").as_deref(), Some(""));
        assert_eq!(check("/", "/x"), None);
        assert_eq!(check("/items/", "/items/").as_deref(), Some(""));
        assert_eq!(check("/items/", "/items"), None);
        assert_eq!(check("/items", "/itemsx"), None);
        assert_eq!(check("/items", "/item"), None);
        assert_eq!(check("/:a/:b", "/x/y").as_deref(), Some("a=x,b=y"));
        assert_eq!(check("/:a/:b", "/x/"), None);
        assert_eq!(check("/:a/:b", "/x"), None);
        assert_eq!(check("/a/:id", "/a"), None);
        assert_eq!(check("/*all", "/").as_deref(), Some("all="));
        assert_eq!(check("/*all", "/a/b/").as_deref(), Some("all=a/b/"));
        assert_eq!(check("/f/*p", "/f").as_deref(), Some("p="));
        assert_eq!(check("/f/*p", "/fx"), None);
        assert_eq!(check("/é/:x", "/é/ü").as_deref(), Some("x=ü"));
    }
}
