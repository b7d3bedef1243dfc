//! A service that keeps state, with `wasmhost_sdk::kv` (which is
//! `wasi:keyvalue` under the host) and `wasmhost_sdk::variables`:
//!
//! - `POST /incr/:key`: adds 1 to the counter, answers the new value;
//! - `GET /get/:key`: the value, or 404;
//! - `POST /cas/:key/:from/:to`: sets the key to `to` if it holds `from`
//!   (`none`: if it has no value): 200 `won`, or 409 `lost`;
//! - `GET /hello`: the `greeting` variable.
//!
//! The replicas test runs it on three hosts sharing one Redis store.

use wasmhost_sdk::{Error, Request, Response, Router, kv, variables};

fn key(req: &Request) -> &str {
    req.param("key").unwrap_or_default()
}

fn incr(req: Request) -> Result<Response, Error> {
    let value = kv::open_default()?.increment(key(&req), 1)?;
    Ok(Response::text(value.to_string()))
}

fn read(req: Request) -> Result<Response, Error> {
    Ok(match kv::open_default()?.get_string(key(&req))? {
        Some(value) => Response::text(value),
        None => Response::text("no such key").with_status(404),
    })
}

fn cas(req: Request) -> Result<Response, Error> {
    let from = req.param("from").unwrap_or_default();
    let to = req.param("to").unwrap_or_default();
    let expected = (from != "none").then_some(from.as_bytes());
    Ok(
        if kv::open_default()?.compare_and_swap(key(&req), expected, to)? {
            Response::text("won")
        } else {
            Response::text("lost").with_status(409)
        },
    )
}

fn hello(_req: Request) -> Result<Response, Error> {
    Ok(Response::text(variables::get("greeting")?))
}

fn router() -> Router {
    Router::new()
        .post("/incr/:key", incr)
        .get("/get/:key", read)
        .post("/cas/:key/:from/:to", cas)
        .get("/hello", hello)
}

wasmhost_sdk::export!(router);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmhost_sdk::testing::TestEnv;

    #[test]
    fn counts_and_swaps_in_a_test_store() {
        let env = TestEnv::new()
            .kv_store("default")
            .variable("greeting", "hi");
        let send = |req: Request| env.call(router(), req);
        assert_eq!(send(Request::post("/incr/n")).text(), "1");
        assert_eq!(send(Request::post("/incr/n")).text(), "2");
        assert_eq!(send(Request::get("/get/n")).text(), "2");
        assert_eq!(send(Request::get("/get/missing")).status(), 404);
        assert_eq!(send(Request::post("/cas/s/none/a")).status(), 200);
        assert_eq!(send(Request::post("/cas/s/none/b")).status(), 409);
        assert_eq!(send(Request::post("/cas/s/a/b")).status(), 200);
        assert_eq!(send(Request::get("/hello")).text(), "hi");
    }

    #[test]
    fn without_the_store_listed_it_is_a_500_naming_the_manifest_key() {
        let resp = TestEnv::new().call(router(), Request::post("/incr/n"));
        assert_eq!(resp.status(), 500);
        assert!(resp.text().contains("key_value_stores"), "{}", resp.text());
    }
}
