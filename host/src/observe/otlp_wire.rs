//! The OTLP trace export request (`ExportTraceServiceRequest`, from
//! `opentelemetry/proto/collector/trace/v1`) in protobuf, written straight
//! from the host's span records into one reused buffer.
//!
//! Why not the SDK's exporter: going through `SpanData` and the generated
//! message types costs a dozen allocations per span on the exporter
//! thread, and frees on it what the serving threads allocated; at sample
//! ratio 1.0 on a saturated 2-core machine that was the difference between
//! 0.91× and 0.96× of hello's throughput with tracing off (docs/benchmarks.md).
//! The unit tests below decode what this writes with the official
//! `opentelemetry-proto` types, field by field.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::{KeyValue, Value};

use super::traces::{Kind, RequestRecord, Span, Text};

/// Protobuf wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    // 7 bits a byte; 0 takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from(field << 3 | wire));
}

fn len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The wire size of a length-delimited field `field` holding `len` bytes.
fn len_field_size(field: u32, len: usize) -> usize {
    varint_len(u64::from(field << 3)) + varint_len(len as u64) + len
}

/// An attribute value, borrowed from wherever it lives.
#[derive(Clone, Copy)]
enum Attr<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Double(f64),
}

impl Attr<'_> {
    /// The encoded `AnyValue` message's size.
    fn size(&self) -> usize {
        match self {
            Attr::Str(s) => len_field_size(1, s.len()),
            Attr::Bool(_) => 2,
            Attr::Int(i) => 1 + varint_len(*i as u64),
            Attr::Double(_) => 9,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Attr::Str(s) => len_field(out, 1, s.as_bytes()),
            Attr::Bool(b) => {
                tag(out, 2, VARINT);
                out.push(u8::from(*b));
            }
            Attr::Int(i) => {
                tag(out, 3, VARINT);
                varint(out, *i as u64);
            }
            Attr::Double(d) => {
                tag(out, 4, FIXED64);
                out.extend_from_slice(&d.to_le_bytes());
            }
        }
    }
}

/// A `KeyValue` message as field `field` of its parent.
fn attribute(out: &mut Vec<u8>, field: u32, key: &str, value: Attr<'_>) {
    let value_size = value.size();
    let size = len_field_size(1, key.len()) + len_field_size(2, value_size);
    tag(out, field, LEN);
    varint(out, size as u64);
    len_field(out, 1, key.as_bytes());
    tag(out, 2, LEN);
    varint(out, value_size as u64);
    value.write(out);
}

/// An OpenTelemetry API attribute (arrays, which the host never records,
/// are written as their debug text).
fn api_attribute(out: &mut Vec<u8>, field: u32, kv: &KeyValue) {
    let text;
    let value = match &kv.value {
        Value::Bool(b) => Attr::Bool(*b),
        Value::I64(i) => Attr::Int(*i),
        Value::F64(d) => Attr::Double(*d),
        Value::String(s) => Attr::Str(s.as_str()),
        other => {
            text = other.to_string();
            Attr::Str(&text)
        }
    };
    attribute(out, field, kv.key.as_str(), value);
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The fields of a `Span` message that every span has.
struct Head<'a> {
    trace_id: u128,
    span_id: u64,
    parent: Option<u64>,
    remote_parent: bool,
    name: &'a str,
    kind: Kind,
    start: SystemTime,
    end: SystemTime,
}

impl Head<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        len_field(out, 1, &self.trace_id.to_be_bytes());
        len_field(out, 2, &self.span_id.to_be_bytes());
        if let Some(parent) = self.parent {
            len_field(out, 4, &parent.to_be_bytes());
        }
        len_field(out, 5, self.name.as_bytes());
        tag(out, 6, VARINT);
        out.push(match self.kind {
            Kind::Internal => 1,
            Kind::Server => 2,
            Kind::Client => 3,
        });
        tag(out, 7, FIXED64);
        out.extend_from_slice(&unix_nanos(self.start).to_le_bytes());
        tag(out, 8, FIXED64);
        out.extend_from_slice(&unix_nanos(self.end).to_le_bytes());
        // Span flags: sampled, and whether the parent is remote is known.
        let flags = 0x01 | 0x100 | if self.remote_parent { 0x200 } else { 0 };
        tag(out, 16, FIXED32);
        out.extend_from_slice(&(flags as u32).to_le_bytes());
    }
}

/// A `Status` message (field 15): error, with `message`.
fn error_status(out: &mut Vec<u8>, message: &str) {
    let size = len_field_size(2, message.len()) + 2;
    tag(out, 15, LEN);
    varint(out, size as u64);
    len_field(out, 2, message.as_bytes());
    tag(out, 3, VARINT);
    out.push(2);
}

/// Builds export requests: spans are added one by one, [`Batch::finish`]
/// wraps them with the resource and scope. Its buffers are kept from one
/// batch to the next.
pub struct Batch {
    /// The resource's attributes, encoded once.
    resource: Vec<u8>,
    /// The instrumentation scope, encoded once.
    scope: Vec<u8>,
    /// The `ScopeSpans.spans` fields so far.
    spans: Vec<u8>,
    /// One span's message while it is written.
    span: Vec<u8>,
    /// The finished request.
    out: Vec<u8>,
    count: usize,
}

impl Batch {
    /// A batch whose spans come from a resource with `resource` attributes.
    pub fn new(resource: &[(String, String)]) -> Batch {
        let mut encoded = Vec::new();
        for (key, value) in resource {
            attribute(&mut encoded, 1, key, Attr::Str(value));
        }
        let mut scope = Vec::new();
        len_field(&mut scope, 1, b"wasmhost");
        len_field(&mut scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
        Batch {
            resource: encoded,
            scope,
            spans: Vec::new(),
            span: Vec::new(),
            out: Vec::new(),
            count: 0,
        }
    }

    /// Spans added since the last [`Batch::finish`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no span was added since the last [`Batch::finish`].
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn push_span(&mut self) {
        len_field(&mut self.spans, 2, &self.span);
        self.span.clear();
        self.count += 1;
    }

    /// Adds a span recorded on the request path.
    pub fn add(&mut self, span: &Span) {
        let out = &mut self.span;
        Head {
            trace_id: span.context.trace_id,
            span_id: span.context.span_id,
            parent: span.parent,
            remote_parent: span.remote_parent,
            name: &span.name,
            kind: span.kind,
            start: span.start,
            end: span.end,
        }
        .write(out);
        for kv in &span.attributes {
            api_attribute(out, 9, kv);
        }
        if let Some(error) = &span.error {
            error_status(out, error);
        }
        self.push_span();
    }

    /// Adds a finished request's server span and, if a guest ran, its
    /// guest span (OpenTelemetry's HTTP semantic conventions).
    pub fn add_request(&mut self, request: &RequestRecord) {
        let service = request.service.as_ref().map_or("wasmhost", Text::as_str);
        let mut name = String::with_capacity(request.method.as_str().len() + 1 + service.len());
        name.push_str(request.method.as_str());
        name.push(' ');
        name.push_str(service);
        let out = &mut self.span;
        Head {
            trace_id: request.trace.server.trace_id,
            span_id: request.trace.server.span_id,
            parent: request.trace.parent,
            remote_parent: request.trace.remote_parent,
            name: &name,
            kind: Kind::Server,
            start: request.wall_clock(request.start),
            end: request.end.1,
        }
        .write(out);
        attribute(
            out,
            9,
            "http.request.method",
            Attr::Str(request.method.as_str()),
        );
        attribute(out, 9, "url.path", Attr::Str(request.path.as_str()));
        attribute(
            out,
            9,
            "http.response.status_code",
            Attr::Int(i64::from(request.status)),
        );
        attribute(
            out,
            9,
            "wasmhost.request_id",
            Attr::Str(request.request_id.as_str()),
        );
        attribute(out, 9, "wasmhost.service", Attr::Str(service));
        if let Some(kind) = request.error {
            attribute(out, 9, "error.type", Attr::Str(kind));
        }
        if request.status >= 500 {
            let status;
            let message = match request.error {
                Some(kind) => kind,
                None => {
                    status = request.status.to_string();
                    &status
                }
            };
            error_status(out, message);
        }
        self.push_span();

        let Some(start) = request.guest_start else {
            return;
        };
        let out = &mut self.span;
        Head {
            trace_id: request.trace.guest.trace_id,
            span_id: request.trace.guest.span_id,
            parent: Some(request.trace.server.span_id),
            remote_parent: false,
            name: "guest",
            kind: Kind::Internal,
            start: request.wall_clock(start),
            end: request.end.1,
        }
        .write(out);
        attribute(out, 9, "wasmhost.instance", Attr::Str(request.instance));
        if let Some(fuel) = request.fuel {
            let fuel = i64::try_from(fuel).unwrap_or(i64::MAX);
            attribute(out, 9, "wasmhost.fuel_used", Attr::Int(fuel));
        }
        if let Some(peak) = request.peak_memory {
            let peak = i64::try_from(peak).unwrap_or(i64::MAX);
            attribute(out, 9, "wasmhost.peak_memory", Attr::Int(peak));
        }
        if let Some(kind) = request.error {
            attribute(out, 9, "error.type", Attr::Str(kind));
            error_status(out, kind);
        }
        self.push_span();
    }

    /// The export request holding the spans added since the last call; the
    /// batch is empty again afterwards.
    pub fn finish(&mut self) -> &[u8] {
        let resource_size = self.resource.len();
        let scope_spans_size = len_field_size(1, self.scope.len()) + self.spans.len();
        let resource_spans_size =
            len_field_size(1, resource_size) + len_field_size(2, scope_spans_size);
        let out = &mut self.out;
        out.clear();
        out.reserve(len_field_size(1, resource_spans_size));
        // ExportTraceServiceRequest.resource_spans
        tag(out, 1, LEN);
        varint(out, resource_spans_size as u64);
        // ResourceSpans.resource
        len_field(out, 1, &self.resource);
        // ResourceSpans.scope_spans
        tag(out, 2, LEN);
        varint(out, scope_spans_size as u64);
        // ScopeSpans.scope, then ScopeSpans.spans
        len_field(out, 1, &self.scope);
        out.extend_from_slice(&self.spans);
        self.spans.clear();
        self.count = 0;
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message;

    use super::*;
    use crate::observe::traces::{RequestTrace, TraceContext};

    fn attr(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> Option<Any> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone()?.value)
    }

    #[test]
    fn varint_sizes_match_what_is_written() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
    }

    #[test]
    fn what_is_written_decodes_with_the_official_types() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let i0 = std::time::Instant::now();
        let server = TraceContext {
            trace_id: 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736,
            span_id: 0x1111,
            sampled: true,
        };
        let request = RequestRecord {
            trace: RequestTrace {
                server,
                guest: TraceContext {
                    span_id: 0x2222,
                    ..server
                },
                parent: Some(0x00f0_67aa_0ba9_02b7),
                remote_parent: true,
            },
            service: Some("shop".into()),
            request_id: "req-1".into(),
            method: http::Method::POST,
            // Longer than a short text.
            path: "/cart/é".repeat(40).as_str().into(),
            start: i0,
            guest_start: Some(i0 + Duration::from_micros(5)),
            end: (i0 + Duration::from_millis(2), t0 + Duration::from_millis(2)),
            status: 504,
            error: Some("timeout"),
            instance: "fresh",
            fuel: Some(u64::MAX),
            peak_memory: Some(65_536),
        };
        let kv_span = Span {
            context: TraceContext {
                span_id: 0x3333,
                ..server
            },
            parent: Some(0x2222),
            remote_parent: false,
            name: "get".into(),
            kind: Kind::Client,
            start: t0,
            end: t0 + Duration::from_micros(30),
            attributes: vec![
                KeyValue::new("db.system.name", "sqlite"),
                KeyValue::new("n", -7i64),
                KeyValue::new("ok", true),
                KeyValue::new("ratio", 0.5),
            ],
            error: None,
        };
        let mut batch = Batch::new(&[("service.name".into(), "shop".into())]);
        for _ in 0..2 {
            batch.add_request(&request);
            batch.add(&kv_span);
            assert_eq!(batch.len(), 3);
            let decoded = ExportTraceServiceRequest::decode(batch.finish()).unwrap();
            assert!(batch.is_empty());

            let [resource] = &decoded.resource_spans[..] else {
                panic!("one resource: {decoded:?}")
            };
            let attrs = &resource.resource.as_ref().unwrap().attributes;
            assert_eq!(attrs[0].key, "service.name");
            let [scope] = &resource.scope_spans[..] else {
                panic!("one scope")
            };
            assert_eq!(scope.scope.as_ref().unwrap().name, "wasmhost");
            let [server_span, guest, kv] = &scope.spans[..] else {
                panic!("three spans: {:?}", scope.spans)
            };
            assert_eq!(server_span.trace_id, server.trace_id.to_be_bytes());
            assert_eq!(server_span.span_id, 0x1111u64.to_be_bytes());
            assert_eq!(
                server_span.parent_span_id,
                0x00f0_67aa_0ba9_02b7u64.to_be_bytes()
            );
            assert_eq!(server_span.flags, 0x301);
            assert_eq!(server_span.name, "POST shop");
            assert_eq!(server_span.kind, 2);
            assert_eq!(server_span.start_time_unix_nano, 1_700_000_000_000_000_000);
            assert_eq!(server_span.end_time_unix_nano, 1_700_000_000_002_000_000);
            assert_eq!(
                attr(server_span, "url.path"),
                Some(Any::StringValue(request.path.as_str().into()))
            );
            assert_eq!(
                attr(server_span, "http.response.status_code"),
                Some(Any::IntValue(504))
            );
            assert_eq!(
                attr(server_span, "error.type"),
                Some(Any::StringValue("timeout".into()))
            );
            let status = server_span.status.as_ref().unwrap();
            assert_eq!((status.code, status.message.as_str()), (2, "timeout"));

            assert_eq!(guest.parent_span_id, 0x1111u64.to_be_bytes());
            assert_eq!((guest.kind, guest.flags), (1, 0x101));
            assert_eq!(
                attr(guest, "wasmhost.fuel_used"),
                Some(Any::IntValue(i64::MAX))
            );
            assert_eq!(
                attr(guest, "wasmhost.peak_memory"),
                Some(Any::IntValue(65_536))
            );

            assert_eq!((kv.kind, kv.name.as_str()), (3, "get"));
            assert_eq!(attr(kv, "n"), Some(Any::IntValue(-7)));
            assert_eq!(attr(kv, "ok"), Some(Any::BoolValue(true)));
            assert_eq!(attr(kv, "ratio"), Some(Any::DoubleValue(0.5)));
            assert_eq!(kv.status, None);
        }
    }
}
