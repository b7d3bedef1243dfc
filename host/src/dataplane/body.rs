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

use crate::dataplane::error_kind::ErrorKind;
use crate::dataplane::outcome::classify_error;
use crate::wasm::reuse::Verdict;

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
    /// The body of a chained call: what the calling guest writes.
    Guest(WasiBody),
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

    /// The body a calling guest streams to a chained call, allowing `max`
    /// bytes.
    pub fn from_guest(inner: WasiBody, max: u64, exceeded: Arc<AtomicBool>) -> Self {
        LimitedBody {
            inner: Inner::Guest(inner),
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
            Inner::Guest(inner) => match ready!(Pin::new(inner).poll_frame(cx)) {
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                Some(Ok(frame)) => Some(Ok(frame)),
                None => None,
            },
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
            Inner::Guest(inner) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Client(inner) => inner.size_hint(),
            Inner::Full(inner) => inner.size_hint(),
            Inner::Guest(inner) => inner.size_hint(),
        }
    }
}

/// How a guest's request ended, sent by the task that ran it.
pub type Outcome = Result<(), ErrorKind>;

/// Where a guest's response body learns, at its end, whether the guest
/// ended well.
pub enum Settle {
    /// The task that runs the guest sends the outcome (fresh and pooled
    /// instances).
    Task(oneshot::Receiver<Outcome>),
    /// A shared instance: the response is good unless the instance failed
    /// by the time its body ended (see [`crate::wasm::reuse::Verdict`]).
    Instance(Verdict),
}

impl Settle {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        match self {
            Settle::Task(outcome) => Pin::new(outcome)
                .poll(cx)
                .map(|result| result.unwrap_or(Err(ErrorKind::Trap))),
            Settle::Instance(verdict) => Poll::Ready(match &*verdict.borrow() {
                None => Ok(()),
                Some(ended) => Err(classify_error(&ended.error, ended.memory_refused, false)),
            }),
        }
    }
}

/// A [`Settle`] polled to its end once, then remembered.
pub struct Settled {
    settle: Settle,
    result: Option<Outcome>,
}

impl Settled {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        if let Some(result) = self.result {
            return Poll::Ready(result);
        }
        let result = ready!(self.settle.poll(cx));
        self.result = Some(result);
        Poll::Ready(result)
    }
}

/// How a guest's response body ended, for [`HostBody::Guest`]'s `on_end`.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    /// The failure that aborted the body, if one did.
    pub aborted: Option<ErrorKind>,
    /// The body was dropped before its end: the client left.
    pub client_gone: bool,
}

/// Called once when a guest's response body ends or is dropped.
pub type OnEnd = Box<dyn FnOnce(Ending) + Send>;

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
        /// Whether the guest ended well.
        settle: Settled,
        /// The last frame of a body of known length, held back until the
        /// guest has ended: a response looks complete to the client only
        /// once it is (and a reused instance is back in its pool by then).
        held: Option<Frame<Bytes>>,
        /// Set when this body is dropped before its end: the client left.
        client_gone: Arc<AtomicBool>,
        /// Bytes still due when the response has a known length (`Some(0)`
        /// for HEAD, 204 and 304): hyper stops polling once they are sent,
        /// so reaching zero counts as delivered.
        remaining: Option<u64>,
        /// Whether the end (or an error) has been reached.
        finished: bool,
        /// Called once at the end, or when the body is dropped.
        on_end: Option<OnEnd>,
    },
}

impl HostBody {
    /// A guest's response body. `content_length` is the head's length, if
    /// it has one (`Some(0)` for HEAD, 204 and 304).
    pub fn guest(
        inner: WasiBody,
        settle: Settle,
        client_gone: Arc<AtomicBool>,
        content_length: Option<u64>,
        on_end: Option<OnEnd>,
    ) -> HostBody {
        HostBody::Guest {
            inner,
            settle: Settled {
                settle,
                result: None,
            },
            held: None,
            client_gone,
            remaining: content_length,
            finished: false,
            on_end,
        }
    }

    /// Ends a guest's body: calls its `on_end` once.
    fn end(&mut self, ending: Ending) {
        if let HostBody::Guest { on_end, .. } = self
            && let Some(on_end) = on_end.take()
        {
            on_end(ending);
        }
    }
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
        let this = &mut *self;
        let ending = match this {
            HostBody::Full(bytes) => return Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            HostBody::Guest {
                inner,
                settle,
                held,
                finished,
                remaining,
                ..
            } => {
                if *finished {
                    return Poll::Ready(None);
                }
                loop {
                    if held.is_some() {
                        break match ready!(settle.poll(cx)) {
                            Ok(()) => return Poll::Ready(held.take().map(Ok)),
                            Err(kind) => {
                                *held = None;
                                *finished = true;
                                (Some(kind), Aborted(kind.to_string()))
                            }
                        };
                    }
                    break match ready!(Pin::new(&mut *inner).poll_frame(cx)) {
                        Some(Ok(frame)) => {
                            if let (Some(left), Some(data)) = (remaining.as_mut(), frame.data_ref())
                            {
                                *left = left.saturating_sub(data.len() as u64);
                                if *left == 0 && !data.is_empty() {
                                    *held = Some(frame);
                                    continue;
                                }
                            }
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        Some(Err(err)) => {
                            *finished = true;
                            // The guest's own failure, if it has one, names it
                            // better than the stream's error.
                            let kind = match settle.poll(cx) {
                                Poll::Ready(Err(kind)) => kind,
                                _ => ErrorKind::Trap,
                            };
                            (Some(kind), Aborted(err.to_string()))
                        }
                        None => {
                            let result = ready!(settle.poll(cx));
                            *finished = true;
                            match result {
                                Ok(()) => (None, Aborted(String::new())),
                                Err(kind) => (Some(kind), Aborted(kind.to_string())),
                            }
                        }
                    };
                }
            }
        };
        let (aborted, error) = ending;
        this.end(Ending {
            aborted,
            client_gone: false,
        });
        Poll::Ready(aborted.map(|_| Err(error)))
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
        let gone = matches!(
            self,
            HostBody::Guest {
                finished: false,
                inner,
                remaining,
                ..
            } if !inner.is_end_stream() && *remaining != Some(0)
        );
        if let HostBody::Guest { client_gone, .. } = self
            && gone
        {
            client_gone.store(true, Ordering::Release);
        }
        self.end(Ending {
            aborted: None,
            client_gone: gone,
        });
    }
}
