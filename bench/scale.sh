#!/usr/bin/env bash
# The scale-to-zero benchmark (bench/scale.py): cold start against
# `wasmtime serve` on a .cwasm, the first request to an idle-unloaded
# service, RSS of a large component unloaded, and 1,000 services.
# Builds what it needs first (bench/prepare.sh, shared with run.sh; it
# builds the Python guest too: guests-py/build.sh, pip the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/prepare.sh

exec python3 bench/scale.py --wasmhost "$WASMHOST" --wasmtime "$WASMTIME" \
    --native "$NATIVE" --python-component "$PYTHON_COMPONENT" "$@"
