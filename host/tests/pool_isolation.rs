//! The pooling allocator exactly as the host configures it (memory, tables
//! and stacks kept resident and reset in place, pagemap scan): a secret one
//! instance leaves in its linear memory (initial and grown pages), a table
//! and a mutable global never reaches the later instances that reuse its
//! slot; and a `table.grow` bomb is refused by the host's limiter.
//!
//! A Rust guest cannot write tables or globals, so this test drives a core
//! module written in WAT through the host's own engine; the end-to-end
//! `hostile` suite covers linear memory through the real server.

use wasmhost::wasm::engine::{Flavor, Fuel, PoolSize, new_engine};
use wasmhost::wasm::state::MemoryLimiter;
use wasmtime::{Engine, Instance, Module, Store};

const MODULE: &str = r#"
(module
  (memory 1)
  (table $t 4 funcref)
  (global $g (mut i64) (i64.const 0))
  (func $marker)
  (elem declare func $marker)
  (func (export "write") (param $secret i64)
    (global.set $g (local.get $secret))
    (table.set $t (i32.const 3) (ref.func $marker))
    (i64.store (i32.const 4096) (local.get $secret))
    (drop (memory.grow (i32.const 16)))
    (i64.store (i32.const 196608) (local.get $secret)))
  (func (export "read") (result i64 i64 i64 i32)
    (global.get $g)
    (i64.load (i32.const 4096))
    (drop (memory.grow (i32.const 16)))
    (i64.load (i32.const 196608))
    (ref.is_null (table.get $t (i32.const 3))))
  (func (export "grow_table") (result i32)
    (table.grow $t (ref.null func) (i32.const 1000000))))
"#;

const SECRET: i64 = 0x5EC2_E7C0_FFEE_D00D;

fn store(engine: &Engine) -> Store<MemoryLimiter> {
    let mut store = Store::new(engine, MemoryLimiter::new(64 << 20));
    store.limiter(|limiter| limiter);
    store.set_fuel(10_000_000).unwrap();
    store.set_epoch_deadline(1_000_000);
    store
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn a_secret_in_memory_a_table_or_a_global_never_reaches_the_next_instance_in_a_slot() {
    let engine = new_engine(
        Flavor::P2,
        Fuel::Metered,
        PoolSize {
            instances: 4,
            ..PoolSize::default()
        },
        None,
    )
    .unwrap();
    let module = Module::new(&engine, wat::parse_str(MODULE).unwrap()).unwrap();
    runtime().block_on(async {
        for round in 0..20 {
            let mut writer = store(&engine);
            let instance = Instance::new_async(&mut writer, &module, &[])
                .await
                .unwrap();
            let write = instance
                .get_typed_func::<i64, ()>(&mut writer, "write")
                .unwrap();
            write.call_async(&mut writer, SECRET).await.unwrap();
            // The probe works: the writer itself reads its secret back.
            let read = instance
                .get_typed_func::<(), (i64, i64, i64, i32)>(&mut writer, "read")
                .unwrap();
            let (global, low, high, null) = read.call_async(&mut writer, ()).await.unwrap();
            assert_eq!((global, low, high, null), (SECRET, SECRET, SECRET, 0));
            drop(writer);

            for _ in 0..10 {
                let mut reader = store(&engine);
                let instance = Instance::new_async(&mut reader, &module, &[])
                    .await
                    .unwrap();
                let read = instance
                    .get_typed_func::<(), (i64, i64, i64, i32)>(&mut reader, "read")
                    .unwrap();
                let seen = read.call_async(&mut reader, ()).await.unwrap();
                assert_eq!(
                    seen,
                    (0, 0, 0, 1),
                    "round {round}: a later instance saw {seen:x?}"
                );
            }
        }
    });
}

#[test]
fn a_table_grow_bomb_is_refused_by_the_limiter() {
    let engine = new_engine(
        Flavor::P2,
        Fuel::Metered,
        PoolSize {
            instances: 4,
            ..PoolSize::default()
        },
        None,
    )
    .unwrap();
    let module = Module::new(&engine, wat::parse_str(MODULE).unwrap()).unwrap();
    runtime().block_on(async {
        let mut store = store(&engine);
        let instance = Instance::new_async(&mut store, &module, &[]).await.unwrap();
        let grow = instance
            .get_typed_func::<(), i32>(&mut store, "grow_table")
            .unwrap();
        assert_eq!(grow.call_async(&mut store, ()).await.unwrap(), -1);
        assert!(
            store.data().refused,
            "the refusal is recorded for classification"
        );
    });
}
