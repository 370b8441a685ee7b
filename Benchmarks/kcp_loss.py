#!/usr/bin/env python3
"""mKCP throughput over a lossy link: vmessd's kcp inbound against V2Ray 4.34's, in one run.

    python client -> v2ray client -> lossy UDP relay -> server under test -> freedom -> python targets
                     dokodemo-door    (drops LOSS % of      (v2ray, or vmessd
                     VMess over kcp    datagrams each way,   + N workers)
                                       adds DELAY ms)

For each server (v2ray first, then vmessd) and each loss rate, one bulk upload and one bulk download
of --mib MiB through the tunnel: MB/s each way and the server's CPU seconds per GB. The client, the
relay (a separate Python process, so it never competes with the measuring client for the GIL) and
the targets are the same for both servers; both get the same v4 config (kcp, header and seed as
given). The relay stands in for tc netem, whose qdisc (sch_netem) is missing from some kernels this
runs on; it drops uniformly at random, which is what `netem loss N%` does.

    swift build -c release --scratch-path .build-bench
    python3 Benchmarks/kcp_loss.py --vmessd-bin-dir .build-bench/release --loss 0,2,5 --mib 16

Every process this starts is killed on exit; every wait is bounded.
"""

import argparse
import json
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (START_TIMEOUT, Managed, bulk_download, bulk_upload, client_config, echo_check, free_port,
                      machine_info, raise_nofile, run_targets, server_config, settle, tail, tree_cpu_seconds,
                      v2ray_version, write_json, results_path)


def relay(listen_port, server_port, loss, delay_ms):
    """Client <-> server UDP relay dropping `loss` % each way, delaying each datagram `delay_ms`."""
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", listen_port))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.bind(("127.0.0.1", 0))
    for s in (front, back):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    client = None
    queue = []  # (due, socket, data, address)
    rng = random.Random(7)
    print("ready", flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 0.5
        readable, _, _ = select.select([front, back], [], [], timeout)
        now = time.monotonic()
        for s in readable:
            for _ in range(64):
                try:
                    data, addr = s.recvfrom(65536, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                if s is front:
                    client = addr
                    out = (back, ("127.0.0.1", server_port))
                elif client is None:
                    continue
                else:
                    out = (front, client)
                if rng.random() * 100 < loss:
                    continue
                if delay_ms:
                    queue.append((now + delay_ms / 1000, out[0], data, out[1]))
                else:
                    out[0].sendto(data, out[1])
        while queue and queue[0][0] <= time.monotonic():
            _, s, data, addr = queue.pop(0)
            s.sendto(data, addr)


def udp_receive_drops():
    """Datagrams the kernel dropped machine-wide because a UDP socket's receive buffer was full
    (/proc/net/snmp Udp RcvbufErrors): the drops nobody asked for, as against the relay's own."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def kcp_stream(header, seed):
    kcp = {"mtu": 1350, "tti": 20, "uplinkCapacity": 100, "downlinkCapacity": 100, "congestion": False,
           "readBufferSize": 4, "writeBufferSize": 4, "header": {"type": header}}
    if seed:
        kcp["seed"] = seed
    return {"network": "kcp", "kcpSettings": kcp}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vmessd-bin-dir", default=".build-bench/release")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--v2ray", default="/usr/bin/v2ray")
    ap.add_argument("--loss", default="0,5", help="comma-separated loss percentages (default 0,5)")
    ap.add_argument("--delay", type=float, default=0, help="one-way delay added by the relay, ms")
    ap.add_argument("--mib", type=int, default=16, help="MiB per transfer (default 16)")
    ap.add_argument("--header", default="none")
    ap.add_argument("--seed", default="")
    ap.add_argument("--json")
    ap.add_argument("--_targets", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--_relay", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._targets:
        run_targets()
        return 0
    if args._relay:
        relay(int(args._relay[0]), int(args._relay[1]), float(args._relay[2]), float(args._relay[3]))
        return 0

    raise_nofile()
    workdir = tempfile.mkdtemp(prefix="vmessd-kcp-bench-")
    info = machine_info()
    info["v2ray"] = v2ray_version(args.v2ray)
    info["params"] = {"loss": args.loss, "delay_ms": args.delay, "mib": args.mib, "header": args.header,
                      "seed": bool(args.seed), "workers": args.workers}
    print(f"# mKCP over a lossy link: {info['nproc']} CPUs, kernel {info['kernel']}, {info['v2ray']}, "
          f"vmessd {os.path.abspath(args.vmessd_bin_dir)} (HEAD {info['repo_commit']}), {args.mib} MiB each way, "
          f"header {args.header}, seed {'yes' if args.seed else 'no'}, delay {args.delay:g} ms", flush=True)
    managed = []
    results = {}
    try:
        tgt = Managed("targets", [sys.executable, os.path.abspath(__file__), "--_targets"],
                      os.path.join(workdir, "targets.log"), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        managed.append(tgt)
        targets = json.loads(tgt.proc.stdout.readline())
        stream = kcp_stream(args.header, args.seed)
        for kind in ("v2ray", "vmessd"):
            for loss in [float(x) for x in args.loss.split(",")]:
                key = f"{kind} loss {loss:g}%"
                sport, rport, dport = free_port(), free_port(), free_port()
                scfg = server_config(sport)
                scfg["inbounds"][0]["streamSettings"] = stream
                spath = os.path.join(workdir, f"server-{kind}-{loss:g}.json")
                write_json(spath, scfg)
                if kind == "v2ray":
                    argv = [args.v2ray, "-config", spath]
                    env = None
                else:
                    argv = [os.path.join(args.vmessd_bin_dir, "vmessd"), "run", "-c", spath, "--workers",
                            str(args.workers), "--drain-timeout", "1", "--control", os.path.join(workdir, f"{kind}-{loss:g}.ctl")]
                    env = dict(os.environ, VMESSD_WORKER=os.path.join(args.vmessd_bin_dir, "vmessd-worker"))
                srv = Managed(f"{kind}-server", argv, os.path.join(workdir, f"{kind}-{loss:g}-server.log"), env=env)
                managed.append(srv)
                rel = Managed("relay", [sys.executable, os.path.abspath(__file__), "--_relay", str(rport), str(sport),
                                        str(loss), str(args.delay)],
                              os.path.join(workdir, f"relay-{kind}-{loss:g}.log"), stdout=subprocess.PIPE)
                managed.append(rel)
                rel.proc.stdout.readline()
                ccfg = client_config(dport, targets["bulk"], rport)
                ccfg["outbounds"][0]["streamSettings"] = stream
                cpath = os.path.join(workdir, f"client-{kind}-{loss:g}.json")
                write_json(cpath, ccfg)
                cli = Managed(f"{kind}-client", [args.v2ray, "-config", cpath], os.path.join(workdir, f"client-{kind}-{loss:g}.log"))
                managed.append(cli)
                row = {}
                try:
                    time.sleep(1.0)
                    nbytes = args.mib << 20
                    for direction, fn in (("upload", bulk_upload), ("download", bulk_download)):
                        settle(srv.pid)
                        c0, d0 = tree_cpu_seconds(srv.pid), udp_receive_drops()
                        dt = fn(dport, nbytes)
                        cpu = tree_cpu_seconds(srv.pid) - c0
                        row[direction] = {"MBps": nbytes / dt / 1e6, "cpu_s_per_GB": cpu / (nbytes / 1e9),
                                          "socket_drops": udp_receive_drops() - d0}
                except Exception as e:  # noqa: BLE001
                    row["error"] = repr(e)
                    row["server_log"] = tail(srv.log_path)
                results[key] = row
                up, down = row.get("upload"), row.get("download")
                if up and down:
                    print(f"| {key:22} | up {up['MBps']:7.2f} MB/s, {up['cpu_s_per_GB']:6.1f} CPU-s/GB, "
                          f"{up['socket_drops']:6} drops | down {down['MBps']:7.2f} MB/s, "
                          f"{down['cpu_s_per_GB']:6.1f} CPU-s/GB, {down['socket_drops']:6} drops |", flush=True)
                else:
                    print(f"| {key:22} | failed: {row.get('error')} |", flush=True)
                for m in (cli, rel, srv):
                    m.stop()
    finally:
        for m in reversed(managed):
            m.stop()
    out = args.json or results_path("kcp-loss")
    write_json(out, {"info": info, "results": results})
    print(f"results: {out}; logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
