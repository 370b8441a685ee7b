#!/usr/bin/env python3
"""Load: garbage and silent connections straight at vmessd while genuine clients transfer.

    32 genuine clients ──> v2ray 4.34 client ──VMess AEAD──┐
                           dokodemo-door                    ├──> vmessd run --workers N ──> bulk target
    attacker process ──── 2,000 raw TCP connections ───────┘
      from 127.0.0.2
      (random bytes / slowloris 1 byte per second / silent)

Phases with the same genuine load, alternating: quiet1 (genuine only), attack1 (genuine plus the
attacker), quiet2, attack2, quiet3 (--rounds 2), so that drift in the machine's other load (this
machine is shared) hits both kinds of phase alike. Each genuine client repeats fixed-size bulk
transfers (half upload, half download) for --duration seconds; the aggregate rate of each phase is
reported, with mean(attack) / mean(quiet) (goal: >= 0.8, i.e. within 20 %), each attack phase
against the quiet phases either side of it, and every genuine failure (goal: none).

The attacker keeps --garbage connections open during the attack phase (one reopened whenever the
server closes one), then stops reopening and waits for the server to close the rest. For every
garbage connection it records when it was opened, when the server closed it (EOF or RST) and how many
bytes the server sent (must be 0: anti-probing). The configured handshake deadline
(policy.levels.0.handshake, --handshake seconds) is written into the config, so silent and slowloris
connections must be closed at about that age.

Prints a report and writes Benchmarks/results/load-garbage-<time>.json. See Benchmarks/README.md.
"""

import argparse
import errno
import json
import os
import random
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import (built_from, CHUNK, REPO, START_TIMEOUT, Interrupted, Managed, distinct_ports,
                      machine_info, raise_nofile, recv_exact, resolve_limits, results_path, settle,
                      start_async_targets, start_vmessd, stop_all, summarize, tail, tree_cpu_seconds,
                      v2ray_client_config, v2ray_version, vmessd_config, wait_listening, wait_workers_ready,
                      worker_pids, write_json, connect)

KINDS = ("random", "slowloris", "silent")


# ----------------------------------------------------------------------------------------------
# The attacker (own process: `load_garbage.py --_attacker PARAMS_JSON OUT_JSON`)
# ----------------------------------------------------------------------------------------------

def run_attacker(params, out_path):
    """Keeps params['count'] garbage connections to params['port'] for params['keep'] seconds after
    all are first open, then waits up to params['grace'] seconds for the server to close the rest.
    Prints 'open N' once the first full set is connected, 'done' at the end."""
    raise_nofile(params["count"] * 2 + 1024)
    rng = random.Random(params.get("seed", 1))
    sel = selectors.DefaultSelector()
    conns = {}   # fd -> record
    records = []
    kinds = [KINDS[i % 3] for i in range(params["count"])]

    def open_one(kind):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((params["source"], 0))
        rc = s.connect_ex(("127.0.0.1", params["port"]))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            records.append({"kind": kind, "error": f"connect: {os.strerror(rc)}", "t_open": time.time()})
            return
        r = {"kind": kind, "t_open": time.time(), "m_open": time.monotonic(), "sent": 0, "recv": 0,
             "closed_after": None, "how": None, "connected": False, "next_send": None}
        conns[s.fileno()] = (s, r)
        sel.register(s, selectors.EVENT_WRITE, r)

    def close_rec(s, r, how):
        r["closed_after"] = time.monotonic() - r["m_open"]
        r["how"] = how
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        conns.pop(s.fileno(), None)
        s.close()
        del r["m_open"], r["next_send"]
        records.append(r)

    t_start = time.monotonic()
    for k in kinds:
        open_one(k)
    announced = False
    t_keep_end = None
    reopen = True
    t_grace_end = None
    while True:
        now = time.monotonic()
        if not announced and all(r["connected"] for _, r in conns.values()) and len(conns) >= params["count"]:
            print(f"open {len(conns)}", flush=True)
            announced = True
            t_keep_end = now + params["keep"]
        if announced and reopen and now >= t_keep_end:
            reopen = False
            t_grace_end = now + params["grace"]
            print(f"stop reopening; {len(conns)} open", flush=True)
        if not reopen and (not conns or now >= t_grace_end):
            break
        if not announced and now > t_start + params["open_timeout"]:
            print(f"open {sum(r['connected'] for _, r in conns.values())} (open timeout)", flush=True)
            announced = True
            t_keep_end = now + params["keep"]
        for key, ev in sel.select(timeout=0.05):
            s, r = key.fileobj, key.data
            if not r["connected"]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    close_rec(s, r, f"connect error {os.strerror(err)}")
                    if reopen:
                        open_one(r["kind"])
                    continue
                r["connected"] = True
                r["t_connected"] = time.time()
                if r["kind"] == "random":
                    blob = os.urandom(rng.randint(100, 4000))
                    try:
                        r["sent"] += s.send(blob)
                    except OSError:
                        pass
                elif r["kind"] == "slowloris":
                    r["next_send"] = time.monotonic() + 1.0
                    try:
                        r["sent"] += s.send(os.urandom(1))
                    except OSError:
                        pass
                sel.modify(s, selectors.EVENT_READ, r)
                continue
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                close_rec(s, r, "rst")
                if reopen:
                    open_one(r["kind"])
                continue
            except OSError as e:
                close_rec(s, r, f"error {e}")
                if reopen:
                    open_one(r["kind"])
                continue
            if not b:
                close_rec(s, r, "eof")
                if reopen:
                    open_one(r["kind"])
            else:
                r["recv"] += len(b)
        now = time.monotonic()
        for s, r in list(conns.values()):
            if r["kind"] == "slowloris" and r["connected"] and r["next_send"] is not None and now >= r["next_send"]:
                r["next_send"] = now + 1.0
                try:
                    r["sent"] += s.send(os.urandom(1))
                except OSError:
                    pass  # the read side reports the close
    still_open = []
    for s, r in list(conns.values()):
        r["closed_after"] = None
        r["how"] = "still open at the end"
        r["age"] = time.monotonic() - r.pop("m_open")
        r.pop("next_send", None)
        still_open.append(r)
        s.close()
    ru = os.times()
    with open(out_path, "w") as f:
        json.dump({"closed": records, "still_open": still_open, "cpu_s": ru.user + ru.system}, f)
    print("done", flush=True)


# ----------------------------------------------------------------------------------------------
# Genuine clients
# ----------------------------------------------------------------------------------------------

def genuine_phase(port, clients, duration, nbytes):
    """`clients` threads, each repeating one bulk transfer of nbytes (even: download, odd: upload)
    until `duration` has passed. Returns the aggregate rate and every failure."""
    lock = threading.Lock()
    moved = [0]
    failures = []
    per_client = [0] * clients
    t_start = time.monotonic()
    stop_at = t_start + duration

    def one(i):
        block = memoryview(os.urandom(CHUNK))
        buf = bytearray(CHUNK)
        while time.monotonic() < stop_at:
            try:
                with connect(port) as s:
                    if i % 2 == 0:
                        s.sendall(b"D" + struct.pack("!Q", nbytes))
                        got = 0
                        while got < nbytes:
                            k = s.recv_into(buf, min(CHUNK, nbytes - got))
                            if k == 0:
                                raise ConnectionError(f"download closed after {got} of {nbytes} bytes")
                            got += k
                    else:
                        s.sendall(b"U" + struct.pack("!Q", nbytes))
                        left = nbytes
                        while left > 0:
                            k = min(CHUNK, left)
                            s.sendall(block[:k])
                            left -= k
                        ack = struct.unpack("!Q", recv_exact(s, 8))[0]
                        if ack != nbytes:
                            raise RuntimeError(f"sink acknowledged {ack} of {nbytes} bytes")
                with lock:
                    moved[0] += nbytes
                    per_client[i] += nbytes
            except Exception as e:  # noqa: BLE001
                with lock:
                    failures.append(f"client {i}: {type(e).__name__}: {e}")
                time.sleep(0.2)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 120)
    wall = time.monotonic() - t_start
    return {"bytes": moved[0], "wall_s": wall, "mb_per_s": moved[0] / wall / 1e6, "failures": failures,
            "per_client_mb": [b / 1e6 for b in per_client], "hung_threads": sum(t.is_alive() for t in threads)}


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="Garbage/slowloris/silent connections vs genuine clients.")
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-rel", "release"))
    ap.add_argument("--v2ray", default="/usr/bin/v2ray")
    ap.add_argument("--workers", type=int, default=2, help="vmessd workers (default 2)")
    ap.add_argument("--garbage", type=int, default=2000, help="garbage connections held open (2000)")
    ap.add_argument("--genuine", type=int, default=32, help="genuine clients through v2ray (32)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of genuine transfers per phase (20)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="quiet/attack pairs; phases run quiet1 attack1 quiet2 attack2 quiet3 (2)")
    ap.add_argument("--transfer-mib", type=int, default=4, help="MiB per genuine transfer (4)")
    ap.add_argument("--handshake", type=int, default=10,
                    help="handshake deadline written to the config, policy.levels.0.handshake (10 s)")
    ap.add_argument("--limits", choices=["auto", "on", "off"], default="auto",
                    help="write generous vmessd.limits (auto: if vmessd knows the key)")
    ap.add_argument("--attacker-source", default="127.0.0.2",
                    help="source address of the garbage connections (default 127.0.0.2: another source than "
                         "the genuine clients' v2ray client, which connects from 127.0.0.1)")
    ap.add_argument("--json")
    ap.add_argument("--workdir")
    ap.add_argument("--_attacker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._attacker:
        run_attacker(json.loads(args._attacker[0]), args._attacker[1])
        return 0

    bindir = os.path.abspath(args.vmessd_bin_dir)
    lim = raise_nofile(4 * args.garbage + 8192)
    workdir = args.workdir or tempfile.mkdtemp(prefix="vmessd-load-garbage-")
    os.makedirs(workdir, exist_ok=True)
    info = machine_info()
    info.update(v2ray=v2ray_version(args.v2ray), vmessd_bin_dir=bindir, vmessd_built_from=built_from(bindir), workdir=workdir,
                rlimit_nofile=list(lim), params={k: v for k, v in vars(args).items() if k != "_attacker"},
                loadavg_start=os.getloadavg())
    print(f"# load_garbage: {args.garbage} garbage connections vs {args.genuine} genuine clients\n"
          f"- date {info['date']}, commit {info['repo_commit']}, {info['nproc']} CPUs, load "
          f"{os.getloadavg()[0]:.1f}\n- vmessd {bindir} (built from {info['vmessd_built_from']}), --workers {args.workers}, handshake deadline "
          f"{args.handshake}s\n- logs: {workdir}", flush=True)
    result = {"machine": info, "errors": [], "phases": {}}
    managed = []

    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    srv = None
    try:
        limits, note = resolve_limits(args.limits, {"connectionsPerWorker": 4 * args.garbage + 1000,
                                                    "connectionsPerSource": 4 * args.garbage + 1000}, bindir, workdir)
        result["limits"] = {"written": limits, "note": note}
        print(f"- {note}", flush=True)
        tgt, tports, _ = start_async_targets(workdir)
        managed.append(tgt)
        sport, dport = distinct_ports(2)
        control = os.path.join(workdir, "admin.sock")
        scfg = os.path.join(workdir, "server.json")
        write_json(scfg, vmessd_config(sport, limits=limits, handshake=args.handshake))
        srv = start_vmessd(bindir, scfg, args.workers, os.path.join(workdir, "vmessd.log"), ["--control", control])
        managed.append(srv)
        wait_listening(sport, srv.proc, START_TIMEOUT)
        wait_workers_ready(control, args.workers)
        ccfg = os.path.join(workdir, "client.json")
        write_json(ccfg, v2ray_client_config(sport, [(dport, tports["bulk"])]))
        cli = Managed("v2ray-client", [args.v2ray, "-config", ccfg], os.path.join(workdir, "v2ray-client.log"))
        managed.append(cli)
        wait_listening(dport, cli.proc, START_TIMEOUT)
        # Warm-up (bulk port: a D transfer of 1 MiB per client slot).
        genuine_phase(dport, 4, 1.0, 1 << 20)
        workers0 = worker_pids(srv.pid)
        nbytes = args.transfer_mib << 20

        def phase(name, attack):
            settle(srv.pid, 5.0)
            print(f"[{name}] {args.genuine} genuine clients for {args.duration:g}s"
                  + (f" with {args.garbage} garbage connections" if attack else "") + " ...", flush=True)
            att = None
            att_out = os.path.join(workdir, f"attacker-{name}.json")
            if attack:
                params = {"port": sport, "count": args.garbage, "keep": args.duration + 5, "source": args.attacker_source,
                          "grace": args.handshake + 15, "open_timeout": 60, "seed": 7}
                att = Managed("attacker", [sys.executable, os.path.abspath(__file__), "--_attacker",
                                           json.dumps(params), att_out],
                              os.path.join(workdir, f"attacker-{name}.log"), stdout=subprocess.PIPE)
                managed.append(att)
                line = att.proc.stdout.readline().decode().strip()
                if not line.startswith("open"):
                    raise RuntimeError(f"attacker did not open its connections: {line!r} {tail(att.log_path)}")
                print(f"  attacker: {line} connections", flush=True)
            c0 = tree_cpu_seconds(srv.pid)
            la0 = os.getloadavg()[0]
            r = genuine_phase(dport, args.genuine, args.duration, nbytes)
            r["server_cpu_s"] = tree_cpu_seconds(srv.pid) - c0
            r["loadavg_1m"] = [la0, os.getloadavg()[0]]
            print(f"  {r['mb_per_s']:.1f} MB/s aggregate, {len(r['failures'])} failures, server CPU "
                  f"{r['server_cpu_s']:.1f}s, load {la0:.1f}->{os.getloadavg()[0]:.1f}", flush=True)
            for f in r["failures"][:10]:
                print(f"    failure: {f}", flush=True)
            if att is not None:
                print(f"  waiting for the server to close the garbage connections (up to {args.handshake + 15}s) ...",
                      flush=True)
                rest = att.proc.stdout.read().decode()
                att.proc.wait(timeout=args.duration + args.handshake + 120)
                managed.remove(att)
                att.stop()
                with open(att_out) as f:
                    r["attacker"] = analyse_attack(json.load(f), args.handshake)
                r["attacker"]["stdout"] = rest.strip()
            result["phases"][name] = r

        for i in range(args.rounds):
            phase(f"quiet{i + 1}", False)
            phase(f"attack{i + 1}", True)
        phase(f"quiet{args.rounds + 1}", False)
        q = [r["mb_per_s"] for k, r in result["phases"].items() if k.startswith("quiet")]
        a = [r["mb_per_s"] for k, r in result["phases"].items() if k.startswith("attack")]
        result["ratio_attack_over_quiet"] = (sum(a) / len(a)) / (sum(q) / len(q)) if sum(q) else None
        # Each attack phase against the mean of the quiet phases either side of it.
        result["ratio_each_attack"] = [a[i] / ((q[i] + q[i + 1]) / 2) for i in range(len(a))]
        result["genuine_failures"] = sum(len(result["phases"][k]["failures"]) for k in result["phases"])
        result["workers_replaced"] = sorted(workers0) != sorted(worker_pids(srv.pid))
        result["server_alive"] = srv.alive()
    except (KeyboardInterrupt, Interrupted) as e:
        result["errors"].append(f"interrupted: {e!r}")
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        result["errors"].append(f"{type(e).__name__}: {e}")
    finally:
        if srv is not None:
            result["vmessd_log_tail"] = tail(srv.log_path, 40)
        stop_all(managed)

    report(result, args)
    path = args.json or results_path("load-garbage")
    write_json(path, result)
    print(f"JSON: {path}")
    return 0 if result.get("ok") else 1


def analyse_attack(data, handshake):
    out = {"attacker_cpu_s": data["cpu_s"], "still_open_at_end": len(data["still_open"]), "by_kind": {}}
    for kind in KINDS:
        closed = [r for r in data["closed"] if r["kind"] == kind and r.get("closed_after") is not None]
        errs = [r for r in data["closed"] if r["kind"] == kind and r.get("error")]
        ages = [r["closed_after"] for r in closed]
        recv = sum(r["recv"] for r in data["closed"] + data["still_open"] if r["kind"] == kind)
        hows = {}
        for r in closed:
            hows[r["how"]] = hows.get(r["how"], 0) + 1
        at_deadline = [x for x in ages if handshake - 0.5 <= x <= handshake + 2.0]
        early = [x for x in ages if x < handshake - 0.5]
        late = [x for x in ages if x > handshake + 2.0]
        out["by_kind"][kind] = {"connections": len(closed) + len([r for r in data["still_open"] if r["kind"] == kind]),
                                "closed_by_server": len(closed), "open_errors": len(errs),
                                "still_open": len([r for r in data["still_open"] if r["kind"] == kind]),
                                "closed_after_s": summarize(ages), "how": hows,
                                "closed_at_deadline": len(at_deadline), "closed_early": len(early),
                                "closed_late": len(late), "bytes_from_server": recv}
    return out


def report(result, args):
    print("\n## Result")
    ph = result["phases"]
    if ph:
        print("| phase | aggregate MB/s | genuine failures | server CPU s | load avg |")
        print("|---|---:|---:|---:|---|")
        for k, r in ph.items():
            print(f"| {k} | {r['mb_per_s']:.1f} | {len(r['failures'])} | {r['server_cpu_s']:.1f} | "
                  f"{r['loadavg_1m'][0]:.1f}->{r['loadavg_1m'][1]:.1f} |")
    ok = not result["errors"]
    if result.get("ratio_attack_over_quiet") is not None:
        ratio = result["ratio_attack_over_quiet"]
        each = ", ".join(f"{x:.2f}" for x in result["ratio_each_attack"])
        print(f"\nmean(attack phases) / mean(quiet phases) = {ratio:.2f} (each attack phase against the quiet "
              f"phases either side: {each}); goal >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'}")
        print(f"genuine failures over all phases: {result['genuine_failures']} (goal 0)")
        ok = ok and ratio >= 0.8 and result["genuine_failures"] == 0
    for name, r in ph.items():
        att = r.get("attacker")
        if not att:
            continue
        print(f"\n[{name}] garbage connections (handshake deadline {args.handshake}s; attacker CPU {att['attacker_cpu_s']:.1f}s):")
        print("| kind | connections | closed by server | closed after (s) min / p50 / p99 / max | at deadline ±(0.5,2)s | early | late | still open | bytes from server |")
        print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
        for kind, k in att["by_kind"].items():
            s = k["closed_after_s"]
            ss = f"{s['min']:.2f} / {s['p50']:.2f} / {s['p99']:.2f} / {s['max']:.2f}" if s else "-"
            print(f"| {kind} | {k['connections']} | {k['closed_by_server']} | {ss} | {k['closed_at_deadline']} | "
                  f"{k['closed_early']} | {k['closed_late']} | {k['still_open']} | {k['bytes_from_server']} |")
        for kind in ("slowloris", "silent"):
            k = att["by_kind"][kind]
            good = k["still_open"] == 0 and k["closed_late"] == 0 and k["closed_early"] == 0 and k["bytes_from_server"] == 0
            print(f"{kind}: {'dropped at the handshake deadline' if good else 'NOT all dropped at the handshake deadline'}")
            ok = ok and good
        ok = ok and att["by_kind"]["random"]["bytes_from_server"] == 0 and att["by_kind"]["random"]["still_open"] == 0
    for e in result["errors"]:
        print(f"ERROR: {e}")
    if not ok and result.get("vmessd_log_tail"):
        print("vmessd log tail:\n" + result["vmessd_log_tail"])
    result["ok"] = ok
    print(f"verdict: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
