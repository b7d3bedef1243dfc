//! `Limits`: the one source of truth for what a service's requests may use.
//!
//! A service's limits are resolved once, when the manifest is loaded:
//! the built-in defaults below, then `[defaults]`, then the service's own
//! keys (`Limits::with_overrides`). Nothing else in the host picks a limit.

use std::time::Duration;

use serde::{Serialize, Serializer};

/// Fuel per request when neither `[defaults]` nor the service sets it.
pub const DEFAULT_FUEL: u64 = 1_000_000_000;
/// Linear memory per instance by default: 128 MiB.
pub const DEFAULT_MEMORY: u64 = 128 << 20;
/// Wall-clock time per request by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight per service by default.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 256;
/// Largest request body by default: 10 MiB.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 10 << 20;
/// Idle time before a service's compiled code is dropped, by default.
pub const DEFAULT_IDLE_UNLOAD: Duration = Duration::from_secs(600);
/// How long a reused WASI 0.3 instance waits for its next request.
pub const DEFAULT_INSTANCE_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Live resource handles per instance by default (wasmtime allows 1,000,000
/// in its table and 100,000 component handles).
pub const DEFAULT_MAX_RESOURCE_HANDLES: u32 = 10_000;
/// Bytes a guest may pass to the host in one call by default (wasmtime: 128 MiB).
pub const DEFAULT_HOSTCALL_FUEL: u64 = 4 << 20;
/// Bytes in one wasi:http `fields` by default, counted as wasmtime counts
/// them (names and values plus about 72 bytes per entry; wasmtime: 128 KiB).
pub const DEFAULT_MAX_HTTP_FIELDS_SIZE: u64 = 64 << 10;
/// Header fields in a guest's response or outbound request by default.
pub const DEFAULT_MAX_HTTP_FIELDS: u32 = 100;
/// Largest `get-random-bytes` by default (wasmtime: 64 MiB).
pub const DEFAULT_MAX_RANDOM_BYTES: u64 = 1 << 20;
/// Outbound request body bytes buffered by the host by default (wasmtime:
/// two 1 MiB chunks).
pub const DEFAULT_OUTBOUND_BODY_BUFFER: u64 = 64 << 10;
/// The smallest `memory` accepted: one 64 KiB wasm page.
pub const MIN_MEMORY: u64 = 64 << 10;

/// Every per-service limit, resolved (`[defaults]` merged with the
/// service's overrides).
///
/// Serializes for the admin API with the manifest's spelling: fuel as an
/// integer or `"unlimited"`, sizes in bytes, durations as `"10s"`-style
/// strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Wasm fuel per request; `None` = `"unlimited"`.
    #[serde(serialize_with = "serialize_fuel")]
    pub fuel: Option<u64>,
    /// Linear memory per instance, in bytes.
    pub memory: u64,
    /// Wall clock per request, body streaming included.
    #[serde(serialize_with = "serialize_duration")]
    pub timeout: Duration,
    /// Requests in flight per service (at least 1).
    pub max_concurrency: u32,
    /// Largest accepted request body, in bytes.
    pub max_request_body: u64,
    /// Drop compiled code after this long without traffic.
    #[serde(serialize_with = "serialize_duration")]
    pub idle_unload: Duration,
    /// Requests one WASI 0.3 instance serves; 1 = fresh per request.
    pub max_requests_per_instance: u32,
    /// Requests a reused WASI 0.3 instance handles at once.
    pub max_concurrent_per_instance: u32,
    /// How long a reused WASI 0.3 instance waits for its next request.
    #[serde(serialize_with = "serialize_duration")]
    pub instance_idle_timeout: Duration,
    /// Load the compiled code on the first request instead of at start.
    pub lazy_start: bool,
    /// Live resource handles one instance may hold.
    pub max_resource_handles: u32,
    /// Bytes a guest may pass to the host in one call.
    pub hostcall_fuel: u64,
    /// Bytes one wasi:http `fields` may hold (wasmtime's accounting).
    pub max_http_fields_size: u64,
    /// Header fields in a guest's response or outbound request.
    pub max_http_fields: u32,
    /// Largest `get-random-bytes` request.
    pub max_random_bytes: u64,
    /// Outbound request body bytes buffered before the guest's writes wait.
    pub outbound_body_buffer: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: Some(DEFAULT_FUEL),
            memory: DEFAULT_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_request_body: DEFAULT_MAX_REQUEST_BODY,
            idle_unload: DEFAULT_IDLE_UNLOAD,
            max_requests_per_instance: 1,
            max_concurrent_per_instance: 1,
            instance_idle_timeout: DEFAULT_INSTANCE_IDLE_TIMEOUT,
            lazy_start: false,
            max_resource_handles: DEFAULT_MAX_RESOURCE_HANDLES,
            hostcall_fuel: DEFAULT_HOSTCALL_FUEL,
            max_http_fields_size: DEFAULT_MAX_HTTP_FIELDS_SIZE,
            max_http_fields: DEFAULT_MAX_HTTP_FIELDS,
            max_random_bytes: DEFAULT_MAX_RANDOM_BYTES,
            outbound_body_buffer: DEFAULT_OUTBOUND_BODY_BUFFER,
        }
    }
}

/// Limits set in one place (`[defaults]` or a `[[service]]`); `None` means
/// "not set here, inherit".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// `Some(None)` sets fuel to `"unlimited"`.
    pub fuel: Option<Option<u64>>,
    /// Bytes.
    pub memory: Option<u64>,
    /// Wall clock per request.
    pub timeout: Option<Duration>,
    /// Requests in flight.
    pub max_concurrency: Option<u32>,
    /// Bytes.
    pub max_request_body: Option<u64>,
    /// Idle time before unloading.
    pub idle_unload: Option<Duration>,
    /// Requests per WASI 0.3 instance.
    pub max_requests_per_instance: Option<u32>,
    /// Concurrent requests per reused WASI 0.3 instance.
    pub max_concurrent_per_instance: Option<u32>,
    /// Idle time of a reused WASI 0.3 instance.
    pub instance_idle_timeout: Option<Duration>,
    /// Load on the first request.
    pub lazy_start: Option<bool>,
    /// Resource handles per instance.
    pub max_resource_handles: Option<u32>,
    /// Bytes per hostcall.
    pub hostcall_fuel: Option<u64>,
    /// Bytes per wasi:http `fields`.
    pub max_http_fields_size: Option<u64>,
    /// Header fields per response or outbound request.
    pub max_http_fields: Option<u32>,
    /// Bytes per `get-random-bytes`.
    pub max_random_bytes: Option<u64>,
    /// Outbound body bytes buffered.
    pub outbound_body_buffer: Option<u64>,
}

impl Limits {
    /// These limits with every limit that `overrides` sets replaced.
    pub fn with_overrides(&self, overrides: &LimitOverrides) -> Limits {
        Limits {
            fuel: overrides.fuel.unwrap_or(self.fuel),
            memory: overrides.memory.unwrap_or(self.memory),
            timeout: overrides.timeout.unwrap_or(self.timeout),
            max_concurrency: overrides.max_concurrency.unwrap_or(self.max_concurrency),
            max_request_body: overrides.max_request_body.unwrap_or(self.max_request_body),
            idle_unload: overrides.idle_unload.unwrap_or(self.idle_unload),
            max_requests_per_instance: overrides
                .max_requests_per_instance
                .unwrap_or(self.max_requests_per_instance),
            max_concurrent_per_instance: overrides
                .max_concurrent_per_instance
                .unwrap_or(self.max_concurrent_per_instance),
            instance_idle_timeout: overrides
                .instance_idle_timeout
                .unwrap_or(self.instance_idle_timeout),
            lazy_start: overrides.lazy_start.unwrap_or(self.lazy_start),
            max_resource_handles: overrides
                .max_resource_handles
                .unwrap_or(self.max_resource_handles),
            hostcall_fuel: overrides.hostcall_fuel.unwrap_or(self.hostcall_fuel),
            max_http_fields_size: overrides
                .max_http_fields_size
                .unwrap_or(self.max_http_fields_size),
            max_http_fields: overrides.max_http_fields.unwrap_or(self.max_http_fields),
            max_random_bytes: overrides.max_random_bytes.unwrap_or(self.max_random_bytes),
            outbound_body_buffer: overrides
                .outbound_body_buffer
                .unwrap_or(self.outbound_body_buffer),
        }
    }
}

fn serialize_fuel<S: Serializer>(fuel: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match fuel {
        Some(fuel) => s.serialize_u64(*fuel),
        None => s.serialize_str("unlimited"),
    }
}

/// Durations as the manifest writes them: `10s`, `1m30s`, `250ms`.
fn serialize_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&crate::config::manifest::units::HumanDuration(*d))
}

/// Bytes of a header section as sent (`name: value\r\n` per field).
pub fn header_bytes(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

impl Limits {
    /// Whether a guest's response head is refused (502 `bad_response`):
    /// more header fields than `max_http_fields`, or more bytes than
    /// `max_http_fields_size` as sent.
    pub fn refuses_head(&self, headers: &http::HeaderMap) -> bool {
        headers.len() > self.max_http_fields as usize
            || header_bytes(headers) as u64 > self.max_http_fields_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let limits = Limits::default();
        assert_eq!(limits.fuel, Some(1_000_000_000));
        assert_eq!(limits.memory, 128 * 1024 * 1024);
        assert_eq!(limits.timeout, Duration::from_secs(10));
        assert_eq!(limits.max_concurrency, 256);
        assert_eq!(limits.max_request_body, 10 * 1024 * 1024);
        assert_eq!(limits.idle_unload, Duration::from_secs(600));
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let overrides = LimitOverrides {
            fuel: Some(None),
            timeout: Some(Duration::from_secs(2)),
            ..LimitOverrides::default()
        };
        let limits = Limits::default().with_overrides(&overrides);
        assert_eq!(limits.fuel, None);
        assert_eq!(limits.timeout, Duration::from_secs(2));
        assert_eq!(limits.memory, DEFAULT_MEMORY);
    }

    #[test]
    fn limits_serialize_in_the_manifest_spelling() {
        let limits = Limits {
            fuel: None,
            ..Limits::default()
        };
        let json = serde_json::to_value(&limits).unwrap();
        assert_eq!(json["fuel"], "unlimited");
        assert_eq!(json["timeout"], "10s");
        assert_eq!(json["idle_unload"], "10m");
        assert_eq!(json["memory"], 134_217_728);
    }
}
