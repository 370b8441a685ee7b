#!/usr/bin/env python3
"""Load: N (default 10,000) concurrent idle proxied connections on ONE vmessd worker.

    python client (selectors) ──> v2ray 4.34 client ──VMess AEAD──> vmessd run --workers 1 ──> echo target
                                  dokodemo-door                                               (asyncio)

Each connection does one echo round trip when it is opened (so the worker has its outbound connected
and the relay running both ways), then all of them are held idle for --hold seconds. The worker's
memory (PSS, /proc/PID/smaps_rollup) is read before the connections are opened, while they are held,
and after they are closed. At the end of the hold every connection echoes one byte again: all must
still be alive. Prints a report and writes Benchmarks/results/load-idle-<time>.json.

See Benchmarks/README.md ("Load and soak").
"""

import argparse
import errno
import os
import selectors
import signal
import socket
import sys
import tempfile
import time

from benchlib import (built_from, REPO, Interrupted, Managed, admin_request, echo_check, machine_info,
                      raise_nofile, resolve_limits, results_path, settle, smaps_rollup, socket_inodes,
                      start_async_targets, start_vmessd, stop_all, summarize, tail, v2ray_client_config,
                      v2ray_version, vmessd_config, wait_listening, wait_workers_ready, worker_pids,
                      write_json, distinct_ports, START_TIMEOUT)


def open_many(port, count, window, timeout, msg_fn):
    """Opens `count` connections to 127.0.0.1:port (a list of ports: round robin), at most `window` in
    flight, each: connect, send msg_fn(i), read it back. Returns (open sockets, failures, seconds)."""
    ports = port if isinstance(port, list) else [port]
    sel = selectors.DefaultSelector()
    done, failures, times = [], [], []
    next_i = 0
    inflight = {}  # fd -> state

    def start(i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = s.connect_ex(("127.0.0.1", ports[i % len(ports)]))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            failures.append((i, f"connect: {os.strerror(rc)}"))
            return
        st = {"i": i, "s": s, "t0": time.monotonic(), "msg": msg_fn(i), "got": b"", "phase": "connect"}
        inflight[s.fileno()] = st
        sel.register(s, selectors.EVENT_WRITE, st)

    def fail(st, why):
        sel.unregister(st["s"])
        inflight.pop(st["s"].fileno(), None)
        st["s"].close()
        failures.append((st["i"], why))

    while next_i < count or inflight:
        while next_i < count and len(inflight) < window:
            start(next_i)
            next_i += 1
        now = time.monotonic()
        for key, ev in sel.select(timeout=0.2):
            st = key.data
            s = st["s"]
            if st["phase"] == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(st, f"connect: {os.strerror(err)}")
                    continue
                try:
                    s.send(st["msg"])
                except OSError as e:
                    fail(st, f"send: {e}")
                    continue
                st["phase"] = "echo"
                sel.modify(s, selectors.EVENT_READ, st)
            else:
                try:
                    b = s.recv(4096)
                except OSError as e:
                    fail(st, f"recv: {e}")
                    continue
                if not b:
                    fail(st, f"closed after {len(st['got'])} echoed bytes")
                    continue
                st["got"] += b
                if len(st["got"]) >= len(st["msg"]):
                    sel.unregister(s)
                    inflight.pop(s.fileno(), None)
                    if st["got"] != st["msg"]:
                        s.close()
                        failures.append((st["i"], "echo mismatch"))
                    else:
                        done.append(s)
                        times.append(time.monotonic() - st["t0"])
        for st in [st for st in inflight.values() if now - st["t0"] > timeout]:
            fail(st, f"timeout in {st['phase']} after {timeout}s")
    sel.close()
    return done, failures, times


def echo_all(socks, timeout):
    """Sends one byte on every socket, then waits for every echo. Returns (alive, failures list)."""
    sel = selectors.DefaultSelector()
    failures = []
    pending = {}
    for i, s in enumerate(socks):
        try:
            s.send(b"!")
            pending[s.fileno()] = s
            sel.register(s, selectors.EVENT_READ, i)
        except OSError as e:
            failures.append((i, f"send: {e}"))
    alive = 0
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                b = s.recv(16)
            except OSError as e:
                b = None
                failures.append((key.data, f"recv: {e}"))
            if b == b"!":
                alive += 1
            elif b is not None:
                failures.append((key.data, f"got {b!r} instead of the echo"))
            sel.unregister(s)
            pending.pop(s.fileno(), None)
    for fd, s in pending.items():
        failures.append((-1, f"no echo within {timeout}s"))
    sel.close()
    return alive, failures


def proc_mem(pid):
    r = smaps_rollup(pid)
    return {k: r.get(k) for k in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem")}


def main():
    ap = argparse.ArgumentParser(description="N concurrent idle proxied connections on one vmessd worker.")
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-rel", "release"))
    ap.add_argument("--v2ray", default="/usr/bin/v2ray")
    ap.add_argument("--conns", type=int, default=10000, help="connections to hold (default 10000)")
    ap.add_argument("--window", type=int, default=200, help="connections being opened at once (default 200)")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds held idle before the memory reading (10)")
    ap.add_argument("--client-mux", type=int, default=0, metavar="N",
                    help="the v2ray client multiplexes N connections per Mux.Cool connection (0: off): the worker "
                         "then holds one client-side socket per N proxied connections")
    ap.add_argument("--cycles", type=int, default=2,
                    help="open/hold/close cycles; the second shows whether memory kept after the first close "
                         "is reused or grows (2)")
    ap.add_argument("--open-timeout", type=float, default=30.0, help="per-connection open + echo timeout")
    ap.add_argument("--v2ray-clients", type=int,
                    help="v2ray client processes, connections spread round robin (default: one per 8000 "
                         "connections; each proxied connection costs a v2ray client two descriptors)")
    ap.add_argument("--limits", choices=["auto", "on", "off"], default="auto",
                    help="write vmessd.limits (generous: 2*conns per worker and per source): auto = if vmessd knows the key")
    ap.add_argument("--json", help="result file (default Benchmarks/results/load-idle-<time>.json)")
    ap.add_argument("--workdir", help="configs and logs (default: new dir under /tmp)")
    args = ap.parse_args()

    bindir = os.path.abspath(args.vmessd_bin_dir)
    # Per connection: 1 fd here, 2 in the v2ray client, 2 in the worker, 1 in the target (each process
    # has its own limit; children inherit this one).
    lim = raise_nofile(4 * args.conns + 8192)
    # The worker needs two descriptors per proxied connection (client side + outbound) plus its own
    # ~10; without CAP_SYS_RESOURCE the hard limit cannot be raised and caps what one worker can hold.
    # With --client-mux N the client side costs one descriptor per N connections instead of one each.
    per_conn = 1 + (1 / args.client_mux if args.client_mux > 0 else 1)
    worker_max = int((lim[1] - 13) / per_conn)   # 13: the worker's own descriptors, measured (see the report)
    fd_note = None
    if worker_max < args.conns:
        fd_note = (f"RLIMIT_NOFILE hard limit is {lim[1]} and cannot be raised here (no CAP_SYS_RESOURCE): a worker "
                   f"needs {per_conn:g} descriptors per proxied connection, so one worker can hold at most about {worker_max} "
                   f"of the {args.conns} requested; the rest must be refused (that is tested too)")
    clients_n = args.v2ray_clients or max(1, -(-args.conns // 8000))
    workdir = args.workdir or tempfile.mkdtemp(prefix="vmessd-load-idle-")
    os.makedirs(workdir, exist_ok=True)
    info = machine_info()
    info.update(v2ray=v2ray_version(args.v2ray), vmessd_bin_dir=bindir, vmessd_built_from=built_from(bindir), workdir=workdir,
                rlimit_nofile=list(lim), params=vars(args))
    print(f"# load_idle: {args.conns} idle proxied connections on one worker\n- date {info['date']}, "
          f"commit {info['repo_commit']}, {info['nproc']} CPUs, load {os.getloadavg()[0]:.1f}\n"
          f"- vmessd {bindir} (built from {info['vmessd_built_from']})\n- RLIMIT_NOFILE {lim}, {clients_n} v2ray client process(es)\n- logs: {workdir}",
          flush=True)
    result = {"machine": info, "errors": [], "notes": [], "v2ray_clients": clients_n}
    if fd_note:
        print(f"- NOTE: {fd_note}", flush=True)
        result["notes"].append(fd_note)
    managed = []

    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    socks = []
    srv = None
    try:
        limits, note = resolve_limits(args.limits, {"connectionsPerWorker": 2 * args.conns,
                                                    "connectionsPerSource": 2 * args.conns}, bindir, workdir)
        result["limits"] = {"written": limits, "note": note}
        print(f"- {note}", flush=True)
        tgt, tports, _ = start_async_targets(workdir)
        managed.append(tgt)
        ports = distinct_ports(1 + clients_n)
        sport, dports = ports[0], ports[1:]
        control = os.path.join(workdir, "admin.sock")
        scfg = os.path.join(workdir, "server.json")
        write_json(scfg, vmessd_config(sport, limits=limits))
        srv = start_vmessd(bindir, scfg, 1, os.path.join(workdir, "vmessd.log"), ["--control", control])
        managed.append(srv)
        wait_listening(sport, srv.proc, START_TIMEOUT)
        wait_workers_ready(control, 1)
        clis = []
        for k, dport in enumerate(dports):
            ccfg = os.path.join(workdir, f"client{k}.json")
            write_json(ccfg, v2ray_client_config(sport, [(dport, tports["echo"])], mux=args.client_mux))
            cli = Managed("v2ray-client", [args.v2ray, "-config", ccfg], os.path.join(workdir, f"v2ray-client{k}.log"))
            managed.append(cli)
            clis.append(cli)
            wait_listening(dport, cli.proc, START_TIMEOUT)
            echo_check(dport, time.monotonic() + START_TIMEOUT)
        dport = dports

        workers = worker_pids(srv.pid)
        if len(workers) != 1:
            raise RuntimeError(f"expected one worker, found {workers}")
        wpid = workers[0]
        result["pids"] = {"supervisor": srv.pid, "worker": wpid, "v2ray_clients": [c.pid for c in clis],
                          "targets": tgt.pid}
        # Warm-up: 300 connections opened, echoed and closed (allocator pools, NIO caches).
        warm, wf, _ = open_many(dport, 300, 100, args.open_timeout, lambda i: b"warm%05d" % i)
        for s in warm:
            s.close()
        settle(srv.pid, 5.0)
        time.sleep(1.0)

        def snapshot(label):
            st = admin_request(control)["status"]
            cm = [proc_mem(c.pid) for c in clis]
            snap = {"label": label, "t": time.time(), "worker": proc_mem(wpid), "supervisor": proc_mem(srv.pid),
                    "v2ray_client": {"Pss": sum(m["Pss"] or 0 for m in cm), "each": cm},
                    "targets": proc_mem(tgt.pid),
                    "worker_sockets": len(socket_inodes(wpid)), "worker_fds": len(os.listdir(f"/proc/{wpid}/fd")),
                    "worker_connections_reported": [w.get("connections") for w in st["workers"]],
                    "worker_accept_errors": [w.get("acceptErrors") for w in st["workers"]]}
            print(f"  [{label}] worker PSS {snap['worker']['Pss'] / 1024:.1f} MB (RSS {snap['worker']['Rss'] / 1024:.1f}), "
                  f"supervisor PSS {snap['supervisor']['Pss'] / 1024:.1f} MB, v2ray client PSS "
                  f"{snap['v2ray_client']['Pss'] / 1024:.1f} MB, worker fds {snap['worker_fds']} ({snap['worker_sockets']} sockets), "
                  f"worker reports {snap['worker_connections_reported']} connections, accept errors "
                  f"{snap['worker_accept_errors']}", flush=True)
            return snap

        before = snapshot("before")
        print(f"opening {args.conns} connections ({args.window} at a time) ...", flush=True)
        t0 = time.monotonic()
        socks, failures, times = open_many(dport, args.conns, args.window, args.open_timeout,
                                           lambda i: b"hello%06d" % i)
        open_s = time.monotonic() - t0
        print(f"  opened {len(socks)}/{args.conns} in {open_s:.1f}s ({len(socks) / open_s:.0f}/s), "
              f"{len(failures)} failed" + (f"; first failures: {failures[:5]}" if failures else ""), flush=True)
        result["open"] = {"requested": args.conns, "opened": len(socks), "failed": len(failures),
                          "first_failures": failures[:20], "seconds": open_s,
                          "open_echo_s": summarize(times)}
        print(f"holding them idle for {args.hold:g}s ...", flush=True)
        time.sleep(args.hold / 2)
        held1 = snapshot("held, mid")
        time.sleep(args.hold / 2)
        held2 = snapshot("held, end")
        print("echoing one byte on every connection ...", flush=True)
        alive, efail = echo_all(socks, 60.0)
        print(f"  {alive}/{len(socks)} still alive and echoing" + (f"; failures: {efail[:5]}" if efail else ""), flush=True)
        result["final_echo"] = {"held": len(socks), "alive": alive, "failed": len(efail), "first_failures": efail[:20]}
        for s in socks:
            s.close()
        socks = []
        settle(srv.pid, 10.0)
        time.sleep(2.0)
        after_close = snapshot("after close")
        n = max(1, result["open"]["opened"])
        kb_worker = (held2["worker"]["Pss"] - before["worker"]["Pss"]) / n
        kb_sup = (held2["supervisor"]["Pss"] - before["supervisor"]["Pss"]) / n
        kb_cli = (held2["v2ray_client"]["Pss"] - before["v2ray_client"]["Pss"]) / n
        result["memory"] = {"before": before, "held_mid": held1, "held_end": held2, "after_close": after_close,
                            "worker_kb_per_conn": kb_worker, "supervisor_kb_per_conn": kb_sup,
                            "v2ray_client_kb_per_conn": kb_cli,
                            "worker_rss_kb_per_conn": (held2["worker"]["Rss"] - before["worker"]["Rss"]) / n}
        expected = min(args.conns, worker_max)
        result["expected_to_hold"] = expected
        ok_cycles = True
        result["repeat_cycles"] = []
        for c in range(2, args.cycles + 1):
            # The same load again: if the worker's PSS after the first close is the allocator keeping
            # freed memory, this cycle reuses it (no growth); a leak would add about the same again.
            print(f"cycle {c}: opening {args.conns} connections again ...", flush=True)
            socks, failures, _ = open_many(dport, args.conns, args.window, args.open_timeout,
                                           lambda i: b"again%06d" % i)
            time.sleep(args.hold)
            held_c = snapshot(f"cycle {c} held")
            alive_c, _ = echo_all(socks, 60.0)
            print(f"  {alive_c}/{len(socks)} alive and echoing", flush=True)
            for s_ in socks:
                s_.close()
            socks = []
            settle(srv.pid, 10.0)
            time.sleep(2.0)
            closed_c = snapshot(f"cycle {c} after close")
            result["repeat_cycles"].append({"cycle": c, "held": held_c, "after_close": closed_c, "alive": alive_c,
                                            "failed_to_open": len(failures)})
            ok_cycles = ok_cycles and alive_c >= expected
        result["ok"] = (ok_cycles and result["open"]["opened"] >= expected and alive == result["open"]["opened"] and srv.alive()
                        and len(worker_pids(srv.pid)) == 1 and worker_pids(srv.pid)[0] == wpid)
        if not srv.alive() or wpid not in worker_pids(srv.pid):
            result["errors"].append("the worker or the supervisor died during the run")
    except (KeyboardInterrupt, Interrupted) as e:
        result["errors"].append(f"interrupted: {e!r}")
    except Exception as e:  # noqa: BLE001
        result["errors"].append(f"{type(e).__name__}: {e}")
        import traceback
        traceback.print_exc()
    finally:
        for s in socks:
            s.close()
        if result["errors"] and srv is not None:
            result["vmessd_log_tail"] = tail(srv.log_path, 60)
        stop_all(managed)
        if srv is not None:
            result["vmessd_exit_status"] = srv.proc.returncode

    print("\n## Result")
    if "memory" in result:
        m = result["memory"]
        b, h, a = m["before"], m["held_end"], m["after_close"]
        print(f"| connections held on 1 worker | {result['open']['opened']} of {args.conns} "
              f"(opened in {result['open']['seconds']:.1f}s) |")
        print(f"| alive and echoing after {args.hold:g}s idle | {result['final_echo']['alive']} |")
        print(f"| worker PSS before / held / after close (MB) | {b['worker']['Pss'] / 1024:.1f} / "
              f"{h['worker']['Pss'] / 1024:.1f} / {a['worker']['Pss'] / 1024:.1f} |")
        print(f"| worker PSS per connection (kB) | {m['worker_kb_per_conn']:.2f} |")
        print(f"| supervisor PSS before / held (MB) | {b['supervisor']['Pss'] / 1024:.1f} / {h['supervisor']['Pss'] / 1024:.1f} |")
        print(f"| v2ray client PSS per connection (kB, for scale) | {m['v2ray_client_kb_per_conn']:.1f} |")
        print(f"| worker accept errors (status) | {h['worker_accept_errors']} |")
        for rc in result.get("repeat_cycles", []):
            print(f"| cycle {rc['cycle']}: alive / worker PSS held / after close (MB) | {rc['alive']} / "
                  f"{rc['held']['worker']['Pss'] / 1024:.1f} / {rc['after_close']['worker']['Pss'] / 1024:.1f} |")
    for n in result["notes"]:
        print(f"NOTE: {n}")
    for e in result["errors"]:
        print(f"ERROR: {e}")
    if result.get("vmessd_log_tail"):
        print("vmessd log tail:\n" + result["vmessd_log_tail"])
    print(f"verdict: {'PASS' if result.get('ok') else 'FAIL'}")
    path = args.json or results_path("load-idle")
    write_json(path, result)
    print(f"JSON: {path}")
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
