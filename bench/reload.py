#!/usr/bin/env python3
"""Reload benchmark: how long from a component file being written to the
first response from the new version, and how much throughput dips while
reloads happen, against the steady state measured in the same run.

Usage: bench/reload.py [--wasmhost target/release/wasmhost] [--swaps 30]

Every swap writes bytes never seen before (the hello component plus a
unique custom section), so each reload really compiles: no cache helps.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wasmhost", default=os.path.join(ROOT, "target/release/wasmhost"))
    ap.add_argument("--swaps", type=int, default=30)
    ap.add_argument("--poll-ms", type=float, default=5.0,
                    help="pause between two polls for the new version (0: flat out, "
                    "as before 2026-12-06)")
    args = ap.parse_args()
    ensure_wrk()
    v1 = open(os.path.join(GUESTS, "hello.wasm"), "rb").read()
    v2 = open(os.path.join(GUESTS, "raw_proxy.wasm"), "rb").read()
    work = tempfile.mkdtemp(prefix="wasmhost-reload-bench-")
    component = os.path.join(work, "svc.wasm")
    open(component, "wb").write(v1)
    manifest = os.path.join(work, "manifest.toml")
    open(manifest, "w").write(
        '[host]\nwatch = true\ncache_dir = "cache"\n\n'
        '[[service]]\nname = "svc"\ncomponent = "svc.wasm"\nroute = "/svc"\n')
    proc, addr = start_host(args.wasmhost, manifest)
    url = f"http://{addr}/svc"
    versions = [(v2, "raw proxy ok"), (v1, "hello")]
    counter = iter(range(10**9))

    poller = Poller(url)

    def swaps(n):
        latencies = []
        for _ in range(n):
            i = next(counter)
            base, marker = versions[i % 2]
            tmp = component + ".tmp"
            open(tmp, "wb").write(with_custom_section(base, f"{i}-{time.time()}"))
            written = time.perf_counter()
            os.rename(tmp, component)
            while True:
                status, body = poller.get()
                if status == 200 and body.startswith(marker):
                    break
                if time.perf_counter() - written > 10:
                    raise SystemExit(f"swap {i} not visible after 10 s")
                # Poll every --poll-ms, not flat out: a busy poller would take
                # the CPU the reload and wrk are measured on.
                time.sleep(args.poll_ms / 1e3)
            latencies.append((time.perf_counter() - written) * 1e3)
            time.sleep(0.1)
        return sorted(latencies)

    try:
        idle = swaps(args.swaps)
        # Steady state and a burst of reloads, each measured with wrk.
        steady_rps, steady_failed = wrk_result(wrk(url, 8))
        load = wrk(url, 60)
        time.sleep(1)
        latencies = swaps(args.swaps)
        load.send_signal(signal.SIGINT)  # wrk prints its results on SIGINT
        burst_rps, burst_failed = wrk_result(load)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    def p95(values):
        return values[min(len(values) - 1, int(len(values) * 0.95))]

    for label, values in [("idle host", idle), ("under wrk load", latencies)]:
        print(f"reload latency (file renamed -> first new response), {label}, {len(values)} swaps, "
              f"each a fresh compile: p50 {statistics.median(values):.0f} ms, "
              f"p95 {p95(values):.0f} ms, max {values[-1]:.0f} ms")
    print(f"throughput: steady {steady_rps:.0f} req/s, during reloads {burst_rps:.0f} req/s, "
          f"ratio {burst_rps / steady_rps:.2f}")
    print(f"failed requests: steady {steady_failed}, during reloads {burst_failed}")


if __name__ == "__main__":
    sys.exit(main())
