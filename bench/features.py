"""run.py's sections for the second-wave features: key-value stores (kv),
chained calls (chain), tracing (tracing), registry pulls (oci) and the
access log (accesslog)."""
import os, re, subprocess, sys
import shutil, threading, time
import urllib.request
from harness import (GUESTS, Raw, Target, clean_env, cold_starts, cpu_seconds, free_port, median,
                     throughput, wait_http, write_manifest, wrk)


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
