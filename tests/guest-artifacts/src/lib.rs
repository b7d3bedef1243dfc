//! Paths of the guest components, built by this crate's `build.rs` from
//! `guests/` into `guests/target/wasm32-wasip2/release/`.
//!
//! ```
//! assert!(wasmhost_test_guests::HELLO.ends_with("hello.wasm"));
//! assert!(std::path::Path::new(wasmhost_test_guests::ECHO).is_file());
//! ```
//!
//! `foreach_guest!(m)` expands to `m!(hello); m!(echo); ...`, one call per
//! guest, so a test suite can assert that every guest is exercised.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
