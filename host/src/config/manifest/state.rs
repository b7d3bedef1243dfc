//! What a service keeps and reads besides its request: the key-value
//! stores of `[key_value.<name>]` (and each service's `key_value_stores`),
//! and each service's `variables`. Loaded and checked here, with every
//! problem at its line; a variable's value is read (from the host's
//! environment or a file) when the manifest is loaded, so a missing one is
//! a problem at start and a kept-old-version at a reload.
//!
//! A secret's value never leaves this module in a form that prints it:
//! `Debug` and `Serialize` (the admin API) show only where it comes from.

use std::collections::BTreeMap;
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

/// One of a service's variables, its value read.
#[derive(Clone, PartialEq)]
pub struct Variable {
    /// Its name, as guests ask for it.
    pub name: String,
    /// Where the value comes from.
    pub source: VariableSource,
    /// The value.
    pub value: String,
    /// A secret's value is never logged, shown or counted.
    pub secret: bool,
}

/// Where a variable's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableSource {
    /// Written in the manifest.
    Literal,
    /// The host's environment variable of that name.
    Env(String),
    /// The contents of that file (one trailing newline dropped), read again
    /// when it changes.
    File(PathBuf),
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Variable");
        s.field("name", &self.name).field("source", &self.source);
        if self.secret {
            s.field("value", &"(secret)");
        } else {
            s.field("value", &self.value);
        }
        s.field("secret", &self.secret).finish()
    }
}

impl Serialize for Variable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        match &self.source {
            VariableSource::Literal => map.serialize_entry("source", "manifest")?,
            VariableSource::Env(name) => map.serialize_entry("env", name)?,
            VariableSource::File(path) => map.serialize_entry("file", path)?,
        }
        map.serialize_entry("secret", &self.secret)?;
        if !self.secret {
            map.serialize_entry("value", &self.value)?;
        }
        map.end()
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

/// Whether `name` may name a variable (Spin's rule, so Spin components ask
/// for the same names): lowercase letters, digits and single underscores,
/// starting with a letter and ending with a letter or digit.
pub fn valid_variable_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes.last().is_some_and(|b| *b != b'_')
        && !name.contains("__")
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
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

/// A variable as written: `"text"` or a table with `value`, `env` or
/// `file`, and `secret`. Anything else is kept, described, so that each
/// bad variable gets its own problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariableSpec {
    /// `name = "text"`.
    Literal(String),
    /// `name = { env = "X" | file = "path" | value = "text", secret = true }`.
    Table {
        /// Where the value comes from.
        source: Result<(SourceKind, String), String>,
        /// `secret`, default `false`.
        secret: bool,
    },
    /// Not a string or table: what was found.
    Invalid(String),
}

/// Which key of a variable's table gave its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `value`.
    Value,
    /// `env`.
    Env,
    /// `file`.
    File,
}

impl<'de> Deserialize<'de> for VariableSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VariableSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a table")
            }
            fn visit_str<E>(self, v: &str) -> Result<VariableSpec, E> {
                Ok(VariableSpec::Literal(v.to_owned()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<VariableSpec, E> {
                Ok(VariableSpec::Invalid(format!("boolean `{v}`")))
            }
            fn visit_i64<E>(self, v: i64) -> Result<VariableSpec, E> {
                Ok(VariableSpec::Invalid(format!("integer `{v}`")))
            }
            fn visit_u64<E>(self, v: u64) -> Result<VariableSpec, E> {
                Ok(VariableSpec::Invalid(format!("integer `{v}`")))
            }
            fn visit_f64<E>(self, v: f64) -> Result<VariableSpec, E> {
                Ok(VariableSpec::Invalid(format!("floating point `{v}`")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VariableSpec, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(VariableSpec::Invalid("an array".to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VariableSpec, A::Error> {
                let mut sources = Vec::new();
                let mut secret = false;
                let mut problem = None;
                while let Some(key) = map.next_key::<String>()? {
                    let kind = match key.as_str() {
                        "value" => SourceKind::Value,
                        "env" => SourceKind::Env,
                        "file" => SourceKind::File,
                        "secret" => {
                            match map.next_value::<toml::Value>()? {
                                toml::Value::Boolean(b) => secret = b,
                                _ => problem = Some("`secret` is `true` or `false`".to_owned()),
                            }
                            continue;
                        }
                        other => {
                            map.next_value::<IgnoredAny>()?;
                            problem = Some(format!(
                                "unknown key `{other}`: a variable takes one of `value`, `env` or `file`, and `secret`"
                            ));
                            continue;
                        }
                    };
                    match map.next_value::<toml::Value>()? {
                        toml::Value::String(text) => sources.push((kind, text)),
                        _ => problem = Some(format!("`{key}` must be a string")),
                    }
                }
                let source = match (problem, sources.len()) {
                    (Some(problem), _) => Err(problem),
                    (None, 1) => Ok(sources.remove(0)),
                    (None, 0) => Err(
                        "give the value: `value = \"...\"`, `env = \"NAME\"` or `file = \"path\"`"
                            .to_owned(),
                    ),
                    (None, _) => {
                        Err("give one of `value`, `env` or `file`, not several".to_owned())
                    }
                };
                Ok(VariableSpec::Table { source, secret })
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A service's `variables`, their values read. `dir` is the manifest's
/// folder (for `file`).
pub(crate) fn build_variables(
    written: &BTreeMap<Spanned<String>, Spanned<VariableSpec>>,
    dir: &Path,
    cx: &mut Collector<'_>,
) -> Vec<Variable> {
    let mut variables = Vec::new();
    for (name, spec) in written {
        let field = format!("variables.{}", name.get_ref());
        if !valid_variable_name(name.get_ref()) {
            cx.field(
                name.span(),
                &field,
                "a variable name uses lowercase letters, digits and single underscores, starts with a letter and ends with a letter or digit (as in Spin)",
            );
            continue;
        }
        let (kind, text, secret) = match spec.get_ref() {
            VariableSpec::Literal(text) => (SourceKind::Value, text.clone(), false),
            VariableSpec::Table {
                source: Ok((kind, text)),
                secret,
            } => (*kind, text.clone(), *secret),
            VariableSpec::Table {
                source: Err(problem),
                ..
            } => {
                cx.field(spec.span(), &field, problem.clone());
                continue;
            }
            VariableSpec::Invalid(found) => {
                cx.field(
                    spec.span(),
                    &field,
                    format!("expected a string or a table like `{{ env = \"NAME\", secret = true }}`, found {found}"),
                );
                continue;
            }
        };
        let read = match kind {
            SourceKind::Value => Ok((VariableSource::Literal, text)),
            SourceKind::Env => std::env::var(&text)
                .map(|value| (VariableSource::Env(text.clone()), value))
                .map_err(|_| format!("the host's environment has no `{text}`")),
            SourceKind::File => {
                let path = super::validate::resolve(dir, &text);
                read_variable_file(&path)
                    .map(|value| (VariableSource::File(path.clone()), value))
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
            }
        };
        match read {
            Ok((source, value)) => variables.push(Variable {
                name: name.get_ref().clone(),
                source,
                value,
                secret,
            }),
            Err(problem) => cx.field(spec.span(), &field, problem),
        }
    }
    variables
}

/// A variable file's contents, one trailing newline dropped (what `echo`
/// and editors leave; Kubernetes Secrets carry the bytes as given).
pub fn read_variable_file(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}
