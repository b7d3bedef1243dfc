//! Outbound HTTP from a guest, through `wasi:http/outgoing-handler`.
//!
//! The host only lets a service reach the origins in its manifest's
//! `allowed_outbound_hosts`; anything else fails with
//! [`OutboundError::Denied`] (never a panic):
//!
//! ```toml
//! [[service]]
//! name = "proxy"
//! env = { UPSTREAM_URL = "http://127.0.0.1:9000/stock" }
//! allowed_outbound_hosts = ["http://127.0.0.1:9000"]
//! ```
//!
//! ```
//! use wasmhost_sdk::{Error, Request, Response, config, outbound, testing::TestEnv};
//!
//! fn stock(_req: Request) -> Result<Response, Error> {
//!     let upstream = outbound::get(&config::get("UPSTREAM_URL")?)?;
//!     Ok(Response::text(format!("upstream said {}", upstream.status())))
//! }
//!
//! // Natively there is no wasm runtime: mock the upstream.
//! let env = TestEnv::new()
//!     .config("UPSTREAM_URL", "http://127.0.0.1:9000/stock")
//!     .outbound(|req| {
//!         assert_eq!(req.url(), "http://127.0.0.1:9000/stock");
//!         Ok(Response::text("42"))
//!     });
//! assert_eq!(env.call(stock, Request::get("/")).text(), "upstream said 200 OK");
//!
//! let denied = TestEnv::new()
//!     .config("UPSTREAM_URL", "http://example.com/")
//!     .outbound(|req| Err(outbound::OutboundError::Denied { url: req.url().to_owned() }));
//! assert_eq!(denied.call(stock, Request::get("/")).status(), 502);
//! ```
//!
//! Request bodies are sent and response bodies read in full. Natively,
//! without a [`TestEnv::outbound`](crate::testing::TestEnv::outbound) mock,
//! every call fails with [`OutboundError::Unsupported`].

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// How long each phase of an outbound request may take unless
/// [`Request::with_timeout`] says otherwise: 5 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The upstream's answer, body read in full.
///
/// ```
/// use wasmhost_sdk::{Response, outbound, testing::TestEnv};
///
/// let resp = TestEnv::new()
///     .outbound(|_req| Ok(Response::json_raw(r#"{"n":1}"#).with_status(201)))
///     .run(|| outbound::get("http://h/"))
///     .unwrap();
/// assert_eq!(resp.status(), 201);
/// assert_eq!(resp.header("content-type"), Some("application/json"));
/// assert_eq!(resp.json::<serde_json::Value>().unwrap()["n"], 1);
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Response {
    pub(crate) fn from_parts(status: StatusCode, headers: HeaderMap, body: Vec<u8>) -> Self {
        Response {
            status,
            headers,
            body,
        }
    }

    /// The status.
    ///
    /// ```
    /// # use wasmhost_sdk::{outbound, testing::TestEnv};
    /// let resp = TestEnv::new().outbound(|_| Ok(wasmhost_sdk::Response::new(204)))
    ///     .run(|| outbound::get("http://h/")).unwrap();
    /// assert_eq!(resp.status(), 204);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// All headers.
    ///
    /// ```
    /// # use wasmhost_sdk::{outbound, testing::TestEnv};
    /// let resp = TestEnv::new().outbound(|_| Ok(wasmhost_sdk::Response::new(204)))
    ///     .run(|| outbound::get("http://h/")).unwrap();
    /// assert!(resp.headers().is_empty());
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if present and visible ASCII.
    ///
    /// ```
    /// # use wasmhost_sdk::{outbound, testing::TestEnv};
    /// let resp = TestEnv::new().outbound(|_| Ok(wasmhost_sdk::Response::text("x")))
    ///     .run(|| outbound::get("http://h/")).unwrap();
    /// assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body.
    ///
    /// ```
    /// # use wasmhost_sdk::{outbound, testing::TestEnv};
    /// let resp = TestEnv::new().outbound(|_| Ok(wasmhost_sdk::Response::bytes(vec![1])))
    ///     .run(|| outbound::get("http://h/")).unwrap();
    /// assert_eq!(resp.body(), [1]);
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text.
    ///
    /// ```
    /// # use wasmhost_sdk::{outbound, testing::TestEnv};
    /// let resp = TestEnv::new().outbound(|_| Ok(wasmhost_sdk::Response::text("hi")))
    ///     .run(|| outbound::get("http://h/")).unwrap();
    /// assert_eq!(resp.text(), Ok("hi"));
    /// ```
    pub fn text(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.body)
    }

    /// The body deserialized from JSON.
    ///
    /// ```
    /// # use wasmhost_sdk::{outbound, testing::TestEnv};
    /// let resp = TestEnv::new().outbound(|_| Ok(wasmhost_sdk::Response::json_raw("[1,2]")))
    ///     .run(|| outbound::get("http://h/")).unwrap();
    /// assert_eq!(resp.json::<Vec<u8>>().unwrap(), [1, 2]);
    /// ```
    #[cfg(feature = "serde")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// Take the body.
    ///
    /// ```
    /// # use wasmhost_sdk::{outbound, testing::TestEnv};
    /// let resp = TestEnv::new().outbound(|_| Ok(wasmhost_sdk::Response::text("hi")))
    ///     .run(|| outbound::get("http://h/")).unwrap();
    /// assert_eq!(resp.into_body(), b"hi");
    /// ```
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

impl From<Response> for crate::Response {
    /// Forward an upstream answer as this service's response (status, headers
    /// and body).
    ///
    /// ```
    /// # use wasmhost_sdk::{outbound, testing::TestEnv};
    /// let upstream = TestEnv::new().outbound(|_| Ok(wasmhost_sdk::Response::text("hi").with_status(203)))
    ///     .run(|| outbound::get("http://h/")).unwrap();
    /// let resp = wasmhost_sdk::Response::from(upstream);
    /// assert_eq!((resp.status().as_u16(), resp.body()), (203, &b"hi"[..]));
    /// ```
    fn from(resp: Response) -> Self {
        http::Response::from(resp).into()
    }
}

impl From<Response> for http::Response<Vec<u8>> {
    /// Keeps status, headers and body.
    fn from(resp: Response) -> Self {
        let mut out = http::Response::new(resp.body);
        *out.status_mut() = resp.status;
        *out.headers_mut() = resp.headers;
        out
    }
}

/// Why an outbound request failed. Converts into an
/// [`Error`](crate::Error) with `?`: `502`, `504` for a timeout, `500` for a
/// bad URL or a missing runtime.
///
/// ```
/// use wasmhost_sdk::outbound::OutboundError;
///
/// let err = OutboundError::Denied { url: "http://example.com/".into() };
/// assert_eq!(
///     err.to_string(),
///     "outbound request to `http://example.com/` denied: add its origin to the service's \
///      `allowed_outbound_hosts`"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboundError {
    /// The host refused: the URL's origin is not in `allowed_outbound_hosts`
    /// (`wasi:http` `error-code.HTTP-request-denied`).
    Denied {
        /// The URL.
        url: String,
    },
    /// Connecting, the response head or the body took longer than the
    /// request's timeout.
    Timeout {
        /// The URL.
        url: String,
    },
    /// The URL is not an absolute `http`/`https` URL.
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other failure: DNS, connection refused or reset, a protocol error,
    /// a body that broke off.
    Failed {
        /// The URL.
        url: String,
        /// The `wasi:http` error code or stream error, as text.
        reason: String,
    },
    /// Natively there is no `wasi:http` to send with: run the service under
    /// wasmhost, or mock outbound calls with
    /// [`TestEnv::outbound`](crate::testing::TestEnv::outbound).
    Unsupported,
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboundError::Denied { url } => write!(
                f,
                "outbound request to `{url}` denied: add its origin to the service's \
                 `allowed_outbound_hosts`"
            ),
            OutboundError::Timeout { url } => write!(f, "outbound request to `{url}` timed out"),
            OutboundError::InvalidUrl { url, reason } => {
                write!(f, "invalid outbound URL `{url}`: {reason}")
            }
            OutboundError::Failed { url, reason } => {
                write!(f, "outbound request to `{url}` failed: {reason}")
            }
            OutboundError::Unsupported => f.write_str(
                "outbound HTTP needs the wasm runtime: run the service under wasmhost, \
                 or mock it with `testing::TestEnv::outbound`",
            ),
        }
    }
}

impl std::error::Error for OutboundError {}

/// `GET url` with [`DEFAULT_TIMEOUT`].
///
/// ```
/// use wasmhost_sdk::outbound::{self, OutboundError};
///
/// // Natively, with no mock installed:
/// assert_eq!(outbound::get("http://127.0.0.1:9000/").unwrap_err(), OutboundError::Unsupported);
/// ```
pub fn get(url: &str) -> Result<Response, OutboundError> {
    send(Request::get(url))
}

/// Send `request` and read the whole response.
///
/// ```
/// use wasmhost_sdk::{Response, outbound, testing::TestEnv};
///
/// let echoed = TestEnv::new()
///     .outbound(|req| Ok(Response::bytes(req.body().to_vec())))
///     .run(|| outbound::send(outbound::Request::post("http://h/").with_body("ping")))
///     .unwrap();
/// assert_eq!(echoed.body(), b"ping");
/// ```
pub fn send(request: impl Into<Request>) -> Result<Response, OutboundError> {
    let request = request.into();
    request.parts()?;
    crate::wasi::send(request)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn natively_without_a_mock_is_unsupported() {
        assert_eq!(get("http://h/").unwrap_err(), OutboundError::Unsupported);
        assert!(
            OutboundError::Unsupported
                .to_string()
                .contains("TestEnv::outbound")
        );
    }
}
