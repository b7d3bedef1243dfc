//! `[key_value.<name>]`: the key-value stores services may open, loaded and
//! checked with every problem at its line. Each service lists the stores it
//! may open in `key_value_stores` (checked in `validate.rs`).
//!
//! A Redis URL may carry a password: it is a [`Secret`], never printed.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::DeValue;

use crate::config::problem::Collector;
use crate::config::units::ByteSize;

/// The store `open-default` / `Store::open_default()` opens. It exists
/// (embedded) even when the manifest has no `[key_value.default]`, as in
/// Spin; a service still opens it only if it lists it.
pub const DEFAULT_STORE: &str = "default";

/// Longest key, by default.
pub const DEFAULT_MAX_KEY: u64 = 256;
/// Largest value, by default.
pub const DEFAULT_MAX_VALUE: u64 = 1 << 20;
/// Most bytes (keys and values) an embedded store holds, by default.
pub const DEFAULT_QUOTA: u64 = 64 << 20;

/// One key-value store, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreConfig {
    /// Its name (`[key_value.<name>]`), what guests open.
    pub name: String,
    /// Where its data lives.
    #[serde(flatten)]
    pub backend: Backend,
    /// Longest key in bytes.
    pub max_key: u64,
    /// Largest value in bytes.
    pub max_value: u64,
    /// Most bytes of keys and values (embedded stores).
    pub quota: u64,
}

/// Where a store's data lives.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "backend", rename_all = "snake_case")]
pub enum Backend {
    /// A SQLite file under `[host] data_dir`.
    Embedded {
        /// The database file.
        file: PathBuf,
    },
    /// A Redis server shared by replicas.
    Redis {
        /// Its URL (may carry a password: never shown).
        url: Secret,
    },
}

/// A string that is never printed: `Debug` and `Serialize` show
/// `"(secret)"`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("(secret)")
    }
}

/// Whether `name` may name a store: `[a-z0-9_-]+`, starting with a letter
/// or digit.
fn valid_store_name(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The keys a `[key_value.<name>]` table takes.
const STORE_KEYS: &[&str] = &["backend", "url", "max_key", "max_value", "quota"];

/// A `[key_value.<name>]` table as written.
#[derive(Debug, Clone, Default)]
pub struct StoreSection {
    /// The store's name and its span.
    pub name: Option<Spanned<String>>,
    backend: Option<Spanned<String>>,
    url: Option<Spanned<StringSource>>,
    max_key: Option<Spanned<ByteSize>>,
    max_value: Option<Spanned<ByteSize>>,
    quota: Option<Spanned<ByteSize>>,
    /// The table's span.
    span: Range<usize>,
}

/// A string written in the manifest, or read from the host's environment:
/// `"text"` or `{ env = "NAME" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum StringSource {
    Literal(String),
    Env { env: String },
}

/// Loads the top-level `key_value` table: one store per sub-table.
pub(crate) fn load_stores(
    value: &Spanned<DeValue<'_>>,
    cx: &mut Collector<'_>,
) -> Vec<StoreSection> {
    let DeValue::Table(stores) = value.get_ref() else {
        cx.field(
            value.span(),
            "key_value",
            "`key_value` must hold one table per store: write `[key_value.default]`",
        );
        return Vec::new();
    };
    let mut sections = Vec::new();
    for (name, table) in stores {
        let field = |key: &str| format!("key_value.{}.{key}", name.get_ref());
        let DeValue::Table(table) = table.get_ref() else {
            cx.field(
                table.span(),
                &format!("key_value.{}", name.get_ref()),
                format!(
                    "a store is a table: write `[key_value.{}]` and its keys below it",
                    name.get_ref()
                ),
            );
            continue;
        };
        let mut section = StoreSection {
            name: Some(Spanned::new(name.span(), name.get_ref().to_string())),
            span: name.span(),
            ..StoreSection::default()
        };
        for (key, value) in table {
            match key.get_ref().as_ref() {
                "backend" => section.backend = cx.load(value, &field("backend")),
                "url" => {
                    section.url = cx.load(value, &field("url"));
                    if section.url.is_none() {
                        // The untagged error says nothing useful.
                        cx.field(
                            value.span(),
                            &field("url"),
                            "write the URL as a string, or `{ env = \"REDIS_URL\" }` to read it from the host's environment",
                        );
                    }
                }
                "max_key" => section.max_key = cx.load(value, &field("max_key")),
                "max_value" => section.max_value = cx.load(value, &field("max_value")),
                "quota" => section.quota = cx.load(value, &field("quota")),
                other => {
                    let hint = match crate::config::manifest::schema::closest(other, STORE_KEYS) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => format!(
                            "expected one of {}",
                            STORE_KEYS
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    cx.push(
                        key.span(),
                        None,
                        format!(
                            "unknown key `{other}` in `[key_value.{}]`: {hint}",
                            name.get_ref()
                        ),
                    );
                }
            }
        }
        sections.push(section);
    }
    sections
}

/// The stores, resolved: every declared one, and `default` (embedded) when
/// it is not declared. Problems go to `cx`.
pub(crate) fn build_stores(
    sections: &[StoreSection],
    data_dir: &Path,
    cx: &mut Collector<'_>,
) -> Vec<StoreConfig> {
    let mut stores = Vec::new();
    for section in sections {
        let Some(name) = &section.name else { continue };
        let field = |key: &str| format!("key_value.{}.{key}", name.get_ref());
        if !valid_store_name(name.get_ref()) {
            cx.field(
                name.span(),
                &format!("key_value.{}", name.get_ref()),
                "a store name uses `a-z`, `0-9`, `_` and `-`, starting with a letter or digit",
            );
        }
        let size = |value: &Option<Spanned<ByteSize>>, default: u64| {
            value.as_ref().map_or(default, |v| v.get_ref().0)
        };
        let (max_key, max_value, quota) = (
            size(&section.max_key, DEFAULT_MAX_KEY),
            size(&section.max_value, DEFAULT_MAX_VALUE),
            size(&section.quota, DEFAULT_QUOTA),
        );
        for (value, key, least) in [
            (&section.max_key, "max_key", 1),
            (&section.max_value, "max_value", 1),
            (&section.quota, "quota", 4096),
        ] {
            if let Some(value) = value.as_ref().filter(|v| v.get_ref().0 < least) {
                cx.field(
                    value.span(),
                    &field(key),
                    format!("must be at least {least} B"),
                );
            }
        }
        if let Some(value) = section.max_value.as_ref().filter(|_| max_value > 512 << 20) {
            cx.field(value.span(), &field("max_value"), "must be at most 512MiB");
        }
        let backend_name = section
            .backend
            .as_ref()
            .map_or("embedded", |b| b.get_ref().as_str());
        let backend = match backend_name {
            "embedded" => {
                if let Some(url) = &section.url {
                    cx.field(
                        url.span(),
                        &field("url"),
                        "an embedded store has no URL: remove `url`, or set `backend = \"redis\"`",
                    );
                }
                Backend::Embedded {
                    file: data_dir
                        .join("kv")
                        .join(format!("{}.sqlite", name.get_ref())),
                }
            }
            "redis" => {
                let url = match &section.url {
                    None => {
                        cx.field(
                            section.span.clone(),
                            &field("url"),
                            "a Redis store needs `url = \"redis://host:6379/0\"` or `url = { env = \"REDIS_URL\" }`",
                        );
                        String::new()
                    }
                    Some(url) => {
                        let text = match url.get_ref() {
                            StringSource::Literal(text) => Some(text.clone()),
                            StringSource::Env { env } => match std::env::var(env) {
                                Ok(text) => Some(text),
                                Err(_) => {
                                    cx.field(
                                        url.span(),
                                        &field("url"),
                                        format!("the host's environment has no `{env}`: set it, or write the URL here"),
                                    );
                                    None
                                }
                            },
                        };
                        if let Some(text) = &text
                            && !(text.starts_with("redis://") || text.starts_with("rediss://"))
                        {
                            cx.field(
                                url.span(),
                                &field("url"),
                                "a Redis URL starts with `redis://` or `rediss://`",
                            );
                        }
                        text.unwrap_or_default()
                    }
                };
                if let Some(quota) = &section.quota {
                    cx.field(
                        quota.span(),
                        &field("quota"),
                        "`quota` applies to embedded stores; bound a Redis store with its own `maxmemory`",
                    );
                }
                Backend::Redis { url: Secret(url) }
            }
            other => {
                let span = section.backend.as_ref().map_or(0..0, |b| b.span());
                cx.field(
                    span,
                    &field("backend"),
                    format!("unknown backend `{other}`: use `embedded` or `redis`"),
                );
                continue;
            }
        };
        stores.push(StoreConfig {
            name: name.get_ref().clone(),
            backend,
            max_key,
            max_value,
            quota,
        });
    }
    if !stores.iter().any(|s| s.name == DEFAULT_STORE) {
        stores.push(StoreConfig {
            name: DEFAULT_STORE.to_owned(),
            backend: Backend::Embedded {
                file: data_dir.join("kv").join(format!("{DEFAULT_STORE}.sqlite")),
            },
            max_key: DEFAULT_MAX_KEY,
            max_value: DEFAULT_MAX_VALUE,
            quota: DEFAULT_QUOTA,
        });
    }
    stores
}
