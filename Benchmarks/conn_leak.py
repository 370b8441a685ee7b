#!/usr/bin/env python3
"""Memory kept per closed connection: does a worker's private memory come back after connections close?

`vmessd run --workers 1`; batches of --per (3000) short connections, one after the other (--parallel 4
at a time), each closed before the next starts; after each batch (and --wait seconds) the worker's
Pss_Anon (private anonymous memory: the heap) is read from /proc/PID/smaps_rollup. A worker that frees
what a connection used reaches a plateau after the first batch (the allocator reuses the memory); a
steady rise of the same amount per batch is memory kept per connection, i.e. a leak.

Kinds (--kind):
  proxied   through the v2ray client to an echo target: connect, 10-byte echo, close;
  random    straight to the VMess port: 64 random bytes, close (rejected handshake);
  silent    straight to the VMess port: connect, close.

Prints kB kept per connection per batch and writes Benchmarks/results/conn-leak-<kind>-<time>.json.
Exit status 1 when the growth per connection over the batches after the first exceeds --max-kb (0.5).
"""

import argparse
import os
import signal
import socket
import sys
import tempfile
import threading
import time

from benchlib import (REPO, START_TIMEOUT, Interrupted, Managed, admin_request, built_from, connect,
                      distinct_ports, echo_check, machine_info, raise_nofile, recv_exact, results_path,
                      smaps_rollup, start_async_targets, start_vmessd, stop_all, tail, v2ray_client_config,
                      vmessd_config, wait_listening, wait_workers_ready, worker_pids, write_json)


def main():
    ap = argparse.ArgumentParser(description="Worker memory kept per closed connection.")
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-rel", "release"))
    ap.add_argument("--v2ray", default="/usr/bin/v2ray")
    ap.add_argument("--kind", choices=["proxied", "random", "silent"], default="proxied")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--per", type=int, default=3000, help="connections per batch (3000)")
    ap.add_argument("--parallel", type=int, default=4, help="connections at a time (4)")
    ap.add_argument("--wait", type=float, default=2.0, help="seconds after a batch before reading memory (2)")
    ap.add_argument("--max-kb", type=float, default=0.5, help="allowed growth per connection after batch 1")
    ap.add_argument("--json")
    ap.add_argument("--workdir")
    args = ap.parse_args()

    bindir = os.path.abspath(args.vmessd_bin_dir)
    raise_nofile()
    workdir = args.workdir or tempfile.mkdtemp(prefix="vmessd-conn-leak-")
    info = machine_info()
    info.update(vmessd_bin_dir=bindir, vmessd_built_from=built_from(bindir), workdir=workdir, params=vars(args))
    print(f"# conn_leak ({args.kind}): {args.batches} x {args.per} connections, one worker\n- date {info['date']}, "
          f"vmessd {bindir} (built from {info['vmessd_built_from']})\n- logs: {workdir}", flush=True)
    result = {"machine": info, "batches": [], "errors": []}
    managed = []

    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    try:
        sport, dport = distinct_ports(2)
        control = os.path.join(workdir, "admin.sock")
        scfg = os.path.join(workdir, "server.json")
        write_json(scfg, vmessd_config(sport))
        srv = start_vmessd(bindir, scfg, 1, os.path.join(workdir, "vmessd.log"), ["--control", control])
        managed.append(srv)
        wait_listening(sport, srv.proc, START_TIMEOUT)
        wait_workers_ready(control, 1)
        if args.kind == "proxied":
            tgt, tports, _ = start_async_targets(workdir)
            managed.append(tgt)
            ccfg = os.path.join(workdir, "client.json")
            write_json(ccfg, v2ray_client_config(sport, [(dport, tports["echo"])]))
            cli = Managed("v2ray-client", [args.v2ray, "-config", ccfg], os.path.join(workdir, "v2ray-client.log"))
            managed.append(cli)
            wait_listening(dport, cli.proc, START_TIMEOUT)
            echo_check(dport, time.monotonic() + START_TIMEOUT)
        wpid = worker_pids(srv.pid)[0]
        failures = [0]

        def one():
            if args.kind == "proxied":
                with connect(dport, 5) as s:
                    s.sendall(b"0123456789")
                    recv_exact(s, 10)
            else:
                with socket.create_connection(("127.0.0.1", sport), timeout=5) as s:
                    if args.kind == "random":
                        s.sendall(os.urandom(64))

        def batch(n):
            def loop():
                for _ in range(n // args.parallel):
                    try:
                        one()
                    except Exception:  # noqa: BLE001
                        failures[0] += 1
            ts = [threading.Thread(target=loop) for _ in range(args.parallel)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()

        batch(300)  # warm-up
        time.sleep(args.wait)
        prev = smaps_rollup(wpid)["Pss_Anon"]
        result["start_pss_anon_kb"] = prev
        print(f"worker {wpid}: Pss_Anon after a 300-connection warm-up: {prev} kB", flush=True)
        for b in range(args.batches):
            t0 = time.monotonic()
            batch(args.per)
            time.sleep(args.wait)
            st = admin_request(control)["status"]["workers"][0]
            cur = smaps_rollup(wpid)["Pss_Anon"]
            per = (cur - prev) / args.per
            result["batches"].append({"batch": b + 1, "pss_anon_kb": cur, "kb_per_conn": per,
                                      "open_connections": st.get("connections"), "accepted": st.get("accepted"),
                                      "seconds": time.monotonic() - t0})
            print(f"  batch {b + 1}: Pss_Anon {cur} kB (+{cur - prev} kB, {per:.2f} kB per connection), "
                  f"open connections {st.get('connections')}, accepted {st.get('accepted')}", flush=True)
            prev = cur
        result["failures"] = failures[0]
    except (KeyboardInterrupt, Interrupted) as e:
        result["errors"].append(f"interrupted: {e!r}")
    except Exception as e:  # noqa: BLE001
        result["errors"].append(f"{type(e).__name__}: {e}")
        if managed:
            result["vmessd_log_tail"] = tail(managed[0].log_path)
    finally:
        stop_all(managed)
    later = [b["kb_per_conn"] for b in result["batches"][1:]]
    result["kb_per_conn_after_first"] = sum(later) / len(later) if later else None
    result["ok"] = not result["errors"] and later != [] and result["kb_per_conn_after_first"] <= args.max_kb
    print(f"\nkept per connection after the first batch: "
          f"{result['kb_per_conn_after_first'] if result['kb_per_conn_after_first'] is None else round(result['kb_per_conn_after_first'], 2)} kB "
          f"(allowed {args.max_kb}); failures {result.get('failures')}")
    for e in result["errors"]:
        print(f"ERROR: {e}")
    print(f"verdict: {'PASS' if result['ok'] else 'FAIL'}")
    path = args.json or results_path(f"conn-leak-{args.kind}")
    write_json(path, result)
    print(f"JSON: {path}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
