//! [`Router`]: dispatch by method and path pattern, with 404 and 405 answers.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use http::Method;

use crate::percent::percent_decode;
use crate::{Error, Handler, Request, Response};

mod pattern;

use pattern::{matches, specificity, validate};

type BoxHandler = Box<dyn Fn(Request) -> Response>;

/// Routes requests to handlers by method and path pattern.
///
/// Patterns are matched segment by segment against the request path:
/// - `/items` — literal segments match exactly (case-sensitive);
/// - `/items/:id` — `:name` matches one non-empty segment, available as
///   [`Request::param`]`("id")`, percent-decoded;
/// - `/files/*path` — `*name`, only as the last segment, matches the rest of
///   the path (zero or more segments: `/files` gives `""`, `/files/a/b.txt`
///   gives `"a/b.txt"`).
///
/// A trailing slash is significant (`/items/` does not match `/items`), and
/// the query never takes part. When several patterns match, the most specific
/// wins (compared segment by segment: literal, then `:param`, then `*tail`),
/// then the one added first; so `/items/export` beats `/items/:id` whatever
/// the order.
///
/// No match answers `404`; a path that matches only under other methods
/// answers `405` with an `Allow` header. Both carry the JSON body of
/// [`Error`]; replace the 404 with [`Router::fallback`]. `HEAD` is served by
/// the `GET` route (with the body dropped) unless a `HEAD` route exists.
///
/// ```
/// use wasmhost_sdk::{Error, Request, Response, Router, testing};
///
/// fn router() -> Router {
///     Router::new()
///         .get("/users/:id", |req: Request| -> Result<Response, Error> {
///             let id: u32 = req.param_as("id")?;
///             Ok(Response::text(format!("user {id}")))
///         })
///         .post("/users", |_req: Request| Response::text("created").with_status(201))
///         .get("/files/*path", |req: Request| Response::text(req.param("path").unwrap().to_owned()))
/// }
///
/// assert_eq!(testing::call(router, Request::get("/users/7")).text(), "user 7");
/// assert_eq!(testing::call(router, Request::get("/users/x")).status(), 400);
/// assert_eq!(testing::call(router, Request::get("/files/a/b.txt")).text(), "a/b.txt");
/// assert_eq!(testing::call(router, Request::get("/nope")).status(), 404);
/// let resp = testing::call(router, Request::delete("/users"));
/// assert_eq!(resp.status(), 405);
/// assert_eq!(resp.header("allow"), Some("POST"));
/// ```
///
/// # Route prefixes
///
/// The host routes a request to a service by prefix but passes the
/// **original** path: a service at `route = "/api"` sees `/api/users/7`.
/// Either write the prefix into the patterns, or say it once with
/// [`Router::mount`]:
///
/// ```
/// use wasmhost_sdk::{Request, Response, Router, testing};
///
/// let router = Router::new()
///     .mount("/api")
///     .get("/users/:id", |req: Request| Response::text(req.param("id").unwrap().to_owned()));
/// assert_eq!(testing::call(&router, Request::get("/api/users/7")).text(), "7");
/// assert_eq!(testing::call(&router, Request::get("/users/7")).status(), 404);
/// ```
pub struct Router {
    prefix: String,
    routes: Vec<Route>,
    fallback: Option<BoxHandler>,
}

struct Route {
    method: Option<Method>,
    pattern: Cow<'static, str>,
    handler: BoxHandler,
}

impl Router {
    /// A router with no routes: everything answers `404`.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Router, testing};
    ///
    /// assert_eq!(testing::call(Router::new(), Request::get("/")).status(), 404);
    /// ```
    pub fn new() -> Self {
        Router {
            prefix: String::new(),
            // Room for a typical service's routes in one allocation.
            routes: Vec::with_capacity(8),
            fallback: None,
        }
    }

    /// Match patterns relative to `prefix`: the service's route in the
    /// manifest, which the host leaves on the path. `/api` then matches
    /// `/api` and `/api/...` at segment boundaries (not `/apix`); the rest of
    /// the path (or `/`) is matched against the patterns, and paths outside
    /// the prefix answer `404`. [`Request::path`] stays the original path.
    /// `""` and `"/"` mean no prefix.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, Router, testing};
    ///
    /// let router = Router::new().mount("/api/").get("/", |_req: Request| Response::text("root"));
    /// assert_eq!(testing::call(&router, Request::get("/api")).text(), "root");
    /// assert_eq!(testing::call(&router, Request::get("/api/")).text(), "root");
    /// assert_eq!(testing::call(&router, Request::get("/apix")).status(), 404);
    /// ```
    ///
    /// # Panics
    ///
    /// If `prefix` is not empty and does not start with `/`.
    pub fn mount(mut self, prefix: &str) -> Self {
        assert!(
            prefix.is_empty() || prefix.starts_with('/'),
            "invalid mount prefix `{prefix}`: it must start with `/`"
        );
        self.prefix = prefix.trim_end_matches('/').to_owned();
        self
    }

    /// Route `GET` (and `HEAD`) requests matching `pattern` to `handler`.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, Router, testing};
    ///
    /// let router = Router::new().get("/", |_req: Request| Response::text("hi"));
    /// assert_eq!(testing::call(&router, Request::get("/")).text(), "hi");
    /// let head = testing::call(&router, Request::new(wasmhost_sdk::Method::HEAD, "/"));
    /// assert_eq!((head.status().as_u16(), head.body()), (200, &b""[..]));
    /// ```
    ///
    /// # Panics
    ///
    /// If `pattern` is invalid: see [`Router::route`].
    pub fn get<M>(
        self,
        pattern: impl Into<Cow<'static, str>>,
        handler: impl Handler<M> + 'static,
    ) -> Self {
        self.route(Method::GET, pattern, handler)
    }

    /// Route `POST` requests matching `pattern` to `handler`.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, Router, testing};
    ///
    /// let router = Router::new().post("/items", |req: Request| Response::new(201).with_body(req.into_body()));
    /// assert_eq!(testing::call(&router, Request::post("/items").with_body("x")).status(), 201);
    /// ```
    ///
    /// # Panics
    ///
    /// If `pattern` is invalid: see [`Router::route`].
    pub fn post<M>(
        self,
        pattern: impl Into<Cow<'static, str>>,
        handler: impl Handler<M> + 'static,
    ) -> Self {
        self.route(Method::POST, pattern, handler)
    }

    /// Route `PUT` requests matching `pattern` to `handler`.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, Router, testing};
    ///
    /// let router = Router::new().put("/items/:id", |_req: Request| Response::new(204));
    /// assert_eq!(testing::call(&router, Request::put("/items/1")).status(), 204);
    /// ```
    ///
    /// # Panics
    ///
    /// If `pattern` is invalid: see [`Router::route`].
    pub fn put<M>(
        self,
        pattern: impl Into<Cow<'static, str>>,
        handler: impl Handler<M> + 'static,
    ) -> Self {
        self.route(Method::PUT, pattern, handler)
    }

    /// Route `DELETE` requests matching `pattern` to `handler`.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, Router, testing};
    ///
    /// let router = Router::new().delete("/items/:id", |_req: Request| Response::new(204));
    /// assert_eq!(testing::call(&router, Request::delete("/items/1")).status(), 204);
    /// ```
    ///
    /// # Panics
    ///
    /// If `pattern` is invalid: see [`Router::route`].
    pub fn delete<M>(
        self,
        pattern: impl Into<Cow<'static, str>>,
        handler: impl Handler<M> + 'static,
    ) -> Self {
        self.route(Method::DELETE, pattern, handler)
    }

    /// Route requests of any method matching `pattern` to `handler`.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, Router, testing};
    ///
    /// let router = Router::new().any("/echo", |req: Request| Response::text(req.method().to_string()));
    /// assert_eq!(testing::call(&router, Request::put("/echo")).text(), "PUT");
    /// ```
    ///
    /// # Panics
    ///
    /// If `pattern` is invalid: see [`Router::route`].
    pub fn any<M>(
        mut self,
        pattern: impl Into<Cow<'static, str>>,
        handler: impl Handler<M> + 'static,
    ) -> Self {
        self.add(None, pattern.into(), handler);
        self
    }

    /// Route `method` requests matching `pattern` to `handler`.
    ///
    /// ```
    /// use wasmhost_sdk::{Method, Request, Response, Router, testing};
    ///
    /// let router = Router::new().route(Method::PATCH, "/items/:id", |_req: Request| Response::new(204));
    /// assert_eq!(testing::call(&router, Request::new(Method::PATCH, "/items/1")).status(), 204);
    /// ```
    ///
    /// `pattern` is usually a string literal (stored without copying); a
    /// `String` works too.
    ///
    /// # Panics
    ///
    /// With debug assertions on (`cargo test`, debug builds), if `pattern`
    /// does not start with `/`, has an empty `:` or `*` name, repeats a
    /// parameter name, or has `*name` before the last segment. Release builds
    /// skip the check, since a guest builds its router on every request.
    pub fn route<M>(
        mut self,
        method: Method,
        pattern: impl Into<Cow<'static, str>>,
        handler: impl Handler<M> + 'static,
    ) -> Self {
        self.add(Some(method), pattern.into(), handler);
        self
    }

    /// Answer requests that match no route with `handler` instead of the
    /// `404` [`Error`]. (A path that matches under another method still
    /// answers `405`.)
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, Router, testing};
    ///
    /// let router = Router::new().fallback(|req: Request| {
    ///     Response::text(format!("nothing at {}", req.path())).with_status(404)
    /// });
    /// assert_eq!(testing::call(&router, Request::get("/x")).text(), "nothing at /x");
    /// ```
    pub fn fallback<M>(mut self, handler: impl Handler<M> + 'static) -> Self {
        self.fallback = Some(Box::new(move |req| handler.call(req)));
        self
    }

    fn add<M>(
        &mut self,
        method: Option<Method>,
        pattern: Cow<'static, str>,
        handler: impl Handler<M> + 'static,
    ) {
        // Checked where it costs nothing that matters (native tests, debug
        // builds). A release guest builds its router on every request and
        // skips the check: a bad pattern then just never matches as meant.
        if cfg!(debug_assertions)
            && let Err(problem) = validate(&pattern)
        {
            panic!("invalid route pattern `{pattern}`: {problem}");
        }
        self.routes.push(Route {
            method,
            pattern,
            handler: Box::new(move |req| handler.call(req)),
        });
    }

    /// Answer `req`: call the best-matching route's handler with the path
    /// parameters set, or answer `404`/`405`.
    ///
    /// ```
    /// use wasmhost_sdk::{Request, Response, Router};
    ///
    /// let router = Router::new().get("/", |_req: Request| Response::text("hi"));
    /// assert_eq!(router.handle(Request::get("/")).status(), 200);
    /// ```
    pub fn handle(&self, mut req: Request) -> Response {
        let Some(path) = strip_prefix(req.path(), &self.prefix) else {
            return self.not_found(req);
        };
        let path = if path.is_empty() { "/" } else { path };

        let head = *req.method() == Method::HEAD;
        let mut best: Option<&Route> = None;
        let mut best_is_get_for_head = false;
        for route in &self.routes {
            // Method first: it is cheaper to compare than the path.
            let (accepts, via_get) = match &route.method {
                None => (true, false),
                Some(m) if m == req.method() => (true, false),
                Some(m) => (head && *m == Method::GET, true),
            };
            if !accepts || !matches(&route.pattern, path, &mut |_, _| {}) {
                continue;
            }
            let better = match best {
                None => true,
                Some(current) => match specificity(&route.pattern, &current.pattern) {
                    Ordering::Less => true,
                    // An explicit HEAD route beats GET serving HEAD.
                    Ordering::Equal => best_is_get_for_head && !via_get,
                    Ordering::Greater => false,
                },
            };
            if better {
                best = Some(route);
                best_is_get_for_head = via_get;
            }
        }

        let Some(route) = best else {
            let path_matched = self
                .routes
                .iter()
                .any(|route| matches(&route.pattern, path, &mut |_, _| {}));
            return if path_matched {
                self.method_not_allowed(&req, path)
            } else {
                self.not_found(req)
            };
        };
        let mut params = Vec::new();
        matches(&route.pattern, path, &mut |name, value| {
            params.push((name.to_owned(), percent_decode(value, false)));
        });
        for (name, value) in params {
            req.set_param(name, value);
        }
        let resp = (route.handler)(req);
        if best_is_get_for_head {
            resp.with_body(Vec::new())
        } else {
            resp
        }
    }

    fn not_found(&self, req: Request) -> Response {
        match &self.fallback {
            Some(fallback) => fallback(req),
            None => Error::not_found(format!("no route for `{}`", req.path())).into_response(),
        }
    }

    fn method_not_allowed(&self, req: &Request, path: &str) -> Response {
        let mut allowed: Vec<&str> = Vec::new();
        for route in &self.routes {
            let Some(method) = &route.method else {
                continue;
            };
            if !matches(&route.pattern, path, &mut |_, _| {}) {
                continue;
            }
            for m in [method.as_str(), "HEAD"] {
                if !allowed.contains(&m) {
                    allowed.push(m);
                }
                if *method != Method::GET {
                    break;
                }
            }
        }
        allowed.sort_unstable();
        let allow = allowed.join(", ");
        Error::new(
            405,
            format!(
                "method `{}` is not allowed for `{}`; allowed: {allow}",
                req.method(),
                req.path()
            ),
        )
        .into_response()
        .with_header("allow", &allow)
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes: Vec<String> = self
            .routes
            .iter()
            .map(|r| match &r.method {
                Some(m) => format!("{m} {}", r.pattern),
                None => format!("* {}", r.pattern),
            })
            .collect();
        f.debug_struct("Router")
            .field("prefix", &self.prefix)
            .field("routes", &routes)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

/// `path` with `prefix` removed at a segment boundary, or `None` if the path
/// is outside it. `prefix` has no trailing slash.
fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn show(req: Request) -> Response {
        let params: Vec<String> = req.params().map(|(n, v)| format!("{n}={v}")).collect();
        Response::text(params.join(","))
    }

    fn tagged(tag: &'static str) -> impl Fn(Request) -> Response {
        move |req| {
            let params: Vec<String> = req.params().map(|(n, v)| format!("{n}={v}")).collect();
            Response::text(format!("{tag} {}", params.join(",")))
        }
    }

    #[test]
    fn literal_param_and_tail_patterns() {
        let router = Router::new()
            .get("/", tagged("root"))
            .get("/users/:id", show)
            .get("/users/:id/posts/:post", show)
            .get("/files/*path", show);
        let text = |target: &str| testing::call(&router, Request::get(target)).text();
        assert_eq!(text("/"), "root ");
        assert_eq!(text("/users/7"), "id=7");
        assert_eq!(text("/users/7?x=1"), "id=7");
        assert_eq!(text("/users/a%2Fb%20c"), "id=a/b c");
        assert_eq!(text("/users/7/posts/9"), "id=7,post=9");
        assert_eq!(text("/files/a/b.txt"), "path=a/b.txt");
        assert_eq!(text("/files/"), "path=");
        assert_eq!(text("/files"), "path=");
        assert_eq!(text("/files/a%20b/c"), "path=a b/c");
        for missing in [
            "/users",
            "/users/",
            "/users/7/",
            "/users/7/posts",
            "/nope",
            "/USERS/7",
        ] {
            let resp = testing::call(&router, Request::get(missing));
            assert_eq!(resp.status(), 404, "{missing}");
            assert_eq!(resp.header("content-type"), Some("application/json"));
            assert!(
                resp.text().contains(&format!("`{missing}`")),
                "{}",
                resp.text()
            );
        }
    }

    #[test]
    fn most_specific_pattern_wins_regardless_of_order() {
        let router = Router::new()
            .get("/items/*rest", tagged("tail"))
            .get("/items/:id", tagged("param"))
            .get("/items/export", tagged("literal"))
            .get("/items/:id/x", tagged("param-x"));
        let text = |target: &str| testing::call(&router, Request::get(target)).text();
        assert_eq!(text("/items/export"), "literal ");
        assert_eq!(text("/items/7"), "param id=7");
        assert_eq!(text("/items/7/x"), "param-x id=7");
        assert_eq!(text("/items/7/y"), "tail rest=7/y");
        assert_eq!(text("/items"), "tail rest=");
    }

    #[test]
    fn same_specificity_first_added_wins() {
        let router = Router::new()
            .get("/:a", tagged("first"))
            .get("/:b", tagged("second"));
        assert_eq!(
            testing::call(&router, Request::get("/x")).text(),
            "first a=x"
        );
    }

    #[test]
    fn wrong_method_answers_405_with_allow() {
        let router = Router::new()
            .get("/items/:id", show)
            .delete("/items/:id", show)
            .route(Method::from_bytes(b"PURGE").unwrap(), "/items/:id", show)
            .post("/items", show);
        let resp = testing::call(&router, Request::put("/items/7"));
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.header("allow"), Some("DELETE, GET, HEAD, PURGE"));
        assert!(resp.text().contains("method `PUT`"), "{}", resp.text());
        let resp = testing::call(&router, Request::get("/items"));
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.header("allow"), Some("POST"));
    }

    #[test]
    fn any_matches_every_method_and_beats_405() {
        let router = Router::new()
            .get("/x", tagged("get"))
            .any("/x", tagged("any"));
        assert_eq!(testing::call(&router, Request::get("/x")).text(), "get ");
        assert_eq!(testing::call(&router, Request::put("/x")).text(), "any ");
    }

    #[test]
    fn head_uses_get_without_body_unless_a_head_route_exists() {
        let router = Router::new()
            .get("/a", tagged("get"))
            .get("/b", tagged("get"))
            .route(Method::HEAD, "/b", |_req: Request| {
                Response::new(200).with_header("x-head", "1")
            });
        let head = |target: &str| testing::call(&router, Request::new(Method::HEAD, target));
        let a = head("/a");
        assert_eq!(a.status(), 200);
        assert_eq!(a.body(), b"");
        assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(head("/b").header("x-head"), Some("1"));
    }

    #[test]
    fn mount_strips_the_prefix_at_segment_boundaries() {
        let router = Router::new()
            .mount("/api")
            .get("/", tagged("root"))
            .get("/users/:id", show);
        let call = |target: &str| testing::call(&router, Request::get(target));
        assert_eq!(call("/api").text(), "root ");
        assert_eq!(call("/api/").text(), "root ");
        assert_eq!(call("/api/users/7").text(), "id=7");
        assert_eq!(call("/apix").status(), 404);
        assert_eq!(call("/users/7").status(), 404);
        let resp = call("/api/users/7");
        assert_eq!(resp.status(), 200);
        let root = Router::new().mount("/").get("/x", show);
        assert_eq!(testing::call(&root, Request::get("/x")).status(), 200);
    }

    #[test]
    fn handler_sees_the_original_path() {
        let router = Router::new()
            .mount("/api")
            .get("/p", |req: Request| Response::text(req.path().to_owned()));
        assert_eq!(
            testing::call(&router, Request::get("/api/p")).text(),
            "/api/p"
        );
    }

    #[test]
    fn fallback_replaces_404_but_not_405() {
        let router = Router::new()
            .post("/x", show)
            .fallback(|_req: Request| Response::text("fallback").with_status(418));
        assert_eq!(testing::call(&router, Request::get("/y")).status(), 418);
        assert_eq!(testing::call(&router, Request::get("/x")).status(), 405);
    }

    #[test]
    fn errors_from_handlers_become_responses() {
        let router = Router::new().get("/items/:id", |req: Request| -> Result<Response, Error> {
            let id: u32 = req.param_as("id")?;
            Err(Error::not_found(format!("no item {id}")))
        });
        let resp = testing::call(&router, Request::get("/items/3"));
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.text(), r#"{"error":"no item 3"}"#);
        let resp = testing::call(&router, Request::get("/items/x"));
        assert_eq!(resp.status(), 400);
        assert!(resp.text().contains("`id`"), "{}", resp.text());
    }

    #[test]
    #[cfg(debug_assertions)]
    fn invalid_patterns_are_rejected_with_the_reason() {
        for (pattern, reason) in [
            ("items", "must start with `/`"),
            ("/a/:", "needs a name"),
            ("/a/*", "needs a name"),
            ("/*rest/x", "must be the last segment"),
            ("/:id/:id", "appears twice"),
        ] {
            let err = std::panic::catch_unwind(|| Router::new().get(pattern, show)).unwrap_err();
            let message = err.downcast_ref::<String>().unwrap();
            assert!(message.contains(reason), "{pattern}: {message}");
            assert!(message.contains(&format!("`{pattern}`")), "{message}");
        }
    }
}
