//! The manifest's TOML shape: one struct per table, every field spanned.
//!
//! The structs implement `Deserialize` with unknown fields denied, so they
//! are usable with plain `toml::from_str`. But a serde pass stops at the
//! first error, and `wasmhost check` must report all of them, so the loader
//! below walks the parsed document itself: each table's keys are checked
//! against its `KEYS` (unknown keys get a "did you mean" hint), and each
//! value is deserialized on its own, so one bad value does not hide the
//! next. Values are turned into the validated units here; what needs more
//! than one value (duplicates, clashes, files on disk) is `validate.rs`'s
//! job.
//!
//! The limit keys are not listed here: `[defaults]` and each `[[service]]`
//! embed a `LimitKeys` (`..limits` below), generated from the one table in
//! `config/limits.rs`.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::stores::{self, StoreSection};
use super::units::{ListenAddr, RouteHost, RoutePrefix, ServiceName};
use super::variables::VariableSpec;
use crate::config::limits::LimitKeys;
use crate::config::problem::Collector;
use crate::config::units::{ByteSize, Count, HumanDuration};

/// Declares a manifest table: the struct (every field an optional spanned
/// value, plus the embedded `LimitKeys` after `..limits`), its `KEYS` (the
/// limit keys in the place of `..limits`), `from_table`, which loads each
/// key on its own and collects a problem for each unknown key or bad value,
/// and a plain-serde `Deserialize` that denies unknown fields.
macro_rules! section {
    (@keys [$($before:expr),*]) => { &[$($before),*] };
    (@keys [$($before:expr),*] $limits:ident [$($after:expr),*]) => {
        &join_keys::<{ key_count(&[$($before),*]) + LimitKeys::KEYS.len() + key_count(&[$($after),*]) }>(
            &[$($before),*],
            &[$($after),*],
        )
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $table:literal, fields prefixed $prefix:literal {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty, )*
            $( ..$limits:ident, $( $(#[$ameta:meta])* $after:ident : $aty:ty, )* )?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<Spanned<$ty>>, )*
            $(
                #[doc = concat!("The limit keys written in `", $table, "`.")]
                pub $limits: LimitKeys,
                $( $(#[$ameta])* pub $after: Option<Spanned<$aty>>, )*
            )?
            /// Every known key written in the file, even those whose value
            /// was refused: a refused value must not also count as missing.
            pub present: Vec<&'static str>,
        }

        impl $name {
            /// Every key this table accepts, in documentation order.
            pub const KEYS: &'static [&'static str] = section!(
                @keys [$(stringify!($field)),*] $( $limits [$(stringify!($after)),*] )?
            );

            /// How the table is written, for messages.
            pub const TABLE: &'static str = $table;

            /// Loads every key of `table`, collecting a problem for each
            /// unknown key and each value of the wrong type or form.
            pub(crate) fn from_table(table: &DeTable<'_>, cx: &mut Collector<'_>) -> Self {
                let mut section = Self::default();
                for (key, value) in table {
                    match key.get_ref().as_ref() {
                        $( stringify!($field) => {
                            section.present.push(stringify!($field));
                            section.$field = cx.load(value, concat!($prefix, stringify!($field)));
                        } )*
                        $($( stringify!($after) => {
                            section.present.push(stringify!($after));
                            section.$after = cx.load(value, concat!($prefix, stringify!($after)));
                        } )*)?
                        other => {
                            $( if let Some(known) = section.$limits.load_key(other, value, cx, $prefix) {
                                section.present.push(known);
                                continue;
                            } )?
                            unknown_key(cx, key.span(), other, concat!("`", $table, "`"), Self::KEYS)
                        }
                    }
                }
                section
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("the `", $table, "` table"))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        let mut section = $name::default();
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $( stringify!($field) => section.$field = Some(map.next_value()?), )*
                                $($( stringify!($after) => section.$after = Some(map.next_value()?), )*)?
                                $( other if section.$limits.deserialize_key(other, &mut map)? => {} )?
                                other => return Err(serde::de::Error::unknown_field(other, $name::KEYS)),
                            }
                        }
                        Ok(section)
                    }
                }
                deserializer.deserialize_map(V)
            }
        }
    };
}

/// How many keys a list has (for the array length in `join_keys`).
const fn key_count(keys: &[&str]) -> usize {
    keys.len()
}

/// A table's `KEYS`: `before`, then every limit key, then `after`.
const fn join_keys<const N: usize>(
    before: &[&'static str],
    after: &[&'static str],
) -> [&'static str; N] {
    let mut keys = [""; N];
    let mut i = 0;
    while i < before.len() {
        keys[i] = before[i];
        i += 1;
    }
    let mut j = 0;
    while j < LimitKeys::KEYS.len() {
        keys[i] = LimitKeys::KEYS[j];
        i += 1;
        j += 1;
    }
    let mut j = 0;
    while j < after.len() {
        keys[i] = after[j];
        i += 1;
        j += 1;
    }
    keys
}

section! {
    /// `[host]`: process-wide settings.
    pub struct HostSection in "[host]", fields prefixed "host." {
        /// Address of the data plane. Port 0 picks a free port (and logs it).
        /// Default `"127.0.0.1:8080"`. Example: `listen = "0.0.0.0:8080"`
        listen: ListenAddr,
        /// Address of the admin plane (health, readiness, metrics, admin
        /// API). Default: none. Example: `admin = "127.0.0.1:9090"`
        admin: ListenAddr,
        /// Directory for precompiled components, relative to the manifest's
        /// folder. Default `".wasmhost-cache"`.
        /// Example: `cache_dir = "/var/cache/wasmhost"`
        cache_dir: String,
        /// How long a graceful stop waits for requests in flight.
        /// Default `"30s"`. Example: `shutdown_grace = "5s"`
        shutdown_grace: HumanDuration,
        /// Hot-reload on manifest or component changes. Default `true`.
        /// Example: `watch = false`
        watch: bool,
        /// A connection that has not sent a whole request head within this
        /// (after connecting or after its last response) is closed.
        /// Default `"10s"`. Example: `header_timeout = "5s"`
        header_timeout: HumanDuration,
        /// Open data-plane connections; more are answered `503` and closed.
        /// Default `10_000`. Example: `max_connections = 1000`
        max_connections: Count,
        /// Directory for embedded key-value stores (created `0700`),
        /// relative to the manifest's folder. Default `".wasmhost-data"`.
        /// Example: `data_dir = "/var/lib/wasmhost"`
        data_dir: String,
        /// One log line per request (`event = "request"`). Off: successful
        /// requests are counted in the metrics only; failures and rejections
        /// are still logged. Default `true`. Example: `access_log = false`
        access_log: bool,
        /// Keep each compiled function in `<cache_dir>/functions/` and
        /// reuse it when a component is compiled again (a reload after an
        /// edit compiles only what changed). Default `true`. Example:
        /// `incremental_compilation = false`
        incremental_compilation: bool,
        /// Registries (`host:port`) pulled from over plain HTTP, not HTTPS.
        /// Default none. Example: `insecure_registries = ["127.0.0.1:5000"]`
        insecure_registries: Vec<Spanned<MaybeString>>,
        /// The largest `oci://` component pulled. Default `"256MiB"`.
        /// Example: `max_artifact_size = "64MiB"`
        max_artifact_size: ByteSize,
        /// The longest one `oci://` component may take to resolve and pull.
        /// Default `"2m"`. Example: `pull_timeout = "30s"`
        pull_timeout: HumanDuration,
    }
}

section! {
    /// `[defaults]`: limits every service inherits unless it overrides them.
    pub struct DefaultsSection in "[defaults]", fields prefixed "defaults." {
        ..limits,
    }
}

section! {
    /// One `[[service]]`: a component and where it is routed.
    pub struct ServiceSection in "[[service]]", fields prefixed "" {
        /// Unique name, `[a-z0-9-]+`. Required. Example: `name = "hello"`
        name: ServiceName,
        /// Path of the `.wasm` component, relative to the manifest's folder,
        /// or an OCI reference (`oci://REGISTRY/REPO:TAG`, `…@sha256:…`).
        /// Required. Example: `component = "hello.wasm"`
        component: String,
        /// One route (a path prefix). Either `route` or `routes` is required.
        /// Example: `route = "/hello"`
        route: RoutePrefix,
        /// Several routes. Example: `routes = ["/a", "/b"]`
        routes: Vec<Spanned<MaybeString>>,
        /// Restricts the routes to requests for this host.
        /// Example: `host = "api.example.com"`
        host: RouteHost,
        ..limits,
        /// The guest's whole environment. Example: `env = { GREETING = "hi" }`
        env: BTreeMap<Spanned<String>, Spanned<MaybeString>>,
        /// Read-only directories: guest path → host directory (relative to the
        /// manifest's folder). Example: `files = { "/static" = "./public" }`
        files: BTreeMap<Spanned<String>, Spanned<MaybeString>>,
        /// Outbound HTTP the guest may make.
        /// Example: `allowed_outbound_hosts = ["https://api.example.com"]`
        allowed_outbound_hosts: Vec<Spanned<MaybeString>>,
        /// The key-value stores the guest may open; none by default.
        /// Example: `key_value_stores = ["default"]`
        key_value_stores: Vec<Spanned<MaybeString>>,
        /// Values the guest reads by name (wasi:config, Spin variables).
        /// Example: `variables = { greeting = "hi", token = { env = "TOKEN", secret = true } }`
        variables: BTreeMap<Spanned<String>, Spanned<VariableSpec>>,
    }
}

/// The whole manifest as written: top-level keys `host`, `defaults` and
/// `service` (an array of tables).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    /// `[host]`.
    #[serde(default)]
    pub host: HostSection,
    /// `[defaults]`.
    #[serde(default)]
    pub defaults: DefaultsSection,
    /// Every `[[service]]`, in file order, with the span of its table.
    #[serde(default, rename = "service")]
    pub services: Vec<Spanned<ServiceSection>>,
    /// Every `[key_value.<name>]`, in file order (loaded by the document
    /// walk only).
    #[serde(skip)]
    pub key_value: Vec<StoreSection>,
    /// The `name` of each service as written, even when it is invalid, to
    /// name the service in its problems.
    #[serde(skip)]
    pub service_labels: Vec<Option<String>>,
}

impl ManifestSpec {
    /// Every top-level key.
    pub const KEYS: &'static [&'static str] = &["host", "defaults", "service", "key_value"];

    /// Loads a parsed document, collecting every problem of shape and type.
    pub(crate) fn from_document(doc: &DeTable<'_>, cx: &mut Collector<'_>) -> Self {
        let mut spec = ManifestSpec::default();
        for (key, value) in doc {
            match key.get_ref().as_ref() {
                "host" => match value.get_ref() {
                    DeValue::Table(t) => spec.host = HostSection::from_table(t, cx),
                    _ => cx.field(
                        value.span(),
                        "host",
                        "`host` must be a table: write `[host]`",
                    ),
                },
                "defaults" => match value.get_ref() {
                    DeValue::Table(t) => spec.defaults = DefaultsSection::from_table(t, cx),
                    _ => cx.field(
                        value.span(),
                        "defaults",
                        "`defaults` must be a table: write `[defaults]`",
                    ),
                },
                "service" => load_services(value, cx, &mut spec),
                "key_value" => spec.key_value = stores::load_stores(value, cx),
                other => unknown_key(cx, key.span(), other, "the top level", Self::KEYS),
            }
        }
        spec
    }
}

fn load_services(value: &Spanned<DeValue<'_>>, cx: &mut Collector<'_>, spec: &mut ManifestSpec) {
    let not_array = "`service` must be an array of tables: write each service as `[[service]]`";
    let DeValue::Array(items) = value.get_ref() else {
        cx.field(value.span(), "service", not_array);
        return;
    };
    for item in items.iter() {
        let DeValue::Table(table) = item.get_ref() else {
            cx.field(item.span(), "service", not_array);
            continue;
        };
        // Name the service in every problem about it, even if the name
        // itself is invalid: it is what the user will search for.
        cx.service = table
            .get("name")
            .and_then(|name| name.get_ref().as_str())
            .filter(|name| !name.is_empty())
            .map(str::to_owned);
        let section = ServiceSection::from_table(table, cx);
        spec.services.push(Spanned::new(item.span(), section));
        spec.service_labels.push(cx.service.take());
    }
}

/// An element of a list or table of strings. Elements of another type are
/// kept (described) instead of failing the whole list, so each bad element
/// gets its own problem and the good ones are still checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaybeString {
    /// A string, as expected.
    String(String),
    /// Anything else, described for the message: "integer `42`".
    Other(String),
}

impl MaybeString {
    /// The string, or a message saying what was found instead.
    pub fn as_str(&self) -> Result<&str, String> {
        match self {
            MaybeString::String(s) => Ok(s),
            MaybeString::Other(found) => Err(format!("expected a string, found {found}")),
        }
    }
}

impl<'de> Deserialize<'de> for MaybeString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeString;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E>(self, v: &str) -> Result<MaybeString, E> {
                Ok(MaybeString::String(v.to_owned()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<MaybeString, E> {
                Ok(MaybeString::Other(format!("boolean `{v}`")))
            }
            fn visit_i64<E>(self, v: i64) -> Result<MaybeString, E> {
                Ok(MaybeString::Other(format!("integer `{v}`")))
            }
            fn visit_u64<E>(self, v: u64) -> Result<MaybeString, E> {
                Ok(MaybeString::Other(format!("integer `{v}`")))
            }
            fn visit_f64<E>(self, v: f64) -> Result<MaybeString, E> {
                Ok(MaybeString::Other(format!("floating point `{v}`")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeString, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeString::Other("an array".to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(MaybeString::Other("a table or date-time".to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Records an unknown key, with a "did you mean" hint when a known key is
/// close, or where the key belongs when it is known in another table.
fn unknown_key(cx: &mut Collector<'_>, span: Range<usize>, key: &str, table: &str, known: &[&str]) {
    let hint = if let Some(close) = closest(key, known) {
        format!("did you mean `{close}`?")
    } else if let Some(home) = home_of(key).filter(|home| *home != table) {
        format!("`{key}` belongs in {home}")
    } else {
        let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        format!("expected one of {}", list.join(", "))
    };
    cx.push(
        span,
        None,
        format!("unknown key `{key}` in {table}: {hint}"),
    );
}

/// Where a key that is unknown in one table would be valid.
fn home_of(key: &str) -> Option<&'static str> {
    if DefaultsSection::KEYS.contains(&key) {
        Some("`[defaults]` or a `[[service]]`")
    } else if ServiceSection::KEYS.contains(&key) {
        Some("a `[[service]]`")
    } else if HostSection::KEYS.contains(&key) {
        Some("`[host]`")
    } else {
        None
    }
}

/// The known key closest to `key`, if it is close enough to be a typo.
/// Distance is optimal string alignment: Levenshtein, with a swap of two
/// neighbours counting as one edit (`fule` → `fuel`).
pub(crate) fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::osa_distance(&key, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::Fuel;

    #[test]
    fn typos_get_the_closest_key() {
        assert_eq!(closest("nmae", ServiceSection::KEYS), Some("name"));
        assert_eq!(closest("fule", DefaultsSection::KEYS), Some("fuel"));
        assert_eq!(closest("timout", DefaultsSection::KEYS), Some("timeout"));
        assert_eq!(closest("Listen", HostSection::KEYS), Some("listen"));
        assert_eq!(closest("allowed_hosts", ServiceSection::KEYS), None);
        assert_eq!(closest("xyz", ServiceSection::KEYS), None);
    }

    #[test]
    fn the_distance_counts_a_swap_as_one_edit() {
        assert_eq!(strsim::osa_distance("fuel", "fuel"), 0);
        assert_eq!(strsim::osa_distance("fule", "fuel"), 1);
        assert_eq!(strsim::osa_distance("", "abc"), 3);
        assert_eq!(strsim::osa_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_sections_also_deserialize_with_plain_serde() {
        let text = "[defaults]\nfuel = \"unlimited\"\n[[service]]\nname = \"a\"\ncomponent = \"a.wasm\"\nroute = \"/a/\"\nmemory = 65536\n";
        let spec: ManifestSpec = toml::from_str(text).unwrap();
        assert_eq!(spec.defaults.limits.fuel.unwrap().into_inner(), Fuel(None));
        let service = spec.services[0].get_ref();
        assert_eq!(service.route.as_ref().unwrap().get_ref().as_str(), "/a");
        let memory = service.limits.memory.as_ref().unwrap();
        assert_eq!(memory.get_ref().0, 65536);
        assert_eq!(
            memory.span().start,
            text.find("65536").unwrap(),
            "spans survive"
        );
        let typo = toml::from_str::<ManifestSpec>("[host]\nlisen = \"x\"\n").unwrap_err();
        assert!(typo.message().contains("unknown field `lisen`"));
        let typo = toml::from_str::<ManifestSpec>("[[service]]\nfule = 1\n").unwrap_err();
        assert!(typo.message().contains("unknown field `fule`"), "{typo}");
    }
}
