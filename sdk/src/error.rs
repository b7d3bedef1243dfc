//! [`Error`]: a failure a handler turns into an HTTP answer.

use std::fmt;

use http::StatusCode;

use crate::config::ConfigError;
use crate::outbound::OutboundError;
use crate::response::{Response, to_status};

/// A failed request: a status and a message for the client.
///
/// Return `Result<Response, Error>` from a handler and use `?`: the error
/// becomes a response with its status and the JSON body
/// `{"error":"<message>"}`. The SDK's own errors convert with [`From`]:
///
/// | source | status |
/// |---|---|
/// | `serde_json::Error` (e.g. from [`Request::json`](crate::Request::json)) | 400 |
/// | [`std::str::Utf8Error`] (from [`Request::text`](crate::Request::text)) | 400 |
/// | [`ConfigError`] | 500 |
/// | [`OutboundError`] | 502; 504 for a timeout; 500 for a bad URL or no runtime |
///
/// Errors with a status of 500 or more are also logged (one `ERROR` line on
/// stderr), since the client sees only the message.
///
/// ```
/// use wasmhost_sdk::{Error, Request, Response, testing};
///
/// fn get_user(req: Request) -> Result<Response, Error> {
///     let id: u32 = req.param_as("id")?;
///     if id != 7 {
///         return Err(Error::not_found(format!("no user {id}")));
///     }
///     Ok(Response::text("alice"))
/// }
///
/// let resp = testing::call(get_user, Request::get("/users/8").with_param("id", "8"));
/// assert_eq!(resp.status(), 404);
/// assert_eq!(resp.text(), r#"{"error":"no user 8"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: StatusCode,
    message: String,
}

impl Error {
    /// An error answered with `status` and `message`.
    ///
    /// ```
    /// let err = wasmhost_sdk::Error::new(409, "item exists");
    /// assert_eq!((err.status().as_u16(), err.message()), (409, "item exists"));
    /// ```
    ///
    /// # Panics
    ///
    /// If `status` is not in `100..=999`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Error {
            status: to_status(status),
            message: message.into(),
        }
    }

    /// `400 Bad Request`.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Error::bad_request("no name").status(), 400);
    /// ```
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// `404 Not Found`.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Error::not_found("no such item").status(), 404);
    /// ```
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// `500 Internal Server Error`.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Error::internal("oops").status(), 500);
    /// ```
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The status the client gets.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Error::new(418, "tea").status(), 418);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message the client gets.
    ///
    /// ```
    /// assert_eq!(wasmhost_sdk::Error::new(418, "tea").message(), "tea");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The response: the status, `content-type: application/json` and
    /// `{"error":"<message>"}`. A 5xx error is logged on stderr first.
    ///
    /// ```
    /// let resp = wasmhost_sdk::Error::bad_request("say \"hi\"").into_response();
    /// assert_eq!(resp.status(), 400);
    /// assert_eq!(resp.body(), br#"{"error":"say \"hi\""}"#);
    /// ```
    pub fn into_response(self) -> Response {
        if self.status.is_server_error() {
            crate::error!("{} {}", self.status.as_u16(), self.message);
        }
        let mut body = String::with_capacity(self.message.len() + 12);
        body.push_str(r#"{"error":"#);
        push_json_string(&mut body, &self.message);
        body.push('}');
        Response::json_raw(body).with_status(self.status.as_u16())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::str::Utf8Error> for Error {
    fn from(e: std::str::Utf8Error) -> Self {
        Error::bad_request(format!("the body is not UTF-8: {e}"))
    }
}

#[cfg(feature = "serde")]
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::bad_request(format!("invalid JSON: {e}"))
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::internal(e.to_string())
    }
}

impl From<OutboundError> for Error {
    fn from(e: OutboundError) -> Self {
        let status = match &e {
            OutboundError::Timeout { .. } => 504,
            OutboundError::InvalidUrl { .. } | OutboundError::Unsupported => 500,
            _ => 502,
        };
        Error::new(status, e.to_string())
    }
}

/// Append `s` as a JSON string literal (quotes included).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                use fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_body_escapes_control_characters() {
        let resp = Error::new(422, "a\"b\\c\nd\u{1}é").into_response();
        assert_eq!(resp.status(), 422);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let body = std::str::from_utf8(resp.body()).unwrap();
        assert_eq!(body, r#"{"error":"a\"b\\c\nd\u0001é"}"#);
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(parsed["error"], "a\"b\\c\nd\u{1}é");
    }

    #[test]
    #[cfg(feature = "serde")]
    fn json_errors_are_400() {
        let json = serde_json::from_str::<u8>("x").unwrap_err();
        let err = Error::from(json);
        assert_eq!(err.status(), 400);
        assert!(err.message().starts_with("invalid JSON: "), "{err}");
    }

    #[test]
    fn conversions_pick_the_documented_status() {
        let bytes = vec![0xff];
        let utf8 = std::str::from_utf8(&bytes).unwrap_err();
        assert_eq!(Error::from(utf8).status(), 400);
        let missing = ConfigError::Missing { key: "K".into() };
        let err = Error::from(missing);
        assert_eq!(err.status(), 500);
        assert!(err.message().contains("`K`"), "{}", err.message());
        let denied = OutboundError::Denied {
            url: "http://x/".into(),
        };
        assert_eq!(Error::from(denied).status(), 502);
        let timeout = OutboundError::Timeout {
            url: "http://x/".into(),
        };
        assert_eq!(Error::from(timeout).status(), 504);
        assert_eq!(Error::from(OutboundError::Unsupported).status(), 500);
    }
}
