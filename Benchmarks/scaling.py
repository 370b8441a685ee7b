#!/usr/bin/env python3
"""Worker scaling: vmessd with one worker and with N workers (N = CPUs) under the same load.

    python threads ──> v2ray client ──VMess AEAD, aes-128-gcm──> vmessd (W workers) ──> python targets

Issue 11 asks that N workers on N cores give >= 0.9 N times one worker's connections per second and
bulk throughput. A machine with N cores cannot show that directly: the load generators (the v2ray
client, the targets, the client threads) need cores of their own, and here they cost more CPU than
the server. So this measures the three things the scaling is made of, each of which it can show:

  1. The cost of one unit of work per worker, with 1 and with N workers: worker CPU per short
     connection and per GB. If a second worker made each worker's work dearer (shared locks,
     cache-line traffic on the shared memory, the supervisor), this ratio shows it.
  2. How evenly the kernel spreads connections over the workers' SO_REUSEPORT sockets: each
     worker's share of the connections and of the CPU.
  3. Whether one worker is the bottleneck when it has a core to itself: with --pin, one worker runs
     pinned to the last CPU and everything else to the others (taskset), and its utilisation says
     how close the load came to saturating it.

  projected N-worker capacity / one worker's = N x (cost per unit, 1 worker / N workers)
                                                 x (N x the smallest worker's share)

i.e. the busiest worker saturates first. The report prints this against the 0.9 N goal, with the
measured rates for reference (rates are load-generator-bound on this machine, not a capacity).

    python3 Benchmarks/scaling.py --vmessd-bin-dir .build-bench/release [--pin] [--quick]

Needs /usr/bin/v2ray, Linux /proc, taskset (util-linux) for --pin. Loopback only; every wait is
bounded; every process started is killed on exit.
"""
import argparse
import datetime
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CONN_TIMEOUT, HERE, START_TIMEOUT, Interrupted, Managed, bulk_download,  # noqa: E402
                      client_config, connect, echo_check, machine_info, raise_nofile, recv_exact, run_targets,
                      server_config, settle, start_targets, start_vmessd, stop_all, free_port, tree_cpu_seconds,
                      wait_listening, worker_pids, write_json)


def cpu_of(pids):
    return {p: tree_cpu_seconds(p) for p in pids}


def pin(pids, cpus):
    for p in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(p)], check=True, capture_output=True, timeout=10)


def parallel(threads, fn):
    """Runs fn(i) in `threads` threads; returns wall seconds; re-raises the first error."""
    errors = []

    def run(i):
        try:
            fn(i)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join(600)
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def measure(workers, args, targets, workdir, managed, pinned):
    d = os.path.join(workdir, f"w{workers}" + ("-pinned" if pinned else ""))
    os.makedirs(d, exist_ok=True)
    sport, bport, eport = free_port(), free_port(), free_port()
    cfg = os.path.join(d, "server.json")
    write_json(cfg, server_config(sport))
    ccfg = client_config(bport, targets["bulk"], sport)
    ccfg["inbounds"].append(client_config(eport, targets["echo"], sport)["inbounds"][0])
    write_json(os.path.join(d, "client.json"), ccfg)
    srv = start_vmessd(os.path.abspath(args.vmessd_bin_dir), cfg, workers, os.path.join(d, "server.log"))
    managed.append(srv)
    wait_listening(sport, srv.proc, START_TIMEOUT)
    cli = Managed("client", [args.v2ray, "-config", os.path.join(d, "client.json")], os.path.join(d, "client.log"))
    managed.append(cli)
    for p in (bport, eport):
        wait_listening(p, cli.proc, START_TIMEOUT)
    echo_check(eport, time.monotonic() + START_TIMEOUT)
    deadline = time.monotonic() + START_TIMEOUT
    wpids = worker_pids(srv.pid)
    while len(wpids) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
        wpids = worker_pids(srv.pid)
    if len(wpids) != workers:
        raise RuntimeError(f"expected {workers} workers, found {wpids}")
    ncpu = os.cpu_count()
    if pinned:
        last = str(ncpu - 1)
        rest = f"0-{ncpu - 2}" if ncpu > 2 else "0"
        pin([srv.pid] + wpids, last)
        pin([cli.pid, targets["pid"], os.getpid()], rest)
    # Warm-up.
    for _ in range(50):
        echo_check(eport, time.monotonic() + 5)
    bulk_download(bport, 16 << 20)
    out = {"workers": workers, "pinned": pinned, "worker_pids": wpids}

    # Short connections from `threads` client threads.
    per_thread = args.conns // args.threads

    def conns(i):
        for k in range(per_thread):
            with connect(eport, timeout=CONN_TIMEOUT) as s:
                msg = b"c%03d-%06d" % (i, k)
                s.sendall(msg)
                if recv_exact(s, len(msg)) != msg:
                    raise RuntimeError("echo mismatch")

    settle(srv.pid)
    c0, l0 = cpu_of(wpids), cpu_of([cli.pid, targets["pid"]])
    wall = parallel(args.threads, conns)
    settle(srv.pid, 2.0)
    c1, l1 = cpu_of(wpids), cpu_of([cli.pid, targets["pid"]])
    n = per_thread * args.threads
    used = {p: c1[p] - c0[p] for p in wpids}
    total = sum(used.values())
    out["connections"] = {
        "count": n, "threads": args.threads, "conn_per_s": n / wall,
        "worker_cpu_ms_per_conn": total * 1000 / n,
        "worker_cpu_share": [used[p] / total for p in wpids] if total > 0 else None,
        "worker_utilisation": [used[p] / wall for p in wpids],
        "load_cpu_s": sum(l1[p] - l0[p] for p in l0),
    }

    # Parallel downloads.
    nbytes = args.bulk_mib << 20
    settle(srv.pid)
    c0 = cpu_of(wpids)
    wall = parallel(args.streams, lambda i: bulk_download(bport, nbytes))
    settle(srv.pid, 1.5)
    c1 = cpu_of(wpids)
    used = {p: c1[p] - c0[p] for p in wpids}
    total = sum(used.values())
    gb = nbytes * args.streams / 1e9
    out["bulk"] = {
        "streams": args.streams, "mb_per_s": nbytes * args.streams / wall / 1e6,
        "worker_cpu_s_per_gb": total / gb,
        "worker_cpu_share": [used[p] / total for p in wpids] if total > 0 else None,
        "worker_utilisation": [used[p] / wall for p in wpids],
    }
    if not srv.alive():
        raise RuntimeError(f"vmessd exited with status {srv.proc.returncode}")
    for m in (cli, srv):
        m.stop()
        managed.remove(m)
    return out


def report(one, many, pinned_one):
    n = many["workers"]
    lines = [f"| measure | 1 worker | {n} workers | ratio |", "|---|---:|---:|---:|"]
    rows = []
    for key, label, unit in (("connections", "worker CPU per short connection", "worker_cpu_ms_per_conn"),
                             ("bulk", "worker CPU per GB downloaded", "worker_cpu_s_per_gb")):
        a, b = one[key][unit], many[key][unit]
        lines.append(f"| {label} ({'ms' if key == 'connections' else 'CPU-s/GB'}) | {a:.3f} | {b:.3f} | {b / a:.2f}x |")
        share = many[key]["worker_cpu_share"] or [0]
        balance = min(share) * n
        efficiency = a / b
        projected = n * efficiency * balance
        rows.append((key, efficiency, share, balance, projected))
    lines.append(f"| connections/s, {one['connections']['threads']} client threads (load-bound) | "
                 f"{one['connections']['conn_per_s']:.0f} | {many['connections']['conn_per_s']:.0f} | "
                 f"{many['connections']['conn_per_s'] / one['connections']['conn_per_s']:.2f}x |")
    lines.append(f"| download MB/s, {one['bulk']['streams']} streams (load-bound) | {one['bulk']['mb_per_s']:.0f} | "
                 f"{many['bulk']['mb_per_s']:.0f} | {many['bulk']['mb_per_s'] / one['bulk']['mb_per_s']:.2f}x |")
    lines += ["", f"| projection for {n} workers on {n} cores | cost per unit, 1 / {n} workers | worker shares | "
              f"balance ({n} x smallest share) | projected / one worker | goal >= {0.9 * n:.1f} |",
              "|---|---:|---|---:|---:|---|"]
    for key, eff, share, bal, proj in rows:
        lines.append(f"| {'connections per second' if key == 'connections' else 'bulk throughput'} | {eff:.2f} | "
                     f"{' / '.join(f'{s:.2f}' for s in share)} | {bal:.2f} | **{proj:.2f}** | "
                     f"{'met' if proj >= 0.9 * n else 'not met'} |")
    if pinned_one:
        u = pinned_one["connections"]["worker_utilisation"][0]
        ub = pinned_one["bulk"]["worker_utilisation"][0]
        lines += ["", f"One worker pinned to a core of its own, the load on the other(s): worker busy "
                      f"{u * 100:.0f} % of the wall time during short connections "
                      f"({pinned_one['connections']['conn_per_s']:.0f}/s, "
                      f"{pinned_one['connections']['worker_cpu_ms_per_conn']:.3f} ms each) and {ub * 100:.0f} % "
                      f"during downloads ({pinned_one['bulk']['mb_per_s']:.0f} MB/s): "
                      + ("the load saturated it." if min(u, ub) > 0.9 else
                         "the load generators, not the worker, set the pace.")]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(os.path.dirname(HERE), ".build-bench", "release"))
    ap.add_argument("--v2ray", default="/usr/bin/v2ray")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="N (default: the CPU count)")
    ap.add_argument("--threads", type=int, default=16, help="client threads making short connections (16)")
    ap.add_argument("--streams", type=int, default=64,
                    help="parallel downloads (64: the kernel spreads connections over the workers at random, "
                         "so a handful of flows can land unevenly)")
    ap.add_argument("--conns", type=int, help="short connections per run (4000; quick 1000)")
    ap.add_argument("--bulk-mib", type=int, help="MiB per download stream (32; quick 8)")
    ap.add_argument("--pin", action="store_true", help="also run one worker pinned apart from the load")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="default Benchmarks/results/scaling-<time>.json")
    ap.add_argument("--_targets", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._targets:
        return run_targets()
    args.conns = args.conns or (1000 if args.quick else 4000)
    args.bulk_mib = args.bulk_mib or (8 if args.quick else 32)
    raise_nofile()
    info = machine_info()
    info["params"] = {k: getattr(args, k) for k in ("workers", "threads", "streams", "conns", "bulk_mib", "pin",
                                                      "quick")}
    workdir = tempfile.mkdtemp(prefix="vmessd-scaling-")
    print(f"work directory: {workdir}", flush=True)
    managed = []

    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    results = {}
    try:
        targets = start_targets(__file__, workdir, managed)
        targets["pid"] = managed[-1].pid
        for label, workers, pinned in ((("pinned", 1, True),) if args.pin else ()) + (
                ("one", 1, False), ("many", args.workers, False)):
            print(f"== {workers} worker(s){' pinned' if pinned else ''} ==", flush=True)
            results[label] = measure(workers, args, targets, workdir, managed, pinned)
            if pinned:  # unpin this script for the unpinned runs
                pin([os.getpid(), targets["pid"]], f"0-{os.cpu_count() - 1}")
    finally:
        stop_all(managed)
    table = report(results["one"], results["many"], results.get("pinned"))
    header = (f"# vmessd worker scaling, {info['date']}, {info['nproc']} CPUs ({info['cpu_model']}), "
              f"repo {info['repo_commit']}; {args.threads} client threads, {args.conns} short connections, "
              f"{args.streams} x {args.bulk_mib} MiB downloads per run; load average {info['loadavg']}")
    print("\n" + header + "\n\n" + table)
    path = args.json or os.path.join(HERE, "results",
                                      "scaling-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    write_json(path, {"machine": info, "table_markdown": header + "\n\n" + table, "results": results})
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
