#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ and runs each for a while.
#
#   scripts/fuzz.sh [--prune-build] [SECONDS]   # SECONDS per target, default 60
#
# --prune-build deletes the build's intermediate files once the targets have
# run (about 2 GB; the next run builds from scratch), keeping the three
# binaries and the runs: scripts/test.sh uses it so that the container
# image's build, which comes next, has that room.
#
# Each target starts from a scratch copy of fuzz/seeds/<target> (the
# committed seeds are never written to) under target/fuzz/runs/<target>/,
# where its log, grown corpus and any crashing input stay after the run.
# Prints a summary table and exits non-zero if any target failed, naming
# the input that reproduces it:
#
#   target/fuzz/x86_64-unknown-linux-gnu/release/<target> <input>
#
# Runs on the nightly toolchain (installed with rustup if missing):
# rust-toolchain.toml pins stable, and libFuzzer's instrumentation is
# nightly-only. Installs cargo-fuzz if it is missing.
#
# Sanitizer: none, with debug assertions and overflow checks on. The CI
# budget for this step is ~12 minutes from scratch on 2 cores, and most of it
# is building wasmtime and cranelift with coverage instrumentation. Measured
# on 2 cores (fuzz/Cargo.toml's profile: opt-level 0, 1 for what the targets
# run hot): 7.5 min without a sanitizer; 12 min with AddressSanitizer, whose
# unoptimized code also ran the component target ~70x slower. The targets
# are safe Rust over safe-Rust parsers and compilers; what they can find
# (panics, failed assertions, overflows, aborts, timeouts, memory blowups)
# needs no sanitizer. For a longer local run under ASan anyway:
#   FUZZ_SANITIZER=address scripts/fuzz.sh 600
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

prune=0
if [[ "${1:-}" == --prune-build ]]; then
    prune=1
    shift
fi
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [--prune-build] [SECONDS]   (seconds per target, default 60)" >&2
    exit 2
fi
targets=(manifest router component)
sanitizer="${FUZZ_SANITIZER:-none}"
triple=x86_64-unknown-linux-gnu
# Our own target dir: never the one `cargo build`/`cargo test` use.
target_dir="$PWD/target/fuzz"
runs="$target_dir/runs"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "==> installing the nightly toolchain (libFuzzer needs it)"
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# One build for all targets. `-a`: debug assertions and overflow checks.
# 16 codegen units instead of cargo-fuzz's 1, so that both cores work on
# the big crates (cranelift-codegen alone takes minutes).
build_flags=(--fuzz-dir fuzz --target-dir "$target_dir" --sanitizer "$sanitizer"
    --debug-assertions --codegen-units 16)

echo "==> building ${targets[*]} (sanitizer: $sanitizer)"
build_start=$(date +%s)
cargo +nightly fuzz build "${build_flags[@]}"
build_seconds=$(($(date +%s) - build_start))
echo "==> built in ${build_seconds}s"

# Keeps libFuzzer's defaults, except: stop after `seconds`; compiling a
# component takes a few hundred MB, and the engines' pooling allocator
# reserves (not uses) tens of GB of address space, so limit real memory
# only; an input that takes a minute is a bug (denial of service).
fuzzer_flags=(
    -max_total_time="$seconds"
    -rss_limit_mb=4096
    -malloc_limit_mb=4096
    -timeout=60
    -print_final_stats=1
)
if [[ "$sanitizer" == address ]]; then
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0:detect_leaks=0"
fi

failed=0
rows=()
crashes=()
for target in "${targets[@]}"; do
    dir="$runs/$target"
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp -R "fuzz/seeds/$target/." "$dir/corpus/"
    log="$dir/fuzz.log"
    flags=("${fuzzer_flags[@]}" -artifact_prefix="$dir/artifacts/")
    if [[ -f "fuzz/dict/$target.dict" ]]; then
        flags+=(-dict="fuzz/dict/$target.dict")
    fi
    echo "==> fuzzing $target for ${seconds}s (log: $log)"
    status=0
    "$target_dir/$triple/release/$target" "$dir/corpus" "${flags[@]}" >"$log" 2>&1 || status=$?

    runs_done=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    if [[ -z "$runs_done" ]]; then
        runs_done=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -n 1)
    fi
    corpus_size=$(find "$dir/corpus" -type f | wc -l)
    # slow-unit-* files are reports, not failures.
    artifact=$(find "$dir/artifacts" -type f ! -name 'slow-unit-*' | head -n 1)
    if [[ $status -eq 0 && -z "$artifact" ]]; then
        result=ok
    else
        failed=1
        result=$(basename "${artifact:-failed-}" | cut -d- -f1)
        echo "--- $target failed (exit $status); end of $log:"
        tail -n 60 "$log"
        echo "---"
        crashes+=("$target: ${artifact:-no input saved, see $log}")
    fi
    rows+=("$(printf '%-10s %8s %12s %8s  %s' "$target" "$seconds" "${runs_done:-?}" "$corpus_size" "$result")")
done

if [[ $prune -eq 1 ]]; then
    # The binaries are hard links into deps/: removing deps/ keeps them.
    release="$target_dir/$triple/release"
    rm -rf "$release/deps" "$release/build" "$release/.fingerprint" \
        "$release/incremental" "$release/examples" "$target_dir/release"
    echo "==> pruned the build's intermediate files (the binaries stay in $release)"
fi

echo
echo "build: ${build_seconds}s, sanitizer: $sanitizer"
printf '%-10s %8s %12s %8s  %s\n' target seconds executions corpus result
printf '%s\n' "${rows[@]}"
if [[ $failed -ne 0 ]]; then
    echo
    echo "failing inputs (reproduce: $target_dir/$triple/release/<target> <input>):"
    printf '  %s\n' "${crashes[@]}"
    exit 1
fi
