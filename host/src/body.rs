//! Bodies on the data plane: the request body with `max_request_body`
//! enforced while it streams, and the response body that turns a guest
//! failure after the response head into an aborted connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

use crate::error_kind::ErrorKind;

/// The request body as the guest reads it: fails once more than `max`
/// bytes have arrived, and flags that on `exceeded` so the failure can be
/// reported as `body_too_large` rather than as the guest's trap.
pub struct LimitedBody {
    inner: Inner,
    remaining: u64,
    max: u64,
    exceeded: Arc<AtomicBool>,
}

/// Where the body comes from.
enum Inner {
    /// A client's request body.
    Client(hyper::body::Incoming),
    /// A body already in memory (benchmarks and tests of the request path).
    Full(http_body_util::Full<Bytes>),
}

impl LimitedBody {
    /// Wraps `inner`, allowing `max` bytes.
    pub fn new(inner: hyper::body::Incoming, max: u64, exceeded: Arc<AtomicBool>) -> Self {
        LimitedBody {
            inner: Inner::Client(inner),
            remaining: max,
            max,
            exceeded,
        }
    }

    /// A body of `bytes`, allowing `max` bytes: the request path without a
    /// client connection.
    pub fn from_bytes(bytes: Bytes, max: u64, exceeded: Arc<AtomicBool>) -> Self {
        LimitedBody {
            inner: Inner::Full(http_body_util::Full::new(bytes)),
            remaining: max,
            max,
            exceeded,
        }
    }
}

impl Body for LimitedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        let frame = match &mut this.inner {
            Inner::Client(inner) => ready!(Pin::new(inner).poll_frame(cx)),
            Inner::Full(inner) => ready!(Pin::new(inner).poll_frame(cx)).map(|Ok(frame)| Ok(frame)),
        };
        Poll::Ready(match frame {
            None => None,
            Some(Err(err)) => Some(Err(HttpError::from(err))),
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                if len > this.remaining {
                    this.exceeded.store(true, Ordering::Release);
                    Some(Err(HttpError::HttpRequestBodySize(Some(this.max))))
                } else {
                    this.remaining -= len;
                    Some(Ok(frame))
                }
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Client(inner) => inner.is_end_stream(),
            Inner::Full(inner) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Client(inner) => inner.size_hint(),
            Inner::Full(inner) => inner.size_hint(),
        }
    }
}

/// How a guest's request ended, sent by the task that ran it.
pub type Outcome = Result<(), ErrorKind>;

/// The error a response body yields to make hyper abort the connection.
#[derive(Debug, thiserror::Error)]
#[error("guest failed after the response head was sent: {0}")]
pub struct Aborted(pub String);

/// The body of every response the data plane sends.
pub enum HostBody {
    /// A body the host made (errors, admin answers).
    Full(Option<Bytes>),
    /// A guest's body. At its end the guest's outcome is awaited: a failure
    /// (trap, limit, timeout) becomes a body error, so hyper aborts the
    /// connection instead of ending the response cleanly.
    Guest {
        /// The guest's body stream.
        inner: WasiBody,
        /// The outcome of the task running the guest.
        outcome: oneshot::Receiver<Outcome>,
        /// Set when this body is dropped before its end: the client left.
        client_gone: Arc<AtomicBool>,
        /// Bytes still due when the response has a known length (`Some(0)`
        /// for HEAD, 204 and 304): hyper stops polling once they are sent,
        /// so reaching zero counts as delivered.
        remaining: Option<u64>,
        /// Whether the end (or an error) has been reached.
        finished: bool,
    },
}

impl From<Bytes> for HostBody {
    fn from(bytes: Bytes) -> Self {
        HostBody::Full(Some(bytes))
    }
}

impl Body for HostBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        match &mut *self {
            HostBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            HostBody::Guest {
                inner,
                outcome,
                finished,
                remaining,
                ..
            } => {
                if *finished {
                    return Poll::Ready(None);
                }
                match ready!(Pin::new(&mut *inner).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let (Some(left), Some(data)) = (remaining.as_mut(), frame.data_ref()) {
                            *left = left.saturating_sub(data.len() as u64);
                        }
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Some(Err(err)) => {
                        *finished = true;
                        Poll::Ready(Some(Err(Aborted(err.to_string()))))
                    }
                    None => {
                        let result = ready!(Pin::new(outcome).poll(cx));
                        *finished = true;
                        match result {
                            Ok(Ok(())) => Poll::Ready(None),
                            Ok(Err(kind)) => Poll::Ready(Some(Err(Aborted(kind.to_string())))),
                            Err(_) => Poll::Ready(Some(Err(Aborted("guest task lost".into())))),
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            HostBody::Full(bytes) => bytes.is_none(),
            HostBody::Guest { finished, .. } => *finished,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            HostBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            HostBody::Full(None) => SizeHint::with_exact(0),
            HostBody::Guest { inner, .. } => inner.size_hint(),
        }
    }
}

impl Drop for HostBody {
    fn drop(&mut self) {
        if let HostBody::Guest {
            finished: false,
            client_gone,
            inner,
            remaining,
            ..
        } = self
            && !inner.is_end_stream()
            && *remaining != Some(0)
        {
            client_gone.store(true, Ordering::Release);
        }
    }
}
