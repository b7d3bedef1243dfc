#!/usr/bin/env bash
# Soak test (scripts/soak.py): mixed good and hostile traffic with a hot
# reload every 3 s; reports requests, outcomes by kind, RSS and open
# descriptors at start/middle/end, host panics; fails on anything else
# than the documented outcomes, RSS growth over 10% or descriptor growth.
#
#   scripts/soak.sh [SECONDS]      # default 600 (10 minutes)
#
# SOAK_PROFILE picks the cargo profile of the host binary: `release`
# (default) or `dev`. SOAK_WASMHOST names a binary that is already built
# and skips the build: scripts/test.sh runs the 60 s version on the one
# `cargo test` built (a `cargo build` would build wasmtime and wasmhost
# again, because the tests' dev-dependencies unify other features). The
# report is also written as JSON to target/soak-report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
unset RUST_BACKTRACE
duration=${1:-600}
profile=${SOAK_PROFILE:-release}

target=${CARGO_TARGET_DIR:-target}

guests/build.sh >/dev/null
if [ -n "${SOAK_WASMHOST:-}" ]; then
    wasmhost=$SOAK_WASMHOST
    if [ ! -x "$wasmhost" ]; then
        echo "soak.sh: SOAK_WASMHOST=$wasmhost is not an executable" >&2
        exit 1
    fi
else
    cargo build --quiet --profile "$profile" -p wasmhost
    case $profile in
        dev) dir=debug ;;
        *) dir=$profile ;;
    esac
    wasmhost=$target/$dir/wasmhost
fi
exec python3 scripts/soak.py --wasmhost "$wasmhost" \
    --guests guests/target/wasm32-wasip2/release --duration "$duration" \
    --report "$target/soak-report.json"
