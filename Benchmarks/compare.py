#!/usr/bin/env python3
"""Side-by-side benchmark: the reference V2Ray server vs vmessd, in one run.

For each server (v2ray reference first, then vmessd) this starts the server and, in front of it,
the same v2ray client (dokodemo-door -> VMess AEAD, aes-128-gcm), then measures:

  1. single-stream throughput up and down through the tunnel (MB/s),
  2. server CPU seconds per GB moved by those bulk transfers,
  3. server CPU milliseconds per new short proxied connection,
  4. server memory (PSS) per idle proxied connection,
  5. keep-alive request/response latency (p50, p99) on one connection.

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
import platform
import resource
import signal
import socket
import socketserver
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

UUID = "6225d026-dfda-4bcc-a5f5-07cd22fc0c8f"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

IO_TIMEOUT = 30.0          # any single socket operation
START_TIMEOUT = 15.0       # a server/client becoming reachable
STOP_TIMEOUT = 8.0         # graceful stop before SIGKILL
CONN_TIMEOUT = 3.0         # one short/idle connection's connect + first echo


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------

def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def child_preexec():
    # Runs in the child between fork and exec: full fd limit, and default SIGINT so a Ctrl-C
    # reaching the group does not leave children confused (we kill them ourselves anyway).
    raise_nofile()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def recv_exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError(f"peer closed after {got} of {n} bytes")
        got += k
    return bytes(buf)


def connect(port, timeout=IO_TIMEOUT):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(timeout)
    return s


def wait_listening(port, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with status {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
        lines = data.decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return f"(cannot read {path}: {e})"


# ----------------------------------------------------------------------------------------------
# /proc accounting over a process tree
# ----------------------------------------------------------------------------------------------

def _stat_fields(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode("utf-8", "replace")
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(")") + 2:].split()
    return rest  # rest[0] = state (field 3), rest[1] = ppid (field 4), ...


def process_tree(root):
    """root and all its descendants that are alive now (via ppid in /proc/*/stat)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        if pid == root and not os.path.exists(f"/proc/{pid}"):
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu_seconds(root):
    """utime+stime (+ cutime+cstime, so reaped children still count) over the whole tree."""
    total = 0
    for pid in process_tree(root):
        try:
            f = _stat_fields(pid)
        except OSError:
            continue
        # fields 14..17 (1-based) = utime stime cutime cstime -> rest[11..14]
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / CLK_TCK


def tree_pss_kb(root):
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


# ----------------------------------------------------------------------------------------------
# Targets (run in their own process: `compare.py --_targets`)
# ----------------------------------------------------------------------------------------------

CHUNK = 1 << 20


class BulkHandler(socketserver.BaseRequestHandler):
    """Request: 1 byte mode + 8 byte big-endian length.
    'U': read exactly that many bytes, then answer 8 bytes (the count) -- upload sink.
    'D': send that many bytes -- download source. No half-close is needed in either mode."""

    def handle(self):
        s = self.request
        s.settimeout(IO_TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = recv_exact(s, 9)
        mode, n = head[:1], struct.unpack("!Q", head[1:])[0]
        if mode == b"U":
            buf = bytearray(CHUNK)
            got = 0
            while got < n:
                k = s.recv_into(buf, min(CHUNK, n - got))
                if k == 0:
                    return
                got += k
            s.sendall(struct.pack("!Q", got))
        elif mode == b"D":
            block = memoryview(os.urandom(CHUNK))
            left = n
            while left > 0:
                k = min(CHUNK, left)
                s.sendall(block[:k])
                left -= k
        # Wait for the client to close first (avoids an RST racing the last bytes).
        try:
            s.recv(1)
        except OSError:
            pass


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        s.settimeout(None)  # idle connections are held open on purpose
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            try:
                data = s.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                s.sendall(data)
            except OSError:
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 4096


def run_targets():
    raise_nofile()
    threading.stack_size(256 * 1024)
    bulk = Server(("127.0.0.1", 0), BulkHandler)
    echo = Server(("127.0.0.1", 0), EchoHandler)
    for srv in (bulk, echo):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(json.dumps({"bulk": bulk.server_address[1], "echo": echo.server_address[1]}), flush=True)
    # Live until the parent closes our stdin (or kills us).
    try:
        sys.stdin.read()
    except Exception:
        pass


# ----------------------------------------------------------------------------------------------
# Managed child processes
# ----------------------------------------------------------------------------------------------

class Managed:
    def __init__(self, name, argv, log_path, env=None, stdin=subprocess.DEVNULL, stdout=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            argv, stdin=stdin, stdout=stdout if stdout is not None else self.log, stderr=self.log,
            env=env, start_new_session=True, preexec_fn=child_preexec, cwd=os.path.dirname(log_path))
        self.pid = self.proc.pid
        self.known = {self.pid}

    def remember_tree(self):
        try:
            self.known.update(process_tree(self.pid))
        except Exception:
            pass

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        self.remember_tree()
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left: the group and every descendant we ever saw.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in self.known:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.log.close()
        except Exception:
            pass


# ----------------------------------------------------------------------------------------------
# Measurements (client side)
# ----------------------------------------------------------------------------------------------

def echo_check(port, tries_until):
    """One echo round trip through the tunnel; retries until the deadline (server warming up)."""
    last = None
    while time.monotonic() < tries_until:
        try:
            with connect(port, timeout=5) as s:
                msg = os.urandom(32)
                s.sendall(msg)
                if recv_exact(s, 32) != msg:
                    raise RuntimeError("echo mismatch")
                return
        except Exception as e:  # noqa: BLE001
            last = e
            time.sleep(0.2)
    raise RuntimeError(f"tunnel not working: {last!r}")


def bulk_upload(port, nbytes):
    with connect(port) as s:
        block = memoryview(os.urandom(CHUNK))
        t0 = time.perf_counter()
        s.sendall(b"U" + struct.pack("!Q", nbytes))
        left = nbytes
        while left > 0:
            k = min(CHUNK, left)
            s.sendall(block[:k])
            left -= k
        got = struct.unpack("!Q", recv_exact(s, 8))[0]
        dt = time.perf_counter() - t0
    if got != nbytes:
        raise RuntimeError(f"sink received {got} of {nbytes} bytes")
    return dt


def bulk_download(port, nbytes):
    with connect(port) as s:
        buf = bytearray(CHUNK)
        t0 = time.perf_counter()
        s.sendall(b"D" + struct.pack("!Q", nbytes))
        got = 0
        while got < nbytes:
            k = s.recv_into(buf, min(CHUNK, nbytes - got))
            if k == 0:
                raise ConnectionError(f"source closed after {got} of {nbytes} bytes")
            got += k
        dt = time.perf_counter() - t0
    return dt


def settle(server_pid, max_wait=3.0):
    """Wait until the server's CPU use goes quiet (closing connections etc.), bounded."""
    deadline = time.monotonic() + max_wait
    prev = tree_cpu_seconds(server_pid)
    time.sleep(0.3)
    while time.monotonic() < deadline:
        cur = tree_cpu_seconds(server_pid)
        if cur - prev <= 0.01:
            return
        prev = cur
        time.sleep(0.3)


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
        c1 = tree_cpu_seconds(pid)
        gb = nbytes * repeat / 1e9
        res[direction] = {"mb_per_s": statistics.median(rates), "runs_mb_per_s": rates,
                          "cpu_s": c1 - c0, "gb": gb, "cpu_s_per_gb": (c1 - c0) / gb}
    return res


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


def measure_memory(srv, dport, count, idle_wait):
    pid = srv.pid
    settle(pid)
    base = tree_pss_kb(pid)
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
                msg = b"hello%06d" % i
                s.sendall(msg)
                if recv_exact(s, len(msg)) != msg:
                    raise RuntimeError("echo mismatch")
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
           "loaded_pss_kb": loaded, "kb_per_conn": (loaded - base) / held, "alive_after_idle": alive}
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

def server_config(port):
    return {"log": {"loglevel": "warning"},
            "inbounds": [{"port": port, "listen": "127.0.0.1", "protocol": "vmess",
                          "settings": {"clients": [{"id": UUID, "alterId": 0}]}}],
            "outbounds": [{"protocol": "freedom"}]}


def client_config(dport, target, sport):
    return {"log": {"loglevel": "warning"},
            "inbounds": [{"port": dport, "listen": "127.0.0.1", "protocol": "dokodemo-door",
                          "settings": {"address": "127.0.0.1", "port": target, "network": "tcp"}}],
            "outbounds": [{"protocol": "vmess", "settings": {"vnext": [
                {"address": "127.0.0.1", "port": sport,
                 "users": [{"id": UUID, "alterId": 0, "security": "aes-128-gcm"}]}]}}]}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


def run_one(kind, args, targets, workdir, register):
    """Returns a dict of results for one server; never raises for a measurement failure."""
    out = {"server": kind, "measurements": {}, "errors": {}, "notes": []}
    d = os.path.join(workdir, kind)
    os.makedirs(d, exist_ok=True)
    sport = free_port()
    # One dokodemo inbound per target, all in one v2ray client process.
    ports = {"bulk": free_port(), "echo": free_port()}
    while ports["echo"] == ports["bulk"] or sport in ports.values():
        ports = {"bulk": free_port(), "echo": free_port()}
    scfg = os.path.join(d, "server.json")
    write_json(scfg, server_config(sport))
    ccfg = client_config(ports["bulk"], targets["bulk"], sport)
    ccfg["inbounds"].append(client_config(ports["echo"], targets["echo"], sport)["inbounds"][0])
    ccfg_path = os.path.join(d, "client.json")
    write_json(ccfg_path, ccfg)

    env = dict(os.environ)
    if kind == "vmessd":
        bindir = os.path.abspath(args.vmessd_bin_dir)
        env["VMESSD_WORKER"] = os.path.join(bindir, "vmessd-worker")
        argv = [os.path.join(bindir, "vmessd"), "run", "-c", scfg, "--workers", str(args.workers),
                "--drain-timeout", "1"]
    else:
        argv = [args.v2ray, "-config", scfg]
    out["server_argv"] = argv
    srv_log = os.path.join(d, "server.log")
    cli_log = os.path.join(d, "client.log")
    out["server_log"] = srv_log
    out["client_log"] = cli_log

    srv = cli = None
    try:
        srv = register(Managed(f"{kind}-server", argv, srv_log, env=env))
        wait_listening(sport, srv.proc, START_TIMEOUT)
        cli = register(Managed(f"{kind}-client", [args.v2ray, "-config", ccfg_path], cli_log))
        for p in ports.values():
            wait_listening(p, cli.proc, START_TIMEOUT)
        echo_check(ports["echo"], time.monotonic() + START_TIMEOUT)
        # Warm-up: some traffic both ways so lazy init (pools, GC heap, JIT-less but still) is done.
        bulk_upload(ports["bulk"], 16 << 20)
        bulk_download(ports["bulk"], 16 << 20)
        for _ in range(20):
            echo_check(ports["echo"], time.monotonic() + 5)
        time.sleep(0.5)
        srv.remember_tree()
        procs0 = sorted(process_tree(srv.pid))
        out["server_processes_at_start"] = procs0
        out["idle_pss_kb"] = tree_pss_kb(srv.pid)
    except Exception as e:  # noqa: BLE001
        out["errors"]["startup"] = f"{e!r}"
        out["server_log_tail"] = tail(srv_log) if srv else ""
        out["client_log_tail"] = tail(cli_log) if cli else ""
        return out, srv, cli

    steps = [
        ("memory", lambda: measure_memory(srv, ports["echo"], args.idle_conns, args.idle_wait)),
        ("latency", lambda: measure_latency(srv, ports["echo"], args.rounds)),
        ("connections", lambda: measure_connections(srv, ports["echo"], args.conns)),
        ("throughput", lambda: measure_throughput(srv, ports["bulk"], args.bulk_mib << 20, args.repeat)),
    ]
    for name, fn in steps:
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

ROWS = [
    # key, label, getter, format, better
    ("up", "Upload throughput, 1 stream (MB/s)", lambda m: m["throughput"]["upload"]["mb_per_s"], "{:.0f}", "higher"),
    ("down", "Download throughput, 1 stream (MB/s)", lambda m: m["throughput"]["download"]["mb_per_s"], "{:.0f}", "higher"),
    ("cpu_gb", "Server CPU per GB moved, up+down (CPU-s/GB)",
     lambda m: (m["throughput"]["upload"]["cpu_s"] + m["throughput"]["download"]["cpu_s"])
     / (m["throughput"]["upload"]["gb"] + m["throughput"]["download"]["gb"]), "{:.2f}", "lower"),
    ("cpu_gb_up", "  of which upload (CPU-s/GB)", lambda m: m["throughput"]["upload"]["cpu_s_per_gb"], "{:.2f}", "lower"),
    ("cpu_gb_down", "  of which download (CPU-s/GB)", lambda m: m["throughput"]["download"]["cpu_s_per_gb"], "{:.2f}", "lower"),
    ("cpu_conn", "Server CPU per new connection (ms)", lambda m: m["connections"]["cpu_ms_per_conn"], "{:.3f}", "lower"),
    ("conn_rate", "Sequential connections/s (client-observed)", lambda m: m["connections"]["conn_per_s"], "{:.0f}", "higher"),
    ("mem_conn", "Server PSS per idle proxied connection (kB)", lambda m: m["memory"]["kb_per_conn"], "{:.1f}", "lower"),
    ("mem_idle", "Server PSS before the idle connections (MB)", lambda m: m["memory"]["baseline_pss_kb"] / 1024, "{:.1f}", "lower"),
    ("lat50", "Keep-alive 64 B round trip p50 (ms)", lambda m: m["latency"]["p50_ms"], "{:.3f}", "lower"),
    ("lat99", "Keep-alive 64 B round trip p99 (ms)", lambda m: m["latency"]["p99_ms"], "{:.3f}", "lower"),
]


def cell(result, getter):
    try:
        v = getter(result["measurements"])
        return v if isinstance(v, (int, float)) else None
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def build_table(ref, vm, workers):
    lines = ["| Metric | v2ray 4.34 (reference) | vmessd (%d workers) | vmessd / reference | better |" % workers,
             "|---|---:|---:|---:|---|"]
    summary = {}
    for key, label, getter, fmt, better in ROWS:
        a, b = cell(ref, getter), cell(vm, getter)
        sa = fmt.format(a) if a is not None else ("failed" if ref.get("server") else "not run")
        sb = fmt.format(b) if b is not None else ("failed" if vm.get("server") else "not run")
        ratio = (b / a) if (a is not None and b is not None and a != 0) else None
        sr = f"{ratio:.2f}x" if ratio is not None else "n/a"
        lines.append(f"| {label} | {sa} | {sb} | {sr} | {better} |")
        summary[key] = {"label": label, "reference": a, "vmessd": b, "ratio_vmessd_over_reference": ratio,
                        "better": better}
    return "\n".join(lines), summary


def machine_info():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        commit = "unknown"
    return {"date": datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds"),
            "nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version(), "repo_commit": commit}


def v2ray_version(binary):
    try:
        r = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=10)
        return (r.stdout.splitlines() or ["?"])[0]
    except Exception as e:  # noqa: BLE001
        return f"unknown ({e})"


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

class Interrupted(Exception):
    pass


def main():
    ap = argparse.ArgumentParser(description="Benchmark vmessd against the v2ray reference server.")
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-bench", "release"),
                    help="directory holding vmessd and vmessd-worker (default: .build-bench/release)")
    ap.add_argument("--workers", type=int, default=2, help="vmessd worker processes (default 2)")
    ap.add_argument("--v2ray", default="/usr/bin/v2ray", help="v2ray binary (reference server and client)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes (128 MiB, 500 conns, 300 idle, 1000 rounds)")
    ap.add_argument("--bulk-mib", type=int, help="MiB per bulk transfer (512; quick 128)")
    ap.add_argument("--repeat", type=int, help="bulk transfers per direction, median reported (3; quick 1)")
    ap.add_argument("--conns", type=int, help="short connections for CPU/connection (2000; quick 500)")
    ap.add_argument("--idle-conns", type=int, help="idle connections for memory (1000; quick 300)")
    ap.add_argument("--idle-wait", type=float, default=2.0, help="seconds to hold them idle before measuring")
    ap.add_argument("--rounds", type=int, help="keep-alive round trips (5000; quick 1000)")
    ap.add_argument("--vmessd-label", default="",
                    help="free text saying what the vmessd binaries are (e.g. which commit/patch); shown in the header")
    ap.add_argument("--only", choices=["v2ray", "vmessd"], help="run only one server (debugging)")
    ap.add_argument("--json", help="JSON output (default Benchmarks/results/compare-<time>.json)")
    ap.add_argument("--workdir", help="where configs and logs go (default: a new dir under /tmp)")
    ap.add_argument("--_targets", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._targets:
        run_targets()
        return 0

    q = args.quick
    args.bulk_mib = args.bulk_mib or (128 if q else 512)
    args.repeat = args.repeat or (1 if q else 3)
    args.conns = args.conns or (500 if q else 2000)
    args.idle_conns = args.idle_conns or (300 if q else 1000)
    args.rounds = args.rounds or (1000 if q else 5000)

    soft, hard = raise_nofile()
    if soft < args.idle_conns + 256:
        print(f"warning: RLIMIT_NOFILE is {soft}; {args.idle_conns} idle connections may not fit", flush=True)

    info = machine_info()
    info["v2ray"] = v2ray_version(args.v2ray)
    info["params"] = {k: getattr(args, k) for k in ("workers", "bulk_mib", "repeat", "conns", "idle_conns",
                                                      "idle_wait", "rounds", "quick")}
    info["vmessd_bin_dir"] = os.path.abspath(args.vmessd_bin_dir)
    info["vmessd_label"] = args.vmessd_label
    workdir = args.workdir or tempfile.mkdtemp(prefix="vmessd-bench-")
    os.makedirs(workdir, exist_ok=True)
    info["workdir"] = workdir

    header = [
        "# vmessd vs v2ray benchmark",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['nproc']} CPUs, {info['cpu_model']}, kernel {info['kernel']}",
        f"- reference: {info['v2ray']}; vmessd: {info['vmessd_bin_dir']} (repo HEAD {info['repo_commit']}"
        + (f"; {args.vmessd_label}" if args.vmessd_label else "") + f"), --workers {args.workers}",
        f"- client: the same v2ray binary (dokodemo-door -> VMess AEAD aes-128-gcm) in front of each server",
        f"- sizes: bulk {args.bulk_mib} MiB x {args.repeat} per direction, {args.conns} short connections, "
        f"{args.idle_conns} idle connections ({args.idle_wait:g}s idle), {args.rounds} round trips"
        + (" (quick)" if q else ""),
    ]
    print("\n".join(header), flush=True)
    print(f"- logs and configs: {workdir}\n", flush=True)

    managed = []

    def register(m):
        managed.append(m)
        return m

    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    results = {}
    interrupted = None
    try:
        tgt = register(Managed("targets", [sys.executable, os.path.abspath(__file__), "--_targets"],
                               os.path.join(workdir, "targets.log"), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE))
        # Bounded read of the targets' port line.
        line_box = []
        reader = threading.Thread(target=lambda: line_box.append(tgt.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if not line_box or not line_box[0]:
            raise RuntimeError("target servers did not start: " + tail(tgt.log_path))
        targets = json.loads(line_box[0])

        kinds = ["v2ray", "vmessd"] if not args.only else [args.only]
        for kind in kinds:
            print(f"== {kind} ==", flush=True)
            srv = cli = None
            try:
                res, srv, cli = run_one(kind, args, targets, workdir, register)
            finally:
                for m in (cli, srv):
                    if m is not None:
                        m.stop()
                        if m in managed:
                            managed.remove(m)
            if srv is not None and srv.proc.returncode not in (0, None, -signal.SIGTERM):
                res["notes"].append(f"server exit status after stop: {srv.proc.returncode}")
            res["server_exit_status"] = srv.proc.returncode if srv is not None else None
            results[kind] = res
            if res["errors"] or res["notes"]:
                print(f"  [{kind}] errors: {json.dumps(res['errors'])}", flush=True)
                for n in res["notes"]:
                    print(f"  [{kind}] note: {n}", flush=True)
                print(f"  [{kind}] server log tail ({res['server_log']}):\n" + res.get("server_log_tail", tail(res["server_log"])),
                      flush=True)
                print(f"  [{kind}] client log tail ({res['client_log']}):\n" + res.get("client_log_tail", tail(res["client_log"])),
                      flush=True)
    except (KeyboardInterrupt, Interrupted) as e:
        interrupted = repr(e) or "KeyboardInterrupt"
        print(f"\ninterrupted: {interrupted}; cleaning up", flush=True)
    finally:
        for m in reversed(managed):
            try:
                if m.proc.stdin:
                    m.proc.stdin.close()
            except Exception:
                pass
            m.stop()

    empty = {"measurements": {}}
    table, summary = build_table(results.get("v2ray", empty), results.get("vmessd", empty), args.workers)
    print()
    print("\n".join(header))
    print()
    print(table)
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
