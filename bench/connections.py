"""run.py's `connections` section: many connections at once.

  -c1000   wasmhost (hello, fresh instances, access log on) and tuned
           `wasmtime serve`, both running, alternating `wrk -t2 -c1000`
           rounds: req/s, p50, p99, socket errors, peak RSS.
  idle     each server started alone; N keep-alive connections opened, each
           served one request, then held idle while `wrk -t2 -c32` runs
           beside them; then every held connection asks again. Reported:
           connections opened, answered again, wrk's req/s beside them,
           resident memory with them held.

wasmhost's manifest sets `max_concurrency = 1000` (the default, 256 in
flight plus as many queued, answers the rest 503 by design; `wasmtime
serve` has no admission limit) and `[host] max_connections = 15000` (the
default, 10,000, would refuse wrk's connections beside the idle ones).

wasmhost closes a keep-alive connection idle for 10 s (its header timeout,
docs/operations.md), so the connections are held for less than that.
"""
import resource, socket, subprocess, sys, time

from harness import WASMTIME_TUNED, Target, free_port, median, status_mib, wrk

# Held idle for this long while wrk runs beside them (under wasmhost's 10 s
# idle limit).
HOLD_SECONDS = 5

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def connections(args, manifest, hello):
    raise_own_limit()
    result = {"c1000": c1000(args, manifest, hello), "idle": {}}
    for name, argv in targets(args, manifest, hello):
        port = free_port()
        target = Target(name, argv(port), port, "/")
        target.start()
        try:
            result["idle"][name] = idle(target, args.idle_connections)
        finally:
            target.stop()
        print(f"  idle {name:20} {result['idle'][name]}", file=sys.stderr)
    return result


def targets(args, manifest, hello):
    return [
        ("wasmhost", lambda port: [args.wasmhost, "serve", manifest, "--listen",
                                   f"127.0.0.1:{port}"]),
        ("wasmtime-tuned", lambda port: [args.wasmtime, "serve", *WASMTIME_TUNED, "--addr",
                                         f"127.0.0.1:{port}", hello]),
    ]


def raise_own_limit():
    """wrk and the idle connections need more than 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def c1000(args, manifest, hello):
    running = []
    try:
        for name, argv in targets(args, manifest, hello):
            port = free_port()
            target = Target(name, argv(port), port, "/")
            target.start()
            running.append(target)
        runs = {t.name: [] for t in running}
        for round_ in range(args.rounds):
            for target in running:
                r = wrk(target.url(), args.seconds, connections=1000)
                runs[target.name].append(r)
                print(f"  c1000 round {round_ + 1} {target.name:20} {r['rps']:>10.0f} req/s "
                      f"p99 {r['p99_ms']:.2f} ms non-2xx {r['non2xx']} errors {r['socket_errors']}",
                      file=sys.stderr)
        return {t.name: {
            "rps": median(r["rps"] for r in runs[t.name]),
            "p50_ms": median(r["p50_ms"] for r in runs[t.name]),
            "p99_ms": median(r["p99_ms"] for r in runs[t.name]),
            "non2xx": sum(r["non2xx"] for r in runs[t.name]),
            "socket_errors": [r["socket_errors"] for r in runs[t.name] if r["socket_errors"]],
            "peak_rss_mib": t.peak_rss_mib(),
        } for t in running}
    finally:
        for target in running:
            target.stop()


def read_response(sock, buffered=b""):
    """Reads one HTTP/1.1 response (Content-Length or chunked); returns its
    status, or None if the connection closed first."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(b":") for line in lines[1:])}
    if b"content-length" in headers:
        want = int(headers[b"content-length"])
        while len(body) < want:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            body += chunk
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                return None
            body += chunk
    return status


def ask_all(socks):
    """Sends one request on every socket, 500 at a time (then reads their
    answers); returns how many answered 200."""
    ok = 0
    # A server that stopped answering would cost the socket timeout each.
    deadline = time.perf_counter() + 20
    for first in range(0, len(socks), 500):
        if time.perf_counter() > deadline:
            break
        batch = socks[first:first + 500]
        for sock in batch:
            try:
                sock.sendall(REQUEST)
            except OSError:
                pass
        for sock in batch:
            if time.perf_counter() > deadline:
                break
            try:
                ok += read_response(sock) == 200
            except (OSError, ValueError, IndexError):
                pass
    return ok


def idle(target, count):
    socks, refused, served = [], 0, 0
    started = time.perf_counter()
    # Opened and asked in batches, so the backlog never overflows.
    for first in range(0, count, 500):
        batch = []
        for _ in range(first, min(count, first + 500)):
            try:
                sock = socket.create_connection(("127.0.0.1", target.port), timeout=2)
                batch.append(sock)
            except OSError:
                break
        served += ask_all(batch)
        socks.extend(batch)
        if len(batch) < min(500, count - first):
            # The server stopped accepting: the rest would time out too.
            refused = count - len(socks)
            break
    opened_s = time.perf_counter() - started
    try:
        try:
            beside = wrk(target.url(), HOLD_SECONDS)
        except subprocess.CalledProcessError:
            # wrk could not connect at all.
            beside = {"rps": 0.0, "p99_ms": float("nan"), "non2xx": 0, "socket_errors": "all"}
        rss = status_mib(target.proc.pid, "VmRSS")
        again = ask_all(socks)
    finally:
        for sock in socks:
            sock.close()
    return {
        "opened": len(socks),
        "served_first": served,
        "refused": refused,
        "open_seconds": round(opened_s, 2),
        "answered_again": again,
        "wrk_rps_beside": beside["rps"],
        "wrk_p99_ms_beside": beside["p99_ms"],
        "wrk_errors_beside": beside["non2xx"] + (1 if beside["socket_errors"] else 0),
        "rss_mib_held": rss,
        "peak_rss_mib": target.peak_rss_mib(),
    }


def print_connections(report, args):
    c = report["connections"]
    print(f"## Many connections (hello; wrk -t2 -c1000 -d{args.seconds}s, median of "
          f"{args.rounds} alternating rounds)\n")
    print("| target | req/s | p50 ms | p99 ms | non-2xx | socket errors | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for name, r in c["c1000"].items():
        errors = "; ".join(r["socket_errors"]) or "none"
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['non2xx']} | {errors} | {r['peak_rss_mib']:.1f} |")
    wh, wt = c["c1000"]["wasmhost"], c["c1000"]["wasmtime-tuned"]
    print(f"\nwasmhost / wasmtime-tuned at -c1000: req/s {wh['rps'] / wt['rps']:.2f}x, "
          f"p99 {wh['p99_ms'] / wt['p99_ms']:.2f}x (goal <= 1.0x)\n")
    print(f"Idle keep-alive connections ({args.idle_connections} opened, each served once, "
          f"held {HOLD_SECONDS} s while wrk -t2 -c32 ran beside them, then each asked again):\n")
    print("| target | opened | refused | served | answered again | wrk req/s beside | wrk p99 ms | "
          "RSS MiB held | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in c["idle"].items():
        print(f"| {name} | {r['opened']} | {r['refused']} | {r['served_first']} | {r['answered_again']} | {r['wrk_rps_beside']:.0f} | "
              f"{r['wrk_p99_ms_beside']:.2f} | {r['rss_mib_held']:.1f} | "
              f"{r['peak_rss_mib']:.1f} |")
    print()
