//! [`OutboundError`]: why an outbound request failed.

use std::fmt;

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
