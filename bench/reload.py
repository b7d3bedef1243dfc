#!/usr/bin/env python3
"""Reload benchmark: how long from a component file being written to the
first response from the new version, and how much throughput dips while
reloads happen, against the steady state measured in the same run.

Usage: bench/reload.py [--wasmhost target/release/wasmhost] [--swaps 30]

Every swap writes bytes never seen before (the hello component plus a
unique custom section), so the compiled-component cache never helps.
`--changed-functions` says how much of the code changes per swap, which
is what the incremental compilation cache (`<cache_dir>/functions/`)
depends on: `all` (the default: every function body gets a new constant,
so every function is compiled again), a number N (N function bodies of
the largest core module change: an edit), or 0 (only the custom section
changes: a rebuild that changed metadata).
The throughput dip is measured in four rounds of two windows of equal
length, a steady one and one with `--swaps` swaps, both with the same
polling for the new version, the steady ones serving each of the two
swapped versions equally (see bench/README.md).
Needs wrk (installed with apt-get when missing) and the guests built
(guests/build.sh).
"""
import argparse, json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time
import http.client, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(ROOT, "guests/target/wasm32-wasip2/release")


def ensure_wrk():
    if shutil.which("wrk"):
        return
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def leb128(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def sleb128(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def read_leb(data, i):
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def sections(binary):
    """(id, payload) of each section of a module or component binary."""
    i = 8
    while i < len(binary):
        size, start = read_leb(binary, i + 1)
        yield binary[i], binary[start:start + size]
        i = start + size


def encode(header, parts):
    out = bytearray(header)
    for sid, payload in parts:
        out += bytes([sid]) + leb128(len(payload)) + payload
    return bytes(out)


def with_changed_functions(module, changed, constant):
    """The core module with `i32.const constant; drop` added at the end of
    the chosen function bodies: the same behaviour, different code."""
    parts = []
    for sid, payload in sections(module):
        if sid == 10:  # code
            count, i = read_leb(payload, 0)
            picked = (set(range(count)) if changed == "all"
                      else {int(count * (m + 0.5) / int(changed)) for m in range(int(changed))})
            bodies = bytearray(leb128(count))
            for index in range(count):
                size, start = read_leb(payload, i)
                body, i = payload[start:start + size], start + size
                if index in picked:
                    assert body[-1] == 0x0B, "a function body ends with `end`"
                    body = body[:-1] + b"\x41" + sleb128(constant) + b"\x1a\x0b"
                bodies += leb128(len(body)) + body
            payload = bytes(bodies)
        parts.append((sid, payload))
    return encode(module[:8], parts)


def with_changed_code(component, changed, constant):
    """The component with `changed` ("all", or a count) functions changed:
    every core module's for "all", else the largest core module's."""
    if changed == "0":
        return component
    parts = list(sections(component))
    modules = [i for i, (sid, _) in enumerate(parts) if sid == 1]
    largest = max(modules, key=lambda i: len(parts[i][1]))
    for i in (modules if changed == "all" else [largest]):
        parts[i] = (1, with_changed_functions(parts[i][1], changed, constant))
    return encode(component[:8], parts)


def with_custom_section(wasm, tag):
    """The component plus a custom section: same behaviour, new sha256."""
    name = b"wasmhost-bench"
    payload = leb128(len(name)) + name + tag.encode()
    return wasm + b"\x00" + leb128(len(payload)) + payload


def start_host(wasmhost, manifest):
    env = dict(os.environ)
    env.pop("RUST_BACKTRACE", None)
    proc = subprocess.Popen(
        [wasmhost, "serve", manifest, "--listen", "127.0.0.1:0", "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("message") == "listening" and event.get("plane") == "data":
            # Keep draining output so the pipe never blocks the host.
            import threading
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, event["addr"]
    raise SystemExit("wasmhost did not start")


class Poller:
    """GETs one URL over a kept-alive connection (a new connection per poll
    costs the machine more CPU than the poll is worth)."""

    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parsed.hostname, parsed.port, parsed.path
        self.conn = None

    def get(self):
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            self.conn.request("GET", self.path)
            resp = self.conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        except Exception as err:  # noqa: BLE001 - any failure counts
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return 0, str(err)


def wrk(url, seconds):
    return subprocess.Popen(["wrk", "-t2", "-c16", f"-d{seconds}s", url],
                            stdout=subprocess.PIPE, text=True)


def wrk_result(proc):
    out = proc.communicate()[0]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return rps, failed


def measure(wasmhost, swaps_each=15, changed="all", incremental=True, poll_ms=5.0, rounds=4):
    """One host: `swaps_each` swaps on the idle host, then `rounds` pairs of
    wrk windows of the same length: a steady one and a burst of
    `swaps_each` swaps. Latencies in ms, sorted; throughput as medians of
    the windows (steady: the mean of each version's median, see below)."""
    ensure_wrk()
    v1 = open(os.path.join(GUESTS, "hello.wasm"), "rb").read()
    v2 = open(os.path.join(GUESTS, "raw_proxy.wasm"), "rb").read()
    work = tempfile.mkdtemp(prefix="wasmhost-reload-bench-")
    component = os.path.join(work, "svc.wasm")
    open(component, "wb").write(v1)
    manifest = os.path.join(work, "manifest.toml")
    open(manifest, "w").write(
        '[host]\nwatch = true\ncache_dir = "cache"\n'
        f'incremental_compilation = {"true" if incremental else "false"}\n\n'
        '[[service]]\nname = "svc"\ncomponent = "svc.wasm"\nroute = "/svc"\n')
    proc, addr = start_host(wasmhost, manifest)
    url = f"http://{addr}/svc"
    versions = [(v2, "raw proxy ok"), (v1, "hello")]
    counter = iter(range(10**9))
    # The version being served (its marker): the swaps alternate between two
    # components of different speeds (raw-proxy answers 15-20% more requests
    # than hello), so the steady windows must serve each as often.
    live = ["hello"]

    poller = Poller(url)

    def swaps(n):
        latencies = []
        for _ in range(n):
            i = next(counter)
            base, marker = versions[i % 2]
            tmp = component + ".tmp"
            edited = with_changed_code(base, changed, 1_000_003 + i)
            open(tmp, "wb").write(with_custom_section(edited, f"{i}-{time.time()}"))
            written = time.perf_counter()
            os.rename(tmp, component)
            while True:
                status, body = poller.get()
                if status == 200 and body.startswith(marker):
                    break
                if time.perf_counter() - written > 10:
                    raise SystemExit(f"swap {i} not visible after 10 s")
                # Poll every poll_ms, not flat out: a busy poller would take
                # the CPU the reload and wrk are measured on.
                time.sleep(poll_ms / 1e3)
            latencies.append((time.perf_counter() - written) * 1e3)
            live[0] = marker
            time.sleep(0.1)
        return latencies

    def polls_only(seconds, polling_ms):
        """What `swaps` does, without swapping: polls for `polling_ms` (as
        long as an idle swap took to appear, which is shorter than under
        load), pauses 100 ms, and again, for `seconds`."""
        ended = time.perf_counter() + seconds
        while time.perf_counter() < ended:
            started = time.perf_counter()
            while (time.perf_counter() - started) * 1e3 < polling_ms:
                poller.get()
                time.sleep(poll_ms / 1e3)
            time.sleep(0.1)

    def window(work_in_window):
        """A wrk run around `work_in_window`: 0.5 s of load first, then the
        work, then wrk stops. Returns (req/s, failed, seconds of work)."""
        load = wrk(url, 120)
        time.sleep(0.5)
        started = time.perf_counter()
        result = work_in_window()
        seconds = time.perf_counter() - started
        load.send_signal(signal.SIGINT)  # wrk prints its results on SIGINT
        rps, failed = wrk_result(load)
        return rps, failed, seconds, result

    try:
        idle = sorted(swaps(swaps_each))
        # Steady and burst windows alternate, each of the same length and
        # with the same polling, so the ratio measures what the reloads
        # cost and a noisy neighbour hits both kinds alike.
        steady, bursts, latencies = [], [], []
        burst_s = swaps_each * (statistics.median(idle) + 100) / 1e3
        for _ in range(rounds):
            if steady and steady[-1][4] == live[0]:
                swaps(1)  # outside any window: the other version's turn
            version = live[0]
            steady.append((*window(lambda: polls_only(burst_s, statistics.median(idle))),
                           version))
            burst = window(lambda: swaps(swaps_each))
            burst_s = burst[2]
            bursts.append(burst)
            latencies += burst[3]
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    by_version = {}
    for w in steady:
        by_version.setdefault(w[4], []).append(w[0])
    return {"idle_ms": idle, "load_ms": sorted(latencies),
            # Each version's median, then their mean: a burst serves both
            # about equally.
            "steady_rps": statistics.mean(statistics.median(v) for v in by_version.values()),
            "burst_rps": statistics.median(w[0] for w in bursts),
            "steady_runs_rps": [w[0] for w in steady],
            "steady_versions": [w[4] for w in steady],
            "burst_runs_rps": [w[0] for w in bursts],
            "steady_failed": sum(w[1] for w in steady),
            "burst_failed": sum(w[1] for w in bursts)}


def p95(values):
    return values[min(len(values) - 1, int(len(values) * 0.95))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wasmhost", default=os.path.join(ROOT, "target/release/wasmhost"))
    ap.add_argument("--swaps", type=int, default=30)
    ap.add_argument("--changed-functions", default="all",
                    help="functions whose code changes at each swap: all, or a number "
                    "(0: only a custom section changes)")
    ap.add_argument("--no-incremental", action="store_true",
                    help="run the host with `incremental_compilation = false`")
    ap.add_argument("--poll-ms", type=float, default=5.0,
                    help="pause between two polls for the new version (0: flat out, "
                    "as before 2026-12-06)")
    args = ap.parse_args()
    if args.changed_functions != "all" and not args.changed_functions.isdigit():
        ap.error("--changed-functions: `all` or a number")
    r = measure(args.wasmhost, args.swaps, args.changed_functions, not args.no_incremental,
                args.poll_ms)
    for label, values in [("idle host", r["idle_ms"]), ("under wrk load", r["load_ms"])]:
        print(f"reload latency (file renamed -> first new response), {label}, {len(values)} swaps, "
              f"{args.changed_functions} function(s) changed per swap: "
              f"p50 {statistics.median(values):.0f} ms, "
              f"p95 {p95(values):.0f} ms, max {values[-1]:.0f} ms")
    print(f"throughput: steady {r['steady_rps']:.0f} req/s, during reloads "
          f"{r['burst_rps']:.0f} req/s, ratio {r['burst_rps'] / r['steady_rps']:.2f} "
          f"({len(r['steady_runs_rps'])} alternating windows each: steady "
          f"{', '.join(f'{x:.0f} ({v})' for x, v in zip(r['steady_runs_rps'], r['steady_versions']))}"
          f"; reloads {', '.join(f'{x:.0f}' for x in r['burst_runs_rps'])})")
    print(f"failed requests: steady {r['steady_failed']}, during reloads {r['burst_failed']}")


if __name__ == "__main__":
    sys.exit(main())
