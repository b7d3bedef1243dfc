//! The embedded backend: one SQLite file per store (rusqlite, SQLite
//! bundled), in WAL mode with `synchronous = NORMAL`: a `set` is answered
//! once its transaction is in the write-ahead log, so it survives the host
//! being killed (SIGKILL, OOM kill); a power loss may lose the last
//! transactions, never corrupt the file.
//!
//! One connection per store behind a mutex; every call runs on tokio's
//! blocking pool, so a slow disk never stalls an I/O worker. The quota
//! counts the bytes of keys and values, kept in memory from a sum taken at
//! open and updated by every write under the same lock.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};

use super::{KeyPage, LIST_PAGE, StoreError};

/// An open embedded store.
pub struct Embedded {
    db: Arc<Mutex<Db>>,
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
        })
    }

    /// Runs `op` on the blocking pool with the connection.
    async fn run<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
            op(&mut db)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// The value of `key`.
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(move |db| db.value(&key).map_err(unavailable))
            .await
    }

    /// Sets `key` to `value`, within the quota.
    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), StoreError> {
        self.run(move |db| db.put(&key, &value)).await
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: String) -> Result<(), StoreError> {
        self.run(move |db| {
            let old = db.size_of(&key).map_err(unavailable)?;
            db.conn
                .execute("DELETE FROM kv WHERE key = ?1", params![key])
                .map_err(unavailable)?;
            if let Some(old) = old {
                db.used = db.used.saturating_sub(old);
            }
            Ok(())
        })
        .await
    }

    /// The page of keys after `cursor`.
    pub async fn keys(&self, cursor: Option<String>) -> Result<KeyPage, StoreError> {
        self.run(move |db| {
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
        self.run(move |db| {
            let current = match db.value(&key).map_err(unavailable)? {
                None => 0,
                Some(bytes) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| text.trim().parse::<i64>().ok())
                    .ok_or(StoreError::NotACounter)?,
            };
            let next = current.checked_add(delta).ok_or(StoreError::Overflow)?;
            db.put(&key, next.to_string().as_bytes())?;
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
        self.run(move |db| {
            if db.value(&key).map_err(unavailable)? != expected {
                return Ok(false);
            }
            db.put(&key, &value)?;
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
