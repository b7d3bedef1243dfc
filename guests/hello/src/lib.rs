//! The README demo service: `GET` answers `hello from wasmhost`, or the
//! service's `GREETING` config (the manifest's `env`) when it sets one.

use wasmhost_sdk::{Method, Request, Response, config};

fn hello(req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Response::text("method not allowed\n")
            .with_status(405)
            .with_header("allow", "GET, HEAD");
    }
    let greeting = config::get("GREETING").unwrap_or_else(|_| "hello from wasmhost".to_owned());
    Response::text(greeting)
}

wasmhost_sdk::export!(hello);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmhost_sdk::testing::{self, TestEnv};

    #[test]
    fn get_says_hello() {
        let resp = testing::call(hello, Request::get("/hello"));
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(resp.text(), "hello from wasmhost");
    }

    #[test]
    fn greeting_comes_from_config() {
        let resp = TestEnv::new()
            .config("GREETING", "hi there")
            .call(hello, Request::get("/hello"));
        assert_eq!(resp.text(), "hi there");
    }

    #[test]
    fn post_is_refused() {
        let resp = testing::call(hello, Request::post("/hello"));
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    }
}
