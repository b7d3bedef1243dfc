//! OTLP export: a dedicated thread (`wasmhost-otlp`, at background
//! priority, nice 10, so a saturated machine serves requests first) drains
//! the span queue of [`super::traces`] every `OTEL_BSP_SCHEDULE_DELAY`
//! (sooner when it is half full),
//! writes the records as one OTLP/protobuf export request
//! ([`super::otlp_wire`]) and POSTs it through the host's own HTTP/1.1
//! client ([`Http1Client`], TLS for `https://`). A batch the collector
//! refused or that timed out is counted in `wasmhost_spans_dropped_total`.
//!
//! Configuration is OpenTelemetry's standard environment: export is on
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! is set (and `OTEL_TRACES_EXPORTER` is not `none`);
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and the batch settings
//! `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_SCHEDULE_DELAY` and
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` are honoured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::otlp_http::Http1Client;
use super::otlp_wire::Batch;
use super::span_queue::{Queue, install_queue};
use super::traces::{Record, dropped, sampler_name};

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
/// (for at most two seconds) and stops the thread.
pub struct ExportGuard {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ExportGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
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

/// Where and how spans are sent, from OpenTelemetry's environment.
struct Destination {
    /// The full URL of the traces endpoint.
    url: http::Uri,
    /// `OTEL_EXPORTER_OTLP_HEADERS` / `_TRACES_HEADERS`.
    headers: http::HeaderMap,
    /// The resource's attributes (`service.name` first).
    resource: Vec<(String, String)>,
}

/// `%XX` escapes decoded (OpenTelemetry's header and resource values are
/// URL-encoded), leaving anything malformed as it is.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = value
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `key=value,key=value` pairs, values URL-decoded.
fn pairs(list: &str) -> impl Iterator<Item = (String, String)> + '_ {
    list.split(',').filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        let key = key.trim();
        (!key.is_empty()).then(|| (key.to_owned(), percent_decode(value.trim())))
    })
}

impl Destination {
    fn from_env() -> anyhow::Result<Destination> {
        Destination::from_vars(|name| std::env::var(name).ok())
    }

    /// The destination the variables `env` gives say.
    fn from_vars(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Destination> {
        let var = |name: &'static str| {
            env(name)
                .filter(|value| !value.trim().is_empty())
                .map(|value| (name, value.trim().to_owned()))
        };
        if let Some((name, protocol)) =
            var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            && protocol != "http/protobuf"
        {
            anyhow::bail!(
                "{name}=`{protocol}`: wasmhost exports traces as OTLP over HTTP with protobuf \
                 bodies only; set it to `http/protobuf` (the collector's port 4318) or unset it"
            );
        }
        // The signal's own variable is the whole URL; the general one is a
        // base that `v1/traces` is appended to (OpenTelemetry's rule).
        let (name, url) = match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some((name, url)) => (name, url),
            None => {
                let (name, base) = var("OTEL_EXPORTER_OTLP_ENDPOINT")
                    .ok_or_else(|| anyhow::anyhow!("no OTLP endpoint is set"))?;
                (name, format!("{}/v1/traces", base.trim_end_matches('/')))
            }
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            anyhow::bail!(
                "{name}=`{url}`: the collector's address must start with `http://` or `https://`"
            );
        }
        let url: http::Uri = url
            .parse()
            .map_err(|err| anyhow::anyhow!("{name}=`{url}`: not a URL: {err}"))?;
        if url.host().is_none_or(str::is_empty) {
            anyhow::bail!("{name}=`{url}`: the URL names no host");
        }
        let mut headers = http::HeaderMap::new();
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            let Some((name, list)) = var(name) else {
                continue;
            };
            for (key, value) in pairs(&list) {
                let header = http::HeaderName::from_bytes(key.as_bytes());
                let value = http::HeaderValue::from_str(&value);
                let (Ok(header), Ok(value)) = (header, value) else {
                    // The value may be a secret: name the key only.
                    anyhow::bail!("{name}: `{key}` is not a valid HTTP header");
                };
                headers.insert(header, value);
            }
        }
        let mut resource: Vec<(String, String)> = var("OTEL_RESOURCE_ATTRIBUTES")
            .map(|(_, list)| pairs(&list).collect())
            .unwrap_or_default();
        let service = var("OTEL_SERVICE_NAME").map(|(_, name)| name).or_else(|| {
            let at = resource.iter().position(|(k, _)| k == "service.name")?;
            Some(resource.remove(at).1)
        });
        resource.retain(|(k, _)| k != "service.name");
        resource.insert(
            0,
            ("service.name".into(), service.unwrap_or("wasmhost".into())),
        );
        if !resource.iter().any(|(k, _)| k == "service.version") {
            resource.push(("service.version".into(), env!("CARGO_PKG_VERSION").into()));
        }
        Ok(Destination {
            url,
            headers,
            resource,
        })
    }
}

/// Starts exporting when OpenTelemetry's environment asks for it
/// ([`configured`]); `None` when it does not. Settings the host cannot
/// honour (another protocol, an endpoint that is not an HTTP URL) are an
/// error naming the variable.
pub fn start() -> anyhow::Result<Option<ExportGuard>> {
    if !configured() {
        return Ok(None);
    }
    let destination = Destination::from_env()?;
    let timeout = Duration::from_millis(env_number(
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        env_number("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000),
    ));
    let queue =
        usize::try_from(env_number("OTEL_BSP_MAX_QUEUE_SIZE", QUEUE as u64)).unwrap_or(QUEUE);
    let rx = install_queue(queue);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    tracing::info!(
        endpoint = %destination.url,
        sampler = ?sampler_name(),
        "exporting traces over OTLP/HTTP"
    );
    let client = Http1Client::new(timeout);
    let thread = std::thread::Builder::new()
        .name("wasmhost-otlp".into())
        .spawn(move || export_loop(client, destination, rx, &stopped))?;
    Ok(Some(ExportGuard {
        stop,
        thread: Some(thread),
    }))
}

/// The exporter thread: every `OTEL_BSP_SCHEDULE_DELAY` (200 ms), or as
/// soon as the queue is half full, export
/// what is queued, in batches of at most `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`
/// spans; on stop, export what is left and end.
fn export_loop(
    client: Http1Client,
    destination: Destination,
    queue: &'static Queue,
    stop: &AtomicBool,
) {
    // Serving threads first: when the machine is saturated, export waits
    // (and a full queue drops spans) rather than take CPU from requests.
    crate::wasm::priority::lower_this_thread();
    queue.wake_when_half_full(std::thread::current());
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
    let mut batch = Batch::new(&destination.resource);
    let mut waiting = Vec::new();
    runtime.block_on(async {
        loop {
            // Woken early when the queue is half full (or to stop).
            std::thread::park_timeout(drain_every);
            let stopping = stop.load(Ordering::Acquire);
            // While a drain brings a whole batch or more, the queue is
            // filling faster than one drain a period: drain again at once.
            loop {
                let drained = queue.drain(&mut waiting);
                let mut records = waiting.drain(..).peekable();
                while records.peek().is_some() {
                    for record in records.by_ref() {
                        match &record {
                            Record::Span(span) => batch.add(span),
                            Record::Request(request) => batch.add_request(request),
                        }
                        if batch.len() >= batch_size {
                            break;
                        }
                    }
                    let spans = batch.len() as u64;
                    let body = bytes::Bytes::copy_from_slice(batch.finish());
                    if let Err(err) = client.post(&destination.url, &destination.headers, body).await {
                        dropped().inc_by(spans);
                        // A dead collector must not flood the log.
                        if failures_logged < 5 || failures_logged.is_power_of_two() {
                            tracing::warn!(error = %err, spans, "exporting spans failed; they are dropped");
                        }
                        failures_logged = failures_logged.saturating_add(1);
                    }
                }
                if drained < batch_size {
                    break;
                }
            }
            if stopping {
                break;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(vars: &[(&str, &str)]) -> anyhow::Result<Destination> {
        Destination::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_endpoint_headers_and_resource_follow_opentelemetrys_rules() {
        let d = destination(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=a%3Db, x-team = shop ,junk",
            ),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=cart,deployment.environment=prod%20eu",
            ),
        ])
        .unwrap();
        assert_eq!(d.url.to_string(), "http://collector:4318/v1/traces");
        assert_eq!(d.headers["api-key"], "a=b");
        assert_eq!(d.headers["x-team"], "shop");
        assert_eq!(d.resource[0], ("service.name".into(), "cart".into()));
        assert!(
            d.resource
                .contains(&("deployment.environment".into(), "prod eu".into()))
        );
        assert!(d.resource.iter().any(|(k, _)| k == "service.version"));

        // The signal's own endpoint is used as it is; OTEL_SERVICE_NAME wins.
        let d = destination(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "https://otel.example/ingest",
            ),
            ("OTEL_SERVICE_NAME", "shop"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=cart"),
        ])
        .unwrap();
        assert_eq!(d.url.to_string(), "https://otel.example/ingest");
        assert_eq!(d.resource[0], ("service.name".into(), "shop".into()));
        assert_eq!(
            d.resource
                .iter()
                .filter(|(k, _)| k == "service.name")
                .count(),
            1
        );

        let d = destination(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]).unwrap();
        assert_eq!(d.resource[0], ("service.name".into(), "wasmhost".into()));
    }

    #[test]
    fn settings_the_host_cannot_honour_are_refused_by_name() {
        for (vars, says) in [
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ][..],
                "OTEL_EXPORTER_OTLP_PROTOCOL=`grpc`",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318")][..],
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=`collector:4318`",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_HEADERS", "bad header=secret"),
                ][..],
                "`bad header` is not a valid HTTP header",
            ),
        ] {
            let err = destination(vars).err().expect("refused").to_string();
            assert!(err.contains(says), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
