//! Call a service natively in `cargo test`, no wasm runtime needed.
//!
//! [`call`] runs a handler, a [`Router`](crate::Router) or a `fn() -> Router`
//! on a built [`Request`] and gives back a [`TestResponse`] with the body
//! collected. Like the host, it gives the service an empty environment: use
//! [`TestEnv`] to set config values and to mock outbound HTTP.
//!
//! ```
//! use wasmhost_sdk::{Request, Response, Router, testing};
//!
//! fn router() -> Router {
//!     Router::new().get("/users/:id", |req: Request| {
//!         Response::json(&serde_json::json!({ "id": req.param("id") }))
//!     })
//! }
//!
//! let resp = testing::call(router, Request::get("/users/7"));
//! assert_eq!(resp.status(), 200);
//! assert_eq!(resp.json::<serde_json::Value>()["id"], "7");
//! ```
//!
//! A panicking handler panics the test too; under the host it would abort
//! the instance and the client would get `500` with `wasmhost-error: trap`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::rc::Rc;

use http::{HeaderMap, StatusCode};

use crate::outbound::{self, OutboundError};
use crate::{Handler, Request, Response};

type OutboundMock = dyn Fn(&outbound::Request) -> Result<Response, OutboundError>;

/// Call `handler` with `request` in an empty [`TestEnv`] and collect the
/// response.
///
/// ```
/// use wasmhost_sdk::{Request, Response, testing};
///
/// let resp = testing::call(|req: Request| Response::text(req.path().to_owned()), Request::get("/a"));
/// assert_eq!(resp.text(), "/a");
/// ```
pub fn call<M>(handler: impl Handler<M>, request: Request) -> TestResponse {
    TestEnv::new().call(handler, request)
}

/// The lines logged so far inside the current [`TestEnv::run`] or
/// [`TestEnv::call`] (empty outside one).
///
/// ```
/// use wasmhost_sdk::testing::{self, TestEnv};
///
/// let logs = TestEnv::new().run(|| {
///     wasmhost_sdk::info!("hi");
///     testing::logs()
/// });
/// assert_eq!(logs, ["INFO hi"]);
/// ```
pub fn logs() -> Vec<String> {
    with_scope(|scope| scope.map(|s| s.logs.borrow().clone()).unwrap_or_default())
}

/// The environment a service runs in during a test: its config (the
/// manifest's `env`) and a mock for outbound HTTP.
///
/// Inside [`TestEnv::call`] and [`TestEnv::run`], [`config`](crate::config)
/// sees only the values set here, [`outbound`] calls go to the mock (or fail
/// with [`OutboundError::Unsupported`]), and log lines are captured. The
/// scope is per thread, as Rust tests are.
///
/// ```
/// use wasmhost_sdk::{Error, Request, Response, config, outbound, testing::TestEnv};
///
/// fn quote(_req: Request) -> Result<Response, Error> {
///     let upstream = outbound::get(&config::get("QUOTES_URL")?)?;
///     Ok(Response::text(upstream.text()?.to_uppercase()))
/// }
///
/// let env = TestEnv::new()
///     .config("QUOTES_URL", "http://quotes.internal/today")
///     .outbound(|req| match req.url() {
///         "http://quotes.internal/today" => Ok(Response::text("carpe diem")),
///         other => panic!("unexpected call to {other}"),
///     });
/// assert_eq!(env.call(quote, Request::get("/")).text(), "CARPE DIEM");
/// ```
#[derive(Default)]
pub struct TestEnv {
    config: HashMap<String, String>,
    outbound: Option<Rc<OutboundMock>>,
    stores: HashMap<String, KvHandle>,
    variables: HashMap<String, String>,
}

/// An in-memory key-value store of a [`TestEnv`].
#[allow(dead_code)] // only the native half of `wasi.rs` uses it
pub(crate) type KvHandle = Rc<RefCell<std::collections::BTreeMap<String, Vec<u8>>>>;

impl TestEnv {
    /// No config, no outbound mock.
    ///
    /// ```
    /// let env = wasmhost_sdk::testing::TestEnv::new();
    /// assert_eq!(env.run(|| wasmhost_sdk::config::get_opt("HOME")), Ok(None));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Set config `key` to `value`, as the manifest's `env` would.
    ///
    /// ```
    /// let env = wasmhost_sdk::testing::TestEnv::new().config("MODE", "fast");
    /// assert_eq!(env.run(|| wasmhost_sdk::config::get("MODE")).unwrap(), "fast");
    /// ```
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.config.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Give the service an empty in-memory key-value store called `name`,
    /// as listing it in `key_value_stores` would; it keeps its data across
    /// calls in this environment. Stores not set up are refused.
    ///
    /// ```
    /// use wasmhost_sdk::{kv, testing::TestEnv};
    ///
    /// let env = TestEnv::new().kv_store("default");
    /// env.run(|| kv::open_default().unwrap().set("k", "v")).unwrap();
    /// let value = env.run(|| kv::open_default().unwrap().get_string("k"));
    /// assert_eq!(value, Ok(Some("v".to_owned())));
    /// ```
    pub fn kv_store(mut self, name: &str) -> Self {
        self.stores.entry(name.to_owned()).or_default();
        self
    }

    /// Set variable `name` to `value`, as the manifest's `variables` would.
    ///
    /// ```
    /// let env = wasmhost_sdk::testing::TestEnv::new().variable("token", "t0");
    /// assert_eq!(env.run(|| wasmhost_sdk::variables::get("token")), Ok("t0".to_owned()));
    /// ```
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Answer outbound requests with `mock` instead of the network. Return a
    /// [`Response`] for the upstream's answer (a streamed body is collected),
    /// or an error such as [`OutboundError::Denied`] to simulate a failure.
    ///
    /// ```
    /// use wasmhost_sdk::{Response, outbound, testing::TestEnv};
    ///
    /// let env = TestEnv::new().outbound(|req| Ok(Response::text(req.url().to_owned())));
    /// let resp = env.run(|| outbound::get("http://h/x")).unwrap();
    /// assert_eq!(resp.text(), Ok("http://h/x"));
    /// ```
    pub fn outbound(
        mut self,
        mock: impl Fn(&outbound::Request) -> Result<Response, OutboundError> + 'static,
    ) -> Self {
        self.outbound = Some(Rc::new(mock));
        self
    }

    /// Call `handler` with `request` in this environment and collect the
    /// response.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, config, testing::TestEnv};
    ///
    /// let greet = |_req: Request| Response::text(config::get("GREETING").unwrap());
    /// let resp = TestEnv::new().config("GREETING", "hey").call(greet, Request::get("/"));
    /// assert_eq!(resp.text(), "hey");
    /// ```
    pub fn call<M>(&self, handler: impl Handler<M>, request: Request) -> TestResponse {
        let (resp, logs) = self.scoped(|| {
            let resp = handler.call(request);
            let (status, headers, chunks) = resp.into_parts();
            let streamed = chunks.is_stream();
            (status, headers, chunks.concat(), streamed)
        });
        let (status, headers, body, streamed) = resp;
        TestResponse {
            status,
            headers,
            body,
            streamed,
            logs,
        }
    }

    /// Run `f` in this environment: for testing code that reads config or
    /// calls outbound directly.
    ///
    /// ```
    /// let env = wasmhost_sdk::testing::TestEnv::new().config("N", "3");
    /// assert_eq!(env.run(|| wasmhost_sdk::config::parse::<u8>("N")), Ok(3));
    /// ```
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        self.scoped(f).0
    }

    fn scoped<R>(&self, f: impl FnOnce() -> R) -> (R, Vec<String>) {
        let scope = Rc::new(Scope {
            config: self.config.clone(),
            stores: self.stores.clone(),
            variables: self.variables.clone(),
            outbound: self.outbound.clone(),
            logs: RefCell::new(Vec::new()),
        });
        let previous = SCOPE.with(|s| s.replace(Some(scope.clone())));
        // Restore the outer scope even if `f` panics (e.g. a failed assert).
        struct Restore(Option<Rc<Scope>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                SCOPE.with(|s| *s.borrow_mut() = self.0.take());
            }
        }
        let restore = Restore(previous);
        let result = f();
        drop(restore);
        let logs = scope.logs.take();
        (result, logs)
    }
}

impl fmt::Debug for TestEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestEnv")
            .field("config", &self.config)
            .field("stores", &self.stores.keys().collect::<Vec<_>>())
            .field("variables", &self.variables)
            .field("outbound", &self.outbound.is_some())
            .finish()
    }
}

/// What a service answered in a test: status, headers, the whole body, and
/// the lines it logged.
///
/// ```
/// use wasmhost_sdk::{Request, Response, testing};
///
/// let resp = testing::call(|_req: Request| Response::text("hi").with_status(201), Request::get("/"));
/// assert_eq!(resp.status(), 201);
/// assert_eq!(resp.text(), "hi");
/// ```
#[derive(Debug, Clone)]
pub struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    streamed: bool,
    logs: Vec<String>,
}

impl TestResponse {
    /// The status.
    ///
    /// ```
    /// # use wasmhost_sdk::{Request, Response, testing};
    /// let resp = testing::call(|_req: Request| Response::new(204), Request::get("/"));
    /// assert_eq!(resp.status(), 204);
    /// ```
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// All headers.
    ///
    /// ```
    /// # use wasmhost_sdk::{Request, Response, testing};
    /// let resp = testing::call(|_req: Request| Response::new(204), Request::get("/"));
    /// assert!(resp.headers().is_empty());
    /// ```
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of header `name`, if present and visible ASCII.
    ///
    /// ```
    /// # use wasmhost_sdk::{Request, Response, testing};
    /// let resp = testing::call(|_req: Request| Response::text("x"), Request::get("/"));
    /// assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The whole body (a streamed one collected).
    ///
    /// ```
    /// # use wasmhost_sdk::{Request, Response, testing};
    /// let resp = testing::call(|_req: Request| Response::bytes(vec![1, 2]), Request::get("/"));
    /// assert_eq!(resp.body(), [1, 2]);
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced with U+FFFD, so assertions
    /// stay short).
    ///
    /// ```
    /// # use wasmhost_sdk::{Request, Response, testing};
    /// let resp = testing::call(|_req: Request| Response::text("hi"), Request::get("/"));
    /// assert_eq!(resp.text(), "hi");
    /// ```
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body deserialized from JSON.
    ///
    /// ```
    /// # use wasmhost_sdk::{Request, Response, testing};
    /// let resp = testing::call(|_req: Request| Response::json(&[1, 2]), Request::get("/"));
    /// assert_eq!(resp.json::<Vec<u8>>(), [1, 2]);
    /// ```
    ///
    /// # Panics
    ///
    /// If the body is not JSON for a `T`, showing the body.
    #[cfg(feature = "serde")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not the expected JSON: {e}\nbody: {}",
                self.text()
            )
        })
    }

    /// Whether the handler answered with [`Response::stream`].
    ///
    /// ```
    /// # use wasmhost_sdk::{Request, Response, testing};
    /// let resp = testing::call(|_req: Request| Response::stream(200, [b"a".to_vec()]), Request::get("/"));
    /// assert!(resp.is_streamed());
    /// ```
    pub fn is_streamed(&self) -> bool {
        self.streamed
    }

    /// The lines the service logged while answering, e.g. `INFO created 7`.
    ///
    /// ```
    /// # use wasmhost_sdk::{Request, Response, testing};
    /// let resp = testing::call(|_req: Request| { wasmhost_sdk::warn!("slow"); Response::new(200) }, Request::get("/"));
    /// assert_eq!(resp.logs(), ["WARN slow"]);
    /// ```
    pub fn logs(&self) -> &[String] {
        &self.logs
    }
}

/// The active [`TestEnv`] of this thread, as the native half of
/// [`crate::wasi`] sees it.
pub(crate) struct Scope {
    config: HashMap<String, String>,
    stores: HashMap<String, KvHandle>,
    variables: HashMap<String, String>,
    outbound: Option<Rc<OutboundMock>>,
    logs: RefCell<Vec<String>>,
}

thread_local! {
    static SCOPE: RefCell<Option<Rc<Scope>>> = const { RefCell::new(None) };
}

fn with_scope<R>(f: impl FnOnce(Option<&Scope>) -> R) -> R {
    let scope = SCOPE.with(|s| s.borrow().clone());
    f(scope.as_deref())
}

/// Config lookup in a test scope: `Some(value or None)` inside one, `None`
/// outside (then the process environment applies).
#[allow(dead_code)] // only the native half of `wasi.rs` calls these three
pub(crate) fn scoped_env_var(key: &str) -> Option<Option<OsString>> {
    with_scope(|scope| scope.map(|s| s.config.get(key).map(OsString::from)))
}

/// Outbound in a test scope: the mock's answer, or `Unsupported`.
#[allow(dead_code)]
pub(crate) fn scoped_send(
    request: &outbound::Request,
) -> Result<outbound::Response, OutboundError> {
    let mock = with_scope(|scope| scope.and_then(|s| s.outbound.clone()));
    let Some(mock) = mock else {
        return Err(OutboundError::Unsupported);
    };
    let resp = mock(request)?;
    let (status, headers, chunks) = resp.into_parts();
    Ok(outbound::Response::from_parts(
        status,
        headers,
        chunks.concat(),
    ))
}

/// The in-memory store `name` of the test scope, if it has one.
#[allow(dead_code)]
pub(crate) fn scoped_store(name: &str) -> Option<KvHandle> {
    with_scope(|scope| scope.and_then(|s| s.stores.get(name).cloned()))
}

/// Variable `name` in the test scope, if it has one.
#[allow(dead_code)]
pub(crate) fn scoped_variable(name: &str) -> Option<String> {
    with_scope(|scope| scope.and_then(|s| s.variables.get(name).cloned()))
}

/// Record a log line in a test scope; `false` outside one.
#[allow(dead_code)]
pub(crate) fn scoped_log(line: &str) -> bool {
    with_scope(|scope| match scope {
        Some(s) => {
            s.logs.borrow_mut().push(line.to_owned());
            true
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        let outer = TestEnv::new().config("K", "outer");
        let inner = TestEnv::new().config("K", "inner");
        let seen = outer.run(|| {
            let a = crate::config::get("K").unwrap();
            let b = inner.run(|| crate::config::get("K").unwrap());
            let c = crate::config::get("K").unwrap();
            (a, b, c)
        });
        assert_eq!(seen, ("outer".into(), "inner".into(), "outer".into()));
        assert_eq!(scoped_env_var("K"), None, "no scope after run");
    }

    #[test]
    fn scope_is_restored_after_a_panic() {
        let env = TestEnv::new().config("K", "v");
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.run(|| panic!("boom"))));
        assert!(result.is_err());
        assert_eq!(scoped_env_var("K"), None);
    }

    #[test]
    fn call_collects_streams_and_logs() {
        let resp = call(
            |_req: Request| {
                crate::info!("streaming");
                Response::stream(200, (0..3).map(|i| vec![b'0' + i]))
            },
            Request::get("/"),
        );
        assert_eq!(resp.text(), "012");
        assert!(resp.is_streamed());
        assert_eq!(resp.logs(), ["INFO streaming"]);
        assert!(logs().is_empty(), "logs stay with their scope");
    }
}
