//! Percent-decoding, shared by query parsing ([`Request::query_param`]) and
//! the router's path parameters ([`Request::param`]).
//!
//! [`Request::query_param`]: crate::Request::query_param
//! [`Request::param`]: crate::Request::param

/// Decode `%XX` escapes (and `+` as a space if `plus_is_space`); malformed
/// escapes stay as they are, invalid UTF-8 becomes U+FFFD.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    if !s.bytes().any(|b| b == b'%' || (plus_is_space && b == b'+')) {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_edges() {
        assert_eq!(percent_decode("%41%4", false), "A%4");
        assert_eq!(percent_decode("%4", false), "%4");
        assert_eq!(percent_decode("a+b%20", false), "a+b ");
        assert_eq!(percent_decode("%e2%82%ac", false), "€");
        assert_eq!(percent_decode("%ff", false), "\u{fffd}");
    }
}
