//! `router-demo`'s items API written by hand on the plain `wasi` crate, with
//! no SDK: the baseline for measuring what the SDK costs per request.
//!
//! Same routes, statuses, headers and bodies as `router-demo` (see its docs);
//! `GET /items/7` answers `200`, `content-type: application/json`,
//! `{"id":7,"name":"item 7"}` in both. Unlike the SDK it does not
//! percent-decode path parameters.

use std::io::{Read as _, Write as _};

use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

const ITEMS: u64 = 1000;

struct RawRouter;

/// A response: status, extra headers, body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Full(Vec<u8>),
    Export,
}

impl wasi::exports::http::incoming_handler::Guest for RawRouter {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let method = request.method();
        let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, query),
            None => (target.as_str(), ""),
        };
        let answer = route(&method, path, query, &request);
        let head = matches!(method, Method::Head);
        respond(out, answer, head);
    }
}

wasi::http::proxy::export!(RawRouter);

fn route(method: &Method, path: &str, query: &str, request: &IncomingRequest) -> Answer {
    let get = matches!(method, Method::Get | Method::Head);
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match segments.as_slice() {
        ["items"] => match method {
            _ if get => list(query),
            Method::Post => create(&read_body(request)),
            _ => not_allowed(method, path, "GET, HEAD, POST"),
        },
        ["items", "export"] if get => Answer {
            status: 200,
            headers: vec![("content-type", "application/x-ndjson".to_owned())],
            body: Body::Export,
        },
        ["items", id] if !id.is_empty() => match method {
            _ if get => match parse_id(id).and_then(item) {
                Ok(item) => json(200, item),
                Err(answer) => answer,
            },
            Method::Delete => match parse_id(id).and_then(item) {
                Ok(_) => Answer {
                    status: 204,
                    headers: Vec::new(),
                    body: Body::Full(Vec::new()),
                },
                Err(answer) => answer,
            },
            _ => not_allowed(method, path, "DELETE, GET, HEAD"),
        },
        ["items", id, "files", rest @ ..] if !id.is_empty() => match method {
            _ if get => match parse_id(id).and_then(item) {
                Ok(_) => {
                    let body = serde_json::json!({ "item": parse_id(id).unwrap_or(0), "path": rest.join("/") });
                    json(200, body.to_string())
                }
                Err(answer) => answer,
            },
            _ => not_allowed(method, path, "GET, HEAD"),
        },
        _ => error(404, &format!("no route for `{path}`")),
    }
}

fn item(id: u64) -> Result<String, Answer> {
    if (1..=ITEMS).contains(&id) {
        Ok(format!(r#"{{"id":{id},"name":"item {id}"}}"#))
    } else {
        Err(error(404, &format!("no item {id}")))
    }
}

fn parse_id(id: &str) -> Result<u64, Answer> {
    id.parse()
        .map_err(|e| error(400, &format!("invalid path parameter `id`=`{id}`: {e}")))
}

fn list(query: &str) -> Answer {
    let (mut limit, mut offset) = (10u64, 0u64);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "limit" => &mut limit,
            "offset" => &mut offset,
            _ => continue,
        };
        match value.parse() {
            Ok(n) => *slot = n,
            Err(e) => return error(400, &format!("invalid query: {e}")),
        }
    }
    if limit > 100 {
        return error(400, "`limit` is at most 100");
    }
    let first = offset.saturating_add(1);
    let last = offset.saturating_add(limit).min(ITEMS);
    let items: Vec<String> = (first..=last).filter_map(|id| item(id).ok()).collect();
    json(200, format!("[{}]", items.join(",")))
}

fn create(body: &[u8]) -> Answer {
    let value: serde_json::Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return error(400, &format!("invalid JSON: {e}")),
    };
    let Some(name) = value.get("name").and_then(|n| n.as_str()) else {
        return error(400, "invalid JSON: missing field `name`");
    };
    if name.trim().is_empty() {
        return error(400, "`name` must not be empty");
    }
    let id = ITEMS + 1;
    eprintln!("INFO created item {id}");
    let mut answer = json(
        201,
        serde_json::json!({ "id": id, "name": name }).to_string(),
    );
    answer.headers.push(("location", format!("/items/{id}")));
    answer
}

fn json(status: u16, body: String) -> Answer {
    Answer {
        status,
        headers: vec![("content-type", "application/json".to_owned())],
        body: Body::Full(body.into_bytes()),
    }
}

fn error(status: u16, message: &str) -> Answer {
    json(status, serde_json::json!({ "error": message }).to_string())
}

fn not_allowed(method: &Method, path: &str, allow: &'static str) -> Answer {
    let method = match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    };
    let message = format!("method `{method}` is not allowed for `{path}`; allowed: {allow}");
    let mut answer = error(405, &message);
    answer.headers.push(("allow", allow.to_owned()));
    answer
}

fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(body) = request.consume()
        && let Ok(mut stream) = body.stream()
    {
        let _ = stream.read_to_end(&mut bytes);
    }
    bytes
}

fn respond(out: ResponseOutparam, answer: Answer, head: bool) {
    let headers: Vec<(String, Vec<u8>)> = answer
        .headers
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.into_bytes()))
        .collect();
    let fields = Fields::from_list(&headers).expect("static, allowed headers");
    let response = OutgoingResponse::new(fields);
    let _ = response.set_status_code(answer.status);
    let body = response.body().expect("a new response has a body");
    ResponseOutparam::set(out, Ok(response));

    let mut stream = body.write().expect("a new body has a stream");
    let written = match answer.body {
        _ if head => true,
        Body::Full(bytes) => stream.write_all(&bytes).is_ok(),
        Body::Export => (1..=ITEMS).all(|id| {
            let line = format!("{}\n", item(id).unwrap_or_default());
            stream.write_all(line.as_bytes()).is_ok() && stream.flush().is_ok()
        }),
    };
    if written && stream.flush().is_ok() {
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }
}
