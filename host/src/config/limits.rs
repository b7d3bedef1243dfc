//! `Limits`: the one source of truth for what a service's requests may use.
//!
//! A service's limits are resolved once, when the manifest is loaded: the
//! built-in defaults, then `[defaults]`, then the service's own keys
//! (`LimitKeys::apply_to`). Nothing else in the host picks a limit.
//!
//! Every limit is declared once, in the `limits!` table below: its field,
//! resolved type, manifest unit, default, doc (with its `Example:`) and, if
//! it has one, the lower bound its unit cannot express. Generated from it:
//! - `Limits` and its `Default`, serialized for the admin API in the
//!   manifest's units;
//! - `LimitKeys`, the limit keys of one manifest table (`[defaults]` is one,
//!   a `[[service]]` embeds one): loading them from TOML (`schema.rs`
//!   embeds them, merging `LimitKeys::KEYS` into its "did you mean" hints),
//!   checking their bounds, and applying them onto a base `Limits`.
//!
//! So a new limit is one table entry, plus a golden case in
//! `tests/manifest_ui/` for its bound or spelling.
//!
//! Imports point one way: `manifest` → `limits` → `units`, `problem`. The
//! generic units and the problem `Collector` live in `config/`, not
//! `config/manifest/`, so that this module never imports `manifest`.

use std::time::Duration;

use serde::de::MapAccess;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use toml::Spanned;
use toml::de::DeValue;

use crate::config::problem::Collector;
use crate::config::units::{ByteSize, Count, Fuel, HumanDuration};

/// The smallest `memory` accepted: one 64 KiB wasm page.
pub const MIN_MEMORY: u64 = 64 << 10;

/// The smallest `hostcall_fuel`, `max_http_fields_size` and
/// `outbound_body_buffer` accepted: below this, a hostcall, a header map or
/// an outbound body write that ordinary guests make would fail.
pub const MIN_BUFFER: u64 = 4 << 10;

/// Generates everything per limit from the table at its one invocation.
///
/// Each entry is `doc; field: ResolvedType as Unit = default`, then
/// optionally `, refuse |v| condition => message` (checked on the written
/// unit value `v`; `message` is a `&str` or `String`), then `;`. Counts need
/// no `refuse`: `Count` itself refuses `0`.
macro_rules! limits {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $ty:ty as $unit:ty = $default:expr
        $(, refuse |$v:ident| $refused:expr => $message:expr)?;
    )*) => {
        /// Every per-service limit, resolved (`[defaults]` merged with the
        /// service's overrides).
        ///
        /// Serializes for the admin API with the manifest's spelling: fuel
        /// as an integer or `"unlimited"`, sizes in bytes, durations as
        /// `"10s"`-style strings.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Limits {
            $( $(#[doc = $doc])* pub $name: $ty, )*
        }

        impl Default for Limits {
            fn default() -> Self {
                Limits { $( $name: $default, )* }
            }
        }

        impl Serialize for Limits {
            /// Each limit as its manifest unit writes it.
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut out = s.serialize_struct("Limits", LimitKeys::KEYS.len())?;
                $( out.serialize_field(stringify!($name), &<$unit>::from(self.$name))?; )*
                out.end()
            }
        }

        /// The limit keys one manifest table sets, as written: `None` when
        /// the table does not set it (inherit). `[defaults]` is one of
        /// these; each `[[service]]` embeds one.
        #[derive(Debug, Clone, Default)]
        pub struct LimitKeys {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!(
                    "In a `[[service]]`: overrides `[defaults].", stringify!($name), "`."
                )]
                pub $name: Option<Spanned<$unit>>,
            )*
        }

        impl LimitKeys {
            /// Every limit key, in documentation order.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// Loads `value` if `key` is a limit key (a bad value is a
            /// problem about `{prefix}{key}`), and returns the key; `None`
            /// when `key` is not a limit.
            pub(crate) fn load_key(
                &mut self,
                key: &str,
                value: &Spanned<DeValue<'_>>,
                cx: &mut Collector<'_>,
                prefix: &str,
            ) -> Option<&'static str> {
                match key {
                    $( stringify!($name) => {
                        self.$name = cx.load(value, &[prefix, key].concat());
                        Some(stringify!($name))
                    } )*
                    _ => None,
                }
            }

            /// Plain serde: takes the next value of `map` if `key` is a limit
            /// key; `false` when it is not.
            pub(crate) fn deserialize_key<'de, A: MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                match key {
                    $( stringify!($name) => self.$name = Some(map.next_value()?), )*
                    _ => return Ok(false),
                }
                Ok(true)
            }

            /// Records a problem about `{prefix}{key}` for each value below
            /// its limit's bound (`0s` is a fine duration, not a fine
            /// timeout).
            pub(crate) fn check(&self, cx: &mut Collector<'_>, prefix: &str) {
                $( $(
                    if let Some(value) = &self.$name {
                        let $v = value.get_ref();
                        if $refused {
                            let field = [prefix, stringify!($name)].concat();
                            cx.field(value.span(), &field, $message);
                        }
                    }
                )? )*
            }

            /// `base` with every limit these keys set replaced.
            pub fn apply_to(&self, base: &Limits) -> Limits {
                Limits {
                    $( $name: self.$name
                        .as_ref()
                        .map_or(base.$name, |v| <$ty>::from(*v.get_ref())), )*
                }
            }
        }
    };
}

limits! {
    /// Wasm fuel per request, or `"unlimited"` (`None`).
    /// Default `1_000_000_000`. Example: `fuel = 50_000_000`
    fuel: Option<u64> as Fuel = Some(1_000_000_000);

    /// Linear memory per instance, in bytes. Default `"128MiB"`.
    /// Example: `memory = "64MiB"`
    memory: u64 as ByteSize = 128 << 20,
        refuse |v| v.0 < MIN_MEMORY => format!("memory `{v}` is below one wasm page: use at least `64KiB`");

    /// Wall clock per request, body streaming included. Default `"10s"`.
    /// Example: `timeout = "2s"`
    timeout: Duration as HumanDuration = Duration::from_secs(10),
        refuse |v| v.0.is_zero() => "must be longer than `0s`";

    /// Requests in flight per service. Default `256`.
    /// Example: `max_concurrency = 16`
    max_concurrency: u32 as Count = 256;

    /// Largest accepted request body, in bytes. Default `"10MiB"`.
    /// Example: `max_request_body = "1MiB"`
    max_request_body: u64 as ByteSize = 10 << 20;

    /// Drop compiled code after this long without traffic. Default `"10m"`.
    /// Example: `idle_unload = "1h"`
    idle_unload: Duration as HumanDuration = Duration::from_secs(600),
        refuse |v| v.0.is_zero() => "must be longer than `0s`";

    /// Requests one instance serves before it is dropped (WASI 0.2 and
    /// 0.3); `1` (the default) is a fresh instance per request. A reused
    /// request gets full fuel and its own limits; a failed instance is
    /// never reused.
    /// Example: `max_requests_per_instance = 100`
    max_requests_per_instance: u32 as Count = 1;

    /// Requests a reused WASI 0.3 instance handles at once (they share its
    /// fuel tank: one budget per request, at most this many). Default `1`;
    /// WASI 0.2 instances serve one request at a time.
    /// Example: `max_concurrent_per_instance = 8`
    max_concurrent_per_instance: u32 as Count = 1;

    /// How long a reused instance waits for its next request before it is
    /// dropped. Default `"5s"`.
    /// Example: `instance_idle_timeout = "30s"`
    instance_idle_timeout: Duration as HumanDuration = Duration::from_secs(5);

    /// For an `oci://` component named by tag: how often the registry is
    /// asked whether the tag moved (a moved tag is pulled, compiled off the
    /// request path and swapped in, as a reload does). Default `"0s"`:
    /// never; the tag is resolved at start and at each reload.
    /// Example: `poll = "1m"`
    poll: Duration as HumanDuration = Duration::ZERO;

    /// Load services on their first request instead of at start (the cache
    /// is still filled at start). Default `false`.
    /// Example: `lazy_start = true`
    lazy_start: bool as bool = false;

    /// Live resource handles (streams, fields, requests, ...) one instance
    /// may hold. Default `10_000` (wasmtime allows 1,000,000 in its table
    /// and 100,000 component handles).
    /// Example: `max_resource_handles = 1000`
    max_resource_handles: u32 as Count = 10_000;

    /// Bytes a guest may pass to the host in one call (strings and lists
    /// copied out of its memory). Default `"4MiB"` (wasmtime: 128 MiB).
    /// Example: `hostcall_fuel = "16MiB"`
    hostcall_fuel: u64 as ByteSize = 4 << 20,
        refuse |v| v.0 < MIN_BUFFER => format!("`{v}` is too small: use at least `4KiB`");

    /// Bytes one wasi:http `fields` (a header map the guest builds) may
    /// hold, counted as wasmtime counts them (names and values plus about
    /// 72 bytes per entry). Default `"64KiB"` (wasmtime: 128 KiB).
    /// Example: `max_http_fields_size = "16KiB"`
    max_http_fields_size: u64 as ByteSize = 64 << 10,
        refuse |v| v.0 < MIN_BUFFER => format!("`{v}` is too small: use at least `4KiB`");

    /// Header fields in a guest's response or outbound request.
    /// Default `100`. Example: `max_http_fields = 50`
    max_http_fields: u32 as Count = 100;

    /// Largest `get-random-bytes` request. Default `"1MiB"` (wasmtime:
    /// 64 MiB). Example: `max_random_bytes = "64KiB"`
    max_random_bytes: u64 as ByteSize = 1 << 20;

    /// Outbound request body bytes the host buffers before the guest's
    /// writes wait for the upstream. Default `"64KiB"` (wasmtime: two 1 MiB
    /// chunks). Example: `outbound_body_buffer = "1MiB"`
    outbound_body_buffer: u64 as ByteSize = 64 << 10,
        refuse |v| v.0 < MIN_BUFFER => format!("`{v}` is too small: use at least `4KiB`");
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
    use std::path::Path;

    use toml::de::DeTable;

    use super::*;

    /// The limit keys of `text` (one TOML table), and every problem in it.
    fn keys(text: &str, prefix: &str) -> (LimitKeys, Vec<String>) {
        let mut cx = Collector::new(Path::new("m.toml"), text);
        let table = DeTable::parse(text).unwrap();
        let mut keys = LimitKeys::default();
        for (key, value) in table.get_ref() {
            assert!(
                keys.load_key(key.get_ref(), value, &mut cx, prefix)
                    .is_some()
            );
        }
        keys.check(&mut cx, prefix);
        (keys, cx.finish().iter().map(|p| p.to_string()).collect())
    }

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
        let (overrides, problems) = keys("fuel = \"unlimited\"\ntimeout = \"2s\"\n", "");
        assert!(problems.is_empty(), "{problems:#?}");
        let limits = overrides.apply_to(&Limits::default());
        assert_eq!(limits.fuel, None);
        assert_eq!(limits.timeout, Duration::from_secs(2));
        assert_eq!(limits.memory, Limits::default().memory);
    }

    #[test]
    fn values_below_a_bound_are_problems_about_the_prefixed_field() {
        let (_, problems) = keys(
            "memory = \"1KiB\"\ntimeout = \"0s\"\nhostcall_fuel = 4096\nmax_random_bytes = 0\n",
            "defaults.",
        );
        assert_eq!(
            problems,
            [
                "m.toml:1:10: field `defaults.memory`: memory `1KiB` is below one wasm page: use at least `64KiB`",
                "m.toml:2:11: field `defaults.timeout`: must be longer than `0s`",
            ]
        );
    }

    #[test]
    fn limits_serialize_every_key_in_the_manifest_spelling() {
        let limits = Limits {
            fuel: None,
            ..Limits::default()
        };
        let json = serde_json::to_value(&limits).unwrap();
        assert_eq!(json["fuel"], "unlimited");
        assert_eq!(json["timeout"], "10s");
        assert_eq!(json["idle_unload"], "10m");
        assert_eq!(json["memory"], 134_217_728);
        assert_eq!(json["lazy_start"], false);
        let mut written: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut keys = LimitKeys::KEYS.to_vec();
        written.sort_unstable();
        keys.sort_unstable();
        assert_eq!(written, keys);
    }
}
