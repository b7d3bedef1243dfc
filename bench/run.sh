#!/usr/bin/env bash
# The benchmark: wasmhost against tuned `wasmtime serve` 48 and a native
# hyper hello, in one run, on this machine. Builds what it needs first:
#   - wrk (Debian package) when missing,
#   - wasmtime-cli 48.0.8 into $WASMHOST_BENCH_CACHE (cargo install, once),
#   - bench/native-hello, the guests, and wasmhost (profile `dist`).
# Then runs bench/run.py; extra arguments go to it (e.g. --rounds 5).
# Nothing is measured while anything compiles: every build finishes first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${WASMHOST_BENCH_CACHE:-$HOME/.cache/wasmhost-bench}
WASMTIME_VERSION=48.0.8
unset RUST_BACKTRACE

if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

WASMTIME=$CACHE/bin/wasmtime
if ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
    echo "building wasmtime-cli $WASMTIME_VERSION into $CACHE (once; ~20 min on 2 cores)" >&2
    cargo install --locked "wasmtime-cli@$WASMTIME_VERSION" --root "$CACHE" \
        --target-dir "$CACHE/target"
fi

echo "building bench/native-hello" >&2
cargo build --release --quiet --manifest-path bench/native-hello/Cargo.toml \
    --target-dir "$CACHE/native-target"
NATIVE=$CACHE/native-target/release/native-hello

echo "building the guests and wasmhost (profile dist: release + thin LTO)" >&2
guests/build.sh >/dev/null
cargo build --profile dist --quiet -p wasmhost
WASMHOST=$ROOT/target/dist/wasmhost

exec python3 bench/run.py --wasmhost "$WASMHOST" --wasmtime "$WASMTIME" \
    --native "$NATIVE" "$@"
