//! {{name}}: a wasmhost service that keeps state in a key-value store.
//!
//! Build: `cargo build --release`; serve: `wasmhost serve wasmhost.toml`;
//! try: `curl localhost:8080/{{name}}` (twice), and
//! `curl -X PUT --data 'hi' localhost:8080/{{name}}/notes/1`,
//! `curl localhost:8080/{{name}}/notes/1`.
//!
//! The store is `default`, listed in `key_value_stores` in `wasmhost.toml`;
//! its data is in `.wasmhost-data/` and survives restarts.

use wasmhost_sdk::{Error, Request, Response, Router, kv};

fn router() -> Router {
    Router::new()
        .mount("/{{name}}")
        .get("/", visit)
        .get("/notes/:id", get_note)
        .put("/notes/:id", put_note)
        .delete("/notes/:id", delete_note)
}

/// Counts visits, atomically (even across replicas on a Redis store).
fn visit(_req: Request) -> Result<Response, Error> {
    let n = kv::open_default()?.increment("visits", 1)?;
    Ok(Response::text(format!("visit {n}\n")))
}

fn note_key(req: &Request) -> String {
    format!("note:{}", req.param("id").unwrap_or_default())
}

fn get_note(req: Request) -> Result<Response, Error> {
    match kv::open_default()?.get(&note_key(&req))? {
        Some(note) => Ok(Response::bytes(note)),
        None => Err(Error::not_found("no such note")),
    }
}

fn put_note(req: Request) -> Result<Response, Error> {
    kv::open_default()?.set(&note_key(&req), req.body())?;
    Ok(Response::text("saved\n"))
}

fn delete_note(req: Request) -> Result<Response, Error> {
    kv::open_default()?.delete(&note_key(&req))?;
    Ok(Response::text("deleted\n"))
}

wasmhost_sdk::export!(router);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmhost_sdk::testing::TestEnv;

    #[test]
    fn counts_visits_and_keeps_notes() {
        let env = TestEnv::new().kv_store("default");
        let send = |req: Request| env.call(router(), req);
        assert_eq!(send(Request::get("/{{name}}")).text(), "visit 1\n");
        assert_eq!(send(Request::get("/{{name}}")).text(), "visit 2\n");
        assert_eq!(send(Request::get("/{{name}}/notes/1")).status(), 404);
        let put = Request::put("/{{name}}/notes/1").with_body("hi");
        assert_eq!(send(put).status(), 200);
        assert_eq!(send(Request::get("/{{name}}/notes/1")).text(), "hi");
    }
}
