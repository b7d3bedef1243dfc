//! Write wasmhost services in plain Rust.
//!
//! A service is a [`Handler`]: a function from [`Request`] to [`Response`]
//! (or to `Result<Response, Error>`), or a [`Router`] of them, exported with
//! [`export!`]. Built for `wasm32-wasip2`, the crate turns it into a component
//! exporting `wasi:http/incoming-handler@0.2.x` (the `wasi:http/proxy` world),
//! so it also runs under `wasmtime serve` and any other WASI 0.2 host. Built
//! natively, the same code is plain Rust: [`testing`] calls it in `cargo test`
//! with no wasm runtime.
//!
//! # Example
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "items"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! wasmhost-sdk = "0.1"
//! serde = { version = "1", features = ["derive"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use wasmhost_sdk::{Error, Request, Response, Router};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Item {
//!     id: u64,
//!     name: String,
//! }
//!
//! fn get_item(req: Request) -> Result<Response, Error> {
//!     let id: u64 = req.param_as("id")?;
//!     Ok(Response::json(&Item { id, name: format!("item {id}") }))
//! }
//!
//! fn create_item(req: Request) -> Result<Response, Error> {
//!     let item: Item = req.json()?;
//!     wasmhost_sdk::info!("created item {}", item.id);
//!     Ok(Response::json(&item).with_status(201))
//! }
//!
//! fn router() -> Router {
//!     Router::new()
//!         .get("/items/:id", get_item)
//!         .post("/items", create_item)
//! }
//!
//! wasmhost_sdk::export!(router);
//!
//! #[cfg(test)]
//! mod tests {
//!     // ... the same calls as in `main` below, with #[test] functions
//! }
//! # fn main() {
//! use wasmhost_sdk::testing;
//!
//! let resp = testing::call(router, Request::get("/items/7"));
//! assert_eq!(resp.status(), 200);
//! assert_eq!(resp.text(), r#"{"id":7,"name":"item 7"}"#);
//!
//! let resp = testing::call(router, Request::post("/items").with_body("{"));
//! assert_eq!(resp.status(), 400);
//!
//! assert_eq!(testing::call(router, Request::get("/nothing")).status(), 404);
//! assert_eq!(testing::call(router, Request::put("/items/7")).status(), 405);
//! # }
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and point a
//! manifest's `component` at `target/wasm32-wasip2/release/items.wasm`.
//!
//! # What's inside
//!
//! - [`Request`]: method, path, query (raw, per parameter, or typed with
//!   [`Request::query_as`]), headers, body (bytes, text, [`Request::json`]),
//!   path parameters, the request id; converts from and to `http::Request`.
//! - [`Response`]: a builder for status, headers and text, JSON, bytes or
//!   streamed bodies; converts from and to `http::Response`.
//! - [`Router`]: `get`/`post`/`put`/`delete`/`any`, `:param` and `*tail`
//!   patterns, `404`/`405` answers, and [`Router::mount`] for the route prefix.
//! - [`Error`] and [`IntoResponse`]: handlers return `Result`, errors become
//!   JSON answers with a status.
//! - [`config`]: the manifest's `env`, read and parsed with errors naming the
//!   key.
//! - [`outbound`]: HTTP to the hosts in `allowed_outbound_hosts`, with
//!   timeouts and typed errors.
//! - [`info!`], [`warn!`], [`error!`], [`debug!`]: one log line per event.
//! - [`testing`]: call a service natively, with config and outbound mocks.
//!
//! # Features
//!
//! `serde` (on by default): [`Request::json`], [`Request::query_as`],
//! [`Response::json`] and the other serde-based methods. Without it the SDK
//! has no serde dependency; [`Response::json_raw`] and [`Error`]'s JSON body
//! still work.
//!
//! # Failures
//!
//! | the handler... | the client gets |
//! |---|---|
//! | returns `Err(e)` | `e`'s response; for [`Error`], its status and `{"error":"<message>"}` |
//! | panics | `500` with `wasmhost-error: trap` from the host: a panic aborts the instance (guests build with `panic = "abort"`), and its message goes to the log |
//! | runs out of fuel, memory or time | the host's `500`/`504` answer (see the host's docs) |
//!
//! The request body is read in full before the handler runs (the host caps
//! it with `max_request_body`). An in-memory response body is written after
//! the handler returns; a [`Response::stream`] body is written chunk by chunk.
//! A streamed body that fails midway cannot change the status any more: the
//! host aborts the connection.

#![deny(missing_docs)]

pub mod config;
mod error;
mod handler;
pub mod kv;
pub mod log;
pub mod outbound;
mod percent;
mod request;
mod response;
mod router;
pub mod testing;
pub mod variables;
mod wasi;

pub use error::Error;
#[doc(hidden)]
pub use handler::marker;
pub use handler::{Handler, IntoResponse};
pub use http;
pub use http::{HeaderMap, Method, StatusCode};
pub use request::Request;
pub use response::Response;
pub use router::Router;

/// Export a service as the component's `wasi:http/incoming-handler`.
///
/// `$service` is a path to any [`Handler`]:
/// - a `fn(Request) -> Response`,
/// - a `fn(Request) -> Result<Response, E>` with `E:`[`IntoResponse`] (e.g.
///   [`Error`]),
/// - a `fn() -> Router` (called for each request; the host runs every request
///   in a fresh instance anyway).
///
/// Use it once per crate, at the top level. Built natively, it only checks
/// the type, so the crate still compiles for `cargo test`.
///
/// ```
/// use wasmhost_sdk::{Request, Response};
///
/// fn hello(_req: Request) -> Response {
///     Response::text("hello")
/// }
///
/// wasmhost_sdk::export!(hello);
/// # fn main() {}
/// ```
///
/// ```
/// use wasmhost_sdk::{Request, Response, Router};
///
/// fn router() -> Router {
///     Router::new().get("/", |_req: Request| Response::text("hello"))
/// }
///
/// wasmhost_sdk::export!(router);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export {
    ($service:path) => {
        $crate::__export_handler!($service);
    };
}

/// The README's examples run as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

#[doc(hidden)]
pub mod __private {
    #[allow(unused_imports)] // natively only the macro glue's helpers are here
    pub use crate::wasi::*;

    /// Natively, `export!` only checks that its argument is a handler.
    pub fn assert_handler<M, H: crate::Handler<M>>(_handler: &H) {}
}
