//! The embedded backend: one SQLite file per store (rusqlite, SQLite
//! bundled), in WAL mode with `synchronous = NORMAL`: a `set` is answered
//! once its transaction is in the write-ahead log, so it survives the host
//! being killed (SIGKILL, OOM kill); a power loss may lose the last
//! transactions, never corrupt the file.
//!
//! One connection per store behind a mutex; every call that touches the
//! file runs on tokio's blocking pool, so a slow disk never stalls an I/O
//! worker. The quota counts the bytes of keys and values, kept in memory
//! from a sum taken at open and updated by every write under the same lock.
//!
//! Reads are served from a write-through cache when they can: this process
//! is the only writer of its store files, and every write updates the cache
//! under the connection's lock after it committed, so a cached value is
//! never older than the last answered write. The cache holds at most
//! [`CACHE_BYTES`] of keys and values (and which keys are missing); past
//! that it starts over.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};

use super::{KeyPage, LIST_PAGE, StoreError};

/// Most bytes of keys and values the read cache of one store holds.
pub const CACHE_BYTES: usize = 16 << 20;

/// An open embedded store.
pub struct Embedded {
    db: Arc<Mutex<Db>>,
    cache: Arc<Mutex<Cache>>,
}

/// Values read or written lately: `None` for a key known to be missing.
#[derive(Default)]
struct Cache {
    values: std::collections::HashMap<String, Option<Arc<[u8]>>>,
    bytes: usize,
}

impl Cache {
    fn put(&mut self, key: &str, value: Option<&[u8]>) {
        let size = key.len() + value.map_or(0, <[u8]>::len);
        if size > CACHE_BYTES / 16 {
            // Too big to be worth keeping: forget any older copy.
            if let Some(old) = self.values.remove(key) {
                self.bytes -= key.len() + old.map_or(0, |v| v.len());
            }
            return;
        }
        if self.bytes + size > CACHE_BYTES {
            self.values.clear();
            self.bytes = 0;
        }
        if let Some(old) = self.values.insert(key.to_owned(), value.map(Arc::from)) {
            self.bytes -= key.len() + old.map_or(0, |v| v.len());
        }
        self.bytes += size;
    }
}

struct Db {
    conn: Connection,
    /// Bytes of keys and values stored.
    used: u64,
    quota: u64,
}

impl Embedded {
    /// Opens (creating) the store file at `file`; its folder is created
    /// owner-only (`0700`).
    pub fn open(file: &Path, quota: u64) -> anyhow::Result<Embedded> {
        if let Some(dir) = file.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating `{}`", dir.display()))?;
        }
        let conn =
            Connection::open(file).with_context(|| format!("opening `{}`", file.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;",
        )?;
        let used: i64 = conn.query_row(
            "SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0) FROM kv",
            [],
            |row| row.get(0),
        )?;
        Ok(Embedded {
            db: Arc::new(Mutex::new(Db {
                conn,
                used: used as u64,
                quota,
            })),
            cache: Arc::default(),
        })
    }

    fn cached(&self, key: &str) -> Option<Option<Vec<u8>>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .values
            .get(key)
            .map(|v| v.as_deref().map(<[u8]>::to_vec))
    }

    /// Runs `op` on the blocking pool with the connection and the cache
    /// (locked after the connection, always in that order).
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Db, &Mutex<Cache>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (db, cache) = (self.db.clone(), self.cache.clone());
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
            op(&mut db, &cache)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// The value of `key`.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.cached(&key) {
            return Ok(value);
        }
        self.run(move |db, cache| {
            let value = db.value(&key).map_err(unavailable)?;
            remember(cache, &key, value.as_deref());
            Ok(value)
        })
        .await
    }

    /// Sets `key` to `value`, within the quota.
    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        self.run(move |db, cache| {
            db.put(&key, &value)?;
            remember(cache, &key, Some(&value));
            Ok(())
        })
        .await
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: String) -> Result<(), StoreError> {
        self.run(move |db, cache| {
            let old = db.size_of(&key).map_err(unavailable)?;
            db.conn
                .execute("DELETE FROM kv WHERE key = ?1", params![key])
                .map_err(unavailable)?;
            if let Some(old) = old {
                db.used = db.used.saturating_sub(old);
            }
            remember(cache, &key, None);
            Ok(())
        })
        .await
    }

    /// The page of keys after `cursor`.
    pub async fn keys(&self, cursor: Option<String>) -> Result<KeyPage, StoreError> {
        self.run(move |db, _| {
            let mut statement = db
                .conn
                .prepare_cached("SELECT key FROM kv WHERE key > ?1 ORDER BY key LIMIT ?2")
                .map_err(unavailable)?;
            let keys = statement
                .query_map(
                    params![cursor.unwrap_or_default(), LIST_PAGE as i64 + 1],
                    |row| row.get::<_, String>(0),
                )
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok(page(keys))
        })
        .await
    }

    /// Adds `delta` to the counter at `key`.
    pub async fn increment(&self, key: String, delta: i64) -> Result<i64, StoreError> {
        self.run(move |db, cache| {
            let current = match db.value(&key).map_err(unavailable)? {
                None => 0,
                Some(bytes) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| text.trim().parse::<i64>().ok())
                    .ok_or(StoreError::NotACounter)?,
            };
            let next = current.checked_add(delta).ok_or(StoreError::Overflow)?;
            let text = next.to_string();
            db.put(&key, text.as_bytes())?;
            remember(cache, &key, Some(text.as_bytes()));
            Ok(next)
        })
        .await
    }

    /// Sets `key` to `value` if it still holds `expected`.
    pub async fn compare_and_swap(
        &self,
        key: String,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.run(move |db, cache| {
            if db.value(&key).map_err(unavailable)? != expected {
                return Ok(false);
            }
            db.put(&key, &value)?;
            remember(cache, &key, Some(&value));
            Ok(true)
        })
        .await
    }
}

impl Db {
    fn value(&self, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
        self.conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")?
            .query_row(params![key], |row| row.get(0))
            .optional()
    }

    /// Bytes `key` and its value take, if it is stored.
    fn size_of(&self, key: &str) -> rusqlite::Result<Option<u64>> {
        self.conn
            .prepare_cached("SELECT length(value) FROM kv WHERE key = ?1")?
            .query_row(params![key], |row| row.get::<_, i64>(0))
            .optional()
            .map(|len| len.map(|len| len as u64 + key.len() as u64))
    }

    fn put(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let old = self.size_of(key).map_err(unavailable)?.unwrap_or(0);
        let used = self.used - old.min(self.used) + key.len() as u64 + value.len() as u64;
        if used > self.quota && used > self.used {
            return Err(StoreError::QuotaExceeded { quota: self.quota });
        }
        self.conn
            .prepare_cached(
                "INSERT INTO kv (key, value) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut statement| statement.execute(params![key, value]))
            .map_err(unavailable)?;
        self.used = used;
        Ok(())
    }
}

/// Records what the file now holds for `key` (called with the connection
/// locked).
fn remember(cache: &Mutex<Cache>, key: &str, value: Option<&[u8]>) {
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .put(key, value);
}

/// A page from up to `LIST_PAGE + 1` keys: the extra one says there is more.
fn page(mut keys: Vec<String>) -> KeyPage {
    if keys.len() > LIST_PAGE {
        keys.truncate(LIST_PAGE);
        let cursor = keys.last().cloned();
        KeyPage { keys, cursor }
    } else {
        KeyPage { keys, cursor: None }
    }
}

fn unavailable(err: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(quota: u64) -> (tempfile::TempDir, Embedded) {
        let dir = tempfile::tempdir().unwrap();
        let store = Embedded::open(&dir.path().join("kv/s.sqlite"), quota).unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn set_get_delete_and_list_in_pages() {
        let (_dir, db) = store(1 << 20);
        assert_eq!(db.get("a".into()).await, Ok(None));
        db.set("a".into(), b"1".to_vec()).await.unwrap();
        assert_eq!(db.get("a".into()).await, Ok(Some(b"1".to_vec())));
        db.delete("a".into()).await.unwrap();
        db.delete("a".into()).await.unwrap();
        assert_eq!(db.get("a".into()).await, Ok(None));
        for i in 0..(LIST_PAGE + 5) {
            db.set(format!("k{i:05}"), vec![]).await.unwrap();
        }
        let first = db.keys(None).await.unwrap();
        assert_eq!(first.keys.len(), LIST_PAGE);
        let second = db.keys(first.cursor.clone()).await.unwrap();
        assert_eq!(second.keys.len(), 5);
        assert_eq!(second.cursor, None);
        assert!(second.keys[0] > *first.keys.last().unwrap());
    }

    #[tokio::test]
    async fn the_read_cache_never_serves_an_older_value_than_the_last_write() {
        let (_dir, db) = store(64 << 20);
        let big = vec![7; CACHE_BYTES / 8];
        db.set("big".into(), big.clone()).await.unwrap();
        assert_eq!(db.get("big".into()).await, Ok(Some(big)));
        db.set("big".into(), b"small".to_vec()).await.unwrap();
        assert_eq!(db.get("big".into()).await, Ok(Some(b"small".to_vec())));
        assert_eq!(db.get("gone".into()).await, Ok(None));
        db.set("gone".into(), b"here".to_vec()).await.unwrap();
        assert_eq!(db.get("gone".into()).await, Ok(Some(b"here".to_vec())));
        assert_eq!(db.increment("n".into(), 2).await, Ok(2));
        assert_eq!(db.get("n".into()).await, Ok(Some(b"2".to_vec())));
        // Filling the cache past its budget starts it over, values intact.
        for i in 0..40 {
            db.set(format!("fill{i}"), vec![1; CACHE_BYTES / 32])
                .await
                .unwrap();
        }
        assert_eq!(db.get("gone".into()).await, Ok(Some(b"here".to_vec())));
        assert_eq!(
            db.get("fill0".into()).await.unwrap().unwrap().len(),
            CACHE_BYTES / 32
        );
    }

    #[tokio::test]
    async fn counters_and_compare_and_swap() {
        let (_dir, db) = store(1 << 20);
        assert_eq!(db.increment("n".into(), 5).await, Ok(5));
        assert_eq!(db.increment("n".into(), -2).await, Ok(3));
        assert_eq!(db.get("n".into()).await, Ok(Some(b"3".to_vec())));
        db.set("s".into(), b"text".to_vec()).await.unwrap();
        assert_eq!(
            db.increment("s".into(), 1).await,
            Err(StoreError::NotACounter)
        );
        assert_eq!(
            db.compare_and_swap("c".into(), None, b"1".to_vec()).await,
            Ok(true)
        );
        assert_eq!(
            db.compare_and_swap("c".into(), None, b"2".to_vec()).await,
            Ok(false)
        );
        assert_eq!(
            db.compare_and_swap("c".into(), Some(b"1".to_vec()), b"2".to_vec())
                .await,
            Ok(true)
        );
    }

    #[tokio::test]
    async fn the_quota_holds_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.sqlite");
        let db = Embedded::open(&file, 4096).unwrap();
        db.set("a".into(), vec![0; 3000]).await.unwrap();
        assert_eq!(
            db.set("b".into(), vec![0; 2000]).await,
            Err(StoreError::QuotaExceeded { quota: 4096 })
        );
        // Overwriting with a smaller value, or deleting, always works.
        db.set("a".into(), vec![0; 10]).await.unwrap();
        db.set("b".into(), vec![0; 2000]).await.unwrap();
        drop(db);
        let db = Embedded::open(&file, 4096).unwrap();
        assert_eq!(
            db.set("c".into(), vec![0; 3000]).await,
            Err(StoreError::QuotaExceeded { quota: 4096 })
        );
        assert_eq!(db.get("b".into()).await.unwrap().unwrap().len(), 2000);
    }
}
