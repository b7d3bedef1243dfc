#!/usr/bin/env bash
# Runs every check and test: formatting, lints, unit, golden and end-to-end
# tests. The guests are built by tests/guest-artifacts/build.rs; the Python
# and JavaScript components by guests-py/build.sh and guests-js/build.sh
# (from the e2e tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# RUST_BACKTRACE=1 costs the host memory and speed; tests don't need it.
unset RUST_BACKTRACE

# A whole run is one build: incremental caches would only take disk space
# (about 1 GB here).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# A run from scratch peaked at 5.5 GB under target/ and guests/target
# (the tests' build, then the fuzz build, then the image's), plus the
# toolchains and tools it installs; say so up front rather than let a
# compiler die of ENOSPC half an hour in.
target_root=$(realpath -m "${CARGO_TARGET_DIR:-target}")
mkdir -p "$target_root"
free_mb=$(df -Pm "$target_root" | awk 'NR == 2 { print $4 }')
if [ "${free_mb:-0}" -lt 6144 ]; then
  echo "scripts/test.sh: warning: $free_mb MB free under $target_root;" \
    "a run from scratch needs about 6 GB" >&2
fi

# rust-toolchain.toml names the guest target, but rustup does not install
# targets by itself everywhere (RUSTUP_AUTO_INSTALL=0).
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

# Debian packages the tests use: a real Prometheus scrapes the admin plane;
# systemd's tools start the host by socket activation and verify the units;
# HAProxy balances the replica test; redis-server backs the shared
# key-value store of the Redis tests; docker-registry (the CNCF
# distribution registry) serves the OCI pull tests; podman (with runc) builds and runs the
# container image, whose static binary needs musl-gcc (for mimalloc's C).
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
{ command -v systemd-socket-activate && command -v systemd-analyze; } >/dev/null || missing+=(systemd)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v docker-registry >/dev/null || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "please install these Debian packages first: ${missing[*]}" >&2
    exit 1
  fi
fi

# kubernetes-validate (PyPI) checks deploy/k8s against Kubernetes' schemas,
# offline; it lives in its own virtualenv under target/.
tools="$target_root/py-tools"
if ! "$tools/bin/kubernetes-validate" --version >/dev/null 2>&1; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
export PATH="$tools/bin:$PATH"

# wkg (the Wasm package CLI) pushes components to the registry the OCI
# tests start; built once (several minutes) and kept under ~/.cache.
wkg_root="${XDG_CACHE_HOME:-$HOME/.cache}/wasmhost-tools"
if ! "$wkg_root/bin/wkg" --version >/dev/null 2>&1; then
  CARGO_TARGET_DIR="$wkg_root/build" cargo install wkg --version 0.16.1 --locked --root "$wkg_root"
  rm -rf "$wkg_root/build"
fi
export PATH="$wkg_root/bin:$PATH"

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
  cargo test --target x86_64-unknown-linux-gnu -p hello -p echo -p router-demo -p outbound -p kv-counter
)

# Hardening: a 60 s soak (good and hostile traffic side by side, a hot
# reload every 3 s) against the binary the tests used, then every fuzz
# target for 60 s on the nightly toolchain (scripts/fuzz.sh installs
# cargo-fuzz; the 10-minute soak is `scripts/soak.sh`). The fuzz build's
# intermediate files (about 2 GB) go once it has run, making room for the
# image's build.
SOAK_WASMHOST="$target_root/debug/wasmhost" scripts/soak.sh 60
scripts/fuzz.sh --prune-build 60

# The container image: a static binary FROM scratch, built and run with
# podman (read-only root, non-root, clean stop on `podman stop`).
image=$(deploy/build-image.sh localhost/wasmhost:test | tail -n 1)
deploy/test-image.sh "$image"
