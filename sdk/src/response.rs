//! The response a handler returns.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header::CONTENT_TYPE};

/// An HTTP response: status, headers and a body held in memory.
///
/// Start from [`Response::text`], [`Response::json`], [`Response::bytes`] or
/// [`Response::new`], then chain `with_*`:
///
/// ```
/// use wasmhost_sdk::Response;
///
/// let resp = Response::json(r#"{"error":"no such user"}"#)
///     .with_status(404)
///     .with_header("cache-control", "no-store");
/// assert_eq!(resp.status(), 404);
/// assert_eq!(resp.header("content-type"), Some("application/json"));
/// ```
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Response {
    /// An empty response with `status`.
    ///
    /// # Panics
    ///
    /// If `status` is not in `100..=999`.
    pub fn new(status: u16) -> Self {
        Response {
            status: to_status(status),
            headers: HeaderMap::new(),
            body: Vec::new(),
        }
    }

    /// `200` with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> Self {
        Self::with_type("text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// `200` with an `application/json` body; `body` is already-encoded JSON.
    pub fn json(body: impl Into<String>) -> Self {
        Self::with_type("application/json", body.into().into_bytes())
    }

    /// `200` with an `application/octet-stream` body.
    pub fn bytes(body: impl Into<Vec<u8>>) -> Self {
        Self::with_type("application/octet-stream", body.into())
    }

    fn with_type(content_type: &'static str, body: Vec<u8>) -> Self {
        let mut resp = Response::new(200);
        resp.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        resp.body = body;
        resp
    }

    /// Set the status.
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
    /// # Panics
    ///
    /// If `name` or `value` is not a valid HTTP header name or value.
    pub fn with_appended_header(mut self, name: &str, value: &str) -> Self {
        let (name, value) = to_header(name, value);
        self.headers.append(name, value);
        self
    }

    /// Replace the body, keeping status and headers.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// All headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Split into status, headers and body.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, Vec<u8>) {
        (self.status, self.headers, self.body)
    }
}

impl From<&str> for Response {
    fn from(body: &str) -> Self {
        Response::text(body)
    }
}

impl From<String> for Response {
    fn from(body: String) -> Self {
        Response::text(body)
    }
}

fn to_status(status: u16) -> StatusCode {
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
            Response::json("{}").header("content-type"),
            Some("application/json")
        );
        assert_eq!(
            Response::bytes(vec![1, 2]).header("content-type"),
            Some("application/octet-stream")
        );
        assert!(Response::new(204).headers().is_empty());
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
    #[should_panic(expected = "invalid HTTP status `42`")]
    fn bad_status_panics_with_the_value() {
        let _ = Response::new(42);
    }
}
