//! The README demo service: `GET` answers `hello from wasmhost`, or the
//! service's `GREETING` environment variable when the manifest sets one.

use wasmhost_sdk::{Method, Request, Response};

fn hello(req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Response::text("method not allowed\n")
            .with_status(405)
            .with_header("allow", "GET, HEAD");
    }
    let greeting = std::env::var("GREETING").unwrap_or_else(|_| "hello from wasmhost".to_owned());
    Response::text(greeting)
}

wasmhost_sdk::export!(hello);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_says_hello() {
        // GREETING may be set in the test's environment: only check the shape.
        let resp = hello(Request::new(Method::GET, "/hello"));
        assert_eq!(resp.status(), 200);
        assert!(!resp.body().is_empty());
    }

    #[test]
    fn post_is_refused() {
        let resp = hello(Request::new(Method::POST, "/hello"));
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    }
}
