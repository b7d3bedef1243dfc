//! {{name}}: a wasmhost service with routes and path parameters.
//!
//! Build: `cargo build --release`; serve: `wasmhost serve wasmhost.toml`;
//! try: `curl localhost:8080/{{name}}/hello/ada`.

use wasmhost_sdk::{Error, Request, Response, Router};

fn router() -> Router {
    Router::new()
        .mount("/{{name}}")
        .get("/", |_req: Request| Response::text("{{name}} is up\n"))
        .get("/hello/:who", hello)
}

fn hello(req: Request) -> Result<Response, Error> {
    let who = req.param("who").unwrap_or("world");
    Ok(Response::text(format!("hello, {who}\n")))
}

wasmhost_sdk::export!(router);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmhost_sdk::testing;

    #[test]
    fn says_hello_to_the_path_parameter() {
        let resp = testing::call(router(), Request::get("/{{name}}/hello/ada"));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text(), "hello, ada\n");
    }

    #[test]
    fn unknown_paths_are_404() {
        let resp = testing::call(router(), Request::get("/{{name}}/nope"));
        assert_eq!(resp.status(), 404);
    }
}
