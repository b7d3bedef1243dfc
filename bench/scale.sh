#!/usr/bin/env bash
# The scale-to-zero benchmark (bench/scale.py): cold start against
# `wasmtime serve` on a .cwasm, the first request to an idle-unloaded
# service, RSS of a large component unloaded, and 1,000 services.
# Builds what it needs first, like bench/run.sh (which it shares its cache
# with), plus the Python guest (guests-py/build.sh; pip the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${WASMHOST_BENCH_CACHE:-$HOME/.cache/wasmhost-bench}
WASMTIME_VERSION=48.0.8
unset RUST_BACKTRACE

WASMTIME=$CACHE/bin/wasmtime
if ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
    echo "building wasmtime-cli $WASMTIME_VERSION into $CACHE (once; ~20 min on 2 cores)" >&2
    cargo install --locked "wasmtime-cli@$WASMTIME_VERSION" --root "$CACHE" \
        --target-dir "$CACHE/target"
fi

echo "building bench/native-hello" >&2
cargo build --release --quiet --manifest-path bench/native-hello/Cargo.toml \
    --target-dir "$CACHE/native-target"

PYTHON_COMPONENT=$CACHE/python-hello.wasm
if [ ! -f "$PYTHON_COMPONENT" ]; then
    echo "building the Python guest" >&2
    guests-py/build.sh "$PYTHON_COMPONENT" >&2
fi

echo "building the guests and wasmhost (profile dist)" >&2
guests/build.sh >/dev/null
cargo build --profile dist --quiet -p wasmhost

exec python3 bench/scale.py --wasmhost "$ROOT/target/dist/wasmhost" --wasmtime "$WASMTIME" \
    --native "$CACHE/native-target/release/native-hello" \
    --python-component "$PYTHON_COMPONENT" "$@"
