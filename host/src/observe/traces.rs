//! Distributed tracing: W3C trace context on every request, and the spans
//! the host records.
//!
//! Every request gets a server span: it continues an incoming
//! `traceparent` (same trace id, new span id) or starts a trace, sampled
//! as `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` say. The request
//! path only builds plain records ([`RequestRecord`], [`Span`]) and offers
//! them to a bounded queue ([`record_request`], [`record`]): a buffer of
//! the serving thread's own (an uncontended lock, taken by the exporter
//! only to swap it out), never a wakeup or a write. A full queue drops them, counted in
//! `wasmhost_spans_dropped_total`. [`super::otlp`] drains the queue and
//! exports.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use http::HeaderValue;
use opentelemetry::KeyValue;
use prometheus_client::metrics::counter::Counter;

use super::hex::HexDigits;
pub use super::span_queue::{exporting, record, record_request};

/// A W3C trace context: the trace, one span in it, and whether the trace
/// is sampled (recorded and exported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id (never 0).
    pub trace_id: u128,
    /// The span id (never 0).
    pub span_id: u64,
    /// The `sampled` flag.
    pub sampled: bool,
}

impl TraceContext {
    /// The context a `traceparent` header value carries (version 00 and
    /// any later version's first four fields), if well formed.
    pub fn parse(value: &str) -> Option<TraceContext> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(version, 2)
            || version == "ff"
            || !hex(trace, 32)
            || !hex(span, 16)
            || !hex(flags, 2)
        {
            return None;
        }
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(TraceContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// A new span in the same trace.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// The `traceparent` header that makes this span the parent.
    pub fn traceparent(&self) -> HeaderValue {
        // "00-" trace "-" span "-0" flag: 55 bytes, built without the
        // formatting machinery (this runs on every request).
        let mut value = [0u8; 55];
        value[..3].copy_from_slice(b"00-");
        value[3..35].copy_from_slice(Hex::Trace(self.trace_id).digits().as_bytes());
        value[35] = b'-';
        value[36..52].copy_from_slice(Hex::Span(self.span_id).digits().as_bytes());
        value[52..54].copy_from_slice(b"-0");
        value[54] = b'0' + u8::from(self.sampled);
        HeaderValue::from_bytes(&value).expect("hex digits and dashes are a valid header value")
    }

    /// The trace id as 32 hex digits (logs), formatted when written.
    pub fn trace_hex(&self) -> Hex {
        Hex::Trace(self.trace_id)
    }

    /// The span id as 16 hex digits (logs), formatted when written.
    pub fn span_hex(&self) -> Hex {
        Hex::Span(self.span_id)
    }
}

/// A trace or span id as W3C writes it, formatted only when a log line is.
#[derive(Debug, Clone, Copy)]
pub enum Hex {
    /// 32 hex digits.
    Trace(u128),
    /// 16 hex digits.
    Span(u64),
}

impl Hex {
    /// The id's digits, lowercase and zero-padded.
    pub fn digits(&self) -> HexDigits {
        match *self {
            Hex::Trace(id) => HexDigits::new(id, 32),
            Hex::Span(id) => HexDigits::new(u128::from(id), 16),
        }
    }
}

impl std::fmt::Display for Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.digits())
    }
}

tokio::task_local! {
    /// The span a guest's host calls (key-value operations) are children
    /// of, while the guest task runs.
    static CURRENT: TraceContext;
}

/// Runs `work` with `context` as the parent of the spans it records.
pub async fn within<F: Future>(context: TraceContext, work: F) -> F::Output {
    CURRENT.scope(context, work).await
}

/// The parent set by [`within`], when this task has one and its trace is
/// recorded.
pub fn current() -> Option<TraceContext> {
    CURRENT
        .try_with(|context| *context)
        .ok()
        .filter(|context| context.sampled && exporting())
}

/// Records an internal span of work done for the host itself (a reload):
/// the root of a trace of its own, sampled like any new trace.
pub fn record_root(
    name: &'static str,
    started: Instant,
    attributes: Vec<KeyValue>,
    error: Option<String>,
) {
    if !exporting() {
        return;
    }
    let context = server_context(None);
    if !context.sampled {
        return;
    }
    record(Span {
        context,
        parent: None,
        remote_parent: false,
        name: name.into(),
        kind: Kind::Internal,
        start: wall_clock(started),
        end: SystemTime::now(),
        attributes,
        error,
    });
}

/// Records a child span of `parent` that began at `started` and ends now.
pub fn record_child(
    parent: TraceContext,
    name: impl Into<Cow<'static, str>>,
    kind: Kind,
    started: Instant,
    attributes: Vec<KeyValue>,
    error: Option<String>,
) {
    record(Span {
        context: parent.child(),
        parent: Some(parent.span_id),
        remote_parent: false,
        name: name.into(),
        kind,
        start: wall_clock(started),
        end: SystemTime::now(),
        attributes,
        error,
    });
}

/// A new random span id.
pub fn new_span_id() -> u64 {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id;
        }
    }
}

/// The trace context of a request's server span: a child of `parent`
/// (an incoming `traceparent`), or the root of a new trace, sampled as
/// `OTEL_TRACES_SAMPLER` says.
pub fn server_context(parent: Option<TraceContext>) -> TraceContext {
    let trace_id = match parent {
        Some(parent) => parent.trace_id,
        None => loop {
            let id = fastrand::u128(..);
            if id != 0 {
                break id;
            }
        },
    };
    TraceContext {
        trace_id,
        span_id: new_span_id(),
        sampled: sampler().sample(parent, trace_id),
    }
}

/// A request's place in its trace: its server span, the span its guest
/// runs in, and the parent it continues.
#[derive(Debug, Clone, Copy)]
pub struct RequestTrace {
    /// The server span (what the guest's `traceparent` names).
    pub server: TraceContext,
    /// The guest-execution span: the parent of the guest's calls.
    pub guest: TraceContext,
    /// The span the request continues, if it came with a `traceparent`.
    pub parent: Option<u64>,
    /// That parent is in another process.
    pub remote_parent: bool,
}

impl RequestTrace {
    /// The trace of a request that came with `traceparent` (if any), from
    /// another process (`remote`) or from a chained call.
    pub fn new(traceparent: Option<&HeaderValue>, remote: bool) -> RequestTrace {
        let parent = traceparent
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse);
        let server = server_context(parent);
        RequestTrace {
            server,
            guest: server.child(),
            parent: parent.map(|p| p.span_id),
            remote_parent: remote && parent.is_some(),
        }
    }

    /// Whether its spans are recorded.
    pub fn recorded(&self) -> bool {
        self.server.sampled && exporting()
    }
}

/// `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sampler {
    /// A ratio (0.0 to 1.0) of new traces, by trace id; `parent_based`:
    /// a trace that arrives keeps its caller's decision.
    Ratio { ratio: f64, parent_based: bool },
}

impl Sampler {
    fn from_env() -> Sampler {
        let name = std::env::var("OTEL_TRACES_SAMPLER").unwrap_or_default();
        let arg = std::env::var("OTEL_TRACES_SAMPLER_ARG")
            .ok()
            .and_then(|a| a.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(1.0);
        let (ratio, parent_based) = match name.trim() {
            "always_on" => (1.0, false),
            "always_off" => (0.0, false),
            "traceidratio" => (arg, false),
            "parentbased_always_off" => (0.0, true),
            "parentbased_traceidratio" => (arg, true),
            _ => (1.0, true),
        };
        Sampler::Ratio {
            ratio,
            parent_based,
        }
    }

    fn sample(self, parent: Option<TraceContext>, trace_id: u128) -> bool {
        let Sampler::Ratio {
            ratio,
            parent_based,
        } = self;
        match parent {
            Some(parent) if parent_based => parent.sampled,
            // The trace id's low 64 bits, as OpenTelemetry's ratio sampler.
            _ => (trace_id as u64 >> 1) < (ratio * (1u64 << 63) as f64) as u64,
        }
    }
}

/// The sampler in force, for the log line that says export is on.
pub(super) fn sampler_name() -> impl std::fmt::Debug {
    sampler()
}

fn sampler() -> Sampler {
    static SAMPLER: OnceLock<Sampler> = OnceLock::new();
    *SAMPLER.get_or_init(Sampler::from_env)
}

/// What a span is, in OpenTelemetry's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request the host received.
    Server,
    /// A request a guest sent (outbound or chained).
    Client,
    /// Work inside the host (guest execution, cold start, reload).
    Internal,
}

/// One finished span, as the request path records it.
#[derive(Debug, Clone)]
pub struct Span {
    /// Its trace and id (`sampled` is ignored: only sampled spans are
    /// recorded).
    pub context: TraceContext,
    /// Its parent's span id, if it has one.
    pub parent: Option<u64>,
    /// The parent came from another process (an incoming `traceparent`).
    pub remote_parent: bool,
    /// Its name.
    pub name: Cow<'static, str>,
    /// Its kind.
    pub kind: Kind,
    /// When it began.
    pub start: SystemTime,
    /// When it ended.
    pub end: SystemTime,
    /// Its attributes (OpenTelemetry semantic-convention names).
    pub attributes: Vec<KeyValue>,
    /// Set when the span is a failure: the error's description.
    pub error: Option<String>,
}

/// A finished request, as the request path records it: the exporter
/// thread makes its server span and guest span (attributes included), so
/// the request path only copies a few words and short strings. Nothing in
/// it is on the heap (unless a string is longer than [`Text`] holds), so
/// the exporter thread frees nothing the serving thread allocated.
#[derive(Debug)]
pub struct RequestRecord {
    /// Its trace.
    pub trace: RequestTrace,
    /// The service that served it.
    pub service: Option<Text>,
    /// The request id.
    pub request_id: Text,
    /// The method.
    pub method: http::Method,
    /// The path.
    pub path: Text,
    /// When it arrived.
    pub start: Instant,
    /// When its guest started, if one ran.
    pub guest_start: Option<Instant>,
    /// When it ended, on both clocks (the others are converted by it).
    pub end: (Instant, SystemTime),
    /// The status sent.
    pub status: u16,
    /// The host-made error kind, if it failed.
    pub error: Option<&'static str>,
    /// How its instance was had (`fresh`, `pooled`, `shared`).
    pub instance: &'static str,
    /// Fuel the guest used.
    pub fuel: Option<u64>,
    /// The guest's peak linear memory.
    pub peak_memory: Option<usize>,
}

impl RequestRecord {
    /// The wall-clock time of `instant`, an instant of this request.
    pub fn wall_clock(&self, instant: Instant) -> SystemTime {
        let (end, system) = self.end;
        system - end.saturating_duration_since(instant)
    }
}

/// A string copied into the record itself when short (paths, request ids
/// and service names nearly always are).
#[derive(Clone)]
pub enum Text {
    /// Up to 62 bytes, in place.
    Short(u8, [u8; 62]),
    /// Anything longer.
    Long(Box<str>),
}

impl Text {
    /// The string.
    pub fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `str`, so always UTF-8.
            Text::Short(len, bytes) => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Text::Long(text) => text,
        }
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        let mut bytes = [0; 62];
        match bytes.get_mut(..text.len()) {
            Some(short) => {
                short.copy_from_slice(text.as_bytes());
                Text::Short(text.len() as u8, bytes)
            }
            None => Text::Long(text.into()),
        }
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// What the request path hands the exporter thread.
#[allow(
    clippy::large_enum_variant,
    reason = "a boxed request record would be an allocation per request, freed on another thread"
)]
pub(super) enum Record {
    /// A span made whole on the request path (calls, host work).
    Span(Span),
    /// A finished request, made into its spans by the exporter.
    Request(RequestRecord),
}

/// The wall-clock time of `instant` (spans carry wall-clock times).
pub fn wall_clock(instant: Instant) -> SystemTime {
    let now = Instant::now();
    let system = SystemTime::now();
    match now.checked_duration_since(instant) {
        Some(ago) => system - ago,
        None => system + instant.duration_since(now),
    }
}

/// The spans dropped because the queue was full or the collector refused
/// them (`wasmhost_spans_dropped_total`).
pub fn dropped() -> &'static Counter {
    static DROPPED: OnceLock<Counter> = OnceLock::new();
    DROPPED.get_or_init(Counter::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_and_junk_is_refused() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ctx = TraceContext::parse(tp).unwrap();
        assert_eq!(
            ctx.trace_hex().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(ctx.span_hex().to_string(), "00f067aa0ba902b7");
        for id in [1u128, 0xabc, u128::MAX, 0x0123_4567_89ab_cdef << 60] {
            assert_eq!(&*Hex::Trace(id).digits(), format!("{id:032x}"));
            assert_eq!(
                &*Hex::Span(id as u64).digits(),
                format!("{:016x}", id as u64)
            );
        }
        let unsampled = TraceContext {
            sampled: false,
            ..ctx
        };
        assert_eq!(
            unsampled.traceparent().to_str().unwrap(),
            &tp.replace("-01", "-00")
        );
        assert!(ctx.sampled);
        assert_eq!(ctx.traceparent().to_str().unwrap(), tp);
        for junk in [
            "junk",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(junk), None, "{junk}");
        }
        let child = ctx.child();
        assert_eq!(child.trace_id, ctx.trace_id);
        assert_ne!(child.span_id, ctx.span_id);
    }

    #[test]
    fn a_server_span_continues_its_parent_and_keeps_its_sampling_decision() {
        let parent =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
        let server = server_context(Some(parent));
        assert_eq!(server.trace_id, parent.trace_id);
        assert_ne!(server.span_id, parent.span_id);
        assert!(!server.sampled, "parent-based: the caller did not sample");
        let root = server_context(None);
        assert_ne!(root.trace_id, 0);
    }

    #[test]
    fn the_ratio_sampler_keeps_about_its_share() {
        let half = Sampler::Ratio {
            ratio: 0.5,
            parent_based: true,
        };
        let kept = (0..10_000)
            .filter(|_| half.sample(None, fastrand::u128(1..)))
            .count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
        let none = Sampler::Ratio {
            ratio: 0.0,
            parent_based: false,
        };
        assert!(!none.sample(None, u128::MAX));
    }
}
