#!/usr/bin/env python3
"""Two wasmhost builds against each other, in one run: before and after a change.

    python3 bench/compare.py --before OLD/wasmhost --after target/release/wasmhost

Serves the same hello component (fresh instance per request, default
limits) from both builds, then runs alternating `wrk -t2 -c32` rounds
(before, after, before, after, ...) so drift on a shared machine hits both
alike, and reports the medians and the after/before ratios. With
--reuse it adds a second pair that serves hello with
`max_requests_per_instance = 1000` (only builds that support it for WASI
0.2 components reuse there; older ones answer fresh). Uses bench/harness.py.
"""
import argparse, atexit, os, shutil, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import GUESTS, Target, clean_env, free_port, throughput, write_manifest  # noqa: E402
import subprocess  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="wasmhost-compare-")
    # Components, caches and stores land here: hundreds of MB per run.
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    hello = f"{GUESTS}/hello.wasm"
    manifests = {"fresh": write_manifest(folder, "fresh.toml",
                                         [{"name": "hello", "component": hello, "route": "/"}])}
    if args.reuse:
        manifests["reuse"] = write_manifest(
            folder, "reuse.toml", [{"name": "hello", "component": hello, "route": "/",
                                    "max_requests_per_instance": 1000}])
    targets = []
    for mode, manifest in manifests.items():
        for name, binary in [("before", args.before), ("after", args.after)]:
            subprocess.run([binary, "compile", manifest], check=True, env=clean_env(),
                           stdout=subprocess.DEVNULL)
            port = free_port()
            targets.append(Target(f"{name}-{mode}", [binary, "serve", manifest, "--listen",
                                                     f"127.0.0.1:{port}"], port, "/"))
    try:
        for target in targets:
            target.start()
        summary = throughput(targets, args.rounds, args.seconds)
    finally:
        for target in targets:
            target.stop()

    print(f"| target | req/s | p50 ms | p99 ms | peak RSS MiB |\n|---|---:|---:|---:|---:|")
    for name, s in summary.items():
        print(f"| {name} | {s['rps']:,.0f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} "
              f"| {s['peak_rss_mib']:.1f} |")
    for mode in manifests:
        b, a = summary[f"before-{mode}"], summary[f"after-{mode}"]
        print(f"\n{mode}: after/before req/s {a['rps'] / b['rps']:.3f}, "
              f"p99 {a['p99_ms'] / b['p99_ms']:.3f}, non-2xx {b['non2xx']}/{a['non2xx']}")


if __name__ == "__main__":
    main()
