//! OTLP export: a dedicated thread (`wasmhost-otlp`, at background
//! priority, nice 10, so a saturated machine serves requests first) drains
//! the span queue of [`super::traces`] every `OTEL_BSP_SCHEDULE_DELAY`,
//! turns the records into OpenTelemetry `SpanData` and hands them to
//! `opentelemetry-otlp`'s exporter, which sends OTLP HTTP/protobuf through
//! the host's own HTTP/1.1 client ([`Http1Client`], TLS for `https://`). A
//! batch the collector refused or that timed out is counted in
//! `wasmhost_spans_dropped_total`.
//!
//! Configuration is OpenTelemetry's standard environment: export is on
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! is set (and `OTEL_TRACES_EXPORTER` is not `none`);
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and the batch settings
//! `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_SCHEDULE_DELAY` and
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` are honoured.

use std::sync::mpsc::Receiver;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;

use super::traces::{Kind, Record, RequestRecord, Span, dropped, install_queue, sampler_name};

/// Spans waiting for the exporter thread; more are dropped and counted
/// (`OTEL_BSP_MAX_QUEUE_SIZE`).
const QUEUE: usize = 16 * 1024;

/// The most spans one export request carries
/// (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`; OpenTelemetry's default). Larger
/// batches cost less CPU per span but send longer bursts over the network,
/// which show in other requests' tail latency on a loaded machine.
const BATCH: usize = 512;

/// How often the exporter thread drains the queue, in milliseconds
/// (`OTEL_BSP_SCHEDULE_DELAY`).
const DRAIN_EVERY_MS: u64 = 200;

/// A positive number from the environment variable `name`, else `default`.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// Whether OpenTelemetry's environment asks for trace export.
pub fn configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let exporter = std::env::var("OTEL_TRACES_EXPORTER").unwrap_or_default();
    if exporter.trim() == "none" || std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v == "true") {
        return false;
    }
    set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
}

/// Keeps the exporter thread alive; dropping it exports what is queued
/// (for at most a second) and stops the thread.
pub struct ExportGuard {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ExportGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

/// Starts exporting when OpenTelemetry's environment asks for it
/// ([`configured`]); `None` when it does not. An exporter that cannot be
/// built (a malformed endpoint) is an error naming the variable.
pub fn start() -> anyhow::Result<Option<ExportGuard>> {
    if !configured() {
        return Ok(None);
    }
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::trace::SpanExporter as _;
    let var = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|name| Some((name, std::env::var(name).ok()?)))
            .filter(|(_, value)| !value.trim().is_empty())
    };
    if let Some((name, protocol)) = var([
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]) && protocol.trim() != "http/protobuf"
    {
        anyhow::bail!(
            "{name}=`{protocol}`: wasmhost exports traces as OTLP over HTTP with protobuf \
             bodies only; set it to `http/protobuf` (the collector's port 4318) or unset it"
        );
    }
    if let Some((name, endpoint)) = var([
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]) && !(endpoint.trim().starts_with("http://") || endpoint.trim().starts_with("https://"))
    {
        anyhow::bail!(
            "{name}=`{endpoint}`: the collector's address must start with `http://` or `https://`"
        );
    }
    use opentelemetry_otlp::WithHttpConfig;
    let timeout = Duration::from_millis(env_number(
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        env_number("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000),
    ));
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(Http1Client::new(timeout))
        .build()
        .map_err(|err| {
            anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export traces there: {err}")
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let resource = if std::env::var("OTEL_SERVICE_NAME").is_ok()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|attrs| attrs.contains("service.name="))
    {
        resource
    } else {
        opentelemetry_sdk::Resource::builder()
            .with_service_name("wasmhost")
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build()
    };
    exporter.set_resource(&resource);
    let queue =
        usize::try_from(env_number("OTEL_BSP_MAX_QUEUE_SIZE", QUEUE as u64)).unwrap_or(QUEUE);
    let rx = install_queue(queue);
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("wasmhost-otlp".into())
        .spawn(move || export_loop(exporter, rx, stop_rx))?;
    tracing::info!(
        endpoint = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .unwrap_or_default(),
        sampler = ?sampler_name(),
        "exporting traces over OTLP/HTTP"
    );
    Ok(Some(ExportGuard {
        stop: Some(stop_tx),
        thread: Some(thread),
    }))
}

/// The exporter's HTTP client: HTTP/1.1, over TLS for an `https://`
/// endpoint (webpki roots), on one kept-alive connection (made again when
/// it breaks), each export bounded by `timeout`.
#[derive(Debug)]
struct Http1Client {
    timeout: Duration,
    connection: tokio::sync::Mutex<Option<Connection>>,
}

/// A connection to the collector, and where it goes.
struct Connection {
    authority: String,
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("authority", &self.authority)
            .finish()
    }
}

impl Http1Client {
    fn new(timeout: Duration) -> Http1Client {
        Http1Client {
            timeout,
            connection: tokio::sync::Mutex::new(None),
        }
    }

    async fn send(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        use http_body_util::BodyExt;
        let authority = request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .ok_or("the OTLP endpoint has no host")?;
        let mut connection = self.connection.lock().await;
        let reusable = connection
            .as_mut()
            .is_some_and(|c| c.authority == authority && !c.sender.is_closed());
        if !reusable {
            let stream = tokio::net::TcpStream::connect(&authority).await?;
            let _ = stream.set_nodelay(true);
            let sender = if request.uri().scheme_str() == Some("https") {
                let stream = tls_connector()
                    .connect(server_name(&authority)?, stream)
                    .await?;
                handshake(stream).await?
            } else {
                handshake(stream).await?
            };
            *connection = Some(Connection { authority, sender });
        }
        let Some(open) = connection.as_mut() else {
            return Err("no connection to the collector".into());
        };
        open.sender.ready().await?;
        let (mut parts, body) = request.into_parts();
        // HTTP/1.1 wants the path only, and the host in its header.
        if let Some(path) = parts.uri.path_and_query().cloned() {
            let host = parts.uri.authority().map(|a| a.to_string());
            parts.uri = path.as_str().parse()?;
            if let Some(host) = host
                && let Ok(value) = http::HeaderValue::from_str(&host)
            {
                parts.headers.insert(http::header::HOST, value);
            }
        }
        let request = http::Request::from_parts(parts, http_body_util::Full::new(body));
        let response = match open.sender.send_request(request).await {
            Ok(response) => response,
            Err(err) => {
                *connection = None;
                return Err(err.into());
            }
        };
        drop(connection);
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, 4 << 20)
            .collect()
            .await?;
        Ok(http::Response::from_parts(parts, body.to_bytes()))
    }
}

/// An HTTP/1.1 connection over `stream`, driven by its own task.
async fn handshake<S>(
    stream: S,
) -> Result<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// TLS with the webpki roots (the same rustls and roots the guests'
/// outbound HTTPS uses), made once.
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// The TLS server name of `authority` (`host:port`).
fn server_name(
    authority: &str,
) -> Result<rustls::pki_types::ServerName<'static>, opentelemetry_http::HttpError> {
    if let Ok(addr) = authority.parse::<std::net::SocketAddr>() {
        return Ok(rustls::pki_types::ServerName::from(addr.ip()));
    }
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    Ok(rustls::pki_types::ServerName::try_from(host.to_owned())?)
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Http1Client {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        match tokio::time::timeout(self.timeout, self.send(request)).await {
            Ok(result) => result,
            Err(_) => {
                // A half-sent request leaves the connection unusable.
                *self.connection.lock().await = None;
                Err(format!("no answer from the collector within {:?}", self.timeout).into())
            }
        }
    }
}

/// The exporter thread: every `OTEL_BSP_SCHEDULE_DELAY` (200 ms), export what is queued, in
/// batches; on stop, export what is left and end.
fn export_loop(
    exporter: opentelemetry_otlp::SpanExporter,
    queue: Receiver<Record>,
    stop: std::sync::mpsc::Receiver<()>,
) {
    use opentelemetry_sdk::trace::SpanExporter as _;
    // Serving threads first: when the machine is saturated, export waits
    // (and a full queue drops spans) rather than take CPU from requests.
    crate::wasm::priority::lower_this_thread();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "the trace exporter cannot start its runtime");
            return;
        }
    };
    let drain_every = Duration::from_millis(env_number("OTEL_BSP_SCHEDULE_DELAY", DRAIN_EVERY_MS));
    let batch_size = usize::try_from(env_number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", BATCH as u64))
        .unwrap_or(BATCH);
    let mut failures_logged = 0u32;
    let scope = opentelemetry::InstrumentationScope::builder("wasmhost")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    runtime.block_on(async {
        loop {
            let stopping = matches!(
                stop.recv_timeout(drain_every),
                Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
            );
            loop {
                let batch: Vec<_> = queue
                    .try_iter()
                    .take(batch_size)
                    .flat_map(|record| -> Box<dyn Iterator<Item = Span>> {
                        match record {
                            Record::Span(span) => Box::new(std::iter::once(span)),
                            Record::Request(request) => Box::new(request_spans(request)),
                        }
                    })
                    .map(|span| span_data(span, &scope))
                    .collect();
                if batch.is_empty() {
                    break;
                }
                let len = batch.len() as u64;
                let full = len >= batch_size as u64;
                if let Err(err) = exporter.export(batch).await {
                    dropped().inc_by(len);
                    // A dead collector must not flood the log.
                    if failures_logged < 5 || failures_logged.is_power_of_two() {
                        tracing::warn!(error = %err, spans = len, "exporting spans failed; they are dropped");
                    }
                    failures_logged = failures_logged.saturating_add(1);
                }
                if !full {
                    break;
                }
            }
            if stopping {
                break;
            }
        }
    });
}

/// A finished request's server span and guest span, with their attributes
/// (built here, off the request path).
fn request_spans(request: RequestRecord) -> impl Iterator<Item = Span> {
    let service = request.service.as_deref().unwrap_or("wasmhost");
    let mut attributes = vec![
        KeyValue::new("http.request.method", request.method.as_str().to_owned()),
        KeyValue::new("url.path", request.path),
        KeyValue::new("http.response.status_code", i64::from(request.status)),
        KeyValue::new("wasmhost.request_id", request.request_id.to_string()),
        KeyValue::new("wasmhost.service", service.to_owned()),
    ];
    if let Some(kind) = request.error {
        attributes.push(KeyValue::new("error.type", kind));
    }
    let failed = (request.status >= 500).then(|| {
        request
            .error
            .map_or_else(|| request.status.to_string(), str::to_owned)
    });
    let server = Span {
        context: request.trace.server,
        parent: request.trace.parent,
        remote_parent: request.trace.remote_parent,
        name: format!("{} {service}", request.method).into(),
        kind: Kind::Server,
        start: request.start,
        end: request.end,
        attributes,
        error: failed,
    };
    let guest = request.guest_start.map(|start| {
        let mut attributes = vec![KeyValue::new("wasmhost.instance", request.instance)];
        if let Some(fuel) = request.fuel {
            attributes.push(KeyValue::new(
                "wasmhost.fuel_used",
                i64::try_from(fuel).unwrap_or(i64::MAX),
            ));
        }
        if let Some(peak) = request.peak_memory {
            attributes.push(KeyValue::new(
                "wasmhost.peak_memory",
                i64::try_from(peak).unwrap_or(i64::MAX),
            ));
        }
        if let Some(kind) = request.error {
            attributes.push(KeyValue::new("error.type", kind));
        }
        Span {
            context: request.trace.guest,
            parent: Some(request.trace.server.span_id),
            remote_parent: false,
            name: "guest".into(),
            kind: Kind::Internal,
            start,
            end: request.end,
            attributes,
            error: request.error.map(str::to_owned),
        }
    });
    std::iter::once(server).chain(guest)
}

/// A [`Span`] in OpenTelemetry's export form.
fn span_data(
    span: Span,
    scope: &opentelemetry::InstrumentationScope,
) -> opentelemetry_sdk::trace::SpanData {
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
    };
    opentelemetry_sdk::trace::SpanData {
        span_context: SpanContext::new(
            TraceId::from(span.context.trace_id),
            SpanId::from(span.context.span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: span.parent.map_or(SpanId::INVALID, SpanId::from),
        parent_span_is_remote: span.remote_parent,
        span_kind: match span.kind {
            Kind::Server => SpanKind::Server,
            Kind::Client => SpanKind::Client,
            Kind::Internal => SpanKind::Internal,
        },
        name: span.name,
        start_time: span.start,
        end_time: span.end,
        attributes: span.attributes,
        dropped_attributes_count: 0,
        events: Default::default(),
        links: Default::default(),
        status: match span.error {
            Some(description) => Status::error(description),
            None => Status::Unset,
        },
        instrumentation_scope: scope.clone(),
    }
}
