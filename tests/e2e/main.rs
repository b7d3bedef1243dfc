//! End-to-end tests: the real `wasmhost` binary on port 0, real components
//! built from `guests/`, real HTTP over loopback.

mod support;

mod admin;
mod calls;
mod cli;
mod compat;
mod deploy;
mod edge;
mod function_cache;
mod hostile;
mod isolation;
mod limits;
mod observability;
mod oci;
mod reload;
mod replicas;
mod reuse;
mod reuse_parity;
mod routing;
mod sandbox;
mod scale;
mod scrape;
mod sdk;
mod shutdown;
mod state;
mod streaming;
mod stress;

/// Every guest must be used by at least one test: this fails to compile
/// when a guest has no test (each test module names the guests it covers).
macro_rules! assert_test_exists {
    ($guest:ident) => {
        const _: () = {
            #[allow(unused_imports)]
            use crate::support::tested::$guest;
        };
    };
}
wasmhost_test_guests::foreach_guest!(assert_test_exists);
