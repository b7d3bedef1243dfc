//! What a Spin application does with spin-sdk 7 (WASI 0.3), written as a
//! Spin user would write it (`#[http_service]`, async `key_value::Store`,
//! async `variables::get`), so that the tests prove such a component runs
//! here unmodified. The routes are those of `guests/spin-kv` (spin-sdk 5.2):
//!
//! - `GET /kv/<key>`: the value in the default store, or 404;
//! - `PUT /kv/<key>`: stores the body; `DELETE /kv/<key>`: deletes it;
//! - `GET /exists/<key>`: `true` or `false`;
//! - `GET /keys`: every key of the default store, one per line (read from
//!   the `get-keys` stream);
//! - `GET /store/<label>`: opens that store: 200, or 403 with Spin's error;
//! - `GET /var/<name>`: the variable, 404 when undefined, 400 when the
//!   name is invalid.

use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{IntoResponse, Method, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::key_value::{Error as KvError, Store};
use spin_sdk::variables;

#[http_service]
async fn handle(req: Request) -> impl IntoResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(2, '/').collect();
    match (method, segments.as_slice()) {
        (Method::GET, ["kv", key]) => match Store::open_default().await {
            Ok(store) => match store.get(key).await {
                Ok(Some(value)) => respond(200, value),
                Ok(None) => respond(404, "no such key"),
                Err(err) => respond(500, format!("{err}")),
            },
            Err(err) => respond(500, format!("{err}")),
        },
        (Method::PUT, ["kv", key]) => {
            let body = match req.into_body().bytes().await {
                Ok(body) => body,
                Err(err) => return respond(400, format!("{err:?}")),
            };
            match Store::open_default().await {
                Ok(store) => match store.set(key, &body).await {
                    Ok(()) => respond(200, "stored"),
                    Err(err) => respond(507, format!("{err}")),
                },
                Err(err) => respond(500, format!("{err}")),
            }
        }
        (Method::DELETE, ["kv", key]) => match Store::open_default().await {
            Ok(store) => match store.delete(key).await {
                Ok(()) => respond(200, "deleted"),
                Err(err) => respond(500, format!("{err}")),
            },
            Err(err) => respond(500, format!("{err}")),
        },
        (Method::GET, ["exists", key]) => match Store::open_default().await {
            Ok(store) => match store.exists(key).await {
                Ok(found) => respond(200, found.to_string()),
                Err(err) => respond(500, format!("{err}")),
            },
            Err(err) => respond(500, format!("{err}")),
        },
        (Method::GET, ["keys"]) => match Store::open_default().await {
            Ok(store) => match store.get_keys().await.collect().await {
                Ok(mut keys) => {
                    keys.sort();
                    respond(200, keys.join("\n"))
                }
                Err(err) => respond(500, format!("{err}")),
            },
            Err(err) => respond(500, format!("{err}")),
        },
        (Method::GET, ["store", label]) => match Store::open(label).await {
            Ok(_) => respond(200, "opened"),
            Err(KvError::AccessDenied) => respond(403, "access denied"),
            Err(err) => respond(500, format!("{err}")),
        },
        (Method::GET, ["var", name]) => match variables::get(name).await {
            Ok(value) => respond(200, value),
            Err(variables::Error::Undefined(text)) => respond(404, text),
            Err(variables::Error::InvalidName(text)) => respond(400, text),
            Err(err) => respond(500, format!("{err}")),
        },
        _ => respond(404, "not found"),
    }
}

fn respond(status: u16, body: impl Into<Vec<u8>>) -> (StatusCode, String) {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, String::from_utf8_lossy(&body.into()).into_owned())
}
