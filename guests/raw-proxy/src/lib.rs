//! A stock `wasi:http/proxy` component written with the plain `wasi` crate and
//! no wasmhost SDK: if it runs under `wasmtime serve`, it must run under
//! wasmhost unmodified. Answers `200 raw proxy ok <path-with-query>`.

use std::io::Write as _;

use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct RawProxy;

impl wasi::exports::http::incoming_handler::Guest for RawProxy {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
        let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
            .expect("content-type is an allowed header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("a new response has a body");
        ResponseOutparam::set(out, Ok(response));

        let mut stream = body.write().expect("a new body has a stream");
        let text = format!("raw proxy ok {target}");
        if stream.write_all(text.as_bytes()).is_ok() && stream.blocking_flush().is_ok() {
            drop(stream);
            let _ = OutgoingBody::finish(body, None);
        }
    }
}

wasi::http::proxy::export!(RawProxy);
