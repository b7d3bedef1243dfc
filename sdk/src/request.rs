//! The incoming request a handler receives.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// An HTTP request as the service sees it: the original method, path, query
/// and headers, with the body already read in full.
///
/// On wasm the SDK builds it from `wasi:http`; in native tests build one with
/// [`Request::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Request {
    /// A request with no headers and an empty body.
    ///
    /// `path_and_query` is the request target as sent, e.g. `/users?page=2`.
    pub fn new(method: Method, path_and_query: &str) -> Self {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (path_and_query, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        Request {
            method,
            path: path.to_owned(),
            query,
            headers: HeaderMap::new(),
            body: Vec::new(),
        }
    }

    /// Add a header (appended, so repeated names keep every value).
    ///
    /// # Panics
    ///
    /// If `name` or `value` is not a valid HTTP header name or value.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::try_from(name)
            .unwrap_or_else(|e| panic!("invalid header name `{name}`: {e}"));
        let value = HeaderValue::try_from(value)
            .unwrap_or_else(|e| panic!("invalid header value `{value}`: {e}"));
        self.headers.append(name, value);
        self
    }

    /// Replace the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Replace all headers.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, without the query: `/users/7` for `/users/7?full=1`.
    ///
    /// This is the original path: the host does not strip the route prefix.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The raw query string without the `?`, if the target had one.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The first value of query parameter `name`, percent-decoded (`+` is a
    /// space). `None` if absent; `Some("")` for `?name` or `?name=`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key) == name).then(|| percent_decode(value))
        })
    }

    /// All request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name` (case-insensitive), if it is present
    /// and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The request id the host assigned (the `x-request-id` header): the same
    /// id is on the response and on every log line of this request.
    pub fn request_id(&self) -> Option<&str> {
        self.header("x-request-id")
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.body)
    }

    /// Take the body out of the request.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// Decode `%XX` escapes and `+` (as a space); malformed escapes stay as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
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
    fn splits_path_and_query() {
        let req = Request::new(Method::GET, "/a/b?x=1&y=two");
        assert_eq!(req.path(), "/a/b");
        assert_eq!(req.query(), Some("x=1&y=two"));
        assert_eq!(Request::new(Method::GET, "/a").query(), None);
        assert_eq!(Request::new(Method::GET, "").path(), "/");
    }

    #[test]
    fn query_param_decodes_and_takes_the_first() {
        let req = Request::new(
            Method::GET,
            "/?url=http%3A%2F%2Fa%2Fb&q=a+b&x=1&x=2&flag&bad=%zz%4",
        );
        assert_eq!(req.query_param("url").as_deref(), Some("http://a/b"));
        assert_eq!(req.query_param("q").as_deref(), Some("a b"));
        assert_eq!(req.query_param("x").as_deref(), Some("1"));
        assert_eq!(req.query_param("flag").as_deref(), Some(""));
        assert_eq!(req.query_param("bad").as_deref(), Some("%zz%4"));
        assert_eq!(req.query_param("missing"), None);
    }

    #[test]
    fn headers_and_request_id() {
        let req = Request::new(Method::POST, "/")
            .with_header("X-Request-Id", "abc")
            .with_header("accept", "a")
            .with_header("accept", "b")
            .with_body("hi");
        assert_eq!(req.request_id(), Some("abc"));
        assert_eq!(req.header("Accept"), Some("a"));
        assert_eq!(req.headers().get_all("accept").iter().count(), 2);
        assert_eq!(req.text(), Ok("hi"));
    }
}
