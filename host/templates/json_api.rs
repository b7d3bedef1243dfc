//! {{name}}: a JSON API on wasmhost.
//!
//! Build: `cargo build --release`; serve: `wasmhost serve wasmhost.toml`;
//! try: `curl localhost:8080/{{name}}/notes/1` and
//! `curl -d '{"text":"hi"}' localhost:8080/{{name}}/notes`.

use serde::{Deserialize, Serialize};
use wasmhost_sdk::{Error, Request, Response, Router};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Note {
    id: u64,
    text: String,
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

fn router() -> Router {
    Router::new()
        .mount("/{{name}}")
        .get("/notes/:id", get_note)
        .post("/notes", create_note)
}

fn get_note(req: Request) -> Result<Response, Error> {
    let id: u64 = req.param_as("id")?;
    Ok(Response::json(&Note {
        id,
        text: format!("note {id}"),
    }))
}

fn create_note(req: Request) -> Result<Response, Error> {
    let new: NewNote = req.json()?;
    if new.text.is_empty() {
        return Err(Error::bad_request("`text` must not be empty"));
    }
    Ok(Response::json(&Note { id: 1, text: new.text }).with_status(201))
}

wasmhost_sdk::export!(router);

#[cfg(test)]
mod tests {
    use super::*;
    use wasmhost_sdk::testing;

    #[test]
    fn gets_a_note_by_id() {
        let resp = testing::call(router(), Request::get("/{{name}}/notes/7"));
        assert_eq!(resp.status(), 200);
        let note: Note = resp.json();
        assert_eq!(note, Note { id: 7, text: "note 7".into() });
    }

    #[test]
    fn bad_json_is_400() {
        let resp = testing::call(router(), Request::post("/{{name}}/notes").with_body("nope"));
        assert_eq!(resp.status(), 400);
    }
}
