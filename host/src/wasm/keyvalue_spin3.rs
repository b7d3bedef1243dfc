//! Spin's WASI 0.3 interfaces: `spin:key-value/key-value@3.0.0` and
//! `spin:variables/variables@3.0.0` (spin-sdk 7). Every function is
//! `async` in the component model's sense, so they are linked only into
//! the WASI 0.3 engine's linker, served from the same [`AppState`] as the
//! 0.2 interfaces in [`super::keyvalue`].
//!
//! `get-keys` answers with a stream of keys and a future for the outcome:
//! the keys are read from the store first, then handed to the guest as
//! one stream; a store failure is an empty stream and the error in the
//! future, never a trap.
//!
//! [`AppState`]: super::keyvalue::AppState

use wasmtime::component::{Accessor, FutureReader, HasData, Linker, Resource, StreamReader};

use crate::config::manifest::variables::valid_variable_name;
use crate::stores::StoreError;
use crate::wasm::keyvalue::Bucket;
use crate::wasm::state::HostState;

mod generated {
    wasmtime::component::bindgen!({
        inline: r#"
            package wasmhost:app-state-p3;
            world host {
                import spin:key-value/key-value@3.0.0;
                import spin:variables/variables@3.0.0;
            }
        "#,
        path: ["wit/spin-key-value-3.0.0", "wit/spin-variables-3.0.0"],
        imports: { default: trappable },
        with: {
            "spin:key-value/key-value.store": crate::wasm::keyvalue::Bucket,
        },
    });
}

use generated::spin::key_value::key_value as kv;
use generated::spin::variables::variables as vars;

/// Marker for the linker: these interfaces' data is the whole
/// [`HostState`], reached through an [`Accessor`].
pub struct Spin3;

impl HasData for Spin3 {
    type Data<'a> = &'a mut HostState;
}

/// Adds `spin:key-value@3.0.0` and `spin:variables@3.0.0` to a WASI 0.3
/// engine's `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    fn get(state: &mut HostState) -> &mut HostState {
        state
    }
    kv::add_to_linker::<_, Spin3>(linker, get)?;
    vars::add_to_linker::<_, Spin3>(linker, get)?;
    Ok(())
}

type Trappable<T> = wasmtime::Result<T>;

fn kv_error(err: StoreError) -> kv::Error {
    kv::Error::Other(err.to_string())
}

/// The store behind the guest's handle `store`.
fn bucket<T>(
    accessor: &Accessor<T, Spin3>,
    store: &Resource<Bucket>,
) -> wasmtime::Result<std::sync::Arc<crate::stores::Store>> {
    accessor.with(|mut access| access.get().bucket(store))
}

impl kv::Host for HostState {}

impl kv::HostStore for HostState {
    fn drop(&mut self, store: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

impl<T: Send> kv::HostStoreWithStore<T> for Spin3 {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> Trappable<Result<Resource<Bucket>, kv::Error>> {
        accessor.with(|mut access| {
            let state = access.get();
            match state.app.open(&label) {
                Some(bucket) => Ok(Ok(state.table.push(bucket)?)),
                None => Ok(Err(kv::Error::AccessDenied)),
            }
        })
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
        key: String,
    ) -> Trappable<Result<Option<Vec<u8>>, kv::Error>> {
        let store = bucket(accessor, &store)?;
        Ok(store.get(key).await.map_err(kv_error))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Trappable<Result<(), kv::Error>> {
        let store = bucket(accessor, &store)?;
        Ok(store.set(key, value).await.map_err(kv_error))
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
        key: String,
    ) -> Trappable<Result<(), kv::Error>> {
        let store = bucket(accessor, &store)?;
        Ok(store.delete(key).await.map_err(kv_error))
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
        key: String,
    ) -> Trappable<Result<bool, kv::Error>> {
        let store = bucket(accessor, &store)?;
        Ok(store.exists(key).await.map_err(kv_error))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<Bucket>,
    ) -> Trappable<(StreamReader<String>, FutureReader<Result<(), kv::Error>>)> {
        let store = bucket(accessor, &store)?;
        let (keys, outcome) = match store.all_keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(err) => (Vec::new(), Err(kv_error(err))),
        };
        accessor.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let outcome =
                FutureReader::new(
                    &mut access,
                    async move { Ok::<_, wasmtime::Error>(outcome) },
                )?;
            Ok((keys, outcome))
        })
    }
}

impl vars::Host for HostState {}

impl<T: Send> vars::HostWithStore<T> for Spin3 {
    async fn get(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> Trappable<Result<String, vars::Error>> {
        if !valid_variable_name(&name) {
            return Ok(Err(vars::Error::InvalidName(name)));
        }
        accessor.with(|mut access| {
            Ok(match access.get().app.variable(&name) {
                Some(variable) => Ok(variable.value.clone()),
                None => Err(vars::Error::Undefined(format!(
                    "no variable named `{name}`"
                ))),
            })
        })
    }
}
