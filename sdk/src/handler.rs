//! What a service is: [`Handler`], and what a handler may return:
//! [`IntoResponse`].

use crate::{Error, Request, Response, Router, StatusCode};

/// Something that answers a [`Request`] with a [`Response`]: what
/// [`export!`](crate::export), [`Router`] routes and
/// [`testing::call`](crate::testing::call) accept.
///
/// Implemented for
/// - functions and closures `Fn(Request) -> R` where `R:`[`IntoResponse`], so
///   both `fn(Request) -> Response` and `fn(Request) -> Result<Response, Error>`;
/// - a [`Router`], `&Router`, and a `fn() -> Router` that builds one (called
///   once per request: the host gives every request a fresh instance anyway).
///
/// The type parameter `M` only tells these cases apart; it is inferred.
///
/// ```
/// use wasmhost_sdk::{Error, Handler, Request, Response, Router};
///
/// fn plain(_: Request) -> Response { Response::text("ok") }
/// fn fallible(_: Request) -> Result<Response, Error> { Err(Error::not_found("nope")) }
/// fn router() -> Router { Router::new().get("/", plain) }
///
/// assert_eq!(plain.call(Request::get("/")).status(), 200);
/// assert_eq!(fallible.call(Request::get("/")).status(), 404);
/// assert_eq!(router.call(Request::get("/")).status(), 200);
/// ```
pub trait Handler<M> {
    /// Answer `req`.
    fn call(&self, req: Request) -> Response;
}

/// Marker types that keep [`Handler`]'s impls apart; never named by users.
#[doc(hidden)]
pub mod marker {
    /// `Fn(Request) -> R`.
    pub struct Function<R>(std::marker::PhantomData<R>);
    /// `Fn() -> Router`.
    pub struct Factory;
    /// `Router`.
    pub struct Router;
    /// `&Router`.
    pub struct RouterRef;
}

impl<F, R> Handler<marker::Function<R>> for F
where
    F: Fn(Request) -> R,
    R: IntoResponse,
{
    fn call(&self, req: Request) -> Response {
        self(req).into_response()
    }
}

impl<F> Handler<marker::Factory> for F
where
    F: Fn() -> Router,
{
    fn call(&self, req: Request) -> Response {
        self().handle(req)
    }
}

impl Handler<marker::Router> for Router {
    fn call(&self, req: Request) -> Response {
        self.handle(req)
    }
}

impl Handler<marker::RouterRef> for &Router {
    fn call(&self, req: Request) -> Response {
        self.handle(req)
    }
}

/// What a handler may return: anything that becomes a [`Response`].
///
/// | type | response |
/// |---|---|
/// | [`Response`] | itself |
/// | [`Error`] | its status, `{"error":"<message>"}` |
/// | `Result<T, E>` with both `IntoResponse` | `T`'s or `E`'s |
/// | `&'static str`, `String` | `200`, `text/plain` |
/// | [`StatusCode`] | that status, empty body |
/// | `http::Response<B>` with `B: Into<Vec<u8>>` | its status, headers and body |
///
/// Implement it for your own error type to return `Result<Response, MyError>`:
///
/// ```
/// use wasmhost_sdk::{IntoResponse, Request, Response, testing};
///
/// enum ShopError { OutOfStock }
///
/// impl IntoResponse for ShopError {
///     fn into_response(self) -> Response {
///         match self {
///             ShopError::OutOfStock => Response::text("out of stock").with_status(409),
///         }
///     }
/// }
///
/// fn buy(_req: Request) -> Result<Response, ShopError> {
///     Err(ShopError::OutOfStock)
/// }
///
/// assert_eq!(testing::call(buy, Request::post("/buy")).status(), 409);
/// ```
pub trait IntoResponse {
    /// Turn `self` into the response the client gets.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Error::into_response(self)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(ok) => ok.into_response(),
            Err(err) => err.into_response(),
        }
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::text(self)
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new(self.as_u16())
    }
}

impl<B: Into<Vec<u8>>> IntoResponse for http::Response<B> {
    fn into_response(self) -> Response {
        Response::from(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<M>(handler: impl Handler<M>, status: u16) {
        assert_eq!(handler.call(Request::get("/")).status(), status);
    }

    #[test]
    fn every_return_type_answers() {
        check(|_: Request| "x", 200);
        check(|_: Request| String::from("x"), 200);
        check(|_: Request| StatusCode::ACCEPTED, 202);
        check(
            |_: Request| http::Response::builder().status(203).body("x").unwrap(),
            203,
        );
        check(|_: Request| -> Result<&str, Error> { Ok("x") }, 200);
        check(
            |_: Request| -> Result<Response, Error> { Err(Error::new(409, "x")) },
            409,
        );
        check(Router::new(), 404);
        check(&Router::new(), 404);
        check(Router::new, 404);
    }
}
