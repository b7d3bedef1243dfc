#!/usr/bin/env bash
# The benchmark: wasmhost against tuned `wasmtime serve` 48 and a native
# hyper hello, in one run, on this machine. Builds what it needs first
# (wrk from Debian when missing, then bench/prepare.sh), then runs
# bench/run.py; extra arguments go to it (e.g. --rounds 5, --only heavy,
# --guests python,js).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
source bench/prepare.sh

exec python3 bench/run.py --wasmhost "$WASMHOST" --wasmtime "$WASMTIME" \
    --native "$NATIVE" --python-component "$PYTHON_COMPONENT" \
    --js-component "$JS_COMPONENT" "$@"
