//! [`Request`]: the outbound request builder.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::{DEFAULT_TIMEOUT, OutboundError};

/// An outbound request: method, absolute URL, headers, body and timeout.
///
/// ```
/// use std::time::Duration;
/// use wasmhost_sdk::outbound::Request;
///
/// let req = Request::post("http://127.0.0.1:9000/items")
///     .with_header("content-type", "application/json")
///     .with_body(r#"{"name":"pen"}"#)
///     .with_timeout(Duration::from_millis(500));
/// assert_eq!(req.url(), "http://127.0.0.1:9000/items");
/// assert_eq!(req.timeout(), Duration::from_millis(500));
/// ```
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Vec<u8>,
    timeout: Duration,
}

impl Request {
    /// A `method` request to `url` (absolute: `http://host[:port]/path?query`),
    /// no headers, an empty body and [`DEFAULT_TIMEOUT`]. The URL is checked
    /// when the request is sent.
    ///
    /// ```
    /// use wasmhost_sdk::{Method, outbound::Request};
    ///
    /// assert_eq!(Request::new(Method::PUT, "http://h/x").method(), Method::PUT);
    /// ```
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A `GET` request to `url`.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::outbound::Request::get("http://h/").method(), "GET");
    /// ```
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::GET, url)
    }

    /// A `POST` request to `url`.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::outbound::Request::post("http://h/").method(), "POST");
    /// ```
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::POST, url)
    }

    /// Add a header (appended, so repeated names keep every value).
    ///
    /// ```
    /// let req = wasmhost_sdk::outbound::Request::get("http://h/").with_header("accept", "text/plain");
    /// assert_eq!(req.header("accept"), Some("text/plain"));
    /// ```
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
    ///
    /// ```
    /// let req = wasmhost_sdk::outbound::Request::post("http://h/").with_body("x");
    /// assert_eq!(req.body(), b"x");
    /// ```
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set the body to `value` as JSON and `content-type` to
    /// `application/json`.
    ///
    /// ```
    /// let req = wasmhost_sdk::outbound::Request::post("http://h/")
    ///     .with_json(&serde_json::json!({"a": 1}));
    /// assert_eq!(req.body(), br#"{"a":1}"#);
    /// ```
    ///
    /// # Panics
    ///
    /// If `value` fails to serialize (e.g. a map with non-string keys).
    #[cfg(feature = "serde")]
    pub fn with_json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.body = serde_json::to_vec(value)
            .unwrap_or_else(|e| panic!("request body does not serialize to JSON: {e}"));
        self.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self
    }

    /// Limit each phase (connecting, waiting for the response head, and each
    /// pause between body bytes) to `timeout`; a phase that takes longer fails
    /// with [`OutboundError::Timeout`]. The service's own `timeout` in the
    /// manifest still bounds the whole request.
    ///
    /// ```
    /// use std::time::Duration;
    /// let req = wasmhost_sdk::outbound::Request::get("http://h/").with_timeout(Duration::from_secs(1));
    /// assert_eq!(req.timeout(), Duration::from_secs(1));
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The method.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::outbound::Request::get("http://h/").method(), "GET");
    /// ```
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL as given.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::outbound::Request::get("http://h/x").url(), "http://h/x");
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// All headers.
    ///
    /// ```
    /// assert!(wasmhost_sdk::outbound::Request::get("http://h/").headers().is_empty());
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if present and visible ASCII.
    ///
    /// ```
    /// let req = wasmhost_sdk::outbound::Request::get("http://h/").with_header("x-a", "1");
    /// assert_eq!(req.header("X-A"), Some("1"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body.
    ///
    /// ```
    /// assert!(wasmhost_sdk::outbound::Request::get("http://h/").body().is_empty());
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The per-phase timeout.
    ///
    /// ```
    /// use wasmhost_sdk::outbound::{DEFAULT_TIMEOUT, Request};
    /// assert_eq!(Request::get("http://h/").timeout(), DEFAULT_TIMEOUT);
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Scheme, authority and path-with-query of the URL, checked.
    pub(crate) fn parts(&self) -> Result<(String, String, String), OutboundError> {
        let invalid = |reason: &str| OutboundError::InvalidUrl {
            url: self.url.clone(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(invalid("it must be absolute, like `http://host:port/path`"));
        };
        let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let path = if path.is_empty() { "/" } else { path };
        Ok((
            scheme.to_ascii_lowercase(),
            authority.as_str().to_owned(),
            path.to_owned(),
        ))
    }
}

impl<B: Into<Vec<u8>>> From<http::Request<B>> for Request {
    /// The request's URI must be absolute; [`DEFAULT_TIMEOUT`] applies.
    ///
    /// ```
    /// let req: wasmhost_sdk::outbound::Request =
    ///     http::Request::get("http://h/x").header("x-a", "1").body("").unwrap().into();
    /// assert_eq!((req.url(), req.header("x-a")), ("http://h/x", Some("1")));
    /// ```
    fn from(req: http::Request<B>) -> Self {
        let (parts, body) = req.into_parts();
        Request {
            method: parts.method,
            url: parts.uri.to_string(),
            headers: parts.headers,
            body: body.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::send;

    #[test]
    fn urls_must_be_absolute() {
        let err = Request::get("/relative").parts().unwrap_err();
        assert!(
            matches!(&err, OutboundError::InvalidUrl { reason, .. } if reason.contains("absolute")),
            "{err}"
        );
        assert!(matches!(
            send(Request::get("http://bad host/")),
            Err(OutboundError::InvalidUrl { .. })
        ));
        let (scheme, authority, path) = Request::get("HTTP://h:8080").parts().unwrap();
        assert_eq!(
            (scheme.as_str(), authority.as_str(), path.as_str()),
            ("http", "h:8080", "/")
        );
        let (_, _, path) = Request::get("https://h/a?b=1").parts().unwrap();
        assert_eq!(path, "/a?b=1");
    }
}
