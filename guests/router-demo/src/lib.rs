//! A JSON items API on the SDK's `Router`. Items `1..=1000` exist, named
//! `item <id>`; nothing is stored (every request runs in a fresh instance),
//! so `POST` and `DELETE` answer as if they had worked.
//!
//! | request | answer |
//! |---|---|
//! | `GET /items?limit=&offset=` | `200 [{"id":1,"name":"item 1"},...]` (limit 10 by default, at most 100) |
//! | `GET /items/:id` | `200 {"id":7,"name":"item 7"}`; `404` past 1000; `400` for a non-number |
//! | `POST /items` `{"name":"pen"}` | `201 {"id":1001,"name":"pen"}` + `location: /items/1001`; `400` for bad JSON or an empty name |
//! | `DELETE /items/:id` | `204`; `404` past 1000 |
//! | `GET /items/export` | `200` all items as NDJSON, streamed one line per chunk |
//! | `GET /items/:id/files/*path` | `200 {"item":7,"path":"a/b.txt"}` |
//! | other methods on those paths | `405` with `allow` |
//! | anything else | `404` |
//!
//! Errors are `{"error":"<message>"}`. Serve it at `route = "/items"` (the
//! guest sees the original path).

use serde::{Deserialize, Serialize};
use wasmhost_sdk::{Error, Request, Response, Router};

/// How many items exist.
const ITEMS: u64 = 1000;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct NewItem {
    name: String,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default = "default_limit")]
    limit: u64,
    #[serde(default)]
    offset: u64,
}

fn default_limit() -> u64 {
    10
}

fn item(id: u64) -> Result<Item, Error> {
    if (1..=ITEMS).contains(&id) {
        Ok(Item {
            id,
            name: format!("item {id}"),
        })
    } else {
        Err(Error::not_found(format!("no item {id}")))
    }
}

fn list(req: Request) -> Result<Response, Error> {
    let page: Page = req.query_as()?;
    if page.limit > 100 {
        return Err(Error::bad_request("`limit` is at most 100"));
    }
    let first = page.offset.saturating_add(1);
    let last = page.offset.saturating_add(page.limit).min(ITEMS);
    let items: Vec<Item> = (first..=last).filter_map(|id| item(id).ok()).collect();
    Ok(Response::json(&items))
}

fn get_item(req: Request) -> Result<Response, Error> {
    Ok(Response::json(&item(req.param_as("id")?)?))
}

fn create_item(req: Request) -> Result<Response, Error> {
    let new: NewItem = req.json()?;
    if new.name.trim().is_empty() {
        return Err(Error::bad_request("`name` must not be empty"));
    }
    let created = Item {
        id: ITEMS + 1,
        name: new.name,
    };
    wasmhost_sdk::info!("created item {}", created.id);
    Ok(Response::json(&created)
        .with_status(201)
        .with_header("location", &format!("/items/{}", created.id)))
}

fn delete_item(req: Request) -> Result<Response, Error> {
    item(req.param_as("id")?)?;
    Ok(Response::new(204))
}

fn export(_req: Request) -> Response {
    let lines = (1..=ITEMS).filter_map(|id| {
        let mut line = serde_json::to_vec(&item(id).ok()?).ok()?;
        line.push(b'\n');
        Some(line)
    });
    Response::stream(200, lines).with_header("content-type", "application/x-ndjson")
}

fn item_file(req: Request) -> Result<Response, Error> {
    let item = item(req.param_as("id")?)?;
    let path = req.param("path").unwrap_or_default();
    Ok(Response::json(
        &serde_json::json!({ "item": item.id, "path": path }),
    ))
}

fn router() -> Router {
    Router::new()
        .get("/items", list)
        .post("/items", create_item)
        .get("/items/export", export)
        .get("/items/:id", get_item)
        .delete("/items/:id", delete_item)
        .get("/items/:id/files/*path", item_file)
}

wasmhost_sdk::export!(router);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use wasmhost_sdk::{Method, testing};

    fn call(req: Request) -> testing::TestResponse {
        testing::call(router, req)
    }

    #[test]
    fn get_item_by_id() {
        let resp = call(Request::get("/items/7"));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        // Byte for byte what raw-router answers too (the benchmark pair).
        assert_eq!(resp.text(), r#"{"id":7,"name":"item 7"}"#);
    }

    #[test]
    fn missing_and_malformed_ids() {
        let resp = call(Request::get("/items/1001"));
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.json::<Value>(), json!({"error": "no item 1001"}));
        let resp = call(Request::get("/items/seven"));
        assert_eq!(resp.status(), 400);
        assert!(resp.text().contains("`id`"), "{}", resp.text());
    }

    #[test]
    fn list_pages_with_typed_query() {
        let items: Vec<Item> = call(Request::get("/items")).json();
        assert_eq!(items.len(), 10);
        assert_eq!(items[0].id, 1);
        let items: Vec<Item> = call(Request::get("/items?limit=2&offset=998")).json();
        assert_eq!(items.iter().map(|i| i.id).collect::<Vec<_>>(), [999, 1000]);
        let items: Vec<Item> = call(Request::get("/items?offset=5000")).json();
        assert!(items.is_empty());
        assert_eq!(call(Request::get("/items?limit=101")).status(), 400);
        assert_eq!(call(Request::get("/items?limit=x")).status(), 400);
    }

    #[test]
    fn create_echoes_the_new_item() {
        let resp = call(Request::post("/items").with_json(&json!({"name": "pen"})));
        assert_eq!(resp.status(), 201);
        assert_eq!(resp.header("location"), Some("/items/1001"));
        assert_eq!(
            resp.json::<Item>(),
            Item {
                id: 1001,
                name: "pen".into()
            }
        );
        assert_eq!(resp.logs(), ["INFO created item 1001"]);
    }

    #[test]
    fn create_rejects_bad_bodies() {
        let resp = call(Request::post("/items").with_body("{"));
        assert_eq!(resp.status(), 400);
        assert!(resp.text().contains("invalid JSON"), "{}", resp.text());
        let resp = call(Request::post("/items").with_json(&json!({"name": " "})));
        assert_eq!(resp.status(), 400);
        let resp = call(Request::post("/items").with_json(&json!({"title": "pen"})));
        assert_eq!(resp.status(), 400);
    }

    #[test]
    fn delete_answers_204_or_404() {
        assert_eq!(call(Request::delete("/items/3")).status(), 204);
        assert_eq!(call(Request::delete("/items/0")).status(), 404);
    }

    #[test]
    fn export_streams_every_item_as_ndjson() {
        let resp = call(Request::get("/items/export"));
        assert_eq!(resp.status(), 200);
        assert!(resp.is_streamed());
        assert_eq!(resp.header("content-type"), Some("application/x-ndjson"));
        let lines: Vec<&str> = std::str::from_utf8(resp.body()).unwrap().lines().collect();
        assert_eq!(lines.len(), 1000);
        assert_eq!(lines[6], r#"{"id":7,"name":"item 7"}"#);
    }

    #[test]
    fn wildcard_tail() {
        let v: Value = call(Request::get("/items/7/files/docs/a%20b.txt")).json();
        assert_eq!(v, json!({"item": 7, "path": "docs/a b.txt"}));
        let v: Value = call(Request::get("/items/7/files")).json();
        assert_eq!(v["path"], "");
    }

    #[test]
    fn wrong_method_and_unknown_path() {
        let resp = call(Request::put("/items/7"));
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.header("allow"), Some("DELETE, GET, HEAD"));
        let resp = call(Request::delete("/items"));
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.header("allow"), Some("GET, HEAD, POST"));
        assert_eq!(call(Request::get("/nothing")).status(), 404);
        let head = call(Request::new(Method::HEAD, "/items/7"));
        assert_eq!((head.status().as_u16(), head.body()), (200, &b""[..]));
    }
}
