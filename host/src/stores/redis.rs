//! The Redis backend: for replicas that must share state. One connection
//! manager per store (the `redis` crate's, which reconnects by itself);
//! it is created on first use, so a host starts while Redis is down, and
//! every operation has a deadline, so a Redis that does not answer is the
//! guest's error after [`OP_TIMEOUT`], never a request stuck until its
//! timeout.
//!
//! Keys live under `wasmhost:kv:<store>:` so that stores sharing one Redis
//! database do not see each other's keys. `increment` is `INCRBY` (ASCII
//! decimal, as in the embedded backend); compare-and-swap is a Lua script,
//! atomic on the server. A store's `quota` does not apply: bound a Redis
//! store with Redis's own `maxmemory`.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use super::{KeyPage, LIST_PAGE, StoreError};

/// The longest a Redis operation (or connecting) may take.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets the key to ARGV[3] if its value is ARGV[2] (ARGV[1] = "1"), or if
/// it has none (ARGV[1] = "0"); 1 when it did.
const CAS_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
else
  if current then return 0 end
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"#;

/// An open Redis store.
pub struct Redis {
    client: redis::Client,
    prefix: String,
    manager: Mutex<Option<ConnectionManager>>,
    cas: redis::Script,
}

impl Redis {
    /// A store on the Redis at `url` (checked, not connected yet).
    pub fn open(url: &str, store: &str) -> anyhow::Result<Redis> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("invalid Redis URL: {}", redacted(&e)))?;
        Ok(Redis {
            client,
            prefix: format!("wasmhost:kv:{store}:"),
            manager: Mutex::new(None),
            cas: redis::Script::new(CAS_SCRIPT),
        })
    }

    /// The connection, connecting first if there is none yet.
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut manager = self.manager.lock().await;
        if let Some(manager) = manager.as_ref() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT));
        let connected = tokio::time::timeout(
            OP_TIMEOUT,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| StoreError::Unavailable("connecting to Redis timed out".to_owned()))?
        .map_err(unavailable)?;
        *manager = Some(connected.clone());
        Ok(connected)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs `op` with the connection, within [`OP_TIMEOUT`].
    async fn run<T, F>(&self, op: impl FnOnce(ConnectionManager) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection().await?;
        match tokio::time::timeout(OP_TIMEOUT, op(connection)).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".to_owned(),
            )),
        }
    }

    /// The value of `key`.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(&key);
        self.run(|mut c| async move { c.get(key).await }).await
    }

    /// Sets `key` to `value`.
    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        let key = self.key(&key);
        self.run(|mut c| async move { c.set(key, value).await })
            .await
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: String) -> Result<(), StoreError> {
        let key = self.key(&key);
        self.run(|mut c| async move { c.del::<_, ()>(key).await })
            .await
    }

    /// A page of keys: `cursor` is Redis's `SCAN` cursor (a page may hold
    /// fewer than [`LIST_PAGE`] keys; order is Redis's).
    pub async fn keys(&self, cursor: Option<String>) -> Result<KeyPage, StoreError> {
        let start: u64 = match cursor.as_deref() {
            None => 0,
            Some(cursor) => cursor
                .parse()
                .map_err(|_| StoreError::Unavailable(format!("not a cursor: `{cursor}`")))?,
        };
        let pattern = format!("{}*", self.prefix);
        let (next, keys): (u64, Vec<String>) = self
            .run(|mut c| async move {
                redis::cmd("SCAN")
                    .arg(start)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(LIST_PAGE)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let keys = keys
            .into_iter()
            .filter_map(|key| key.strip_prefix(&self.prefix).map(str::to_owned))
            .collect();
        Ok(KeyPage {
            keys,
            cursor: (next != 0).then(|| next.to_string()),
        })
    }

    /// Adds `delta` to the counter at `key` (`INCRBY`).
    pub async fn increment(&self, key: String, delta: i64) -> Result<i64, StoreError> {
        let key = self.key(&key);
        let connection = self.connection().await?;
        let result = tokio::time::timeout(OP_TIMEOUT, async move {
            let mut c = connection;
            c.incr::<_, _, i64>(key, delta).await
        })
        .await
        .map_err(|_| StoreError::Unavailable("Redis did not answer in time".to_owned()))?;
        match result {
            Ok(value) => Ok(value),
            Err(err)
                if err.kind()
                    == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                Err(StoreError::NotACounter)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Sets `key` to `value` if it still holds `expected`, atomically.
    pub async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let key = self.key(&key);
        let (has, expected) = match expected {
            Some(bytes) => ("1", bytes),
            None => ("0", Vec::new()),
        };
        let swapped: i64 = self
            .run(|mut c| async move {
                self.cas
                    .key(key)
                    .arg(has)
                    .arg(expected)
                    .arg(value)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(swapped == 1)
    }
}

fn unavailable(err: redis::RedisError) -> StoreError {
    StoreError::Unavailable(redacted(&err))
}

/// A Redis error's text without anything that could be a password (the
/// crate does not print URLs, but say so in one place).
fn redacted(err: &redis::RedisError) -> String {
    let text = err.to_string();
    match text.find("redis://").or_else(|| text.find("rediss://")) {
        Some(at) => format!("{}(URL hidden)", &text[..at]),
        None => text,
    }
}
