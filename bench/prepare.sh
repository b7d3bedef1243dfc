# Sourced by bench/run.sh and bench/scale.sh: the baselines both measure
# against, built once into $CACHE (nothing is measured while this runs).
#   - wasmtime-cli 48.0.8 (cargo install, once; ~20 min on 2 cores),
#   - bench/native-hello (a native hyper hello),
#   - the guests and wasmhost with --profile dist,
#   - the Python and JavaScript hellos (guests-py/build.sh: pip, and
#     guests-js/build.sh: npm, the first time), rebuilt when their sources
#     change.
# Sets ROOT, CACHE, WASMTIME, NATIVE, WASMHOST, PYTHON_COMPONENT and
# JS_COMPONENT.
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

# A component is stale when it is missing or anything in its folder is newer.
stale() {
    [ ! -s "$1" ] || [ -n "$(find "$2" -type f -newer "$1" -not -path '*/__pycache__/*' \
        -not -path '*/.venv/*' -not -path '*/node_modules/*' -print -quit)" ]
}
PYTHON_COMPONENT=$CACHE/python-hello.wasm
if stale "$PYTHON_COMPONENT" guests-py; then
    echo "building the Python guest (componentize-py)" >&2
    guests-py/build.sh "$PYTHON_COMPONENT" >&2
fi
JS_COMPONENT=$CACHE/js-hello.wasm
if stale "$JS_COMPONENT" guests-js; then
    echo "building the JavaScript guest (componentize-js)" >&2
    guests-js/build.sh "$JS_COMPONENT" >&2
fi
