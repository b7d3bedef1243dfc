//! The response a handler returns.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header::CONTENT_TYPE};

/// An HTTP response: status, headers and a body, either in memory or
/// streamed chunk by chunk ([`Response::stream`]).
///
/// Start from [`Response::text`], [`Response::json`], [`Response::bytes`],
/// [`Response::stream`] or [`Response::new`], then chain `with_*`:
///
/// ```
/// use wasmhost_sdk::Response;
///
/// let resp = Response::text("no such user\n")
///     .with_status(404)
///     .with_header("cache-control", "no-store");
/// assert_eq!(resp.status(), 404);
/// assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
/// ```
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

enum Body {
    Full(Vec<u8>),
    Stream(Box<dyn Iterator<Item = Vec<u8>>>),
}

impl Response {
    /// An empty response with `status`.
    ///
    /// ```
    /// let resp = wasmhost_sdk::Response::new(204);
    /// assert_eq!(resp.status(), 204);
    /// assert!(resp.headers().is_empty() && resp.body().is_empty());
    /// ```
    ///
    /// # Panics
    ///
    /// If `status` is not in `100..=999`.
    pub fn new(status: u16) -> Self {
        Response {
            status: to_status(status),
            headers: HeaderMap::new(),
            body: Body::Full(Vec::new()),
        }
    }

    /// `200` with a `text/plain; charset=utf-8` body.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Response::text("hi").body(), b"hi");
    /// ```
    pub fn text(body: impl Into<String>) -> Self {
        Self::with_type("text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// `200` with `value` serialized as the `application/json` body.
    ///
    /// If `value` fails to serialize (a map with non-string keys, a failing
    /// `Serialize` impl), the response is a `500` [`Error`](crate::Error)
    /// saying so instead.
    ///
    /// ```
    /// #[derive(serde::Serialize)]
    /// struct Item { id: u32, name: &'static str }
    ///
    /// let resp = wasmhost_sdk::Response::json(&Item { id: 7, name: "pen" }).with_status(201);
    /// assert_eq!(resp.status(), 201);
    /// assert_eq!(resp.header("content-type"), Some("application/json"));
    /// assert_eq!(resp.body(), br#"{"id":7,"name":"pen"}"#);
    /// ```
    #[cfg(feature = "serde")]
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::with_type("application/json", body),
            Err(e) => crate::Error::internal(format!("response does not serialize to JSON: {e}"))
                .into_response(),
        }
    }

    /// `200` with an `application/json` body that is already-encoded JSON
    /// (not checked).
    ///
    /// ```
    /// let resp = wasmhost_sdk::Response::json_raw(r#"{"ok":true}"#);
    /// assert_eq!(resp.header("content-type"), Some("application/json"));
    /// assert_eq!(resp.body(), br#"{"ok":true}"#);
    /// ```
    pub fn json_raw(body: impl Into<String>) -> Self {
        Self::with_type("application/json", body.into().into_bytes())
    }

    /// `200` with an `application/octet-stream` body.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Response::bytes(vec![0, 1]).body(), [0, 1]);
    /// ```
    pub fn bytes(body: impl Into<Vec<u8>>) -> Self {
        Self::with_type("application/octet-stream", body.into())
    }

    /// `status` with a body streamed from `chunks`, with
    /// `content-type: application/octet-stream` (override it with
    /// [`Response::with_header`]).
    ///
    /// On wasm the status and headers go out first, then each chunk is
    /// written to the outgoing body as the iterator yields it, so a large
    /// body never sits in guest memory. If the client goes away the iterator
    /// is dropped early. [`testing::call`](crate::testing::call) collects the
    /// chunks natively.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, testing};
    ///
    /// fn export(_req: Request) -> Response {
    ///     let lines = (1..=3).map(|i| format!("{i},item {i}\n").into_bytes());
    ///     Response::stream(200, lines).with_header("content-type", "text/csv")
    /// }
    ///
    /// let resp = testing::call(export, Request::get("/export"));
    /// assert_eq!(resp.text(), "1,item 1\n2,item 2\n3,item 3\n");
    /// assert!(resp.is_streamed());
    /// ```
    ///
    /// # Panics
    ///
    /// If `status` is not in `100..=999`.
    pub fn stream<I>(status: u16, chunks: I) -> Self
    where
        I: IntoIterator<Item = Vec<u8>>,
        I::IntoIter: 'static,
    {
        let mut resp = Response::new(status);
        resp.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        resp.body = Body::Stream(Box::new(chunks.into_iter()));
        resp
    }

    fn with_type(content_type: &'static str, body: Vec<u8>) -> Self {
        let mut resp = Response::new(200);
        resp.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        resp.body = Body::Full(body);
        resp
    }

    /// Set the status.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Response::text("made").with_status(201).status(), 201);
    /// ```
    ///
    /// # Panics
    ///
    /// If `status` is not in `100..=999`.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = to_status(status);
        self
    }

    /// Set header `name` to `value`, replacing any earlier value (so it can
    /// override the content type the constructors set).
    ///
    /// ```
    /// let resp = wasmhost_sdk::Response::text("<p>hi</p>").with_header("content-type", "text/html");
    /// assert_eq!(resp.header("content-type"), Some("text/html"));
    /// ```
    ///
    /// # Panics
    ///
    /// If `name` or `value` is not a valid HTTP header name or value.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        let (name, value) = to_header(name, value);
        self.headers.insert(name, value);
        self
    }

    /// Add a value for header `name`, keeping earlier ones (e.g. `set-cookie`).
    ///
    /// ```
    /// let resp = wasmhost_sdk::Response::new(204)
    ///     .with_appended_header("set-cookie", "a=1")
    ///     .with_appended_header("set-cookie", "b=2");
    /// assert_eq!(resp.headers().get_all("set-cookie").iter().count(), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If `name` or `value` is not a valid HTTP header name or value.
    pub fn with_appended_header(mut self, name: &str, value: &str) -> Self {
        let (name, value) = to_header(name, value);
        self.headers.append(name, value);
        self
    }

    /// Replace the body with an in-memory one, keeping status and headers.
    ///
    /// ```
    /// let resp = wasmhost_sdk::Response::new(200).with_body("ok");
    /// assert_eq!(resp.body(), b"ok");
    /// ```
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Body::Full(body.into());
        self
    }

    /// The status.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Response::new(404).status(), wasmhost_sdk::StatusCode::NOT_FOUND);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// All headers.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Response::text("x").headers().len(), 1);
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if present and visible ASCII.
    ///
    /// ```
    /// let resp = wasmhost_sdk::Response::new(200).with_header("x-a", "1");
    /// assert_eq!(resp.header("X-A"), Some("1"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// Whether the body is streamed ([`Response::stream`]) rather than held
    /// in memory.
    ///
    /// ```
    /// use wasmhost_sdk::Response;
    ///
    /// assert!(!Response::text("x").is_streaming());
    /// assert!(Response::stream(200, [b"x".to_vec()]).is_streaming());
    /// ```
    pub fn is_streaming(&self) -> bool {
        matches!(self.body, Body::Stream(_))
    }

    /// The in-memory body.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Response::text("hi").body(), b"hi");
    /// ```
    ///
    /// # Panics
    ///
    /// If the body is streamed: collect it with [`Response::into_bytes`] or
    /// call the handler through [`testing::call`](crate::testing::call).
    pub fn body(&self) -> &[u8] {
        match &self.body {
            Body::Full(bytes) => bytes,
            Body::Stream(_) => {
                panic!("Response::body on a streamed response: use `into_bytes` or `testing::call`")
            }
        }
    }

    /// The whole body, collecting a streamed one.
    ///
    /// ```
    /// use wasmhost_sdk::Response;
    ///
    /// let chunks = vec![b"a".to_vec(), b"b".to_vec()];
    /// assert_eq!(Response::stream(200, chunks).into_bytes(), b"ab");
    /// ```
    pub fn into_bytes(self) -> Vec<u8> {
        self.into_parts().2.concat()
    }

    /// Split into status, headers and the body's chunks (one chunk for an
    /// in-memory body).
    pub(crate) fn into_parts(self) -> (StatusCode, HeaderMap, BodyChunks) {
        let chunks = match self.body {
            Body::Full(bytes) => BodyChunks::Full(Some(bytes)),
            Body::Stream(iter) => BodyChunks::Stream(iter),
        };
        (self.status, self.headers, chunks)
    }
}

/// A response body as chunks: the wasm glue writes them one at a time.
pub(crate) enum BodyChunks {
    Full(Option<Vec<u8>>),
    Stream(Box<dyn Iterator<Item = Vec<u8>>>),
}

impl BodyChunks {
    pub(crate) fn is_stream(&self) -> bool {
        matches!(self, BodyChunks::Stream(_))
    }

    pub(crate) fn concat(self) -> Vec<u8> {
        match self {
            BodyChunks::Full(bytes) => bytes.unwrap_or_default(),
            BodyChunks::Stream(iter) => iter.flatten().collect(),
        }
    }
}

impl Iterator for BodyChunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        match self {
            BodyChunks::Full(bytes) => bytes.take(),
            BodyChunks::Stream(iter) => iter.next(),
        }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Response");
        s.field("status", &self.status)
            .field("headers", &self.headers);
        match &self.body {
            Body::Full(bytes) => s.field("body", &String::from_utf8_lossy(bytes)),
            Body::Stream(_) => s.field("body", &"<stream>"),
        };
        s.finish()
    }
}

impl From<&str> for Response {
    /// [`Response::text`].
    fn from(body: &str) -> Self {
        Response::text(body)
    }
}

impl From<String> for Response {
    /// [`Response::text`].
    fn from(body: String) -> Self {
        Response::text(body)
    }
}

impl<B: Into<Vec<u8>>> From<http::Response<B>> for Response {
    /// Keeps status, headers and body.
    ///
    /// ```
    /// let resp: wasmhost_sdk::Response = http::Response::builder()
    ///     .status(201)
    ///     .body("made")
    ///     .unwrap()
    ///     .into();
    /// assert_eq!((resp.status().as_u16(), resp.body()), (201, &b"made"[..]));
    /// ```
    fn from(resp: http::Response<B>) -> Self {
        let (parts, body) = resp.into_parts();
        Response {
            status: parts.status,
            headers: parts.headers,
            body: Body::Full(body.into()),
        }
    }
}

impl From<Response> for http::Response<Vec<u8>> {
    /// Keeps status and headers; a streamed body is collected.
    ///
    /// ```
    /// let resp: http::Response<Vec<u8>> = wasmhost_sdk::Response::text("hi").into();
    /// assert_eq!(resp.status(), 200);
    /// assert_eq!(resp.body(), b"hi");
    /// ```
    fn from(resp: Response) -> Self {
        let (status, headers, chunks) = resp.into_parts();
        let mut out = http::Response::new(chunks.concat());
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        out
    }
}

pub(crate) fn to_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status)
        .unwrap_or_else(|_| panic!("invalid HTTP status `{status}`: use 100..=999"))
}

fn to_header(name: &str, value: &str) -> (HeaderName, HeaderValue) {
    let header_name =
        HeaderName::try_from(name).unwrap_or_else(|e| panic!("invalid header name `{name}`: {e}"));
    let header_value = HeaderValue::try_from(value)
        .unwrap_or_else(|e| panic!("invalid header value `{value}`: {e}"));
    (header_name, header_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_status_and_content_type() {
        let text = Response::text("hi");
        assert_eq!(text.status(), 200);
        assert_eq!(
            text.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(text.body(), b"hi");
        assert_eq!(
            Response::json_raw("{}").header("content-type"),
            Some("application/json")
        );
        assert_eq!(
            Response::bytes(vec![1, 2]).header("content-type"),
            Some("application/octet-stream")
        );
        assert!(Response::new(204).headers().is_empty());
    }

    #[test]
    #[cfg(feature = "serde")]
    fn json_serializes_and_reports_failures_as_500() {
        let ok = Response::json(&serde_json::json!({"a": [1, 2]}));
        assert_eq!(ok.body(), br#"{"a":[1,2]}"#);
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        let resp = Response::json(&bad);
        assert_eq!(resp.status(), 500);
        assert!(
            String::from_utf8_lossy(resp.body()).contains("does not serialize"),
            "{resp:?}"
        );
    }

    #[test]
    fn header_replaces_and_appended_header_keeps() {
        let resp = Response::text("x")
            .with_header("Content-Type", "text/html")
            .with_appended_header("set-cookie", "a=1")
            .with_appended_header("set-cookie", "b=2")
            .with_status(201);
        assert_eq!(resp.header("content-type"), Some("text/html"));
        assert_eq!(resp.headers().get_all("set-cookie").iter().count(), 2);
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    #[test]
    fn stream_yields_chunks_lazily() {
        let counter = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = counter.clone();
        let chunks = (0..3).map(move |i| {
            seen.set(seen.get() + 1);
            vec![b'a' + i]
        });
        let resp = Response::stream(206, chunks);
        assert_eq!(counter.get(), 0, "nothing is produced before the write");
        assert!(resp.is_streaming());
        let (status, _, mut body) = resp.into_parts();
        assert_eq!(status, 206);
        assert_eq!(body.next(), Some(b"a".to_vec()));
        assert_eq!(counter.get(), 1);
        assert_eq!(body.concat(), b"bc");
    }

    #[test]
    #[should_panic(expected = "streamed response")]
    fn body_of_a_stream_panics() {
        let _ = Response::stream(200, [Vec::new()]).body();
    }

    #[test]
    #[should_panic(expected = "invalid HTTP status `42`")]
    fn bad_status_panics_with_the_value() {
        let _ = Response::new(42);
    }

    #[test]
    fn http_round_trip() {
        let resp = Response::text("hi")
            .with_status(202)
            .with_header("x-a", "1");
        let http_resp: http::Response<Vec<u8>> = resp.into();
        assert_eq!(http_resp.status(), 202);
        assert_eq!(http_resp.headers()["x-a"], "1");
        let back = Response::from(http_resp);
        assert_eq!(back.body(), b"hi");
        assert_eq!(back.header("x-a"), Some("1"));
    }
}
