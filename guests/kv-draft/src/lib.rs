//! A guest built against `wasi:keyvalue@0.2.0-draft` (bound with
//! `wit-bindgen` from the host's copy of that WIT):
//!
//! - `POST /draft/incr/:key`: `increment` by 1, answers the new value;
//! - `POST /draft/fill/:n`: `set-many` of `n` keys `k00000`, `k00001`, ...;
//! - `GET /draft/keys`: how many keys `list-keys` gives, page after page;
//! - `GET /draft/many`: `get-many` of `k00000` and `missing`.

use wasmhost_sdk::{Error, Request, Response, Router};

wit_bindgen::generate!({
    path: "../../host/wit/wasi-keyvalue-0.2.0-draft",
    world: "wasi:keyvalue/imports@0.2.0-draft",
    generate_all,
});

use wasi::keyvalue::{atomics, batch, store};

fn bucket() -> Result<store::Bucket, Error> {
    store::open("default").map_err(|e| Error::internal(format!("open: {e:?}")))
}

fn incr(req: Request) -> Result<Response, Error> {
    let key = req.param("key").unwrap_or_default();
    let value = atomics::increment(&bucket()?, key, 1)
        .map_err(|e| Error::internal(format!("increment: {e:?}")))?;
    Ok(Response::text(value.to_string()))
}

fn fill(req: Request) -> Result<Response, Error> {
    let n: u32 = req.param_as("n")?;
    let pairs: Vec<(String, Vec<u8>)> = (0..n).map(|i| (format!("k{i:05}"), vec![b'v'])).collect();
    batch::set_many(&bucket()?, &pairs).map_err(|e| Error::internal(format!("set-many: {e:?}")))?;
    Ok(Response::text("filled"))
}

fn keys(_req: Request) -> Result<Response, Error> {
    let bucket = bucket()?;
    let (mut count, mut pages, mut cursor) = (0, 0, None);
    loop {
        let page = bucket
            .list_keys(cursor)
            .map_err(|e| Error::internal(format!("list-keys: {e:?}")))?;
        count += page.keys.len();
        pages += 1;
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(Response::text(format!("{count} keys in {pages} pages")))
}

fn many(_req: Request) -> Result<Response, Error> {
    let keys = ["k00000".to_owned(), "missing".to_owned()];
    let found = batch::get_many(&bucket()?, &keys)
        .map_err(|e| Error::internal(format!("get-many: {e:?}")))?;
    let shown: Vec<String> = found
        .into_iter()
        .map(|entry| match entry {
            Some((key, value)) => format!("{key}={}", String::from_utf8_lossy(&value)),
            None => "none".to_owned(),
        })
        .collect();
    Ok(Response::text(shown.join(",")))
}

fn router() -> Router {
    Router::new()
        .mount("/draft")
        .post("/incr/:key", incr)
        .post("/fill/:n", fill)
        .get("/keys", keys)
        .get("/many", many)
}

wasmhost_sdk::export!(router);
