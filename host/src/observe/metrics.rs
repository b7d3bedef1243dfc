//! Every metric the host exports: each `wasmhost_*` name and label set is
//! defined here and nowhere else. Label values are bounded: service names,
//! status classes, error kinds and limit names — never paths or ids.
//!
//! The request path never looks metrics up by label: each service gets its
//! handles ([`ServiceMetrics`]) once, when it is loaded.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    service: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    service: String,
    limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    service: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KvLabels {
    store: String,
    op: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabel {
    store: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChainLabels {
    caller: String,
    callee: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallerCallee {
    caller: String,
    callee: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PullLabels {
    service: String,
    result: String,
}

/// `wasmhost_component_pulls_total{service,result}` and
/// `wasmhost_component_pull_duration_seconds{service}`: process-wide,
/// because the first pulls happen while the manifest is loaded, before the
/// registry exists.
fn pulls() -> &'static (Family<PullLabels, Counter>, HistogramFamily<ServiceLabel>) {
    static PULLS: std::sync::OnceLock<(
        Family<PullLabels, Counter>,
        HistogramFamily<ServiceLabel>,
    )> = std::sync::OnceLock::new();
    PULLS.get_or_init(|| {
        (
            Family::default(),
            Family::new_with_constructor(|| {
                // 1 ms to ~65 s.
                Histogram::new(exponential_buckets(0.001, 2.0, 17))
            }),
        )
    })
}

/// Counts one resolution of `service`'s `oci://` component: `result` is
/// `ok` (the registry answered), `cache` (it did not; the cache served)
/// or `error`.
pub fn component_pulled(service: &str, result: &str, took: std::time::Duration) {
    let (count, duration) = pulls();
    count
        .get_or_create(&PullLabels {
            service: service.to_owned(),
            result: result.to_owned(),
        })
        .inc();
    duration
        .get_or_create(&ServiceLabel {
            service: service.to_owned(),
        })
        .observe(took.as_secs_f64());
}

/// The status classes counted in `wasmhost_requests_total{status}`.
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The `limit` label values of `wasmhost_limit_exceeded_total`.
pub const LIMITS: [&str; 6] = [
    "fuel",
    "memory",
    "timeout",
    "concurrency",
    "request_body",
    "response_headers",
];

/// The host's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<StatusLabels, Counter>,
    duration: HistogramFamily<ServiceLabel>,
    fuel_consumed: Family<ServiceLabel, Counter>,
    fuel: HistogramFamily<ServiceLabel>,
    memory: HistogramFamily<ServiceLabel>,
    limit_exceeded: Family<LimitLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    in_flight: Family<ServiceLabel, Gauge>,
    cold_starts: Family<ServiceLabel, Counter>,
    cold_start_duration: HistogramFamily<ServiceLabel>,
    loaded: Family<ServiceLabel, Gauge>,
    reloads: Family<ResultLabel, Counter>,
    component_loads: Family<SourceLabel, Counter>,
    kv_operations: Family<KvLabels, Counter>,
    kv_duration: HistogramFamily<StoreLabel>,
    chained_calls: Family<ChainLabels, Counter>,
    chained_duration: HistogramFamily<CallerCallee>,
}

/// The `op` labels of `wasmhost_kv_operations_total`.
pub const KV_OPS: [&str; 6] = [
    "get",
    "set",
    "delete",
    "list_keys",
    "increment",
    "compare_and_swap",
];

/// The `result` labels of `wasmhost_kv_operations_total`.
pub const KV_RESULTS: [&str; 3] = ["ok", "limit", "error"];

/// One key-value store's metrics (see [`Metrics::store`]): every
/// (operation, result) counter made once, so that counting an operation
/// allocates nothing and takes no lock.
#[derive(Clone)]
pub struct StoreMetrics {
    operations: Vec<(&'static str, &'static str, Counter)>,
    duration: Histogram,
}

impl StoreMetrics {
    /// Counts one operation `op` (one of [`KV_OPS`]) that ended with
    /// `result` (one of [`KV_RESULTS`]) after `seconds`.
    pub fn record(&self, op: &str, result: &str, seconds: f64) {
        if let Some((_, _, counter)) = self
            .operations
            .iter()
            .find(|(o, r, _)| *o == op && *r == result)
        {
            counter.inc();
        }
        self.duration.observe(seconds);
    }
}

fn duration_histogram() -> Histogram {
    // 100 µs to ~6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

fn fuel_histogram() -> Histogram {
    // 1k to ~4G units of fuel.
    Histogram::new(exponential_buckets(1_000.0, 4.0, 12))
}

fn memory_histogram() -> Histogram {
    // 64 KiB to 4 GiB.
    Histogram::new(exponential_buckets(65_536.0, 2.0, 17))
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "wasmhost_requests",
            "Requests answered, by service and status class",
            requests.clone(),
        );
        let duration: HistogramFamily<ServiceLabel> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "wasmhost_request_duration",
            "Time from a request's arrival to the end of its response",
            Unit::Seconds,
            duration.clone(),
        );
        let fuel_consumed = Family::<ServiceLabel, Counter>::default();
        registry.register(
            "wasmhost_fuel_consumed",
            "Wasm fuel consumed by guests",
            fuel_consumed.clone(),
        );
        let fuel: HistogramFamily<ServiceLabel> = Family::new_with_constructor(fuel_histogram);
        registry.register(
            "wasmhost_request_fuel",
            "Wasm fuel consumed per request",
            fuel.clone(),
        );
        let memory: HistogramFamily<ServiceLabel> = Family::new_with_constructor(memory_histogram);
        registry.register_with_unit(
            "wasmhost_request_peak_memory",
            "Peak linear memory of a request's instance",
            Unit::Bytes,
            memory.clone(),
        );
        let limit_exceeded = Family::<LimitLabels, Counter>::default();
        registry.register(
            "wasmhost_limit_exceeded",
            "Requests stopped by a limit (fuel, memory, timeout, concurrency, request_body)",
            limit_exceeded.clone(),
        );
        let errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "wasmhost_errors",
            "Responses the host made itself, by `wasmhost-error` kind",
            errors.clone(),
        );
        // Present from the start (at 0), so dashboards find the family.
        let _ = errors.get_or_create(&KindLabels {
            service: String::new(),
            kind: "no_route".into(),
        });
        let in_flight = Family::<ServiceLabel, Gauge>::default();
        registry.register(
            "wasmhost_requests_in_flight",
            "Requests admitted and not yet finished",
            in_flight.clone(),
        );
        let cold_starts = Family::<ServiceLabel, Counter>::default();
        registry.register(
            "wasmhost_cold_starts",
            "Requests that found their service unloaded and loaded it",
            cold_starts.clone(),
        );
        let cold_start_duration: HistogramFamily<ServiceLabel> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "wasmhost_cold_start_duration",
            "Time a cold start took to load a service's compiled code",
            Unit::Seconds,
            cold_start_duration.clone(),
        );
        let loaded = Family::<ServiceLabel, Gauge>::default();
        registry.register(
            "wasmhost_service_loaded",
            "1 while a service's compiled code is loaded",
            loaded.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "wasmhost_reloads",
            "Reloads, by result (ok or error)",
            reloads.clone(),
        );
        for result in ["ok", "error"] {
            // Both results appear (at 0) from the start.
            let _ = reloads.get_or_create(&ResultLabel {
                result: result.into(),
            });
        }
        let component_loads = Family::<SourceLabel, Counter>::default();
        registry.register(
            "wasmhost_component_loads",
            "Components made ready to run, by where their machine code came from \
             (cache: the precompiled cache; compiled: compiled now)",
            component_loads.clone(),
        );
        for source in ["cache", "compiled"] {
            let _ = component_loads.get_or_create(&SourceLabel {
                source: source.into(),
            });
        }
        let kv_operations = Family::<KvLabels, Counter>::default();
        registry.register(
            "wasmhost_kv_operations",
            "Key-value store operations by store, operation and result (ok, limit, error)",
            kv_operations.clone(),
        );
        let kv_duration: HistogramFamily<StoreLabel> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "wasmhost_kv_operation_duration",
            "How long key-value store operations take, by store",
            Unit::Seconds,
            kv_duration.clone(),
        );
        let chained_calls = Family::<ChainLabels, Counter>::default();
        registry.register(
            "wasmhost_chained_calls",
            "Calls from one service to another in-process (http://<service>.internal), \
             by caller, callee and status class",
            chained_calls.clone(),
        );
        let chained_duration: HistogramFamily<CallerCallee> =
            Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "wasmhost_chained_call_duration",
            "Time from a chained call to its response head, by caller and callee",
            Unit::Seconds,
            chained_duration.clone(),
        );
        registry.register(
            "wasmhost_component_pulls",
            "Resolutions of oci:// components, by service and result \
             (ok, cache: served from the cache without the registry, error)",
            pulls().0.clone(),
        );
        registry.register_with_unit(
            "wasmhost_component_pull_duration",
            "How long resolving and pulling an oci:// component took, by service",
            Unit::Seconds,
            pulls().1.clone(),
        );
        registry.register(
            "wasmhost_spans_dropped",
            "Trace spans dropped: the export queue was full or the collector refused them",
            crate::observe::traces::dropped().clone(),
        );
        let build_info = Family::<VersionLabel, Gauge>::default();
        registry.register(
            "wasmhost_build_info",
            "Always 1; the version label says which wasmhost runs",
            build_info.clone(),
        );
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        Arc::new(Metrics {
            registry,
            requests,
            duration,
            fuel_consumed,
            fuel,
            memory,
            limit_exceeded,
            errors,
            in_flight,
            cold_starts,
            cold_start_duration,
            loaded,
            reloads,
            component_loads,
            kv_operations,
            kv_duration,
            chained_calls,
            chained_duration,
        })
    }

    /// Counts one chained call from `caller` to `callee` that answered
    /// `status` after `seconds` (to its response head).
    pub fn chained_call(&self, caller: &str, callee: &str, status: u16, seconds: f64) {
        let class = STATUS_CLASSES
            .get(usize::from(status / 100).saturating_sub(1))
            .copied()
            .unwrap_or("5xx");
        self.chained_calls
            .get_or_create(&ChainLabels {
                caller: caller.into(),
                callee: callee.into(),
                status: class.into(),
            })
            .inc();
        self.chained_duration
            .get_or_create(&CallerCallee {
                caller: caller.into(),
                callee: callee.into(),
            })
            .observe(seconds);
    }

    /// The handles for the key-value store `name`.
    pub fn store(&self, name: &str) -> StoreMetrics {
        let operations = KV_OPS
            .iter()
            .flat_map(|op| KV_RESULTS.iter().map(move |result| (*op, *result)))
            .map(|(op, result)| {
                let labels = KvLabels {
                    store: name.into(),
                    op: op.into(),
                    result: result.into(),
                };
                (
                    op,
                    result,
                    self.kv_operations.get_or_create(&labels).clone(),
                )
            })
            .collect();
        StoreMetrics {
            operations,
            duration: self
                .kv_duration
                .get_or_create(&StoreLabel { store: name.into() })
                .clone(),
        }
    }

    /// The handles for one service (created, at zero, if new).
    pub fn service(&self, name: &str) -> ServiceMetrics {
        let service = ServiceLabel {
            service: name.into(),
        };
        let status = |class: &str| {
            self.requests
                .get_or_create(&StatusLabels {
                    service: name.into(),
                    status: class.into(),
                })
                .clone()
        };
        let limit = |limit: &str| {
            self.limit_exceeded
                .get_or_create(&LimitLabels {
                    service: name.into(),
                    limit: limit.into(),
                })
                .clone()
        };
        ServiceMetrics {
            name: name.into(),
            requests: STATUS_CLASSES.map(status),
            duration: self.duration.get_or_create(&service).clone(),
            fuel_consumed: self.fuel_consumed.get_or_create(&service).clone(),
            fuel: self.fuel.get_or_create(&service).clone(),
            memory: self.memory.get_or_create(&service).clone(),
            limit_exceeded: LIMITS.map(limit),
            in_flight: self.in_flight.get_or_create(&service).clone(),
            cold_starts: self.cold_starts.get_or_create(&service).clone(),
            cold_start_duration: self.cold_start_duration.get_or_create(&service).clone(),
            loaded: self.loaded.get_or_create(&service).clone(),
            errors: self.errors.clone(),
        }
    }

    /// A service is gone: its gauges leave the exposition.
    pub fn forget(&self, name: &str) {
        let service = ServiceLabel {
            service: name.into(),
        };
        self.loaded.remove(&service);
        self.in_flight.remove(&service);
    }

    /// A host-made answer outside any service (e.g. `no_route`).
    pub fn host_error(&self, kind: &'static str) {
        self.errors
            .get_or_create(&KindLabels {
                service: String::new(),
                kind: kind.into(),
            })
            .inc();
    }

    /// Counts a component made ready to run: from the precompiled cache
    /// (`cached`) or compiled now.
    pub fn component_loaded(&self, cached: bool) {
        self.component_loads
            .get_or_create(&SourceLabel {
                source: if cached { "cache" } else { "compiled" }.into(),
            })
            .inc();
    }

    /// Counts a reload.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabel {
                result: if ok { "ok" } else { "error" }.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// One service's metric handles.
#[derive(Clone)]
pub struct ServiceMetrics {
    name: String,
    requests: [Counter; 5],
    duration: Histogram,
    fuel_consumed: Counter,
    fuel: Histogram,
    memory: Histogram,
    limit_exceeded: [Counter; LIMITS.len()],
    /// Gauge of admitted, unfinished requests.
    pub in_flight: Gauge,
    /// Count of cold starts.
    pub cold_starts: Counter,
    /// How long cold starts took.
    pub cold_start_duration: Histogram,
    /// 1 while loaded.
    pub loaded: Gauge,
    errors: Family<KindLabels, Counter>,
}

/// What one finished request reports.
pub struct Finished {
    /// Status sent (or that would have been sent).
    pub status: u16,
    /// Arrival to the end of the response.
    pub seconds: f64,
    /// Fuel the guest consumed, if it ran.
    pub fuel: Option<u64>,
    /// Peak linear memory, if it ran.
    pub peak_memory: Option<usize>,
    /// The host-made error, if any.
    pub error: Option<ErrorLabels>,
}

/// A host-made error as the metrics label it: its `wasmhost-error` kind,
/// and the limit it names (one of [`LIMITS`]), if any.
#[derive(Debug, Clone, Copy)]
pub struct ErrorLabels {
    /// The kind (`trap`, `timeout`, ...).
    pub kind: &'static str,
    /// The limit (`fuel`, `memory`, ...).
    pub limit: Option<&'static str>,
}

impl ServiceMetrics {
    /// Records a finished request.
    pub fn finished(&self, request: Finished) {
        let class = usize::from(request.status / 100).clamp(1, 5) - 1;
        self.requests[class].inc();
        self.duration.observe(request.seconds);
        if let Some(fuel) = request.fuel {
            self.fuel_consumed.inc_by(fuel);
            self.fuel.observe(fuel as f64);
        }
        if let Some(memory) = request.peak_memory {
            self.memory.observe(memory as f64);
        }
        if let Some(error) = request.error {
            self.errors
                .get_or_create(&KindLabels {
                    service: self.name.clone(),
                    kind: error.kind.into(),
                })
                .inc();
            // Every limit is in `LIMITS` (a unit test of `ErrorKind` checks).
            if let Some(i) = error
                .limit
                .and_then(|limit| LIMITS.iter().position(|l| *l == limit))
            {
                self.limit_exceeded[i].inc();
            }
        }
    }

    /// Requests answered so far, all classes.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().map(Counter::get).sum()
    }
}
