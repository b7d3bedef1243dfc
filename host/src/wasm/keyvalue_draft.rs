//! `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft`, the draft before
//! `draft2` (what `wasmtime-wasi-keyvalue` and older guests import): the
//! same stores and access rules as [`crate::wasm::keyvalue`], with the
//! older shapes — a numeric `list-keys` cursor (an offset into the keys in
//! order), an unsigned `increment`, no compare-and-swap, and `get-many`
//! answering only the keys that have values.

use wasmtime::component::{HasData, Linker, Resource};

use crate::stores::{LIST_PAGE, StoreError};
use crate::wasm::keyvalue::{Bucket, Trappable, bucket_methods};
use crate::wasm::state::HostState;

mod generated {
    wasmtime::component::bindgen!({
        path: "wit/wasi-keyvalue-0.2.0-draft",
        world: "wasi:keyvalue/imports@0.2.0-draft",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::wasm::keyvalue::Bucket,
        },
    });
}

use generated::wasi::keyvalue::{atomics, batch, store};

struct Draft;

impl HasData for Draft {
    type Data<'a> = &'a mut HostState;
}

/// Adds the draft interfaces to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    fn get(state: &mut HostState) -> &mut HostState {
        state
    }
    store::add_to_linker::<_, Draft>(linker, get)?;
    atomics::add_to_linker::<_, Draft>(linker, get)?;
    batch::add_to_linker::<_, Draft>(linker, get)?;
    Ok(())
}

fn error(err: StoreError) -> store::Error {
    store::Error::Other(err.to_string())
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

impl store::HostBucket for HostState {
    bucket_methods!(store::Error, error);

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Trappable<Result<store::KeyResponse, store::Error>> {
        let store = self.bucket(&bucket)?;
        let keys = match store.all_keys().await {
            Ok(keys) => keys,
            Err(err) => return Ok(Err(error(err))),
        };
        let start = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
        let page: Vec<String> = keys.iter().skip(start).take(LIST_PAGE).cloned().collect();
        let next = start.saturating_add(page.len());
        Ok(Ok(store::KeyResponse {
            keys: page,
            cursor: (next < keys.len()).then_some(next as u64),
        }))
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
        delta: u64,
    ) -> Trappable<Result<u64, store::Error>> {
        let store = self.bucket(&bucket)?;
        let Ok(delta) = i64::try_from(delta) else {
            return Ok(Err(error(StoreError::Overflow)));
        };
        Ok(match store.increment(key, delta).await {
            Ok(value) => u64::try_from(value).map_err(|_| error(StoreError::NotACounter)),
            Err(err) => Err(error(err)),
        })
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Trappable<Result<Vec<Option<(String, Vec<u8>)>>, store::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store
            .get_many(keys)
            .await
            .map(|found| {
                found
                    .into_iter()
                    .map(|(key, value)| value.map(|value| (key, value)))
                    .collect()
            })
            .map_err(error))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Trappable<Result<(), store::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.set_many(key_values).await.map_err(error))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Trappable<Result<(), store::Error>> {
        let store = self.bucket(&bucket)?;
        Ok(store.delete_many(keys).await.map_err(error))
    }
}
