# Sourced by bench/run.sh and bench/scale.sh: the baselines both measure
# against, built once into $CACHE (nothing is measured while this runs).
#   - wasmtime-cli 48.0.8 (cargo install, once; ~20 min on 2 cores),
#   - bench/native-hello (a native hyper hello),
#   - the guests and wasmhost with --profile dist.
# Sets ROOT, CACHE, WASMTIME, NATIVE and WASMHOST.
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
NATIVE=$CACHE/native-target/release/native-hello

echo "building the guests and wasmhost (profile dist: release + thin LTO)" >&2
guests/build.sh >/dev/null
cargo build --profile dist --quiet -p wasmhost
WASMHOST=$ROOT/target/dist/wasmhost
