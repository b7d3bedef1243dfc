#!/usr/bin/env bash
# Soak test (scripts/soak.py): mixed good and hostile traffic with a hot
# reload every 3 s; reports requests, outcomes by kind, RSS and open
# descriptors at start/middle/end, host panics; fails on anything else
# than the documented outcomes, RSS growth over 10% or descriptor growth.
#
#   scripts/soak.sh [SECONDS]      # default 600 (10 minutes)
#
# SOAK_PROFILE picks the cargo profile of the host binary: `release`
# (default) or `dev` (what the test suite already built; scripts/test.sh
# runs the 60 s version with it). The report is also written as JSON to
# target/soak-report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
unset RUST_BACKTRACE
duration=${1:-600}
profile=${SOAK_PROFILE:-release}

guests/build.sh >/dev/null
cargo build --quiet --profile "$profile" -p wasmhost
case $profile in
    dev) dir=debug ;;
    *) dir=$profile ;;
esac
target=${CARGO_TARGET_DIR:-target}
exec python3 scripts/soak.py --wasmhost "$target/$dir/wasmhost" \
    --guests guests/target/wasm32-wasip2/release --duration "$duration" \
    --report "$target/soak-report.json"
