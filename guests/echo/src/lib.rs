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
    Response::json(&json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query(),
        "headers": headers,
        "body": String::from_utf8_lossy(req.body()),
        "body_len": req.body().len(),
    }))
}

wasmhost_sdk::export!(echo);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmhost_sdk::testing;

    #[test]
    fn echoes_everything() {
        let req = Request::post("/e/x?a=1")
            .with_header("x-a", "1")
            .with_header("x-a", "2")
            .with_body("hi");
        let resp = testing::call(echo, req);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let v: Value = resp.json();
        assert_eq!(
            v,
            json!({
                "method": "POST",
                "path": "/e/x",
                "query": "a=1",
                "headers": {"x-a": "1, 2"},
                "body": "hi",
                "body_len": 2,
            })
        );
    }

    #[test]
    fn query_is_null_without_a_question_mark() {
        let v: Value = testing::call(echo, Request::get("/e")).json();
        assert_eq!(v["query"], Value::Null);
        assert_eq!(v["body"], "");
        assert_eq!(v["body_len"], 0);
        let v: Value = testing::call(echo, Request::get("/e?")).json();
        assert_eq!(v["query"], "");
    }

    #[test]
    fn binary_body_is_lossy_text_with_its_byte_length() {
        let req = Request::post("/e").with_body(vec![b'a', 0xff]);
        let v: Value = testing::call(echo, req).json();
        assert_eq!(v["body"], "a\u{fffd}");
        assert_eq!(v["body_len"], 2);
    }
}
