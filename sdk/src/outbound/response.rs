//! [`Response`]: the upstream's answer, and forwarding it.

use http::{HeaderMap, StatusCode};

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
