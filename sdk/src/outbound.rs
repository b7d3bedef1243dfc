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

use std::time::Duration;

mod error;
mod request;
mod response;

pub use error::OutboundError;
pub use request::Request;
pub use response::Response;

/// How long each phase of an outbound request may take unless
/// [`Request::with_timeout`] says otherwise: 5 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

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
    fn natively_without_a_mock_is_unsupported() {
        assert_eq!(get("http://h/").unwrap_err(), OutboundError::Unsupported);
        assert!(
            OutboundError::Unsupported
                .to_string()
                .contains("TestEnv::outbound")
        );
    }
}
