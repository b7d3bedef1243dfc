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
sample ratio 1.0 to a local sink vs hello with tracing off).
`--only heavy` (or any comma list of sections) runs only those sections.
"""
import argparse, json, os, re, signal, socket, statistics, subprocess, sys, tempfile
import atexit, shutil, threading, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(ROOT, "guests/target/wasm32-wasip2/release")

# `wasmtime serve`'s pooling allocator with everything kept resident and the
# pagemap-scan reset: its fastest configuration on this kind of machine.
WASMTIME_TUNED = [
    "-O", "pooling-allocator=y",
    "-O", "pooling-memory-keep-resident=1048576",
    "-O", "pooling-table-keep-resident=65536",
    "-O", "pooling-async-stack-keep-resident=65536",
    "-O", "pooling-pagemap-scan=y",
    "-S", "cli=y",
]

# The same with the keep-resident sizes issue 16 states for heavy guests:
# 16 MiB of linear memory, 1 MiB of tables and 2 MiB of async stack kept
# resident per slot (the Python and JavaScript guests touch megabytes).
WASMTIME_HEAVY_TUNED = [
    "-O", "pooling-allocator=y",
    "-O", "pooling-memory-keep-resident=16777216",
    "-O", "pooling-table-keep-resident=1048576",
    "-O", "pooling-async-stack-keep-resident=2097152",
    "-O", "pooling-pagemap-scan=y",
    "-S", "cli=y",
]

SECTIONS = ["throughput", "connections", "cold", "fairness", "heavy", "kv", "chain", "tracing",
            "oci", "accesslog"]
HEAVY_GUESTS = ["hello", "router", "python", "js"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra):
    env = dict(os.environ)
    # RUST_BACKTRACE costs wasmtime memory and throughput (see bench/README).
    env.pop("RUST_BACKTRACE", None)
    env.update(extra)
    return env


def wait_http(port, path, deadline_s=30.0):
    """Polls until GET path answers 200; returns seconds waited."""
    started = time.perf_counter()
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    while time.perf_counter() - started < deadline_s:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(request)
                head = s.recv(64)
                if head.startswith(b"HTTP/1.1 200"):
                    return time.perf_counter() - started
        except OSError:
            pass
    raise RuntimeError(f"no 200 from port {port}{path} within {deadline_s}s")


def status_mib(pid, field):
    """A memory field of /proc/PID/status (`VmHWM`, `VmRSS`) in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Target:
    """One server under test, started once and kept running."""

    def __init__(self, name, argv, port, path, env=None):
        self.name, self.argv, self.port, self.path = name, argv, port, path
        self.env = env or clean_env()
        self.proc = None
        self.start_s = None

    def start(self, deadline_s=30.0):
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.start_s = wait_http(self.port, self.path, deadline_s)

    def url(self):
        return f"http://127.0.0.1:{self.port}{self.path}"

    def peak_rss_mib(self):
        return status_mib(self.proc.pid, "VmHWM")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wrk(url, seconds, connections=32, threads=2, script=None):
    extra = ["-s", script] if script else []
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    latency = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
        latency[pct] = float(value) * scale
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    total = re.search(r"(\d+) requests in", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "non2xx": int(errors.group(1)) if errors else 0,
        "requests": int(total.group(1)) if total else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else None,
    }


def write_manifest(folder, name, services, host_extra=""):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(f'[host]\nlisten = "127.0.0.1:0"\ncache_dir = "{folder}/cache"\nwatch = false\n')
        f.write(host_extra)
        for service in services:
            f.write("\n[[service]]\n")
            for key, value in service.items():
                text = value if isinstance(value, Raw) else (
                    json.dumps(value) if isinstance(value, str) else value)
                f.write(f"{key} = {text}\n")
    return path


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def throughput(targets, rounds, seconds, label=""):
    results = {t.name: [] for t in targets}
    for round_ in range(rounds):
        for target in targets:
            result = wrk(target.url(), seconds)
            results[target.name].append(result)
            print(f"  {label}round {round_ + 1} {target.name:20} {result['rps']:>10.0f} req/s "
                  f"p50 {result['p50_ms']:.3f} ms p99 {result['p99_ms']:.3f} ms",
                  file=sys.stderr)
    summary = {}
    for target in targets:
        runs = results[target.name]
        summary[target.name] = {
            "rps": median(r["rps"] for r in runs),
            "p50_ms": median(r["p50_ms"] for r in runs),
            "p99_ms": median(r["p99_ms"] for r in runs),
            "peak_rss_mib": target.peak_rss_mib(),
            "non2xx": sum(r["non2xx"] for r in runs),
            "runs": runs,
        }
    return summary


def cold_starts(commands, repeats):
    """commands: name -> (argv, port, path). Alternating; median seconds."""
    times = {name: [] for name in commands}
    for _ in range(repeats):
        for name, (argv, port, path) in commands.items():
            started = time.perf_counter()
            proc = subprocess.Popen(argv, env=clean_env(), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_http(port, path, deadline_s=30)
                times[name].append(time.perf_counter() - started)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    return {name: {"median_ms": statistics.median(t) * 1e3, "min_ms": min(t) * 1e3,
                   "runs_ms": [x * 1e3 for x in t]} for name, t in times.items()}


def cold_start_targets(args, manifest, cwasm):
    """The cold-start contenders: wasmhost on `manifest` (its cache warm),
    `wasmtime serve` on the precompiled `cwasm`, and native."""
    ports = {name: free_port() for name in ["wasmhost", "wasmtime", "native"]}
    return {
        "wasmhost (warm cache)": ([args.wasmhost, "serve", manifest, "--listen",
                                   f"127.0.0.1:{ports['wasmhost']}"], ports["wasmhost"], "/"),
        "wasmtime serve (.cwasm)": ([args.wasmtime, "serve", "--allow-precompiled", "-S", "cli=y",
                                     "--addr", f"127.0.0.1:{ports['wasmtime']}", cwasm],
                                    ports["wasmtime"], "/"),
        "native": ([args.native, f"127.0.0.1:{ports['native']}"], ports["native"], "/"),
    }


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


def kv(args, folder):
    """One embedded-store `get` and one `set` per request (the spin-sdk 5
    guest `guests/spin-kv`) against hello, all served by one host; then the
    same on a Redis store (a `redis-server` started here), when Debian's
    `redis-server` is installed."""
    spin_kv = os.path.join(GUESTS, "spin_kv.wasm")
    put = os.path.join(folder, "put.lua")
    with open(put, "w") as f:
        f.write('wrk.method = "PUT"\nwrk.body = "a value of some forty bytes, like a session"\n')
    services = [{"name": "hello", "component": f"{GUESTS}/hello.wasm", "route": "/hello"},
                {"name": "kv", "component": spin_kv, "route": "/kv",
                 "key_value_stores": ["default"]}]
    redis = None
    stores = {"embedded": ""}
    if shutil.which("redis-server"):
        redis_port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL, start_new_session=True)
        stores["redis"] = (f'\n[key_value.default]\nbackend = "redis"\n'
                           f'url = "redis://127.0.0.1:{redis_port}/0"\n')
    hosts, endpoints = [], []
    try:
        for name, extra in stores.items():
            manifest = write_manifest(folder, f"kv-{name}.toml", services,
                                      host_extra=f'data_dir = "{folder}/data-{name}"\n' + extra)
            subprocess.run([args.wasmhost, "compile", manifest], check=True, env=clean_env(),
                           stdout=subprocess.DEVNULL)
            port = free_port()
            host = Target(f"kv-{name}", [args.wasmhost, "serve", manifest, "--listen",
                                         f"127.0.0.1:{port}"], port, "/hello")
            host.start()
            hosts.append(host)
            base = f"http://127.0.0.1:{port}"
            subprocess.run(["curl", "-sf", "-X", "PUT", "--data", "x" * 40,
                            f"{base}/kv/bench"], check=True, stdout=subprocess.DEVNULL)
            if name == "embedded":
                endpoints.append(("hello", f"{base}/hello", None))
            endpoints += [(f"{name} get", f"{base}/kv/bench", None),
                          (f"{name} set", f"{base}/kv/bench", put)]
        results = {name: [] for name, _, _ in endpoints}
        for round_ in range(args.rounds):
            for name, url, script in endpoints:
                result = wrk(url, args.heavy_seconds, script=script)
                results[name].append(result)
                print(f"  kv round {round_ + 1} {name:14} {result['rps']:>10.0f} req/s "
                      f"p50 {result['p50_ms']:.3f} ms p99 {result['p99_ms']:.3f} ms",
                      file=sys.stderr)
        return {name: {"rps": median(r["rps"] for r in runs),
                       "p50_ms": median(r["p50_ms"] for r in runs),
                       "p99_ms": median(r["p99_ms"] for r in runs),
                       "non2xx": sum(r["non2xx"] for r in runs)}
                for name, runs in results.items()}
    finally:
        for host in hosts:
            host.stop()
        if redis:
            redis.terminate()
            redis.wait()


def cpu_seconds(pid):
    """User plus system CPU time of process `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def chain(args, folder):
    """A request that calls another service of the same host: in-process
    (`http://back.internal`) vs over loopback to the host's own listener
    (what a guest does without chained calls), both with the `chain` guest.
    Reports p50 latency (wrk -t1 -c1) and the host's CPU per request
    (wrk -t2 -c32, from /proc/PID/stat)."""
    component = os.path.join(GUESTS, "chain.wasm")
    port = free_port()
    services = [
        {"name": "back", "component": component, "route": "/b", "env": '{ NAME = "back" }'},
        {"name": "in-process", "component": component, "route": "/chain",
         "env": '{ NAME = "front", NEXT = "http://back.internal" }',
         "allowed_outbound_hosts": '["http://back.internal"]'},
        {"name": "loopback", "component": component, "route": "/loop",
         "env": f'{{ NAME = "front", NEXT = "http://127.0.0.1:{port}/b" }}',
         "allowed_outbound_hosts": f'["http://127.0.0.1:{port}"]'},
    ]
    manifest = write_manifest(folder, "chain.toml", [
        {k: (v if k not in ("env", "allowed_outbound_hosts") else Raw(v)) for k, v in svc.items()}
        for svc in services])
    subprocess.run([args.wasmhost, "compile", manifest], check=True, env=clean_env(),
                   stdout=subprocess.DEVNULL)
    host = Target("chain", [args.wasmhost, "serve", manifest, "--listen", f"127.0.0.1:{port}"],
                  port, "/b/x")
    host.start()
    endpoints = [("direct (no call)", "/b/x"), ("in-process call", "/chain/x"),
                 ("loopback call", "/loop/x")]
    results = {name: {"latency": [], "cpu_us": [], "rps": [], "non2xx": 0}
               for name, _ in endpoints}
    try:
        for round_ in range(args.rounds):
            for name, path in endpoints:
                url = f"http://127.0.0.1:{port}{path}"
                one = wrk(url, args.heavy_seconds, connections=1, threads=1)
                before = cpu_seconds(host.proc.pid)
                many = wrk(url, args.heavy_seconds)
                cpu = cpu_seconds(host.proc.pid) - before
                r = results[name]
                r["latency"].append(one["p50_ms"])
                r["cpu_us"].append(cpu / max(many["requests"], 1) * 1e6)
                r["rps"].append(many["rps"])
                r["non2xx"] += one["non2xx"] + many["non2xx"]
                print(f"  chain round {round_ + 1} {name:18} p50 {one['p50_ms']:.3f} ms "
                      f"{many['rps']:>8.0f} req/s {r['cpu_us'][-1]:.1f} us CPU/request",
                      file=sys.stderr)
    finally:
        host.stop()
    return {name: {"p50_ms": median(r["latency"]), "cpu_us": median(r["cpu_us"]),
                   "rps": median(r["rps"]), "non2xx": r["non2xx"]}
            for name, r in results.items()}


class Raw(str):
    """A manifest value written as is (TOML inline tables and arrays)."""


class OtlpSink:
    """A local OTLP/HTTP endpoint that reads and drops what it gets."""

    def __init__(self):
        import http.server
        sink = self
        self.requests = 0
        self.bytes = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                # A collector elsewhere costs this machine nothing: at the
                # lowest priority, the sink takes only CPU nobody wants.
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
                length = int(self.headers.get("content-length", 0))
                self.rfile.read(length)
                sink.requests += 1
                sink.bytes += length
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def tracing_cost(args, folder):
    """hello with every request traced (OTLP export, sample ratio 1.0, to a
    local sink) vs hello with tracing off: alternating rounds, one host
    each."""
    hello = f"{GUESTS}/hello.wasm"
    manifest = write_manifest(folder, "tracing.toml",
                              [{"name": "hello", "component": hello, "route": "/"}])
    subprocess.run([args.wasmhost, "compile", manifest], check=True, env=clean_env(),
                   stdout=subprocess.DEVNULL)
    sink = OtlpSink()
    ports = {"off": free_port(), "on": free_port()}
    # Both with an admin plane (the traced one's drop count is read there):
    # the same work per request but the tracing.
    admin, admin_off = free_port(), free_port()
    traced_env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink.port}",
                           OTEL_TRACES_SAMPLER="always_on")
    targets = [
        Target("tracing off", [args.wasmhost, "serve", manifest, "--listen",
                               f"127.0.0.1:{ports['off']}", "--admin",
                               f"127.0.0.1:{admin_off}"], ports["off"], "/"),
        Target("tracing on (ratio 1.0)", [args.wasmhost, "serve", manifest, "--listen",
                                          f"127.0.0.1:{ports['on']}", "--admin",
                                          f"127.0.0.1:{admin}"], ports["on"], "/",
               env=traced_env),
    ]
    try:
        for target in targets:
            target.start()
        import resource
        sink_cpu = resource.getrusage(resource.RUSAGE_SELF)
        host_cpu = {t.name: cpu_seconds(t.proc.pid) for t in targets}
        summary = throughput(targets, args.rounds, args.heavy_seconds, label="tracing ")
        after = resource.getrusage(resource.RUSAGE_SELF)
        # The host's own CPU per request over all -c32 rounds (the idle
        # host of each round uses next to none): what tracing costs the
        # host, apart from the sink sharing its cores.
        for t in targets:
            requests = sum(r["requests"] for r in summary[t.name]["runs"])
            summary[t.name]["cpu_us"] = ((cpu_seconds(t.proc.pid) - host_cpu[t.name])
                                         / max(requests, 1) * 1e6)
        sink_cpu_s = after.ru_utime + after.ru_stime - sink_cpu.ru_utime - sink_cpu.ru_stime
        # With CPU to spare: one connection, latency only.
        light = {t.name: [] for t in targets}
        for round_ in range(args.rounds):
            for target in targets:
                light[target.name].append(wrk(target.url(), args.heavy_seconds, connections=1,
                                              threads=1))
        for name, runs in light.items():
            summary[name]["c1_p50_ms"] = median(r["p50_ms"] for r in runs)
            summary[name]["c1_p99_ms"] = median(r["p99_ms"] for r in runs)
            summary[name]["c1_rps"] = median(r["rps"] for r in runs)
        time.sleep(1)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics").read().decode()
        dropped = re.search(r"^wasmhost_spans_dropped_total (\S+)", metrics, re.M)
        requests = sum(r["requests"] for r in summary["tracing on (ratio 1.0)"]["runs"])
        summary["export"] = {"export_requests": sink.requests, "bytes": sink.bytes,
                             "sink_cpu_s": sink_cpu_s,
                             "spans_dropped": float(dropped.group(1)) if dropped else None,
                             "spans_made": 2 * requests}
        return summary
    finally:
        for target in targets:
            target.stop()
        sink.stop()


def oci_cold(args, folder):
    """Cold start of hello from a file against hello pulled from an OCI
    registry into the cache (by digest: no registry contact; by tag: the
    registry resolves it at start), the cache warm for all: alternating
    starts. The registry is Debian's docker-registry; wkg pushes."""
    port = free_port()
    registry_dir = os.path.join(folder, "registry")
    os.makedirs(registry_dir, exist_ok=True)
    config = os.path.join(registry_dir, "config.yml")
    with open(config, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {registry_dir}/data\n"
                f"http:\n  addr: 127.0.0.1:{port}\n")
    registry = subprocess.Popen(["docker-registry", "serve", config], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        wait_http(port, "/v2/", deadline_s=20)
        wkg = shutil.which("wkg") or os.path.expanduser("~/.cache/wasmhost-tools/bin/wkg")
        addr = f"127.0.0.1:{port}"
        pushed = subprocess.run([wkg, "oci", "push", "--insecure", addr,
                                 f"{addr}/bench/hello:v1", f"{GUESTS}/hello.wasm"],
                                check=True, capture_output=True, text=True).stdout
        digest = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed).group(1)
        insecure = f'insecure_registries = ["{addr}"]\n'
        manifests = {
            "file": f"{GUESTS}/hello.wasm",
            "oci by digest (cached)": f"oci://{addr}/bench/hello@{digest}",
            "oci by tag (registry resolves)": f"oci://{addr}/bench/hello:v1",
        }
        targets = {}
        for i, (name, component) in enumerate(manifests.items()):
            manifest = write_manifest(folder, f"oci-{i}.toml",
                                      [{"name": "hello", "component": component, "route": "/"}],
                                      host_extra=insecure)
            subprocess.run([args.wasmhost, "compile", manifest], check=True, env=clean_env(),
                           stdout=subprocess.DEVNULL)
            p = free_port()
            targets[name] = ([args.wasmhost, "serve", manifest, "--listen", f"127.0.0.1:{p}"],
                             p, "/")
        return cold_starts(targets, args.cold_repeats)
    finally:
        registry.terminate()
        registry.wait()


def access_log_cost(args, folder):
    """hello with the access log on (the default) and off (`[host]
    access_log = false`): one binary, alternating rounds."""
    hello = f"{GUESTS}/hello.wasm"
    services = [{"name": "hello", "component": hello, "route": "/"}]
    on = write_manifest(folder, "log-on.toml", services)
    off = write_manifest(folder, "log-off.toml", services, host_extra="access_log = false\n")
    subprocess.run([args.wasmhost, "compile", on], check=True, env=clean_env(),
                   stdout=subprocess.DEVNULL)
    ports = {"on": free_port(), "off": free_port()}
    targets = [Target("access log on", [args.wasmhost, "serve", on, "--listen",
                                        f"127.0.0.1:{ports['on']}"], ports["on"], "/"),
               Target("access log off", [args.wasmhost, "serve", off, "--listen",
                                         f"127.0.0.1:{ports['off']}"], ports["off"], "/")]
    try:
        for target in targets:
            target.start()
        return throughput(targets, args.rounds, args.seconds, label="access log ")
    finally:
        for target in targets:
            target.stop()


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
        from connections import connections  # imports this file's helpers
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

    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    print_report(report, args)


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


def print_report(report, args):
    if "throughput" in report:
        print_throughput(report, args)
    if "connections" in report:
        from connections import print_connections
        print_connections(report, args)
    if "cold_start" in report:
        print_cold(report, args)
    if "fairness" in report:
        print_fairness(report)
    if "heavy" in report:
        print_heavy(report, args)
    if "kv" in report:
        print_kv(report, args)
    if "chain" in report:
        print_chain(report, args)
    if "tracing" in report:
        print_tracing(report, args)
    if "oci" in report:
        print_oci(report, args)
    if "accesslog" in report:
        a = report["accesslog"]
        print(f"## Access log (hello, wrk -t2 -c32 -d{args.seconds}s, median of {args.rounds} "
              "alternating rounds)\n")
        print("| target | req/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|")
        for name in ["access log on", "access log off"]:
            r = a[name]
            print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
        print(f"\nOff vs on: req/s {a['access log off']['rps'] / a['access log on']['rps']:.3f}x\n")


def print_oci(report, args):
    o = report["oci"]
    print(f"## Cold start from a registry (hello, warm cache, median of {args.cold_repeats} "
          "alternating starts)\n")
    print("| component | median ms | min ms |")
    print("|---|---:|---:|")
    for name, r in o.items():
        print(f"| {name} | {r['median_ms']:.1f} | {r['min_ms']:.1f} |")
    base = o["file"]["median_ms"]
    print("\n" + ", ".join(f"{name}: {r['median_ms'] / base:.2f}x of file"
                           for name, r in o.items() if name != "file") + "\n")


def print_throughput(report, args):
    t = report["throughput"]
    wh, off, wt, nat = (t[n] for n in ["wasmhost", "wasmhost-unmetered", "wasmtime-tuned", "native"])
    print(f"## Throughput (wrk -t2 -c32 -d{args.seconds}s, median of {args.rounds} alternating rounds)\n")
    print("| target | req/s | p50 ms | p99 ms | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for name, r in t.items():
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
              f"{r['peak_rss_mib']:.1f} |")
    print()
    print("| ratio | value | goal |")
    print("|---|---:|---|")
    nolog, reuse = t["wasmhost-no-access-log"], t["wasmhost-reuse"]
    print(f"| wasmhost / wasmtime-tuned req/s | {wh['rps'] / wt['rps']:.2f}x | >= 2x (moonshot 3x) |")
    print(f"| wasmhost, access log off / wasmtime-tuned req/s | {nolog['rps'] / wt['rps']:.2f}x | |")
    print(f"| wasmhost reuse mode / wasmtime-tuned req/s | {reuse['rps'] / wt['rps']:.2f}x | >= 3.5x |")
    print(f"| wasmhost / wasmtime-tuned p99 | {wh['p99_ms'] / wt['p99_ms']:.2f}x | <= 1.0x |")
    print(f"| wasmhost / native req/s | {wh['rps'] / nat['rps']:.2f}x | >= 0.3x |")
    print(f"| wasmhost reuse mode / native req/s | {reuse['rps'] / nat['rps']:.2f}x | |")
    print(f"| limits on / off req/s | {wh['rps'] / off['rps']:.3f} | >= 0.95 |")
    print()


def print_cold(report, args):
    print(f"## Cold start, exec to first 200 (median of {args.cold_repeats})\n")
    print("| target | median ms | min ms |")
    print("|---|---:|---:|")
    for name, r in report["cold_start"].items():
        print(f"| {name} | {r['median_ms']:.1f} | {r['min_ms']:.1f} |")
    c = report["cold_start"]
    print(f"\nwasmhost / wasmtime serve (.cwasm): "
          f"{c['wasmhost (warm cache)']['median_ms'] / c['wasmtime serve (.cwasm)']['median_ms']:.2f}x"
          " (goal <= 0.5x)\n")


def print_fairness(report):
    f = report["fairness"]
    print("## Fairness (hello, wrk -t1 -c1, alone vs beside 3 spinning guests)\n")
    print(f"p50 {f['p50_alone_ms']:.3f} ms alone, {f['p50_spinning_ms']:.3f} ms with spinners: "
          f"{f['p50_ratio']:.2f}x (goal <= 2x); p99 {f['p99_alone_ms']:.3f} / "
          f"{f['p99_spinning_ms']:.3f} ms; wrk -c32 req/s {f['rps_alone']:.0f} alone, "
          f"{f['rps_spinning']:.0f} with spinners\n")
    if "python" in f:
        p = f["python"]
        print(f"Python service: p50 {p['p50_alone_ms']:.3f} ms alone, "
              f"{p['p50_spinning_ms']:.3f} ms with spinners: {p['p50_ratio']:.2f}x "
              "(goal <= 2x)\n")


def print_kv(report, args):
    kv = report["kv"]
    print(f"## Key-value (wrk -t2 -c32 -d{args.heavy_seconds}s, median of {args.rounds} "
          "alternating rounds; the spin-sdk 5 guest, one operation per request)\n")
    print("| endpoint | req/s | vs hello | p50 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    hello = kv["hello"]["rps"]
    for name, r in kv.items():
        print(f"| {name} | {r['rps']:.0f} | {r['rps'] / hello:.2f}x | {r['p50_ms']:.3f} | "
              f"{r['p99_ms']:.3f} | {r['non2xx']} |")
    print("\nGoals: embedded get >= 0.7x hello, set >= 0.4x.\n")


def print_chain(report, args):
    c = report["chain"]
    print(f"## Chained calls (median of {args.rounds} alternating rounds; p50 from wrk -t1 -c1, "
          f"CPU per request from wrk -t2 -c32, -d{args.heavy_seconds}s)\n")
    print("| request | p50 ms | host CPU µs/request | req/s (-c32) | non-2xx |")
    print("|---|---:|---:|---:|---:|")
    for name, r in c.items():
        print(f"| {name} | {r['p50_ms']:.3f} | {r['cpu_us']:.1f} | {r['rps']:.0f} | "
              f"{r['non2xx']} |")
    ip, lb, d = c["in-process call"], c["loopback call"], c["direct (no call)"]
    print(f"\nWhole request, in-process vs loopback: p50 {ip['p50_ms'] / lb['p50_ms']:.2f}x, "
          f"CPU per request {ip['cpu_us'] / lb['cpu_us']:.2f}x.")
    cost = {name: (r["p50_ms"] - d["p50_ms"], r["cpu_us"] - d["cpu_us"]) for name, r in
            [("ip", ip), ("lb", lb)]}
    print(f"The call alone (the request minus the same request without a call, row 1): "
          f"in-process {cost['ip'][0] * 1e3:.0f} us p50 and {cost['ip'][1]:.1f} us CPU, "
          f"loopback {cost['lb'][0] * 1e3:.0f} us and {cost['lb'][1]:.1f} us: "
          f"{cost['ip'][0] / cost['lb'][0]:.2f}x p50, {cost['ip'][1] / cost['lb'][1]:.2f}x CPU "
          f"(goal: <= 0.5x each).\n")


def print_tracing(report, args):
    t = report["tracing"]
    off, on = t["tracing off"], t["tracing on (ratio 1.0)"]
    print(f"## Tracing cost (hello, wrk -t2 -c32 -d{args.heavy_seconds}s, median of "
          f"{args.rounds} alternating rounds)\n")
    print("| target | req/s | p50 ms | p99 ms | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for name in ["tracing off", "tracing on (ratio 1.0)"]:
        r = t[name]
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | "
              f"{r['peak_rss_mib']:.1f} |")
    e = t["export"]
    print(f"\nSaturated (-c32): traced vs off req/s {on['rps'] / off['rps']:.3f}x, p99 "
          f"{on['p99_ms'] / off['p99_ms']:.2f}x (goal: within 5%). The local sink (this "
          f"script, at nice 19) used {e['sink_cpu_s']:.1f} s of CPU on the same cores.")
    print(f"Host CPU per request: {off['cpu_us']:.1f} -> {on['cpu_us']:.1f} us "
          f"({on['cpu_us'] / off['cpu_us']:.3f}x).")
    print(f"With CPU to spare (wrk -t1 -c1): p50 {off['c1_p50_ms']:.3f} -> "
          f"{on['c1_p50_ms']:.3f} ms ({on['c1_p50_ms'] / off['c1_p50_ms']:.2f}x), p99 "
          f"{off['c1_p99_ms']:.3f} -> {on['c1_p99_ms']:.3f} ms, req/s "
          f"{on['c1_rps'] / off['c1_rps']:.3f}x.")
    print(f"Spans made {e['spans_made']} (-c32 rounds), dropped in all {e['spans_dropped']}, "
          f"{e['export_requests']} export requests, {e['bytes'] / 1e6:.1f} MB.\n")


def print_heavy(report, args):
    h = report["heavy"]
    print(f"## Heavy guests (wrk -t2 -c32 -d{args.heavy_seconds}s, median of {args.rounds} "
          "alternating rounds; one fresh process per guest and target)\n")
    print("| guest | target | req/s | p50 ms | p99 ms | peak RSS MiB | non-2xx |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for guest, targets in h.items():
        for name in ["wasmhost", "wasmhost-fuel-unlimited", "wasmhost-unmetered",
                     "wasmtime-tuned"]:
            if name in targets:
                r = targets[name]
                print(f"| {guest} | {name} | {r['rps']:.0f} | {r['p50_ms']:.3f} | "
                      f"{r['p99_ms']:.3f} | {r['peak_rss_mib']:.1f} | {r['non2xx']} |")
    if not any("wasmtime-tuned" in targets for targets in h.values()):
        print("\n(no --wasmtime: wasmhost only)\n")
        return
    print()
    print("| guest | wasmhost | req/s vs wasmtime | p50 | p99 | peak RSS |")
    print("|---|---|---:|---:|---:|---:|")
    for guest, targets in h.items():
        wt = targets["wasmtime-tuned"]
        for name, label in [("wasmhost", "default limits"),
                            ("wasmhost-fuel-unlimited", "`fuel = \"unlimited\"`")]:
            wh = targets[name]
            print(f"| {guest} | {label} | {wh['rps'] / wt['rps']:.2f}x | "
                  f"{wh['p50_ms'] / wt['p50_ms']:.2f}x | {wh['p99_ms'] / wt['p99_ms']:.2f}x | "
                  f"{wh['peak_rss_mib'] / wt['peak_rss_mib']:.2f}x |")
    print()


if __name__ == "__main__":
    main()
