#!/usr/bin/env python3
"""The throughput, latency, memory, cold-start and fairness benchmark.

Run it through bench/run.sh, which builds everything it needs first. It
measures, in one run and on one machine:

  wasmhost            hello, fresh instance per request, default limits on
  wasmhost-unmetered  the same with limits off (no fuel/epoch code, no limits)
  wasmtime-tuned      `wasmtime serve` 48 with its pooling allocator tuned
                      (limits off: its default)
  native              a native hyper hello (bench/native-hello)

Throughput rounds alternate between the targets (A B C D A B C D ...), every
target running the whole time, so drift on a shared machine hits each alike.
Reported: medians of req/s, p50 and p99 latency, peak RSS, and ratios
against the baselines of this same run. Then cold start (exec to first 200)
and fairness (hello's latency while three guests spin), and the heavy
guests: hello, the SDK router, a Python (componentize-py) and a JavaScript
(componentize-js) hello, each served by wasmhost and by `wasmtime serve`
with the keep-resident settings of issue 16, both started fresh for that
guest. Writes the report as Markdown to stdout and JSON to --json.
Then the chained-call section (a call to another service in-process vs
the same call over loopback to the host's own listener: p50 latency and
server CPU per request) and the tracing section (hello with OTLP export at
sample ratio 1.0 to a local sink vs hello with tracing off), and the
reload section (bench/reload.py: an edit of 3 functions and a change of
every function, incremental compilation on and off).
`--only heavy` (or any comma list of sections) runs only those sections.

Files: harness.py (servers, wrk, manifests, medians: shared with
compare.py, scale.py and connections.py), features.py (the kv, chain,
tracing, oci and accesslog sections), connections.py (the connections
section), report.py (the Markdown report).
"""
import argparse, json, os, subprocess, sys, tempfile
import atexit, shutil, threading, time
import urllib.request
from harness import (GUESTS, ROOT, Target, WASMTIME_HEAVY_TUNED, WASMTIME_TUNED, clean_env,
                     cold_start_targets, cold_starts, free_port, throughput, write_manifest, wrk)
from features import access_log_cost, chain, kv, oci_cold, tracing_cost
from report import print_report
from connections import connections
import reload as reload_bench


SECTIONS = ["throughput", "connections", "cold", "fairness", "heavy", "kv", "chain", "tracing",
            "oci", "accesslog", "reload"]
HEAVY_GUESTS = ["hello", "router", "python", "js"]


def fairness(wasmhost, folder, seconds, python=None):
    """Hello's (and the Python service's, given its component) latency
    alone, then while three guests spin; every service in one host."""
    port = free_port()
    services = [
        {"name": "hello", "component": f"{GUESTS}/hello.wasm", "route": "/hello"},
        {"name": "spin", "component": f"{GUESTS}/hostile.wasm", "route": "/spin",
         "fuel": "unlimited", "timeout": "10m"},
    ]
    if python:
        services.append({"name": "py", "component": python, "route": "/py"})
    manifest = write_manifest(folder, "fairness.toml", services)
    subprocess.run([wasmhost, "compile", manifest], check=True, env=clean_env(),
                   stdout=subprocess.DEVNULL)
    host = Target("wasmhost", [wasmhost, "serve", manifest, "--listen", f"127.0.0.1:{port}"],
                  port, "/hello")
    host.start()
    paths = {"hello": "/hello"}
    if python:
        paths["python"] = "/py"
    url = lambda path: f"http://127.0.0.1:{port}{path}"  # noqa: E731
    try:
        alone = {name: wrk(url(path), seconds, connections=1, threads=1)
                 for name, path in paths.items()}
        alone_full = wrk(host.url(), seconds)
        spinners = []
        for _ in range(3):
            def spin():
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/spin/spin", timeout=600).read()
                except Exception:  # noqa: BLE001 - ended by the host's stop
                    pass
            thread = threading.Thread(target=spin, daemon=True)
            thread.start()
            spinners.append(thread)
        time.sleep(0.5)
        loaded = {name: wrk(url(path), seconds, connections=1, threads=1)
                  for name, path in paths.items()}
        loaded_full = wrk(host.url(), seconds)
    finally:
        host.stop()
    report = {
        "p50_alone_ms": alone["hello"]["p50_ms"], "p50_spinning_ms": loaded["hello"]["p50_ms"],
        "p99_alone_ms": alone["hello"]["p99_ms"], "p99_spinning_ms": loaded["hello"]["p99_ms"],
        "rps_alone": alone_full["rps"], "rps_spinning": loaded_full["rps"],
        "p50_ratio": loaded["hello"]["p50_ms"] / alone["hello"]["p50_ms"],
    }
    if python:
        report["python"] = {
            "p50_alone_ms": alone["python"]["p50_ms"],
            "p50_spinning_ms": loaded["python"]["p50_ms"],
            "p50_ratio": loaded["python"]["p50_ms"] / alone["python"]["p50_ms"],
        }
    return report


def guest_component(args, folder, guest):
    """(component, route, path that answers 200) for a heavy-section guest.
    The Python and JavaScript components come from --python-component and
    --js-component (bench/prepare.sh builds them), else are built here."""
    if guest == "hello":
        return f"{GUESTS}/hello.wasm", "/", "/"
    if guest == "router":
        # The guest sees the whole path; /items/7 answers 200 {"id":7,...}.
        return f"{GUESTS}/router_demo.wasm", "/items", "/items/7"
    built = {"python": (args.python_component, "guests-py/build.sh"),
             "js": (args.js_component, "guests-js/build.sh")}
    component, script = built[guest]
    if not component:
        component = os.path.join(folder, f"{guest}-hello.wasm")
        print(f"building the {guest} guest ({script})", file=sys.stderr)
        subprocess.run(["bash", os.path.join(ROOT, script), component], check=True,
                       stdout=sys.stderr)
    return os.path.abspath(component), "/", "/"


def wasmtime_compile(wasmtime, component, cwasm, flags):
    """`wasmtime compile` with the codegen-relevant (-O) flags of `flags`."""
    opts = [x for pair in zip(flags[::2], flags[1::2]) if pair[0] == "-O" for x in pair]
    subprocess.run([wasmtime, "compile", *opts, component, "-o", cwasm], check=True,
                   env=clean_env(), stdout=subprocess.DEVNULL)


def heavy(args, folder, guests):
    """Per guest: wasmhost and tuned `wasmtime serve`, each a process started
    fresh for that guest (so peak RSS is that guest's), both compiled ahead
    (wasmhost's cache_dir, a .cwasm) and warmed up before alternating
    rounds of wrk -t2 -c32."""
    results = {}
    for guest in guests:
        component, route, path = guest_component(args, folder, guest)
        manifest = write_manifest(folder, f"heavy-{guest}.toml",
                                  [{"name": guest, "component": component, "route": route}])
        print(f"heavy {guest}: compiling ahead", file=sys.stderr)
        compiled = subprocess.run([args.wasmhost, "compile", manifest], env=clean_env(),
                                  capture_output=True, text=True)
        if compiled.returncode != 0:
            sys.exit(f"wasmhost compile {manifest}:\n{compiled.stdout}{compiled.stderr}")
        port = free_port()
        targets = [Target("wasmhost", [args.wasmhost, "serve", manifest, "--listen",
                                       f"127.0.0.1:{port}"], port, path)]
        # `fuel = "unlimited"`: an engine without fuel metering (what
        # `wasmtime serve` runs); timeout, memory and the rest still apply.
        unlimited = write_manifest(folder, f"heavy-{guest}-fuel-unlimited.toml",
                                   [{"name": guest, "component": component, "route": route,
                                     "fuel": "unlimited"}])
        subprocess.run([args.wasmhost, "compile", unlimited], env=clean_env(), check=True,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        targets.append(Target("wasmhost-fuel-unlimited", [args.wasmhost, "serve", unlimited,
                                                          "--listen", f"127.0.0.1:{port}"],
                              port, path))
        if args.heavy_unmetered:
            # What the limits cost this guest: no fuel or epoch code compiled
            # in, fuel and timeout unlimited (wasmtime serve's default).
            off = write_manifest(folder, f"heavy-{guest}-unmetered.toml",
                                 [{"name": guest, "component": component, "route": route,
                                   "fuel": "unlimited", "timeout": "1h"}])
            env = clean_env(WASMHOST_UNMETERED="1")
            subprocess.run([args.wasmhost, "compile", off], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            port = free_port()
            targets.append(Target("wasmhost-unmetered", [args.wasmhost, "serve", off, "--listen",
                                                         f"127.0.0.1:{port}"], port, path,
                                  env=env))
        if args.wasmtime:
            cwasm = os.path.join(folder, f"heavy-{guest}.cwasm")
            wasmtime_compile(args.wasmtime, component, cwasm, WASMTIME_HEAVY_TUNED)
            port = free_port()
            targets.append(Target("wasmtime-tuned",
                                  [args.wasmtime, "serve", *WASMTIME_HEAVY_TUNED,
                                   "--allow-precompiled", "--addr", f"127.0.0.1:{port}", cwasm],
                                  port, path))
        try:
            for target in targets:
                target.start(deadline_s=120)
            for target in targets:  # warm-up, not measured
                wrk(target.url(), 2)
            summary = throughput(targets, args.rounds, args.heavy_seconds, label=f"{guest} ")
        finally:
            for target in targets:
                target.stop()
        for target in targets:
            summary[target.name]["start_ms"] = target.start_s * 1e3
        summary["component_bytes"] = os.path.getsize(component)
        results[guest] = summary
    return results


def split_list(value, allowed, flag):
    items = [x.strip() for x in value.split(",") if x.strip()]
    unknown = [x for x in items if x not in allowed]
    if unknown or not items:
        sys.exit(f"{flag}: expected a comma list of {','.join(allowed)}, got {value!r}")
    return items


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wasmhost", required=True)
    parser.add_argument("--wasmtime", help="wasmtime-cli 48; only --only heavy runs without "
                        "it (wasmhost alone)")
    parser.add_argument("--native", help="bench/native-hello; needed by throughput and cold")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--heavy-unmetered", action="store_true",
                        help="heavy section: also wasmhost with WASMHOST_UNMETERED=1 "
                        "(what fuel and epoch checks cost each guest)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--cold-repeats", type=int, default=15)
    parser.add_argument("--idle-connections", type=int, default=10_000,
                        help="connections section: keep-alive connections held idle")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma list of sections to run ({','.join(SECTIONS)}); default all")
    parser.add_argument("--guests", default=",".join(HEAVY_GUESTS),
                        help=f"heavy section: comma list of {','.join(HEAVY_GUESTS)}")
    parser.add_argument("--heavy-seconds", type=int, default=8,
                        help="heavy section: seconds per wrk round")
    parser.add_argument("--python-component", help="heavy section: the Python hello "
                        "(guests-py/build.sh); built into a temporary folder when not given")
    parser.add_argument("--js-component", help="heavy section: the JavaScript hello "
                        "(guests-js/build.sh); built into a temporary folder when not given")
    parser.add_argument("--json")
    args = parser.parse_args()
    only = split_list(args.only, SECTIONS, "--only")
    guests = split_list(args.guests, HEAVY_GUESTS, "--guests")
    missing = [flag for flag, needed in [
        ("--wasmtime", not args.wasmtime and set(only) & {"throughput", "cold", "connections"}),
        ("--native", not args.native and set(only) & {"throughput", "cold"})] if needed]
    if missing:
        parser.error(f"{' and '.join(missing)} needed by the throughput and cold sections")

    folder = tempfile.mkdtemp(prefix="wasmhost-bench-")
    # Components, caches and stores land here: hundreds of MB per run.
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    hello = f"{GUESTS}/hello.wasm"
    report = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}

    on = write_manifest(folder, "limits-on.toml",
                        [{"name": "hello", "component": hello, "route": "/"}])
    off = write_manifest(folder, "limits-off.toml",
                         [{"name": "hello", "component": hello, "route": "/",
                           "fuel": "unlimited", "timeout": "1h", "memory": "4GiB"}])
    nolog = write_manifest(folder, "no-access-log.toml",
                           [{"name": "hello", "component": hello, "route": "/"}],
                           host_extra="access_log = false\n")
    # WASI 0.2 instance reuse: an instance serves up to 1,000 requests, one
    # at a time, limits armed per request (docs/operations.md).
    reuse = write_manifest(folder, "reuse.toml",
                           [{"name": "hello", "component": hello, "route": "/",
                             "max_requests_per_instance": 1000}])
    # Fill the precompiled cache once, so no target compiles while measuring.
    if set(only) & {"throughput", "cold", "connections"}:
        subprocess.run([args.wasmhost, "compile", on], check=True, env=clean_env(),
                       stdout=subprocess.DEVNULL)
    if "throughput" in only:
        subprocess.run([args.wasmhost, "compile", off], check=True,
                       env=clean_env(WASMHOST_UNMETERED="1"), stdout=subprocess.DEVNULL)
        report["throughput"] = main_throughput(args, on, off, hello, nolog, reuse)

    if "connections" in only:
        print(f"connections: {args.rounds} alternating rounds of wrk -t2 -c1000 "
              f"-d{args.seconds}s, then {args.idle_connections} idle keep-alive connections",
              file=sys.stderr)
        wide = write_manifest(folder, "c1000.toml",
                              [{"name": "hello", "component": hello, "route": "/",
                                "max_concurrency": 1000}],
                              host_extra="max_connections = 15000\n")
        report["connections"] = connections(args, wide, hello)

    if "cold" in only:
        cwasm = os.path.join(folder, "hello.cwasm")
        subprocess.run([args.wasmtime, "compile", hello, "-o", cwasm], check=True,
                       env=clean_env())
        print(f"cold start: {args.cold_repeats} alternating starts each", file=sys.stderr)
        report["cold_start"] = cold_starts(cold_start_targets(args, on, cwasm),
                                           args.cold_repeats)

    if "fairness" in only:
        print("fairness: hello alone, then beside three spinning guests", file=sys.stderr)
        python = args.python_component if "python" in guests else None
        report["fairness"] = fairness(args.wasmhost, folder, max(5, args.seconds // 2), python)

    if "heavy" in only:
        print(f"heavy guests ({','.join(guests)}): {args.rounds} alternating rounds of "
              f"wrk -t2 -c32 -d{args.heavy_seconds}s each", file=sys.stderr)
        report["heavy"] = heavy(args, folder, guests)

    if "kv" in only:
        print(f"key-value: {args.rounds} alternating rounds of wrk -t2 -c32 "
              f"-d{args.heavy_seconds}s each", file=sys.stderr)
        report["kv"] = kv(args, folder)

    if "chain" in only:
        print(f"chained calls: {args.rounds} alternating rounds of wrk -t1 -c1 and -t2 -c32 "
              f"-d{args.heavy_seconds}s each", file=sys.stderr)
        report["chain"] = chain(args, folder)

    if "tracing" in only:
        print(f"tracing: {args.rounds} alternating rounds of wrk -t2 -c32 "
              f"-d{args.heavy_seconds}s each", file=sys.stderr)
        report["tracing"] = tracing_cost(args, folder)

    if "accesslog" in only:
        print(f"access log: {args.rounds} alternating rounds of wrk -t2 -c32 -d{args.seconds}s",
              file=sys.stderr)
        report["accesslog"] = access_log_cost(args, folder)

    if "oci" in only:
        print(f"oci: {args.cold_repeats} alternating cold starts each", file=sys.stderr)
        report["oci"] = oci_cold(args, folder)

    if "reload" in only:
        print("reload: 15 swaps idle, then 4 rounds of a steady window and 15 swaps under wrk, "
              "per kind of change, incremental compilation on and off", file=sys.stderr)
        report["reload"] = reload_section(args)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    print_report(report, args)


def reload_section(args):
    """bench/reload.py for an edit (3 functions change) and a full change,
    with incremental compilation on and off."""
    runs = {}
    for changed in ["3", "all"]:
        for incremental in [True, False]:
            name = f"{changed} changed, incremental {'on' if incremental else 'off'}"
            runs[name] = reload_bench.measure(args.wasmhost, 15, changed, incremental)
    return runs


def main_throughput(args, on, off, hello, nolog, reuse):
    """The six hello targets, all running, alternating rounds."""
    ports = {name: free_port() for name in ["on", "nolog", "reuse", "off", "wt", "native"]}
    targets = [
        Target("wasmhost", [args.wasmhost, "serve", on, "--listen",
                            f"127.0.0.1:{ports['on']}"], ports["on"], "/"),
        Target("wasmhost-no-access-log", [args.wasmhost, "serve", nolog, "--listen",
                                          f"127.0.0.1:{ports['nolog']}"], ports["nolog"], "/"),
        Target("wasmhost-reuse", [args.wasmhost, "serve", reuse, "--listen",
                                  f"127.0.0.1:{ports['reuse']}"], ports["reuse"], "/"),
        Target("wasmhost-unmetered", [args.wasmhost, "serve", off, "--listen",
                                      f"127.0.0.1:{ports['off']}"], ports["off"], "/",
               env=clean_env(WASMHOST_UNMETERED="1")),
        Target("wasmtime-tuned", [args.wasmtime, "serve", *WASMTIME_TUNED, "--addr",
                                  f"127.0.0.1:{ports['wt']}", hello], ports["wt"], "/"),
        Target("native", [args.native, f"127.0.0.1:{ports['native']}"], ports["native"], "/"),
    ]
    try:
        for target in targets:
            target.start()
        print(f"throughput: {args.rounds} alternating rounds of wrk -t2 -c32 -d{args.seconds}s",
              file=sys.stderr)
        return throughput(targets, args.rounds, args.seconds)
    finally:
        for target in targets:
            target.stop()


if __name__ == "__main__":
    main()
