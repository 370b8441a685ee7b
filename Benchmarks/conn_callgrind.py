#!/usr/bin/env python3
"""Where one vmessd worker's time goes per new proxied connection: callgrind or perf.

    python client ──> v2ray client ──VMess AEAD, aes-128-gcm──> vmessd (1 worker under callgrind) ──> echo target

The supervisor starts its worker through a wrapper that runs it under `valgrind --tool=callgrind`.
After a warm-up, the counters are zeroed (`callgrind_control -z`), N short echo connections are made
(connect, 10 bytes each way, close, as compare.py's "CPU per new connection"), and the counters are
dumped (`callgrind_control -d`). Instruction counts do not depend on what else the machine is doing,
so before/after figures are comparable on a busy machine where CPU seconds are not.

    python3 Benchmarks/conn_callgrind.py --vmessd-bin-dir .build-bench/release --conns 200

Prints Ir per connection and writes the dump and `callgrind_annotate` output (inclusive, top
functions) to the work directory. Needs valgrind (callgrind_control, callgrind_annotate) and
/usr/bin/v2ray. Loopback only; every wait is bounded.

On these machines Debian 12's valgrind 3.19 dies inside itself (SIGSEGV in its own code, even with
--tool=none) as soon as the worker's main thread is parked in libdispatch's sigsuspend, so the
callgrind mode does not run here. `--perf` profiles the same connections with `perf record -e
cpu-clock -g` on the worker (the cpu-clock software event works where hardware counters do not):
samples are time, not instructions, so read its shares, not its totals, on a busy machine.

    python3 Benchmarks/conn_callgrind.py --perf --vmessd-bin-dir .build-bench/release --conns 3000
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    Managed, client_config, connect, echo_check, free_port, recv_exact, run_targets, server_config,
    start_targets, start_vmessd, stop_all, wait_listening, write_json,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Everything runs ~50x slower under callgrind: generous but bounded waits.
SLOW_TIMEOUT = 180


def worker_pid(supervisor_pid, deadline):
    """The supervisor's one child (the valgrind process that is the worker)."""
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children") as f:
                kids = [int(p) for p in f.read().split()]
            if kids:
                return kids[0]
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("no worker process")


def short_connections(port, count):
    for i in range(count):
        with connect(port, timeout=60) as s:
            msg = b"ping%06d" % i
            s.sendall(msg)
            if recv_exact(s, len(msg)) != msg:
                raise RuntimeError("echo mismatch")


def start_tunnel(script, workdir, bindir, managed, timeout, env_extra=None):
    """One vmessd worker behind the real v2ray client, in front of the echo target, checked with an
    echo: the set-up every profile here shares. Returns (client port, vmessd's Managed)."""
    targets = start_targets(script, workdir, managed)
    sport, dport = free_port(), free_port()
    cfg = os.path.join(workdir, "server.json")
    write_json(cfg, server_config(sport))
    srv = start_vmessd(bindir, cfg, 1, os.path.join(workdir, "vmessd.log"), env_extra=env_extra)
    managed.append(srv)
    wait_listening(sport, srv.proc, timeout)
    ccfg = os.path.join(workdir, "client.json")
    write_json(ccfg, client_config(dport, targets["echo"], sport))
    cli = Managed("client", ["/usr/bin/v2ray", "-config", ccfg], os.path.join(workdir, "client.log"))
    managed.append(cli)
    wait_listening(dport, cli.proc, 30)
    echo_check(dport, time.monotonic() + timeout)
    return dport, srv


def total_ir(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-bench", "release"))
    ap.add_argument("--conns", type=int, default=200, help="measured short connections (200)")
    ap.add_argument("--warm", type=int, default=30, help="warm-up connections, not measured (30)")
    ap.add_argument("--workdir", help="default: a new /tmp/vmessd-callgrind-*")
    ap.add_argument("--perf", action="store_true", help="profile with perf's cpu-clock event instead")
    ap.add_argument("--_targets", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._targets:
        return run_targets()

    workdir = args.workdir or tempfile.mkdtemp(prefix="vmessd-callgrind-")
    os.makedirs(workdir, exist_ok=True)
    bindir = os.path.abspath(args.vmessd_bin_dir)
    if args.perf:
        return perf_profile(args, workdir, bindir)
    # Debian 12's valgrind (3.19) gives up on the DWARF 5 that Swift 6 writes ("unhandled dwarf2
    # abbrev form", then exits): profile a copy without the debug sections. The symbol table stays,
    # so the profile is by function, not by line.
    worker = os.path.join(workdir, "vmessd-worker")
    subprocess.run(["objcopy", "--strip-debug", os.path.join(bindir, "vmessd-worker"), worker], check=True,
                   timeout=300)
    wrapper = os.path.join(workdir, "worker-callgrind.sh")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\n"
                f"exec valgrind --tool=callgrind --callgrind-out-file={workdir}/callgrind.out.%p "
                f"{worker} \"$@\"\n")
    os.chmod(wrapper, 0o755)

    managed = []
    try:
        dport, srv = start_tunnel(__file__, workdir, bindir, managed, SLOW_TIMEOUT,
                                  env_extra={"VMESSD_WORKER": wrapper})
        short_connections(dport, args.warm)
        pid = worker_pid(srv.pid, time.monotonic() + 10)
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, timeout=SLOW_TIMEOUT,
                       capture_output=True)
        t0 = time.monotonic()
        short_connections(dport, args.conns)
        # The last connection's close may still be in flight in the worker.
        time.sleep(2)
        wall = time.monotonic() - t0
        before = set(glob.glob(os.path.join(workdir, "callgrind.out.*")))
        subprocess.run(["callgrind_control", "-d", str(pid)], check=True, timeout=SLOW_TIMEOUT,
                       capture_output=True)
        dumps = sorted(set(glob.glob(os.path.join(workdir, "callgrind.out.*"))) - before | {
            p for p in glob.glob(os.path.join(workdir, f"callgrind.out.{pid}.*"))}, key=os.path.getmtime)
        if not dumps:
            raise RuntimeError("callgrind wrote no dump")
        dump = dumps[-1]
        ir = total_ir(dump)
        annotated = os.path.join(workdir, "annotate-inclusive.txt")
        with open(annotated, "w") as f:
            subprocess.run(["callgrind_annotate", "--inclusive=yes", dump], stdout=f, stderr=subprocess.STDOUT,
                           timeout=300)
        with open(os.path.join(workdir, "annotate-self.txt"), "w") as f:
            subprocess.run(["callgrind_annotate", dump], stdout=f, stderr=subprocess.STDOUT, timeout=300)
        print(f"connections: {args.conns} (after {args.warm} warm-up), {wall:.1f} s under callgrind")
        print(f"instructions: {ir:,} total, {ir / args.conns:,.0f} per connection")
        print(f"dump: {dump}")
        print(f"annotated: {annotated} and annotate-self.txt")
    finally:
        stop_all(managed)


def perf_profile(args, workdir, bindir):
    """The same connections with the worker running natively under `perf record`."""
    managed = []
    try:
        dport, srv = start_tunnel(__file__, workdir, bindir, managed, 30)
        short_connections(dport, args.warm)
        pid = worker_pid(srv.pid, time.monotonic() + 10)
        data = os.path.join(workdir, "perf.data")
        rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "4000", "-g", "-p", str(pid),
                                "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1)
        t0 = time.monotonic()
        short_connections(dport, args.conns)
        wall = time.monotonic() - t0
        # The last connection's close may still be in flight in the worker.
        time.sleep(0.5)
        rec.send_signal(2)
        rec.wait(timeout=SLOW_TIMEOUT)
        reports = {}
        for name, extra in (("self", ["--no-children"]), ("inclusive", ["--children"])):
            out = os.path.join(workdir, f"perf-{name}.txt")
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "symbol", "-g", "none",
                                  "--percent-limit", "0.3"] + extra,
                                 capture_output=True, text=True, timeout=SLOW_TIMEOUT)
            dem = subprocess.run(["swift-demangle", "--simplified", "--compact"], input=rep.stdout,
                                 capture_output=True, text=True, timeout=SLOW_TIMEOUT)
            text = dem.stdout if dem.returncode == 0 else rep.stdout
            with open(out, "w") as f:
                # perf pads the symbol column to its widest entry.
                f.write("\n".join(re.sub(r"\s{2,}", "  ", line).rstrip() for line in text.splitlines()) + "\n")
            reports[name] = out
        # cpu-clock counts nanoseconds.
        count = re.search(r"# Event count \(approx.\): (\d+)", open(reports["self"]).read())
        ns = int(count.group(1)) if count else 0
        print(f"connections: {args.conns} (after {args.warm} warm-up), {wall:.1f} s")
        print(f"worker CPU sampled: {ns / 1e9:.2f} s, {ns / 1e6 / args.conns:.3f} ms per connection")
        print(f"reports: {reports['self']} and {reports['inclusive']}")
    finally:
        stop_all(managed)


if __name__ == "__main__":
    sys.exit(main())
