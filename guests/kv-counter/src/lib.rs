//! Counters and compare-and-swap on `wasi:keyvalue/{store,atomics}`
//! (`0.2.0-draft2`), the interfaces any WASI component uses, bound here
//! with `wit-bindgen` from the host's copy of the WIT:
//!
//! - `POST /incr/:key`: adds 1 to the counter, answers the new value;
//! - `GET /get/:key`: the value, or 404;
//! - `POST /cas/:key/:from/:to`: sets the key to `to` if it holds `from`
//!   (a missing key counts as `none`): 200 `won`, or 409 `lost`.

use wasmhost_sdk::{Error, Request, Response, Router};

wit_bindgen::generate!({
    inline: r#"
        package wasmhost:kv-counter;
        world counter {
            import wasi:keyvalue/store@0.2.0-draft2;
            import wasi:keyvalue/atomics@0.2.0-draft2;
        }
    "#,
    path: "../../host/wit/wasi-keyvalue-0.2.0-draft2",
    generate_all,
});

use wasi::keyvalue::{atomics, store};

fn bucket() -> Result<store::Bucket, Error> {
    store::open("default").map_err(|e| Error::internal(format!("opening the store: {e:?}")))
}

fn key(req: &Request) -> String {
    req.param("key").unwrap_or_default().to_owned()
}

fn incr(req: Request) -> Result<Response, Error> {
    let value = atomics::increment(&bucket()?, &key(&req), 1)
        .map_err(|e| Error::internal(format!("increment: {e:?}")))?;
    Ok(Response::text(value.to_string()))
}

fn read(req: Request) -> Result<Response, Error> {
    match bucket()?.get(&key(&req)) {
        Ok(Some(value)) => Ok(Response::text(String::from_utf8_lossy(&value).into_owned())),
        Ok(None) => Ok(Response::text("no such key").with_status(404)),
        Err(e) => Err(Error::internal(format!("get: {e:?}"))),
    }
}

fn cas(req: Request) -> Result<Response, Error> {
    let bucket = bucket()?;
    let from = req.param("from").unwrap_or_default();
    let to = req.param("to").unwrap_or_default();
    let cas = atomics::Cas::new(&bucket, &key(&req))
        .map_err(|e| Error::internal(format!("cas: {e:?}")))?;
    let current = cas
        .current()
        .map_err(|e| Error::internal(format!("cas current: {e:?}")))?;
    let expected = (from != "none").then(|| from.as_bytes().to_vec());
    if current != expected {
        return Ok(Response::text("lost").with_status(409));
    }
    match atomics::swap(cas, to.as_bytes()) {
        Ok(()) => Ok(Response::text("won")),
        Err(atomics::CasError::CasFailed(_)) => Ok(Response::text("lost").with_status(409)),
        Err(e) => Err(Error::internal(format!("swap: {e:?}"))),
    }
}

fn router() -> Router {
    Router::new()
        .post("/incr/:key", incr)
        .get("/get/:key", read)
        .post("/cas/:key/:from/:to", cas)
}

wasmhost_sdk::export!(router);
