//! Write wasmhost services in plain Rust.
//!
//! A service is one function from [`Request`] to [`Response`], exported with
//! [`export!`]. Built for `wasm32-wasip2`, the crate turns it into a
//! component exporting `wasi:http/incoming-handler@0.2.x` (the `wasi:http/proxy`
//! world), so it also runs under `wasmtime serve` and any other WASI 0.2 host.
//! Built natively, the same code compiles to plain Rust, so handler logic is
//! unit-tested with `cargo test` and no wasm runtime.
//!
//! # Example
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "hello"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! wasmhost-sdk = "0.1"
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use wasmhost_sdk::{Request, Response};
//!
//! fn hello(req: Request) -> Response {
//!     Response::text(format!("hello from {}", req.path()))
//! }
//!
//! wasmhost_sdk::export!(hello);
//! # fn main() {
//! #     let resp = hello(Request::new(wasmhost_sdk::Method::GET, "/hello"));
//! #     assert_eq!(resp.body(), b"hello from /hello");
//! # }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and point a
//! manifest's `component` at `target/wasm32-wasip2/release/hello.wasm`.
//!
//! Test it natively:
//!
//! ```
//! # use wasmhost_sdk::{Request, Response};
//! # fn hello(req: Request) -> Response { Response::text(format!("hello from {}", req.path())) }
//! let resp = hello(Request::new(wasmhost_sdk::Method::GET, "/hello?x=1"));
//! assert_eq!(resp.status(), 200);
//! assert_eq!(resp.body(), b"hello from /hello");
//! ```
//!
//! # Failures
//!
//! A panic in the handler aborts the instance: the host sees a trap and
//! answers `500` with `wasmhost-error: trap`. The request body is read in full
//! before the handler runs (the host caps it with `max_request_body`); the
//! response body is written after the handler returns.

#![deny(missing_docs)]

mod request;
mod response;
mod wasi;

pub use http;
pub use http::{HeaderMap, Method, StatusCode};
pub use request::Request;
pub use response::Response;

/// Export `handler`, a `fn(Request) -> Response`, as the component's
/// `wasi:http/incoming-handler`.
///
/// Use it once per crate, at the top level. Built natively, it only checks the
/// handler's type, so the crate still compiles for `cargo test`.
///
/// ```
/// fn handler(_req: wasmhost_sdk::Request) -> wasmhost_sdk::Response {
///     wasmhost_sdk::Response::text("ok")
/// }
/// wasmhost_sdk::export!(handler);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export {
    ($handler:path) => {
        $crate::__export_handler!($handler);
    };
}

#[doc(hidden)]
pub mod __private {
    #[allow(unused_imports)] // empty natively: the glue exists only on wasm
    pub use crate::wasi::*;
}
