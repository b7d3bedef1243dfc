#!/usr/bin/env python3
"""Soak: mixed traffic against one wasmhost for a while, with reloads.

Good requests (hello, echo, a reused WASI 0.3 service) run beside every
hostile behaviour of the `hostile` guest, and the manifest is rewritten
every few seconds (a hot reload each time). At the end it reports requests
served, outcomes by kind, host RSS and open descriptors at start, middle
and end, and host panics, and fails when:

- a good request fails (any transport error or non-2xx),
- a hostile request ends other than documented (status and kind),
- RSS at the end is more than 10% above the start, or descriptors grew,
- the host printed a panic, or no reload succeeded.

RSS and descriptors are sampled with traffic paused for a second (all
workers wait), after a warm-up, so that a memory bomb caught mid-flight
does not read as a leak; the peak under traffic is reported too.

Usage: soak.py --wasmhost BIN --guests DIR [--duration SECONDS] [--report FILE]
"""

import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

RELOAD_EVERY = 3.0
HOSTILE_LIMITS = {
    "fuel": "100_000_000",
    "memory": '"32MiB"',
    "timeout": '"2s"',
    "max_request_body": '"1MiB"',
}


def hostile_behaviours(sink):
    """(method, path, body, expected): expected is a (status, kind) pair, a
    list of acceptable pairs, or "aborted" for a response that starts and
    is then cut off."""
    host_made = [
        ("/h/spin", 500, "fuel_exhausted"),
        ("/e/spin", 504, "timeout"),
        ("/h/trap", 500, "trap"),
        ("/h/panic", 500, "trap"),
        ("/h/stack-overflow", 500, "trap"),
        ("/h/alloc?mib=64", 500, "memory_exhausted"),
        ("/h/memory-grow", 500, "memory_exhausted"),
        ("/h/handles", 500, "trap"),
        ("/h/fields-flood", 502, "bad_response"),
        ("/h/fields-flood?n=100000", 500, "trap"),
        ("/h/huge-header?kib=256", 500, "trap"),
        ("/h/random?mib=64", 500, "trap"),
        ("/h/hostcall?mib=16", 500, "trap"),
        (f"/h/outbound-unread?url=http://{sink}/sink", 504, "timeout"),
    ]
    behaviours = [("GET", path, None, (status, kind)) for path, status, kind in host_made]
    # The host answers 413 from Content-Length before reading the body and
    # closes; a client still writing may see the close first.
    too_large = [(413, "body_too_large"), ("aborted", "BrokenPipeError"),
                 ("aborted", "ConnectionResetError")]
    behaviours += [
        ("POST", "/h/read-body", b"x" * (2 << 20), too_large),
        ("GET", "/h/trap-after-head", None, "aborted"),
        ("GET", "/h/stream-forever", None, "aborted"),
        ("GET", "/h/ok", None, (200, None)),
    ]
    return behaviours


GOOD = [
    ("GET", "/hello", None),
    ("POST", "/echo/soak?x=1", b'{"soak":true}'),
    ("GET", "/p3/", None),
]


def manifest(guests, admin_port, sink, generation):
    hostile = "\n".join(f"{k} = {v}" for k, v in HOSTILE_LIMITS.items())
    return f"""
[host]
listen = "127.0.0.1:0"
admin = "127.0.0.1:{admin_port}"
shutdown_grace = "5s"

[[service]]
name = "hello"
component = "{guests}/hello.wasm"
route = "/hello"

[[service]]
name = "echo"
component = "{guests}/echo.wasm"
route = "/echo"
env = {{ GENERATION = "{generation}" }}

[[service]]
name = "p3"
component = "{guests}/hello_p3.wasm"
route = "/p3"
max_requests_per_instance = 100

[[service]]
name = "hostile"
component = "{guests}/hostile.wasm"
route = "/h"
{hostile}
allowed_outbound_hosts = ["http://{sink}"]

[[service]]
name = "epoch"
component = "{guests}/hostile.wasm"
route = "/e"
fuel = "unlimited"
timeout = "500ms"
"""


class BlackHole:
    """Accepts connections and never reads them; closes each after 5 s."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.addr = "127.0.0.1:%d" % self.listener.getsockname()[1]
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        held = []
        while True:
            conn, _ = self.listener.accept()
            now = time.monotonic()
            held.append((now, conn))
            while held and now - held[0][0] > 5:
                held.pop(0)[1].close()


class Pause:
    """Lets the sampler stop every worker between requests."""

    def __init__(self):
        self.lock = threading.Condition()
        self.paused = False
        self.idle = 0

    def checkpoint(self):
        with self.lock:
            if self.paused:
                self.idle += 1
                self.lock.notify_all()
                while self.paused:
                    self.lock.wait()
                self.idle -= 1

    def pause(self, workers, timeout=15):
        with self.lock:
            self.paused = True
            deadline = time.monotonic() + timeout
            while self.idle < workers and time.monotonic() < deadline:
                self.lock.wait(0.1)

    def resume(self):
        with self.lock:
            self.paused = False
            self.lock.notify_all()


def request(port, method, path, body, timeout=10):
    """(status, kind) of a complete response, or ("aborted", error)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"connection": "close"})
        resp = conn.getresponse()
        resp.read()  # raises IncompleteRead when the body is cut off
        return resp.status, resp.getheader("wasmhost-error")
    except (http.client.HTTPException, OSError) as e:
        return "aborted", type(e).__name__
    finally:
        conn.close()


def proc_sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wasmhost", required=True)
    ap.add_argument("--guests", required=True)
    ap.add_argument("--duration", type=float, default=600)
    ap.add_argument("--good-workers", type=int, default=4)
    ap.add_argument("--hostile-workers", type=int, default=2)
    ap.add_argument("--report")
    args = ap.parse_args()

    sink = BlackHole()
    work = tempfile.mkdtemp(prefix="wasmhost-soak-")
    path = os.path.join(work, "manifest.toml")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        admin_port = s.getsockname()[1]
    guests = os.path.abspath(args.guests)
    with open(path, "w") as f:
        f.write(manifest(guests, admin_port, sink.addr, 0))
    log_path = os.path.join(work, "wasmhost.log")
    log = open(log_path, "w")
    env = dict(os.environ)
    env.pop("RUST_BACKTRACE", None)
    host = subprocess.Popen(
        [args.wasmhost, "serve", path, "--log-format", "json"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    try:
        port = wait_listening(log_path, host)
        return soak(args, host, port, admin_port, path, guests, sink, log_path)
    finally:
        host.terminate()
        try:
            host.wait(10)
        except subprocess.TimeoutExpired:
            host.kill()


def wait_listening(log_path, host):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if host.poll() is not None:
            sys.exit(f"wasmhost exited with {host.returncode}; see {log_path}")
        with open(log_path) as f:
            for line in f:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("message") == "listening" and event.get("plane") == "data":
                    return int(event["addr"].rsplit(":", 1)[1])
        time.sleep(0.1)
    sys.exit("wasmhost did not start listening within 120 s")


def soak(args, host, port, admin_port, path, guests, sink, log_path):
    behaviours = hostile_behaviours(sink.addr)
    outcomes = Counter()
    unexpected = Counter()
    examples = {}
    lock = threading.Lock()
    stop = threading.Event()
    pause = Pause()

    def record(key, ok, detail):
        with lock:
            outcomes[key] += 1
            if not ok:
                unexpected[key] += 1
                examples.setdefault(key, detail)

    def good_worker(i):
        n = i
        while not stop.is_set():
            pause.checkpoint()
            method, target, body = GOOD[n % len(GOOD)]
            n += 1
            status, kind = request(port, method, target, body)
            ok = isinstance(status, int) and 200 <= status < 300
            record(("good", target.split("?")[0], status, kind), ok, f"{method} {target}")

    def hostile_worker(i):
        n = i * 7
        while not stop.is_set():
            pause.checkpoint()
            method, target, body, expected = behaviours[n % len(behaviours)]
            n += 1
            status, kind = request(port, method, target, body)
            if expected == "aborted":
                ok = status == "aborted"
            elif isinstance(expected, list):
                ok = (status, kind) in expected
            else:
                ok = (status, kind) == expected
            record(("hostile", target.split("?")[0], status, kind), ok, f"{method} {target}: expected {expected}")

    def reloader():
        generation = 0
        while not stop.wait(RELOAD_EVERY):
            generation += 1
            text = manifest(guests, admin_port, sink.addr, generation)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, path)  # write-then-rename, like an editor

    workers = [threading.Thread(target=good_worker, args=(i,)) for i in range(args.good_workers)]
    workers += [threading.Thread(target=hostile_worker, args=(i,)) for i in range(args.hostile_workers)]
    started = time.monotonic()
    for w in workers:
        w.start()
    threading.Thread(target=reloader, daemon=True).start()

    warmup = min(30.0, max(15.0, args.duration * 0.1))
    checkpoints = {"start": warmup, "middle": args.duration / 2, "end": args.duration}
    samples = {}
    peak = {"rss_kib": 0, "fds": 0}
    for name, at in checkpoints.items():
        while time.monotonic() - started < at:
            time.sleep(0.5)
            now = proc_sample(host.pid)
            peak = {k: max(peak[k], now[k]) for k in peak}
        if name == "end":
            stop.set()
        pause.pause(len(workers))
        time.sleep(1.0)  # let requests that were running finish
        samples[name] = proc_sample(host.pid)
        samples[name]["at_s"] = round(time.monotonic() - started, 1)
        pause.resume()
    for w in workers:
        w.join(30)
    elapsed = time.monotonic() - started

    metrics = fetch(admin_port, "/metrics")
    reloads = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'wasmhost_reloads_total\{result="(\w+)"\} (\S+)', metrics)
    }
    with open(log_path) as f:
        panics = [line.strip() for line in f if "panicked at" in line and '"stream":' not in line]
    alive = host.poll() is None

    total = sum(outcomes.values())
    good = sum(n for k, n in outcomes.items() if k[0] == "good")
    rss_growth = samples["end"]["rss_kib"] / samples["start"]["rss_kib"] - 1
    fd_growth = samples["end"]["fds"] - samples["start"]["fds"]
    failures = []
    if unexpected:
        failures.append(f"{sum(unexpected.values())} unexpected outcomes")
    if rss_growth > 0.10:
        failures.append(f"RSS grew {rss_growth:.1%} (limit 10%)")
    if fd_growth > 2:
        failures.append(f"open descriptors grew by {fd_growth}")
    if panics:
        failures.append(f"{len(panics)} host panics")
    if not alive:
        failures.append("the host died")
    if reloads.get("ok", 0) < 1:
        failures.append("no reload succeeded")

    report = {
        "duration_s": round(elapsed, 1),
        "requests": total,
        "good_requests": good,
        "requests_per_s": round(total / elapsed, 1),
        "reloads": reloads,
        "samples": samples,
        "peak_under_traffic": peak,
        "rss_growth": round(rss_growth, 4),
        "fd_growth": fd_growth,
        "host_panics": len(panics),
        "outcomes": {" ".join(map(str, k)): n for k, n in sorted(outcomes.items(), key=str)},
        "unexpected": {" ".join(map(str, k)): n for k, n in unexpected.items()},
        "unexpected_examples": {" ".join(map(str, k)): v for k, v in examples.items()},
        "failures": failures,
    }
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=2)
    print_report(report)
    if failures:
        print(f"soak FAILED: {'; '.join(failures)} (host log: {log_path})", file=sys.stderr)
        return 1
    print("soak passed")
    return 0


def fetch(port, target):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", target)
    return conn.getresponse().read().decode()


def print_report(r):
    print(f"soak: {r['duration_s']} s, {r['requests']} requests ({r['requests_per_s']}/s), "
          f"{r['good_requests']} good; reloads {r['reloads']}")
    for name, s in r["samples"].items():
        print(f"  {name:>6} at {s['at_s']:>6} s: RSS {s['rss_kib'] / 1024:7.1f} MiB, {s['fds']} fds")
    print(f"  peak under traffic: RSS {r['peak_under_traffic']['rss_kib'] / 1024:.1f} MiB, "
          f"{r['peak_under_traffic']['fds']} fds; RSS growth {r['rss_growth']:+.1%}, "
          f"fd growth {r['fd_growth']:+d}; host panics {r['host_panics']}")
    print("  outcomes (class path status kind: count):")
    for key, n in r["outcomes"].items():
        mark = "  UNEXPECTED" if key in r["unexpected"] else ""
        print(f"    {key}: {n}{mark}")
    for key, example in r["unexpected_examples"].items():
        print(f"  unexpected {key}: e.g. {example}")


if __name__ == "__main__":
    sys.exit(main())
