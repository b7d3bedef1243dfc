#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit, golden and end-to-end
# tests. The guests are built by tests/guest-artifacts/build.rs; the Python
# component by guests-py/build.sh (from the e2e tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# RUST_BACKTRACE=1 costs the host memory and speed; tests don't need it.
unset RUST_BACKTRACE

# rust-toolchain.toml names the guest target, but rustup does not install
# targets by itself everywhere (RUSTUP_AUTO_INSTALL=0).
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

# Debian packages the tests use: a real Prometheus scrapes the admin plane;
# systemd's tools start the host by socket activation and verify the units.
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
{ command -v systemd-socket-activate && command -v systemd-analyze; } >/dev/null || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "please install these Debian packages first: ${missing[*]}" >&2
    exit 1
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace "$@"

# The guests: lints for wasm, and the example services' own native tests
# (handlers tested through `wasmhost_sdk::testing`, no wasm runtime).
(
  cd guests
  unset CARGO_TARGET_DIR
  cargo fmt --all -- --check
  cargo clippy --release -- -D warnings
  cargo test --target x86_64-unknown-linux-gnu -p hello -p echo -p router-demo -p outbound
)
