//! How a request ended: the one place that classifies a guest's failure,
//! writes the request's log event and records its metrics. Every request —
//! rejected before it ran, run on a fresh instance, on a pooled one or on a
//! shared one — ends here, so all of them are reported alike.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::metrics::gauge::Gauge;
use wasmtime::Trap;

use crate::dataplane::error_kind::ErrorKind;
use crate::observe::json_line::JsonLine;
use crate::observe::log_sink;
use crate::observe::metrics::{ErrorLabels, Finished, ServiceMetrics};
use crate::observe::telemetry;
use crate::observe::traces::{self, RequestTrace};

/// Counts a request in `wasmhost_requests_in_flight` while alive.
pub struct InFlight(Gauge);

impl InFlight {
    /// Counts one more request in `gauge`.
    pub fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Why a guest did not finish cleanly.
pub enum Failure {
    /// The guest's own error (trap, fuel, interrupt, ...).
    Guest(wasmtime::Error),
    /// The wall-clock deadline passed while the host was waiting.
    Timeout,
}

/// The error kind a failed guest is reported as. `memory_refused`: the
/// memory limit refused a grow during the request; `body_exceeded`: the
/// request body crossed `max_request_body`.
pub fn classify(failure: &Failure, memory_refused: bool, body_exceeded: bool) -> ErrorKind {
    match failure {
        Failure::Timeout => ErrorKind::Timeout,
        Failure::Guest(error) => classify_error(error, memory_refused, body_exceeded),
    }
}

/// The error kind of a guest's own error (see [`classify`]).
pub fn classify_error(
    error: &wasmtime::Error,
    memory_refused: bool,
    body_exceeded: bool,
) -> ErrorKind {
    let trap = error.downcast_ref::<Trap>().copied().or_else(|| {
        error
            .chain()
            .find_map(|cause| cause.downcast_ref::<Trap>().copied())
    });
    match trap {
        Some(Trap::OutOfFuel) => ErrorKind::FuelExhausted,
        Some(Trap::Interrupt) => ErrorKind::Timeout,
        _ if body_exceeded => ErrorKind::BodyTooLarge,
        _ if memory_refused => ErrorKind::MemoryExhausted,
        _ if error
            .chain()
            .any(|cause| cause.is::<wasmtime::PoolConcurrencyLimitError>()) =>
        {
            ErrorKind::Overloaded
        }
        _ => ErrorKind::Trap,
    }
}

/// What the guest used during a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Fuel consumed; `None` on an engine without fuel metering
    /// (`fuel = "unlimited"`).
    pub fuel: Option<u64>,
    /// Peak linear memory, in bytes.
    pub peak_memory: usize,
}

/// How a request was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Refused before a guest ran (routing, admission, limits, loading).
    Rejected,
    /// A fresh instance.
    Fresh,
    /// A pooled instance, one request at a time (`served` before this one).
    Pooled,
    /// A shared WASI 0.3 instance with other requests at once.
    Shared,
}

impl Strategy {
    fn as_str(self) -> &'static str {
        match self {
            Strategy::Rejected => "rejected",
            Strategy::Fresh => "fresh",
            Strategy::Pooled => "pooled",
            Strategy::Shared => "shared",
        }
    }
}

/// Everything reported about one ended request.
pub struct Report<'a> {
    /// The service and its metric handles; `None` when no route matched
    /// or the request was refused before routing.
    pub service: Option<(&'a Arc<str>, &'a ServiceMetrics)>,
    /// The request id.
    pub request_id: &'a Arc<str>,
    /// The request's trace (`None` when it was refused before one began).
    pub trace: Option<&'a RequestTrace>,
    /// When its guest started, if one ran for it.
    pub guest_started: Option<Instant>,
    /// The request's method.
    pub method: &'a http::Method,
    /// The request's path.
    pub path: &'a str,
    /// When the request arrived.
    pub started: Instant,
    /// The status sent (or that would have been sent).
    pub status: u16,
    /// The host-made error, if the request failed.
    pub error: Option<ErrorKind>,
    /// What wasmtime said about the failure.
    pub cause: Option<String>,
    /// The client left before the response ended: a guest failure caused
    /// by that is not counted as the service's.
    pub client_gone: bool,
    /// What the guest used; `None` if no guest ran for this request alone.
    pub usage: Option<Usage>,
    /// How the request was served.
    pub strategy: Strategy,
}

/// `[host] access_log`: whether a request that went well gets its log line.
static ACCESS_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Sets `[host] access_log` (at start).
pub fn set_access_log(on: bool) {
    ACCESS_LOG.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `WASMHOST_LOG` lets request events of `$level` through.
macro_rules! request_events_on {
    ($level:ident) => {
        tracing::enabled!(target: "wasmhost::request", tracing::Level::$level)
    };
}
impl Report<'_> {
    /// Writes the request's one log event (`event = "request"`; `warn` for
    /// a failure that is the service's; none for a success when
    /// `[host] access_log = false`) and records its metrics.
    pub fn record(self) {
        let duration = self.started.elapsed();
        let duration_ms = duration.as_secs_f64() * 1e3;
        let error = self.error.filter(|_| !self.client_gone);
        let service = self.service.map(|(name, _)| &**name);
        let (fuel, peak_memory) = match self.usage {
            Some(usage) => (usage.fuel, Some(usage.peak_memory)),
            None => (None, None),
        };
        macro_rules! event {
            ($level:ident, $message:literal) => {
                tracing::$level!(
                    target: "wasmhost::request",
                    event = "request",
                    service,
                    request_id = &**self.request_id,
                    method = %self.method,
                    path = self.path,
                    status = self.status,
                    error = self.error.map(ErrorKind::as_str),
                    cause = self.cause,
                    client_gone = self.client_gone,
                    trace_id = self.trace.map(|t| t.server.trace_hex()).map(tracing::field::display),
                    span_id = self.trace.map(|t| t.server.span_hex()).map(tracing::field::display),
                    duration_ms,
                    fuel,
                    peak_memory,
                    instance = self.strategy.as_str(),
                    $message
                )
            };
        }
        // The JSON line is written by hand (see `observe::json_line`): the
        // same fields `tracing` would write, at a fraction of the cost.
        let json = telemetry::json_lines();
        match (self.strategy, error) {
            (Strategy::Rejected, _) if json && request_events_on!(INFO) => {
                self.write_line("INFO", "request rejected", duration, (fuel, peak_memory))
            }
            (Strategy::Rejected, _) => event!(info, "request rejected"),
            (_, Some(_)) if json && request_events_on!(WARN) => {
                self.write_line("WARN", "request failed", duration, (fuel, peak_memory))
            }
            (_, Some(_)) => event!(warn, "request failed"),
            (_, None) if !ACCESS_LOG.load(std::sync::atomic::Ordering::Relaxed) => {}
            (_, None) if json && request_events_on!(INFO) => {
                self.write_line("INFO", "request", duration, (fuel, peak_memory))
            }
            (_, None) => event!(info, "request"),
        }
        if let Some(trace) = self.trace.filter(|t| t.recorded()) {
            self.record_spans(trace);
        }
        if let Some((_, metrics)) = self.service {
            metrics.finished(Finished {
                status: self.status,
                seconds: duration.as_secs_f64(),
                fuel,
                peak_memory,
                error: error.map(|kind| ErrorLabels {
                    kind: kind.as_str(),
                    limit: kind.limit(),
                }),
            });
        }
    }
}

impl Report<'_> {
    /// Writes the request's event as a JSON line, with the fields and
    /// names [`Report::record`]'s `tracing` event has.
    fn write_line(
        &self,
        level: &str,
        message: &str,
        duration: Duration,
        usage: (Option<u64>, Option<usize>),
    ) {
        let (fuel, peak_memory) = usage;
        log_sink::append(|buffer| {
            let mut line = JsonLine::start(buffer, SystemTime::now(), level, message);
            line.str("event", "request");
            line.opt_str("service", self.service.map(|(name, _)| &**name));
            line.str("request_id", self.request_id);
            line.str("method", self.method.as_str());
            line.str("path", self.path);
            line.u64("status", self.status.into());
            line.opt_str("error", self.error.map(ErrorKind::as_str));
            line.opt_str("cause", self.cause.as_deref());
            line.bool("client_gone", self.client_gone);
            if let Some(trace) = self.trace {
                line.str("trace_id", &trace.server.trace_hex().digits());
                line.str("span_id", &trace.server.span_hex().digits());
            }
            line.millis("duration_ms", duration);
            line.opt_u64("fuel", fuel);
            line.opt_u64("peak_memory", peak_memory.map(|bytes| bytes as u64));
            line.str("instance", self.strategy.as_str());
            line.end("wasmhost::request");
        });
    }

    /// The request's server span and, if a guest ran, its guest-execution
    /// span: one compact record, made into spans by the exporter thread.
    fn record_spans(&self, trace: &RequestTrace) {
        traces::record_request(traces::RequestRecord {
            trace: *trace,
            service: self.service.map(|(name, _)| name.as_ref().into()),
            request_id: self.request_id.as_ref().into(),
            method: self.method.clone(),
            path: self.path.into(),
            start: self.started,
            guest_start: self.guest_started,
            end: (Instant::now(), std::time::SystemTime::now()),
            status: self.status,
            error: self
                .error
                .filter(|_| !self.client_gone)
                .map(ErrorKind::as_str),
            instance: self.strategy.as_str(),
            fuel: self.usage.and_then(|u| u.fuel),
            peak_memory: self.usage.map(|u| u.peak_memory),
        });
    }
}

/// Sets the response's `x-request-id` to the request's id (whatever the
/// guest put there).
pub fn stamp_request_id(headers: &mut http::HeaderMap, request_id: &str) {
    if let Ok(value) = http::HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(error: wasmtime::Error) -> Failure {
        Failure::Guest(error)
    }

    #[test]
    fn fuel_and_interrupt_traps_name_their_limit_wherever_they_sit_in_the_chain() {
        let fuel = wasmtime::Error::from(Trap::OutOfFuel);
        assert_eq!(
            classify(&guest(fuel), false, false),
            ErrorKind::FuelExhausted
        );
        let wrapped = wasmtime::Error::from(Trap::Interrupt).context("running the handler");
        assert_eq!(classify(&guest(wrapped), false, false), ErrorKind::Timeout);
        assert_eq!(classify(&Failure::Timeout, true, true), ErrorKind::Timeout);
    }

    #[test]
    fn a_trap_after_a_refused_grow_is_memory_exhausted_and_a_plain_one_is_a_trap() {
        let trap = || wasmtime::Error::from(Trap::UnreachableCodeReached);
        assert_eq!(
            classify(&guest(trap()), true, false),
            ErrorKind::MemoryExhausted
        );
        assert_eq!(classify(&guest(trap()), false, false), ErrorKind::Trap);
        assert_eq!(
            classify(&guest(trap()), true, true),
            ErrorKind::BodyTooLarge
        );
    }
}
