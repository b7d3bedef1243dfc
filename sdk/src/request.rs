//! The incoming request a handler receives: the [`Request`] type, its
//! constructors and accessors, and its conversions to and from
//! `http::Request`. Query parsing is in `query`, the lazily fetched headers
//! in `headers`.

use std::fmt::{self, Display};
use std::str::FromStr;

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::Error;

mod headers;
mod query;

use headers::{HeaderSource, Headers};

/// An HTTP request as the service sees it: the original method, path, query
/// and headers, with the body already read in full, plus the path parameters
/// the [`Router`](crate::Router) matched.
///
/// On wasm the SDK builds it from `wasi:http`; in native tests build one with
/// [`Request::get`], [`Request::post`] or [`Request::new`] and the `with_*`
/// methods:
///
/// ```
/// use wasmhost_sdk::Request;
///
/// let req = Request::post("/items?dry_run=1")
///     .with_header("content-type", "application/json")
///     .with_body(r#"{"name":"pen"}"#);
/// assert_eq!(req.path(), "/items");
/// assert_eq!(req.query_param("dry_run").as_deref(), Some("1"));
/// assert_eq!(req.text(), Ok(r#"{"name":"pen"}"#));
/// ```
pub struct Request {
    method: Method,
    path: String,
    query: Option<String>,
    headers: Headers,
    body: Vec<u8>,
    params: Vec<(String, String)>,
}

impl Request {
    /// A request with no headers and an empty body.
    ///
    /// `target` is the request target as sent, e.g. `/users?page=2`; an empty
    /// target means `/`.
    ///
    /// ```
    /// use wasmhost_sdk::{Method, Request};
    ///
    /// let req = Request::new(Method::PATCH, "/users/7?notify=0");
    /// assert_eq!(req.method(), Method::PATCH);
    /// assert_eq!(req.path(), "/users/7");
    /// assert_eq!(req.query(), Some("notify=0"));
    /// ```
    ///
    /// # Panics
    ///
    /// If `target` is not a valid origin-form target (a path with an
    /// optional query: no spaces, no fragment).
    pub fn new(method: Method, target: &str) -> Self {
        if let Err(e) = http::uri::PathAndQuery::try_from(target)
            && !target.is_empty()
        {
            panic!("invalid request target `{target}`: {e}");
        }
        Self::from_parts(method, target, HeaderMap::new(), Vec::new())
    }

    /// Build from parts the host already validated (no target check).
    pub(crate) fn from_parts(
        method: Method,
        target: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (target, None),
        };
        let path = if path.is_empty() { "/" } else { path };
        Request {
            method,
            path: path.to_owned(),
            query,
            headers: Headers::from_map(headers),
            body,
            params: Vec::new(),
        }
    }

    /// Build from what the host handed over; `headers` gives the header list
    /// when the service first looks at a header.
    #[allow(dead_code)] // only the wasm half of `wasi.rs` calls it
    pub(crate) fn from_host(
        method: Method,
        target: &str,
        headers: HeaderSource,
        body: Vec<u8>,
    ) -> Self {
        let mut req = Self::from_parts(method, target, HeaderMap::new(), body);
        req.headers = Headers::lazy(headers);
        req
    }

    /// A `GET` request for `target`; see [`Request::new`].
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/items/7");
    /// assert_eq!(req.method(), wasmhost_sdk::Method::GET);
    /// ```
    pub fn get(target: &str) -> Self {
        Self::new(Method::GET, target)
    }

    /// A `POST` request for `target`; see [`Request::new`].
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::post("/items").with_body("x");
    /// assert_eq!(req.body(), b"x");
    /// ```
    pub fn post(target: &str) -> Self {
        Self::new(Method::POST, target)
    }

    /// A `PUT` request for `target`; see [`Request::new`].
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Request::put("/a").method(), "PUT");
    /// ```
    pub fn put(target: &str) -> Self {
        Self::new(Method::PUT, target)
    }

    /// A `DELETE` request for `target`; see [`Request::new`].
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Request::delete("/a").method(), "DELETE");
    /// ```
    pub fn delete(target: &str) -> Self {
        Self::new(Method::DELETE, target)
    }

    /// Add a header (appended, so repeated names keep every value).
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/")
    ///     .with_header("accept", "text/html")
    ///     .with_header("accept", "*/*");
    /// assert_eq!(req.headers().get_all("accept").iter().count(), 2);
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
        self.headers.map_mut().append(name, value);
        self
    }

    /// Replace all headers.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/").with_headers(wasmhost_sdk::HeaderMap::new());
    /// assert!(req.headers().is_empty());
    /// ```
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = Headers::from_map(headers);
        self
    }

    /// Replace the body.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::post("/").with_body(vec![1, 2, 3]);
    /// assert_eq!(req.body(), [1, 2, 3]);
    /// ```
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set the body to `value` as JSON and `content-type` to
    /// `application/json`.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::post("/items")
    ///     .with_json(&serde_json::json!({"name": "pen"}));
    /// assert_eq!(req.header("content-type"), Some("application/json"));
    /// assert_eq!(req.body(), br#"{"name":"pen"}"#);
    /// ```
    ///
    /// # Panics
    ///
    /// If `value` fails to serialize (e.g. a map with non-string keys).
    #[cfg(feature = "serde")]
    pub fn with_json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        self.body = serde_json::to_vec(value)
            .unwrap_or_else(|e| panic!("request body does not serialize to JSON: {e}"));
        self.headers.map_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self
    }

    /// Set path parameter `name` to `value`, as the [`Router`](crate::Router)
    /// does; for calling a handler directly in a test.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/users/7").with_param("id", "7");
    /// assert_eq!(req.param("id"), Some("7"));
    /// ```
    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        self.set_param(name.to_owned(), value.to_owned());
        self
    }

    pub(crate) fn set_param(&mut self, name: String, value: String) {
        match self.params.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.params.push((name, value)),
        }
    }

    /// The request method.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Request::get("/").method(), wasmhost_sdk::Method::GET);
    /// ```
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, without the query: `/users/7` for `/users/7?full=1`.
    ///
    /// This is the original path: the host does not strip the service's route
    /// prefix (see [`Router::mount`](crate::Router::mount)).
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Request::get("/users/7?full=1").path(), "/users/7");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Path parameter `name` that the [`Router`](crate::Router) matched
    /// (`:name` or `*name` in the route's pattern), percent-decoded.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, Router, testing};
    ///
    /// let router = Router::new().get("/users/:id", |req: Request| {
    ///     Response::text(format!("user {}", req.param("id").unwrap()))
    /// });
    /// assert_eq!(testing::call(&router, Request::get("/users/a%20b")).text(), "user a b");
    /// ```
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Path parameter `name` parsed as `T`, or an [`Error`]: `400` naming the
    /// parameter if it does not parse, `500` if the route has no such
    /// parameter (a bug in the service).
    ///
    /// ```
    /// use wasmhost_sdk::Request;
    ///
    /// let req = Request::get("/items/7").with_param("id", "7");
    /// assert_eq!(req.param_as::<u64>("id").unwrap(), 7);
    /// let bad = Request::get("/items/x").with_param("id", "x");
    /// assert_eq!(bad.param_as::<u64>("id").unwrap_err().status(), 400);
    /// assert_eq!(bad.param_as::<u64>("nope").unwrap_err().status(), 500);
    /// ```
    pub fn param_as<T>(&self, name: &str) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        let value = self.param(name).ok_or_else(|| {
            Error::internal(format!("the matched route has no path parameter `{name}`"))
        })?;
        value.parse().map_err(|e| {
            Error::bad_request(format!("invalid path parameter `{name}`=`{value}`: {e}"))
        })
    }

    /// All path parameters as `(name, value)` pairs, in pattern order.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/").with_param("a", "1").with_param("b", "2");
    /// assert_eq!(req.params().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    /// ```
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// All request headers.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/").with_header("x-a", "1");
    /// assert_eq!(req.headers().len(), 1);
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        self.headers.map()
    }

    /// The first value of header `name` (case-insensitive), if it is present
    /// and visible ASCII.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/").with_header("Accept", "text/plain");
    /// assert_eq!(req.header("accept"), Some("text/plain"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.map().get(name)?.to_str().ok()
    }

    /// The request id the host assigned (the `x-request-id` header): the same
    /// id is on the response and on every log line of this request.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/").with_header("x-request-id", "abc");
    /// assert_eq!(req.request_id(), Some("abc"));
    /// ```
    pub fn request_id(&self) -> Option<&str> {
        self.header("x-request-id")
    }

    /// The body bytes.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Request::post("/").with_body("hi").body(), b"hi");
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text. With `?` in a handler returning
    /// `Result<_, Error>`, invalid UTF-8 becomes a `400`.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Request::post("/").with_body("hi").text(), Ok("hi"));
    /// ```
    pub fn text(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.body)
    }

    /// The body deserialized from JSON. With `?` in a handler returning
    /// `Result<_, Error>`, a malformed body becomes a `400` naming the problem.
    /// The `content-type` header is not checked.
    ///
    /// ```
    /// use wasmhost_sdk::{Error, Request};
    ///
    /// #[derive(Debug, serde::Deserialize)]
    /// struct NewItem { name: String }
    ///
    /// let req = Request::post("/items").with_body(r#"{"name":"pen"}"#);
    /// assert_eq!(req.json::<NewItem>().unwrap().name, "pen");
    ///
    /// let bad = Request::post("/items").with_body("{");
    /// let err: Error = bad.json::<NewItem>().unwrap_err().into();
    /// assert_eq!(err.status(), 400);
    /// ```
    #[cfg(feature = "serde")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// Take the body out of the request.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Request::post("/").with_body("hi").into_body(), b"hi");
    /// ```
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

impl<B: Into<Vec<u8>>> From<http::Request<B>> for Request {
    /// Keeps method, path, query, headers and body; scheme and authority are
    /// dropped (the host routes on them before the guest runs).
    ///
    /// ```
    /// let req: wasmhost_sdk::Request = http::Request::post("/a?b=1").body("x").unwrap().into();
    /// assert_eq!((req.path(), req.query(), req.body()), ("/a", Some("b=1"), &b"x"[..]));
    /// ```
    fn from(req: http::Request<B>) -> Self {
        let (parts, body) = req.into_parts();
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        Request::from_parts(parts.method, target, parts.headers, body.into())
    }
}

impl From<Request> for http::Request<Vec<u8>> {
    /// An origin-form request (`/path?query`) with the same method, headers
    /// and body; path parameters are dropped.
    ///
    /// ```
    /// let req = wasmhost_sdk::Request::get("/a?b=1").with_header("x-a", "1");
    /// let req: http::Request<Vec<u8>> = req.into();
    /// assert_eq!(req.uri(), "/a?b=1");
    /// assert_eq!(req.headers()["x-a"], "1");
    /// ```
    fn from(req: Request) -> Self {
        let target = match &req.query {
            Some(query) => format!("{}?{query}", req.path),
            None => req.path,
        };
        let mut out = http::Request::new(req.body);
        *out.method_mut() = req.method;
        // Every constructor validated the target (or the host did).
        *out.uri_mut() = http::Uri::try_from(target).unwrap_or_default();
        *out.headers_mut() = req.headers.into_map();
        out
    }
}

impl Clone for Request {
    fn clone(&self) -> Self {
        Request {
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            headers: Headers::from_map(self.headers.map().clone()),
            body: self.body.clone(),
            params: self.params.clone(),
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", self.headers.map())
            .field("body", &String::from_utf8_lossy(&self.body))
            .field("params", &self.params)
            .finish()
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
    #[should_panic(expected = "invalid request target `/a b`")]
    fn invalid_target_panics_with_the_value() {
        let _ = Request::get("/a b");
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

    #[test]
    fn http_round_trip() {
        let req = Request::post("/a/b?c=d")
            .with_header("x-a", "1")
            .with_body("hi");
        let http_req: http::Request<Vec<u8>> = req.into();
        assert_eq!(http_req.method(), Method::POST);
        assert_eq!(http_req.uri(), "/a/b?c=d");
        let back = Request::from(http_req);
        assert_eq!(back.path(), "/a/b");
        assert_eq!(back.query(), Some("c=d"));
        assert_eq!(back.header("x-a"), Some("1"));
        assert_eq!(back.body(), b"hi");
        let absolute: Request = http::Request::get("http://h:1/x").body("").unwrap().into();
        assert_eq!(absolute.path(), "/x");
    }

    #[test]
    fn params_are_replaced_not_duplicated() {
        let req = Request::get("/")
            .with_param("id", "1")
            .with_param("id", "2");
        assert_eq!(req.params().count(), 1);
        assert_eq!(req.param("id"), Some("2"));
    }
}
