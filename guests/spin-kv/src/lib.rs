//! What a Spin application does with spin-sdk 5.2, written as a Spin user
//! would write it (`#[http_component]`, `key_value::Store`,
//! `variables::get`), so that the tests prove such a component runs here
//! unmodified:
//!
//! - `GET /kv/<key>`: the value in the default store, or 404;
//! - `PUT /kv/<key>`: stores the body; `DELETE /kv/<key>`: deletes it;
//! - `GET /keys`: every key of the default store, one per line;
//! - `GET /store/<label>`: opens that store: 200, or 403 with Spin's error;
//! - `GET /var/<name>`: the variable, 404 when undefined, 400 when the
//!   name is invalid.

use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::key_value::{Error as KvError, Store};
use spin_sdk::{http_component, variables};

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path = req.path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
    Ok(match (req.method(), segments.as_slice()) {
        (Method::Get, ["kv", key]) => match Store::open_default()?.get(key)? {
            Some(value) => respond(200, value),
            None => respond(404, "no such key"),
        },
        (Method::Put, ["kv", key]) => match Store::open_default()?.set(key, req.body()) {
            Ok(()) => respond(200, "stored"),
            Err(err) => respond(507, format!("{err}")),
        },
        (Method::Delete, ["kv", key]) => {
            Store::open_default()?.delete(key)?;
            respond(200, "deleted")
        }
        (Method::Get, ["keys"]) => {
            let mut keys = Store::open_default()?.get_keys()?;
            keys.sort();
            respond(200, keys.join("\n"))
        }
        (Method::Get, ["store", label]) => match Store::open(label) {
            Ok(_) => respond(200, "opened"),
            Err(KvError::AccessDenied) => respond(403, "access denied"),
            Err(err) => respond(500, format!("{err}")),
        },
        (Method::Get, ["var", name]) => match variables::get(name) {
            Ok(value) => respond(200, value),
            Err(variables::Error::Undefined(text)) => respond(404, text),
            Err(variables::Error::InvalidName(text)) => respond(400, text),
            Err(err) => respond(500, format!("{err}")),
        },
        _ => respond(404, "not found"),
    })
}

fn respond(status: u16, body: impl Into<Vec<u8>>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.into())
        .build()
}
