//! A service's `variables`: values read when the manifest is loaded (from
//! the manifest, the host's environment or a file), so a missing one is a
//! problem at start and a kept-old-version at a reload.
//!
//! A secret's value never leaves this module in a form that prints it:
//! `Debug` and `Serialize` (the admin API) show only where it comes from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::config::problem::Collector;

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
