#!/usr/bin/env bash
# Build every guest for wasm32-wasip2 into guests/target/wasm32-wasip2/release/,
# where manifests/demo.toml points. The test suite does the same through
# tests/guest-artifacts/build.rs; this is for the README demo.
set -euo pipefail
cd "$(dirname "$0")"

target=wasm32-wasip2
# rustup does not add a toolchain file's targets to an installed toolchain everywhere.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    echo "installing the $target target with rustup" >&2
    rustup target add "$target"
fi

# A clean environment for a nested build: host-only flags must not reach wasm.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET CARGO_TARGET_DIR
CARGO_TARGET_DIR="$PWD/target" exec cargo build --release --target "$target" "$@"
