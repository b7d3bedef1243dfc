//! Minimal WASI 0.3 HTTP service (`wasi:http/service@0.3.0`, exporting
//! `wasi:http/handler@0.3.0`). Answers 200 `hello from wasip3` and echoes the
//! request path (with query) in the `x-path` response header, and how many
//! requests this instance has handled, this one included, in
//! `x-instance-requests` (1 on a fresh instance: the host's reuse tests read
//! it).

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::{wit_bindgen, wit_future, wit_stream};

wasip3::http::service::export!(HelloP3);

const BODY: &[u8] = b"hello from wasip3";

/// Requests this instance has handled.
static SERVED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

struct HelloP3;

impl wasip3::exports::http::handler::Guest for HelloP3 {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let served = SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let path = request
            .get_path_with_query()
            .unwrap_or_else(|| "/".to_string());

        let headers = Fields::from_list(&[
            (
                "content-type".to_string(),
                b"text/plain; charset=utf-8".to_vec(),
            ),
            (
                "content-length".to_string(),
                BODY.len().to_string().into_bytes(),
            ),
            ("x-path".to_string(), path.into_bytes()),
            (
                "x-instance-requests".to_string(),
                served.to_string().into_bytes(),
            ),
        ])
        .map_err(|e| ErrorCode::InternalError(Some(format!("headers: {e:?}"))))?;

        let (mut body_tx, body_rx) = wit_stream::new();
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        let (response, _transmit) = Response::new(headers, Some(body_rx), trailers_rx);
        drop(trailers_tx);

        // The body is written after `handle` returns the response head, so the
        // writer must run as a separate task.
        wit_bindgen::spawn_local(async move {
            let remaining = body_tx.write_all(BODY.to_vec()).await;
            debug_assert!(remaining.is_empty());
        });
        Ok(response)
    }
}
