"""What every benchmark script shares: the servers under test, the load
generator, manifests, and medians (used by run.py, compare.py, scale.py,
connections.py and features.py)."""
import json, os, re, signal, socket, statistics, subprocess, sys
import time


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
        self.check_alive()

    def check_alive(self):
        """Raises when the server has exited: its port may then be answered
        by another process (one run measured another server's listener
        after `wasmtime serve` had exited), which must not be reported as
        this target's figures."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}; "
                               f"port {self.port} is not its to measure")

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
            target.check_alive()
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


def cpu_seconds(pid):
    """User plus system CPU time of process `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Raw(str):
    """A manifest value written as is (TOML inline tables and arrays)."""
