#!/usr/bin/env python3
"""What an idle proxied connection keeps on one vmessd worker's heap, by call site.

    python client ──> v2ray client ──VMess AEAD, aes-128-gcm──> vmessd (1 worker) ──> echo target

glibc's malloc and free are traced with perf uprobes on the worker while N connections are opened
(one short echo each, or --bulk-bytes echoed each way) and then held; allocations are paired with their frees, and what survives is
grouped by size and call site and printed per connection. It also reads the worker's PSS before and
after (the figure compare.py reports). Needs root, perf with uprobes, swift-demangle (on the PATH
with the Swift toolchain) and /usr/bin/v2ray. Loopback only; every wait is bounded.

    python3 Benchmarks/idle_heap.py --vmessd-bin-dir .build-bench/release --conns 200

Frames from libraries built without frame pointers (libcrypto) show no call site.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import connect, echo_through, run_targets, stop_all  # noqa: E402
from conn_callgrind import short_connections, start_tunnel, worker_pid  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"
PROBES = ("malloc size=%di:u64", "malloc%return ret=$retval", "free ptr=%di:u64")
EVENTS = ("probe_libc:malloc", "probe_libc:malloc__return", "probe_libc:free")


def add_probes():
    existing = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True, timeout=60).stdout
    for probe, event in zip(PROBES, EVENTS):
        if event + " " not in existing:
            subprocess.run(["perf", "probe", "-x", LIBC, probe], check=True, capture_output=True, timeout=120)


def pss_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def survivors(script_text):
    """{address: (size, call site)} of allocations never freed in the trace."""
    pending, live = {}, {}
    for block in script_text.split("\n\n"):
        lines = [line for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        head = re.match(r"\s*\S+\s+(\d+)\s", lines[0])
        if not head:
            continue
        tid = head.group(1)
        if "probe_libc:malloc__return" in lines[0]:
            ret = re.search(r"ret=(0x[0-9a-f]+)", lines[0])
            if tid in pending and ret:
                live[int(ret.group(1), 16)] = pending.pop(tid)
        elif "probe_libc:malloc:" in lines[0]:
            size = int(re.search(r"size=(\d+)", lines[0]).group(1))
            frames = [re.sub(r"\s*\(/[^)]*\)$", "", line.strip()).split(" ", 1)[-1] for line in lines[2:5]]
            pending[tid] = (size, " < ".join(f[:90] for f in frames) or "(no call site)")
        elif "probe_libc:free:" in lines[0]:
            ptr = re.search(r"ptr=(\d+)", lines[0])
            if ptr:
                live.pop(int(ptr.group(1)), None)
    return live


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-bench", "release"))
    ap.add_argument("--conns", type=int, default=200)
    ap.add_argument("--bulk-bytes", type=int, default=0,
                    help="bytes each connection echoes before it is held (default 0: one short echo)")
    ap.add_argument("--hold", type=float, default=2.0,
                    help="seconds the connections are held before the heap is read (default 2; 8 or more "
                         "includes what a connection gives back after 5 s quiet)")
    ap.add_argument("--top", type=int, default=20, help="call sites to print")
    ap.add_argument("--workdir", help="default: a new /tmp/vmessd-idle-heap-*")
    ap.add_argument("--_targets", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._targets:
        return run_targets()
    workdir = args.workdir or tempfile.mkdtemp(prefix="vmessd-idle-heap-")
    bindir = os.path.abspath(args.vmessd_bin_dir)
    add_probes()
    managed, socks = [], []
    bulk = os.urandom(args.bulk_bytes) if args.bulk_bytes else b""
    try:
        dport, srv = start_tunnel(__file__, workdir, bindir, managed, 30)
        short_connections(dport, 50)
        pid = worker_pid(srv.pid, time.monotonic() + 10)
        time.sleep(1)
        before = pss_kb(pid)
        data = os.path.join(workdir, "malloc.data")
        argv = ["perf", "record", "-g", "-p", str(pid), "-o", data]
        for event in EVENTS:
            argv += ["-e", event]
        rec = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        for i in range(args.conns):
            s = connect(dport, timeout=10)
            socks.append(s)
            echo_through(s, bulk or b"hello%06d" % i)
        time.sleep(args.hold)
        after = pss_kb(pid)
        rec.send_signal(2)
        rec.wait(timeout=120)
    finally:
        for s in socks:
            s.close()
        stop_all(managed)
    script = subprocess.run(["perf", "script", "-i", data], capture_output=True, text=True, timeout=600).stdout
    demangled = subprocess.run(["swift-demangle", "--simplified", "--compact"], input=script,
                               capture_output=True, text=True, timeout=600).stdout or script
    live = survivors(demangled)
    by_site = collections.Counter()
    counts = collections.Counter()
    for size, site in live.values():
        by_site[(size, site)] += size
        counts[(size, site)] += 1
    total = sum(by_site.values())
    n = args.conns
    print(f"worker PSS: {before} kB -> {after} kB, {(after - before) / n:.1f} kB per connection")
    print(f"heap kept: {total} B, {total / n:,.0f} B per connection ({len(live)} allocations)")
    for (size, site), nbytes in by_site.most_common(args.top):
        print(f"{nbytes / n:8.0f} B/conn  {counts[(size, site)] / n:5.2f} x {size:6} B  {site}")
    print(f"trace: {data}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
