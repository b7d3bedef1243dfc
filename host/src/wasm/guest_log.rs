//! A guest's stdout and stderr, captured line by line and logged as events
//! carrying the service and request id, so guest output is never interleaved
//! raw into the host's own output.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;

use crate::observe::traces::TraceContext;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line logged as one event; longer output is split.
const MAX_LINE: usize = 16 * 1024;

/// Which of the guest's two output streams.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    /// The guest's stdout.
    Stdout,
    /// The guest's stderr.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A `StdoutStream` for `WasiCtxBuilder::stdout`/`stderr`. All streams made
/// from one `GuestLog` share one line buffer; the last partial line is logged
/// when the request's store is dropped.
#[derive(Clone)]
pub struct GuestLog {
    inner: Arc<Inner>,
}

struct Inner {
    stream: Stream,
    service: Arc<str>,
    /// The request the instance serves now (a reused instance serves
    /// several, one after the other), and the guest span of its trace.
    request: Mutex<(Arc<str>, Option<TraceContext>)>,
    /// Bytes since the last newline.
    pending: Mutex<Vec<u8>>,
}

impl GuestLog {
    /// The log sink for one stream of one request.
    pub fn new(
        stream: Stream,
        service: Arc<str>,
        request_id: Arc<str>,
        trace: Option<TraceContext>,
    ) -> Self {
        GuestLog {
            inner: Arc::new(Inner {
                stream,
                service,
                request: Mutex::new((request_id, trace)),
                pending: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Tags the lines written from now on with `request_id` and `trace`
    /// (the request's guest span). A line left unfinished by the previous
    /// request is logged with that request first.
    pub fn set_request(&self, request_id: Arc<str>, trace: Option<TraceContext>) {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.is_empty() {
            self.inner.emit(&pending);
            pending.clear();
        }
        *self.inner.request.lock().unwrap_or_else(|e| e.into_inner()) = (request_id, trace);
    }

    fn write_all(&self, mut bytes: &[u8]) {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        while !bytes.is_empty() {
            match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    pending.extend_from_slice(&bytes[..i]);
                    bytes = &bytes[i + 1..];
                    self.inner.emit(&pending);
                    pending.clear();
                }
                None => {
                    pending.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
            if pending.len() >= MAX_LINE {
                self.inner.emit(&pending);
                pending.clear();
            }
        }
    }
}

impl Inner {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let (request_id, trace) = self
            .request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tracing::info!(
            target: "wasmhost::guest",
            service = %self.service,
            request_id = %request_id,
            trace_id = trace.map(|t| tracing::field::display(t.trace_hex())),
            span_id = trace.map(|t| tracing::field::display(t.span_hex())),
            stream = self.stream.name(),
            line,
            "guest output"
        );
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let pending = std::mem::take(self.pending.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !pending.is_empty() {
            self.emit(&pending);
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestLog {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_all(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for GuestLog {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.write_all(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
