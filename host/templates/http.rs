//! {{name}}: a wasmhost service.
//!
//! Build: `cargo build --release`; serve: `wasmhost serve wasmhost.toml`;
//! try: `curl localhost:8080/{{name}}`.

use wasmhost_sdk::{Request, Response};

fn handle(req: Request) -> Response {
    let who = req.query_param("name").unwrap_or_else(|| "world".into());
    Response::text(format!("hello, {who}, from {{name}}\n"))
}

wasmhost_sdk::export!(handle);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmhost_sdk::testing;

    #[test]
    fn greets_by_name() {
        let resp = testing::call(handle, Request::get("/{{name}}?name=ada"));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text(), "hello, ada, from {{name}}\n");
    }
}
