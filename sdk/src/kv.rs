//! Key-value stores: state that outlives a request.
//!
//! The manifest declares stores (`[key_value.<name>]`; `default` always
//! exists) and each service lists those it may open
//! (`key_value_stores = ["default"]`). Services that list the same store
//! share its data; on a Redis store, so do replicas. Under wasmhost these
//! calls are `wasi:keyvalue` (`0.2.0-draft2`), so the same code runs on any
//! host that serves it.
//!
//! ```
//! use wasmhost_sdk::{Request, Response, kv, testing::TestEnv};
//!
//! fn visits(_req: Request) -> Result<Response, wasmhost_sdk::Error> {
//!     let store = kv::open_default()?;
//!     let n = store.increment("visits", 1)?;
//!     Ok(Response::text(format!("visit {n}")))
//! }
//!
//! let env = TestEnv::new().kv_store("default");
//! assert_eq!(env.call(visits, Request::get("/")).text(), "visit 1");
//! assert_eq!(env.call(visits, Request::get("/")).text(), "visit 2");
//! // A store the service does not list is refused.
//! let resp = TestEnv::new().call(visits, Request::get("/"));
//! assert_eq!(resp.status(), 500);
//! assert!(resp.text().contains("may not open"));
//! ```
//!
//! Natively, outside a [`testing`](crate::testing) environment, every store
//! is refused.

use std::fmt;

use crate::wasi as platform;

/// The store `open_default` opens.
pub const DEFAULT: &str = "default";

/// Why a store operation failed. Converts into a `500`
/// [`Error`](crate::Error) with `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvError {
    /// The service does not list this store in `key_value_stores`.
    AccessDenied {
        /// The store's name.
        store: String,
    },
    /// No store has this name.
    NoSuchStore {
        /// The store's name.
        store: String,
    },
    /// The store refused or failed: a limit (key or value size, quota), a
    /// value that is not a counter, or the backend is unavailable.
    Failed(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::AccessDenied { store } => write!(
                f,
                "this service may not open the key-value store `{store}`: list it in `key_value_stores` in the manifest"
            ),
            KvError::NoSuchStore { store } => write!(f, "no key-value store is called `{store}`"),
            KvError::Failed(message) => write!(f, "key-value store: {message}"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<KvError> for crate::Error {
    fn from(err: KvError) -> Self {
        crate::Error::internal(err.to_string())
    }
}

/// An open store.
pub struct Store {
    handle: platform::KvHandle,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Opens the store `name`.
pub fn open(name: &str) -> Result<Store, KvError> {
    platform::kv_open(name).map(|handle| Store { handle })
}

/// Opens the `default` store.
pub fn open_default() -> Result<Store, KvError> {
    open(DEFAULT)
}

impl Store {
    /// The value of `key`, if it has one.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        platform::kv_get(&self.handle, key)
    }

    /// The value of `key` as text (invalid UTF-8 replaced), if it has one.
    pub fn get_string(&self, key: &str) -> Result<Option<String>, KvError> {
        Ok(self
            .get(key)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), KvError> {
        platform::kv_set(&self.handle, key, value.as_ref())
    }

    /// Deletes `key` (a missing key is not an error).
    pub fn delete(&self, key: &str) -> Result<(), KvError> {
        platform::kv_delete(&self.handle, key)
    }

    /// Whether `key` has a value.
    pub fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.get(key)?.is_some())
    }

    /// Every key, in the store's order (every page of `list-keys`).
    pub fn keys(&self) -> Result<Vec<String>, KvError> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = platform::kv_keys(&self.handle, cursor)?;
            keys.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Adds `delta` to the counter at `key` (a missing key counts from 0)
    /// and returns the new value, atomically, even across replicas.
    /// Counters are stored as decimal text: `get` gives `b"42"`.
    pub fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        platform::kv_increment(&self.handle, key, delta)
    }

    /// Sets `key` to `new` if it still holds `expected` (`None`: still
    /// missing), atomically; `Ok(false)` when it holds something else.
    pub fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: impl AsRef<[u8]>,
    ) -> Result<bool, KvError> {
        platform::kv_compare_and_swap(&self.handle, key, expected, new.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestEnv;

    #[test]
    fn a_test_store_keeps_values_counts_and_swaps() {
        let env = TestEnv::new().kv_store("default").kv_store("other");
        env.run(|| {
            let store = open_default().unwrap();
            assert_eq!(store.get("a"), Ok(None));
            store.set("a", "1").unwrap();
            store.set("b", [2u8]).unwrap();
            assert_eq!(store.get_string("a"), Ok(Some("1".into())));
            assert_eq!(store.keys(), Ok(vec!["a".into(), "b".into()]));
            assert_eq!(store.increment("a", 4), Ok(5));
            assert!(matches!(store.increment("b", 1), Err(KvError::Failed(_))));
            assert_eq!(store.compare_and_swap("c", None, "x"), Ok(true));
            assert_eq!(store.compare_and_swap("c", None, "y"), Ok(false));
            assert_eq!(store.compare_and_swap("c", Some(b"x"), "y"), Ok(true));
            store.delete("a").unwrap();
            assert_eq!(store.exists("a"), Ok(false));
            // Stores are separate; a store not set up is refused.
            assert_eq!(open("other").unwrap().keys(), Ok(vec![]));
            assert!(matches!(
                open("sessions"),
                Err(KvError::AccessDenied { .. })
            ));
        });
        // Each run of the environment sees the same stores.
        assert_eq!(
            env.run(|| open_default().unwrap().get_string("c")),
            Ok(Some("y".into()))
        );
    }

    #[test]
    fn outside_a_test_environment_no_store_opens() {
        assert!(matches!(open_default(), Err(KvError::AccessDenied { .. })));
    }
}
