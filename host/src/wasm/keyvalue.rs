//! The key-value and variables interfaces a guest may import, served from
//! the service's [`AppState`]:
//! - `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2`;
//! - `fermyon:spin/key-value@2.0.0` and `fermyon:spin/variables@2.0.0`
//!   (spin-sdk 5: `Store::open_default()`, `variables::get`);
//! - `wasi:config/store@0.2.0-rc.1` and `@0.2.0-draft-2024-09-27`.
//!
//! Spin's WASI 0.3 versions (`spin:key-value@3.0.0`,
//! `spin:variables@3.0.0`) are in [`super::keyvalue_spin3`].
//!
//! The WIT is in `host/wit/` (its README says where each file comes
//! from). A service opens only the stores it lists (`key_value_stores`):
//! any other name is the interface's `access-denied`. Store failures
//! (limits, quota, a backend that is down) are the interface's error,
//! never a trap.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource};

use crate::config::manifest::variables::valid_variable_name;
use crate::config::manifest::{ServiceConfig, Variable};
use crate::stores::{Store, StoreError, Stores};
use crate::wasm::state::HostState;

mod generated {
    wasmtime::component::bindgen!({
        inline: r#"
            package wasmhost:app-state;
            world host {
                include wasi:keyvalue/imports@0.2.0-draft2;
                import fermyon:spin/key-value@2.0.0;
                import fermyon:spin/variables@2.0.0;
                import wasi:config/store@0.2.0-rc.1;
                import wasi:config/store@0.2.0-draft-2024-09-27;
            }
        "#,
        path: [
            "wit/wasi-keyvalue-0.2.0-draft2",
            "wit/fermyon-spin-2.0.0",
            "wit/wasi-config-0.2.0-rc.1",
            "wit/wasi-config-0.2.0-draft-2024-09-27",
        ],
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
            "fermyon:spin/key-value.store": super::Bucket,
        },
    });
}

use generated::fermyon::spin::{key_value as spin_kv, variables as spin_vars};
use generated::wasi::keyvalue::{atomics, batch, store};

/// What a service's guest may keep and read: the stores it lists and its
/// variables. Cheap to clone (shared by every instance of the service).
#[derive(Clone, Default)]
pub struct AppState {
    /// The stores the service lists, by name.
    pub stores: Arc<HashMap<String, Arc<Store>>>,
    /// Its variables, sorted by name.
    pub variables: Arc<[Variable]>,
}

impl AppState {
    /// What `config` may use of `stores`: the stores it lists, its
    /// variables.
    pub fn for_service(config: &ServiceConfig, stores: &Stores) -> AppState {
        let listed = config
            .key_value_stores
            .iter()
            .filter_map(|name| Some((name.clone(), stores.get(name)?.clone())))
            .collect();
        let mut variables = config.variables.clone();
        variables.sort_by(|a, b| a.name.cmp(&b.name));
        AppState {
            stores: Arc::new(listed),
            variables: variables.into(),
        }
    }

    /// Whether every store this state holds is the one `stores` has open
    /// under its name (a reload that reopened one must rebuild the service).
    pub fn same_stores(&self, stores: &Stores) -> bool {
        self.stores
            .iter()
            .all(|(name, store)| stores.get(name).is_some_and(|now| Arc::ptr_eq(now, store)))
    }

    /// The store `name` as a guest opens it, if the service lists it.
    pub(crate) fn open(&self, name: &str) -> Option<Bucket> {
        self.stores.get(name).map(|store| Bucket(store.clone()))
    }

    pub(crate) fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables
            .binary_search_by(|v| v.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.variables[i])
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut stores: Vec<&String> = self.stores.keys().collect();
        stores.sort();
        f.debug_struct("AppState")
            .field("stores", &stores)
            .field("variables", &self.variables)
            .finish()
    }
}

/// An open store, as a guest holds it.
pub struct Bucket(Arc<Store>);

/// A compare-and-swap in progress: the value `key` had when it began.
pub struct Cas {
    store: Arc<Store>,
    key: String,
    current: Option<Vec<u8>>,
}

/// Marker for the linker: the interfaces' data is the whole [`HostState`].
struct AppStateData;

impl HasData for AppStateData {
    type Data<'a> = &'a mut HostState;
}

/// Adds every interface of this module to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    fn get(state: &mut HostState) -> &mut HostState {
        state
    }
    store::add_to_linker::<_, AppStateData>(linker, get)?;
    atomics::add_to_linker::<_, AppStateData>(linker, get)?;
    batch::add_to_linker::<_, AppStateData>(linker, get)?;
    spin_kv::add_to_linker::<_, AppStateData>(linker, get)?;
    spin_vars::add_to_linker::<_, AppStateData>(linker, get)?;
    generated::wasi::config0_2_0_rc_1::store::add_to_linker::<_, AppStateData>(linker, get)?;
    generated::wasi::config0_2_0_draft_2024_09_27::store::add_to_linker::<_, AppStateData>(
        linker, get,
    )?;
    crate::wasm::keyvalue_draft::add_to_linker(linker)?;
    Ok(())
}

/// `get`, `set`, `delete` and `exists` of a key-value store resource,
/// alike in every interface version this host serves: one call into
/// [`Store`] each, its error mapped with `$error` to the version's
/// `$err`.
macro_rules! bucket_methods {
    ($err:ty, $error:expr) => {
        async fn get(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
        ) -> Trappable<Result<Option<Vec<u8>>, $err>> {
            let store = self.bucket(&bucket)?;
            Ok(store.get(key).await.map_err($error))
        }

        async fn set(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
            value: Vec<u8>,
        ) -> Trappable<Result<(), $err>> {
            let store = self.bucket(&bucket)?;
            Ok(store.set(key, value).await.map_err($error))
        }

        async fn delete(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
        ) -> Trappable<Result<(), $err>> {
            let store = self.bucket(&bucket)?;
            Ok(store.delete(key).await.map_err($error))
        }

        async fn exists(
            &mut self,
            bucket: Resource<Bucket>,
            key: String,
        ) -> Trappable<Result<bool, $err>> {
            let store = self.bucket(&bucket)?;
            Ok(store.exists(key).await.map_err($error))
        }
    };
}
pub(crate) use bucket_methods;

pub(crate) type Trappable<T> = wasmtime::Result<T>;

fn wasi_error(err: StoreError) -> store::Error {
    store::Error::Other(err.to_string())
}

fn spin_error(err: StoreError) -> spin_kv::Error {
    spin_kv::Error::Other(err.to_string())
}

impl store::Host for HostState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> Trappable<Result<Resource<Bucket>, store::Error>> {
        match self.app.open(&identifier) {
            Some(bucket) => Ok(Ok(self.table.push(bucket)?)),
            None => Ok(Err(store::Error::AccessDenied)),
        }
    }
}

impl HostState {
    /// The store behind a guest's bucket handle.
    pub(crate) fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<Arc<Store>> {
        Ok(self.table.get(bucket)?.0.clone())
    }
}

impl store::HostBucket for HostState {
    bucket_methods!(store::Error, wasi_error);

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<String>,
    ) -> Trappable<Result<store::KeyResponse, store::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store
            .keys(cursor)
            .await
            .map(|page| store::KeyResponse {
                keys: page.keys,
                cursor: page.cursor,
            })
            .map_err(wasi_error))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Trappable<Result<i64, store::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.increment(key, delta).await.map_err(wasi_error))
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> Trappable<Result<(), atomics::CasError>> {
        let Cas {
            store,
            key,
            current,
        } = self.table.delete(cas)?;
        match store
            .compare_and_swap(key.clone(), current.clone(), value)
            .await
        {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                // Changed since: a fresh cas with the value now, to retry.
                let now = match store.get(key.clone()).await {
                    Ok(now) => now,
                    Err(err) => return Ok(Err(atomics::CasError::StoreError(wasi_error(err)))),
                };
                let fresh = self.table.push(Cas {
                    store,
                    key,
                    current: now,
                })?;
                Ok(Err(atomics::CasError::CasFailed(fresh)))
            }
            Err(err) => Ok(Err(atomics::CasError::StoreError(wasi_error(err)))),
        }
    }
}

impl atomics::HostCas for HostState {
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Trappable<Result<Resource<Cas>, store::Error>> {
        let store = self.bucket(&bucket)?;
        let current = match store.get(key.clone()).await {
            Ok(current) => current,
            Err(err) => return Ok(Err(wasi_error(err))),
        };
        Ok(Ok(self.table.push(Cas {
            store,
            key,
            current,
        })?))
    }

    async fn current(
        &mut self,
        cas: Resource<Cas>,
    ) -> Trappable<Result<Option<Vec<u8>>, store::Error>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Trappable<Result<Vec<(String, Option<Vec<u8>>)>, store::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.get_many(keys).await.map_err(wasi_error))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Trappable<Result<(), store::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.set_many(key_values).await.map_err(wasi_error))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Trappable<Result<(), store::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.delete_many(keys).await.map_err(wasi_error))
    }
}

impl spin_kv::Host for HostState {}

impl spin_kv::HostStore for HostState {
    async fn open(&mut self, label: String) -> Trappable<Result<Resource<Bucket>, spin_kv::Error>> {
        match self.app.open(&label) {
            Some(bucket) => Ok(Ok(self.table.push(bucket)?)),
            None => Ok(Err(spin_kv::Error::AccessDenied)),
        }
    }

    bucket_methods!(spin_kv::Error, spin_error);

    async fn get_keys(
        &mut self,
        store: Resource<Bucket>,
    ) -> Trappable<Result<Vec<String>, spin_kv::Error>> {
        let store = self.bucket(&store)?;
        Ok(store.all_keys().await.map_err(spin_error))
    }

    async fn drop(&mut self, store: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl spin_vars::Host for HostState {
    async fn get(&mut self, name: String) -> Trappable<Result<String, spin_vars::Error>> {
        if !valid_variable_name(&name) {
            return Ok(Err(spin_vars::Error::InvalidName(name)));
        }
        Ok(match self.app.variable(&name) {
            Some(variable) => Ok(variable.value.clone()),
            None => Err(spin_vars::Error::Undefined(format!(
                "no variable named `{name}`"
            ))),
        })
    }
}

/// `wasi:config/store`, the same for both versions.
macro_rules! config_store {
    ($version:ident) => {
        impl generated::wasi::$version::store::Host for HostState {
            async fn get(
                &mut self,
                key: String,
            ) -> Trappable<Result<Option<String>, generated::wasi::$version::store::Error>> {
                Ok(Ok(self.app.variable(&key).map(|v| v.value.clone())))
            }

            async fn get_all(
                &mut self,
            ) -> Trappable<Result<Vec<(String, String)>, generated::wasi::$version::store::Error>>
            {
                Ok(Ok(self
                    .app
                    .variables
                    .iter()
                    .map(|v| (v.name.clone(), v.value.clone()))
                    .collect()))
            }
        }
    };
}

config_store!(config0_2_0_rc_1);
config_store!(config0_2_0_draft_2024_09_27);
