//! Echoes the request back as JSON: the workhorse of the routing and header
//! tests.
//!
//! ```json
//! {"method":"POST","path":"/echo/x","query":"a=1","headers":{"content-type":"text/plain"},
//!  "body":"hi","body_len":2}
//! ```
//!
//! `query` is `null` without a `?`; repeated headers are joined with `", "`;
//! `body` is the body as lossy UTF-8 and `body_len` its length in bytes.

use serde_json::{Map, Value, json};
use wasmhost_sdk::{Request, Response};

fn echo(req: Request) -> Response {
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let body = json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(req.body()),
        "body_len": req.body().len(),
    });
    Response::json(body.to_string())
}

wasmhost_sdk::export!(echo);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmhost_sdk::Method;

    #[test]
    fn echoes_everything() {
        let req = Request::new(Method::POST, "/e/x?a=1")
            .with_header("x-a", "1")
            .with_header("x-a", "2")
            .with_body("hi");
        let resp = echo(req);
        let v: Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(v["method"], "POST");
        assert_eq!(v["path"], "/e/x");
        assert_eq!(v["query"], "a=1");
        assert_eq!(v["headers"]["x-a"], "1, 2");
        assert_eq!(v["body"], "hi");
        assert_eq!(v["body_len"], 2);
    }
}
