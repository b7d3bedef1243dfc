//! Key-value stores: where services keep state between requests.
//!
//! [`Stores`] holds one open [`Store`] per `[key_value.<name>]` of the
//! manifest (and `default`); services that list the same store share its
//! data. The backends:
//! - [`embedded`]: a SQLite file per store under `[host] data_dir`, in WAL
//!   mode; every call runs on tokio's blocking pool, never on an I/O
//!   worker thread.
//! - [`redis`]: a Redis server shared by replicas, reconnecting by itself.
//!
//! Semantics (also in `docs/state.md`): a request reads its own writes;
//! concurrent writers to one key: the last one wins; `increment` and
//! compare-and-swap are atomic; keys are listed in byte order, a page at a
//! time ([`LIST_PAGE`]), the cursor being the last key of the previous
//! page. Counters are stored as ASCII decimal (`get` of a counter gives
//! `b"42"`).

pub mod embedded;
pub mod redis;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::manifest::{Backend, StoreConfig};
use crate::observe::metrics::{Metrics, StoreMetrics};

/// Keys returned per `list-keys` page.
pub const LIST_PAGE: usize = 1000;

/// Why a store operation failed: each maps to an interface's error case,
/// never to a trap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A key longer than the store's `max_key`.
    #[error("key of {len} bytes is longer than this store's max_key ({max} B)")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The store's limit.
        max: u64,
    },
    /// A value larger than the store's `max_value`.
    #[error("value of {len} bytes is larger than this store's max_value ({max} B)")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The store's limit.
        max: u64,
    },
    /// The write would take the store past its `quota`.
    #[error("the store is full: this write would take it past its quota of {quota} B")]
    QuotaExceeded {
        /// The store's quota.
        quota: u64,
    },
    /// `increment` on a value that is not a decimal integer.
    #[error("the value is not an integer counter")]
    NotACounter,
    /// `increment` past the range of a 64-bit integer.
    #[error("the counter would overflow")]
    Overflow,
    /// The backend failed (disk, connection): a guest error, and counted.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// One open store: its limits and its backend.
pub struct Store {
    /// Its name.
    pub name: String,
    config: StoreConfig,
    backend: Backing,
    metrics: Option<StoreMetrics>,
}

enum Backing {
    Embedded(embedded::Embedded),
    Redis(Box<redis::Redis>),
}

/// One page of keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    /// Keys in byte order.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
}

impl Store {
    /// Opens the store `config` describes, counting its operations in
    /// `metrics` (none in unit tests).
    pub fn open(config: &StoreConfig, metrics: Option<StoreMetrics>) -> anyhow::Result<Store> {
        let backend = match &config.backend {
            Backend::Embedded { file } => {
                Backing::Embedded(embedded::Embedded::open(file, config.quota)?)
            }
            Backend::Redis { url } => {
                Backing::Redis(Box::new(redis::Redis::open(&url.0, &config.name)?))
            }
        };
        Ok(Store {
            name: config.name.clone(),
            config: config.clone(),
            backend,
            metrics,
        })
    }

    /// Runs `op` (named `name` in metrics), counting it and, when the
    /// backend failed, logging it.
    async fn measure<T>(
        &self,
        name: &str,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let result = op.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(StoreError::Unavailable(reason)) => {
                tracing::warn!(store = %self.name, op = name, reason = %reason, "key-value store unavailable");
                "error"
            }
            Err(_) => "limit",
        };
        if let Some(metrics) = &self.metrics {
            metrics.record(name, outcome, started.elapsed().as_secs_f64());
        }
        if let Some(parent) = crate::observe::traces::current() {
            use opentelemetry::KeyValue;
            let system = match self.config.backend {
                Backend::Embedded { .. } => "sqlite",
                Backend::Redis { .. } => "redis",
            };
            crate::observe::traces::record_child(
                parent,
                format!("{name} {}", self.name),
                crate::observe::traces::Kind::Client,
                started,
                vec![
                    KeyValue::new("db.system.name", system),
                    KeyValue::new("db.operation.name", name.to_owned()),
                    KeyValue::new("db.collection.name", self.name.to_string()),
                    KeyValue::new("wasmhost.result", outcome),
                ],
                (outcome != "ok").then(|| outcome.to_owned()),
            );
        }
        result
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    fn check_key(&self, key: &str) -> Result<(), StoreError> {
        if key.len() as u64 > self.config.max_key {
            return Err(StoreError::KeyTooLong {
                len: key.len(),
                max: self.config.max_key,
            });
        }
        Ok(())
    }

    fn check_value(&self, value: &[u8]) -> Result<(), StoreError> {
        if value.len() as u64 > self.config.max_value {
            return Err(StoreError::ValueTooLarge {
                len: value.len(),
                max: self.config.max_value,
            });
        }
        Ok(())
    }

    /// The value of `key`, if it has one.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.measure("get", async {
            self.check_key(&key)?;
            match &self.backend {
                Backing::Embedded(db) => db.get(key).await,
                Backing::Redis(db) => db.get(key).await,
            }
        })
        .await
    }

    /// Sets `key` to `value`.
    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        self.measure("set", async {
            self.check_key(&key)?;
            self.check_value(&value)?;
            match &self.backend {
                Backing::Embedded(db) => db.set(key, value).await,
                Backing::Redis(db) => db.set(key, value).await,
            }
        })
        .await
    }

    /// Deletes `key` (a missing key is not an error).
    pub async fn delete(&self, key: String) -> Result<(), StoreError> {
        self.measure("delete", async {
            self.check_key(&key)?;
            match &self.backend {
                Backing::Embedded(db) => db.delete(key).await,
                Backing::Redis(db) => db.delete(key).await,
            }
        })
        .await
    }

    /// Whether `key` has a value.
    pub async fn exists(&self, key: String) -> Result<bool, StoreError> {
        Ok(self.get(key).await?.is_some())
    }

    /// The page of keys after `cursor` (from the first key when `None`).
    pub async fn keys(&self, cursor: Option<String>) -> Result<KeyPage, StoreError> {
        self.measure("list_keys", async {
            match &self.backend {
                Backing::Embedded(db) => db.keys(cursor).await,
                Backing::Redis(db) => db.keys(cursor).await,
            }
        })
        .await
    }

    /// The values of `keys`, in order (batch `get-many`).
    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let value = self.get(key.clone()).await?;
            found.push((key, value));
        }
        Ok(found)
    }

    /// Sets every pair, in order, stopping at the first failure (batch
    /// `set-many`: not atomic).
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), StoreError> {
        for (key, value) in pairs {
            self.set(key, value).await?;
        }
        Ok(())
    }

    /// Deletes every key, stopping at the first failure (batch
    /// `delete-many`).
    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), StoreError> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }

    /// Every key (all pages).
    pub async fn all_keys(&self) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.keys(cursor).await?;
            keys.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Adds `delta` to the counter at `key` (a missing key counts from 0)
    /// and returns the new value, atomically.
    pub async fn increment(&self, key: String, delta: i64) -> Result<i64, StoreError> {
        self.measure("increment", async {
            self.check_key(&key)?;
            match &self.backend {
                Backing::Embedded(db) => db.increment(key, delta).await,
                Backing::Redis(db) => db.increment(key, delta).await,
            }
        })
        .await
    }

    /// Sets `key` to `value` if its value is still `expected` (`None`:
    /// still missing); `Ok(false)` when it changed. Atomic.
    pub async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.measure("compare_and_swap", async {
            self.check_key(&key)?;
            self.check_value(&value)?;
            match &self.backend {
                Backing::Embedded(db) => db.compare_and_swap(key, expected, value).await,
                Backing::Redis(db) => db.compare_and_swap(key, expected, value).await,
            }
        })
        .await
    }
}

/// Every open store, by name. Cheap to clone.
#[derive(Clone, Default)]
pub struct Stores(Arc<HashMap<String, Arc<Store>>>);

impl Stores {
    /// Opens every store in `configs`, reusing those of `previous` whose
    /// configuration did not change (a reload never reopens, and never
    /// loses, a store's data).
    pub fn open(
        configs: &[StoreConfig],
        previous: &Stores,
        metrics: &Metrics,
    ) -> anyhow::Result<Stores> {
        let mut stores = HashMap::new();
        for config in configs {
            let store = match previous.0.get(&config.name) {
                Some(open) if open.config() == config => open.clone(),
                _ => Arc::new(
                    Store::open(config, Some(metrics.store(&config.name))).map_err(|e| {
                        e.context(format!("opening the key-value store `{}`", config.name))
                    })?,
                ),
            };
            stores.insert(config.name.clone(), store);
        }
        Ok(Stores(Arc::new(stores)))
    }

    /// The store called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Store>> {
        self.0.get(name)
    }
}
