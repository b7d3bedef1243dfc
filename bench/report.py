"""run.py's report: each section's Markdown tables from its results."""
import statistics
from connections import print_connections


def print_report(report, args):
    """Each section present in `report`, in this order."""
    for key, printer in SECTION_PRINTERS:
        if key in report:
            printer(report, args)


def print_accesslog(report, args):
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


def print_fairness(report, args):
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


def print_reload(report, args):
    print("## Reload (bench/reload.py: hello and raw-proxy swapped 15 times idle, then four "
          "rounds of a steady window and 15 swaps, each under wrk -t2 -c16 with the same "
          "polling; each swap new bytes)\n")
    print("| functions changed per swap | incremental compilation | p50 idle ms | p50 under load ms "
          "| load / idle | req/s during reloads / steady | failed |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, r in report["reload"].items():
        changed, incremental = name.split(" changed, incremental ")
        idle, load = statistics.median(r["idle_ms"]), statistics.median(r["load_ms"])
        print(f"| {changed} | {incremental} | {idle:.0f} | {load:.0f} | {load / idle:.1f}x "
              f"| {r['burst_rps'] / r['steady_rps']:.2f} "
              f"| {r['steady_failed'] + r['burst_failed']} |")
    print()


# The report's sections, in the order they are printed.
SECTION_PRINTERS = [
    ("throughput", print_throughput),
    ("connections", print_connections),
    ("cold_start", print_cold),
    ("fairness", print_fairness),
    ("heavy", print_heavy),
    ("kv", print_kv),
    ("chain", print_chain),
    ("tracing", print_tracing),
    ("oci", print_oci),
    ("reload", print_reload),
    ("accesslog", print_accesslog),
]
