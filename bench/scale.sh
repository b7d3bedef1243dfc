#!/usr/bin/env bash
# The scale-to-zero benchmark (bench/scale.py): cold start against
# `wasmtime serve` on a .cwasm, the first request to an idle-unloaded
# service, RSS of a large component unloaded, and 1,000 services.
# Builds what it needs first (bench/prepare.sh, shared with run.sh), plus
# the Python guest (guests-py/build.sh; pip the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/prepare.sh

PYTHON_COMPONENT=$CACHE/python-hello.wasm
if [ ! -f "$PYTHON_COMPONENT" ]; then
    echo "building the Python guest" >&2
    guests-py/build.sh "$PYTHON_COMPONENT" >&2
fi

exec python3 bench/scale.py --wasmhost "$WASMHOST" --wasmtime "$WASMTIME" \
    --native "$NATIVE" --python-component "$PYTHON_COMPONENT" "$@"
