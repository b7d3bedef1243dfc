//! Link options for the `wasmhost` binary.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    // The binary is position-independent, with ~40,000 relative
    // relocations that the dynamic loader applies at every start. Packed
    // (RELR, glibc 2.36+ and binutils 2.38+) they take a fraction of the
    // space and of the time: part of the cold start.
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
