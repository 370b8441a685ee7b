#!/usr/bin/env python3
"""Soak: continuous traffic through the real v2ray client while the supervisor reloads every 30 s
and one worker is killed (SIGKILL) every 90 s; SIGTERM at the end.

    stream threads ──> v2ray 4.34 client ──VMess AEAD──> vmessd run --workers N ──> tagged echo target
                       dokodemo-door                                                  (asyncio)

Streams (each first sends a tag line, e.g. "L000012\\n", which the target logs with the peer port of
the connection it accepted, i.e. the local port of the worker's outbound socket):

  long   --long slots; each stream echoes a seeded pattern (benchlib.Pattern) for a random
         --long-seconds at up to --long-rate MB/s and checks every byte that comes back;
  short  --short slots; connect, 200-4000 pattern bytes echoed and checked, close.

A stream ends "ok", "corrupted" (a byte differs from the pattern: must never happen) or "broken"
(reset, early EOF, timeout).

Events: SIGHUP to the supervisor every --hup-every s (30, 60, 90 ...); every --kill-every s one worker
of the newest generation is killed (at 75, 165, 255 ... s with the defaults: off the reload instants). Attribution method: the
victim is first stopped (SIGSTOP) so it can neither accept nor close anything, then its open sockets
are read (/proc/PID/fd socket inodes matched against /proc/net/tcp{,6}): the sockets whose remote port
is the target's are its outbound legs, and their local ports identify — through the target's tag log
— exactly which streams that worker was carrying; its sockets on the VMess port count its inbound
legs (in - out = connections it held that had no outbound yet). Then SIGKILL. A broken stream is
"explained" if it is in a victim's set, "probably explained" if it was in flight at a kill whose
victim held inbound legs without an outbound (at most that many), else "unexplained" (a failure).

Memory: PSS (/proc/PID/smaps_rollup) of the supervisor, every worker (with its generation and state
from the admin socket), the v2ray client and the target, every --sample-every s. Flatness is judged
after --warmup s (see the report).

At the end: no new streams; SIGTERM to the supervisor while the last streams finish; they must end
"ok" and the supervisor must exit 0. Prints a report and writes Benchmarks/results/soak-<time>.json.
"""

import argparse
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time

from benchlib import (built_from, smaps_rollup, REPO, START_TIMEOUT, Interrupted, Managed, Pattern, admin_request, distinct_ports,
                      echo_check, machine_info, pss_kb, raise_nofile, recv_exact, resolve_limits, results_path,
                      socket_inodes, start_async_targets, start_vmessd, stop_all, tail, tcp_table,
                      v2ray_client_config, v2ray_version, vmessd_config, wait_listening, wait_workers_ready,
                      worker_pids, write_json)

IO_TIMEOUT = 20.0


class Streams:
    def __init__(self, port, args, seed):
        self.port = port
        self.args = args
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.records = []
        self.next_id = 0
        self.stop = threading.Event()

    def new_id(self, kind):
        with self.lock:
            self.next_id += 1
            return f"{kind}{self.next_id:07d}", self.next_id

    def record(self, r):
        with self.lock:
            self.records.append(r)

    # ---- long ----
    def long_stream(self):
        a = self.args
        sid, n = self.new_id("L")
        secs = self.rng.uniform(*a.long_seconds)
        nbytes = max(65536, int(secs * a.long_rate * 1e6))
        pat = Pattern(n)
        tag = (sid + "\n").encode()
        r = {"id": sid, "kind": "long", "bytes": nbytes, "t_start": time.time(), "status": None, "verified": 0}
        s = None
        werr = []
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(IO_TIMEOUT)

            def writer():
                try:
                    s.sendall(tag)
                    off, t0 = 0, time.monotonic()
                    while off < nbytes:
                        k = min(65536, nbytes - off)
                        s.sendall(pat.chunk(off, k))
                        off += k
                        ahead = off / (a.long_rate * 1e6) - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)
                except Exception as e:  # noqa: BLE001
                    werr.append(f"write: {type(e).__name__}: {e}")

            w = threading.Thread(target=writer, daemon=True)
            w.start()
            back = recv_exact(s, len(tag))
            if back != tag:
                r["status"], r["error"] = "corrupted", f"tag came back as {back!r}"
            else:
                buf = bytearray(65536)
                got = 0
                while got < nbytes:
                    k = s.recv_into(buf, min(len(buf), nbytes - got))
                    if k == 0:
                        raise ConnectionError(f"EOF after {got} of {nbytes} bytes")
                    bad = pat.first_mismatch(got, memoryview(buf)[:k])
                    if bad >= 0:
                        r["status"] = "corrupted"
                        r["error"] = f"byte {got + bad} differs from the pattern"
                        break
                    got += k
                    r["verified"] = got
                if r["status"] is None:
                    r["status"] = "ok"
            w.join(IO_TIMEOUT)
        except Exception as e:  # noqa: BLE001
            r["status"] = "broken"
            r["error"] = f"{type(e).__name__}: {e}" + (f"; {werr[0]}" if werr else "")
        finally:
            if s is not None:
                s.close()
        r["t_end"] = time.time()
        self.record(r)

    # ---- short ----
    def short_stream(self):
        sid, n = self.new_id("S")
        size = self.rng.randint(200, 4000)
        pat = Pattern(n)
        tag = (sid + "\n").encode()
        msg = tag + pat.chunk(0, size)
        r = {"id": sid, "kind": "short", "bytes": size, "t_start": time.time(), "status": None}
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=IO_TIMEOUT) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(IO_TIMEOUT)
                s.sendall(msg)
                back = recv_exact(s, len(msg))
                r["status"] = "ok" if back == msg else "corrupted"
                if back != msg:
                    r["error"] = "echo differs"
        except Exception as e:  # noqa: BLE001
            r["status"] = "broken"
            r["error"] = f"{type(e).__name__}: {e}"
        r["t_end"] = time.time()
        self.record(r)

    def slot(self, kind):
        while not self.stop.is_set():
            if kind == "long":
                self.long_stream()
            else:
                self.short_stream()
                time.sleep(self.args.short_pause)


def ownership(pid, vmess_port, target_port, table=None):
    """(outbound local ports to the target, number of inbound sockets on the VMess port) of one process."""
    table = table if table is not None else tcp_table()
    outs, ins = set(), 0
    for ino in socket_inodes(pid):
        e = table.get(ino)
        if not e:
            continue
        lport, rport, st = e
        if rport == target_port:
            outs.add(lport)
        elif lport == vmess_port and st != "0A":  # 0A = LISTEN
            ins += 1
    return outs, ins


def read_tags(path):
    """tag -> list of (peer port, time)."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 3:
                    out.setdefault(p[0], []).append((int(p[1]), float(p[2])))
    except OSError:
        pass
    return out


def main():
    ap = argparse.ArgumentParser(description="Soak: traffic + SIGHUP every 30 s + kill -9 of a worker every 90 s.")
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-rel", "release"))
    ap.add_argument("--v2ray", default="/usr/bin/v2ray")
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of traffic (default 600)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--hup-every", type=float, default=30.0)
    ap.add_argument("--kill-every", type=float, default=90.0)
    ap.add_argument("--kill-offset", type=float, default=15.0,
                    help="the first kill is at kill-every - kill-offset, then every kill-every: 75, 165, 255 s "
                         "with the defaults, off the reload instants (15)")
    ap.add_argument("--long", type=int, default=4, help="concurrent long streams (4)")
    ap.add_argument("--short", type=int, default=4, help="concurrent short-stream loops (4)")
    ap.add_argument("--long-seconds", type=float, nargs=2, default=[5.0, 20.0])
    ap.add_argument("--long-rate", type=float, default=2.0, help="MB/s cap per long stream (2)")
    ap.add_argument("--short-pause", type=float, default=0.02)
    ap.add_argument("--drain-timeout", type=int, default=60,
                    help="vmessd --drain-timeout; longer than any long stream so reloads cut nothing (60)")
    ap.add_argument("--sample-every", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=60.0, help="memory flatness is judged after this (60 s)")
    ap.add_argument("--limits", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    ap.add_argument("--workdir")
    ap.add_argument("--report-only", metavar="JSON", help="print the report of an earlier run's JSON again (and rewrite it)")
    args = ap.parse_args()
    if args.report_only:
        import json
        with open(args.report_only) as f:
            result = json.load(f)
        report(result, args)
        write_json(args.report_only, result)
        return 0 if result.get("ok") else 1

    bindir = os.path.abspath(args.vmessd_bin_dir)
    raise_nofile(65536)
    workdir = args.workdir or tempfile.mkdtemp(prefix="vmessd-soak-")
    os.makedirs(workdir, exist_ok=True)
    info = machine_info()
    info.update(v2ray=v2ray_version(args.v2ray), vmessd_bin_dir=bindir, vmessd_built_from=built_from(bindir), workdir=workdir, params=vars(args))
    print(f"# soak: {args.duration:g}s, --workers {args.workers}, SIGHUP every {args.hup_every:g}s, "
          f"kill -9 every {args.kill_every:g}s\n- date {info['date']}, commit {info['repo_commit']}, "
          f"load {os.getloadavg()[0]:.1f}\n- vmessd {bindir} (built from {info['vmessd_built_from']})\n- logs: {workdir}", flush=True)
    result = {"machine": info, "errors": [], "events": [], "samples": []}
    managed = []

    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    srv = None
    streams = None
    threads = []
    try:
        limits, note = resolve_limits(args.limits, {"connectionsPerWorker": 100000, "connectionsPerSource": 100000},
                                      bindir, workdir)
        result["limits"] = {"written": limits, "note": note}
        print(f"- {note}", flush=True)
        tgt, tports, tags_path = start_async_targets(workdir)
        managed.append(tgt)
        sport, dport = distinct_ports(2)
        control = os.path.join(workdir, "admin.sock")
        scfg = os.path.join(workdir, "server.json")
        write_json(scfg, vmessd_config(sport, limits=limits))
        srv = start_vmessd(bindir, scfg, args.workers, os.path.join(workdir, "vmessd.log"), ["--control", control],
                           drain_timeout=args.drain_timeout)
        managed.append(srv)
        wait_listening(sport, srv.proc, START_TIMEOUT)
        wait_workers_ready(control, args.workers)
        ccfg = os.path.join(workdir, "client.json")
        write_json(ccfg, v2ray_client_config(sport, [(dport, tports["tagged"])]))
        cli = Managed("v2ray-client", [args.v2ray, "-config", ccfg], os.path.join(workdir, "v2ray-client.log"))
        managed.append(cli)
        wait_listening(dport, cli.proc, START_TIMEOUT)
        echo_check(dport, time.monotonic() + START_TIMEOUT)

        streams = Streams(dport, args, args.seed)
        for kind, n in (("long", args.long), ("short", args.short)):
            for _ in range(n):
                t = threading.Thread(target=streams.slot, args=(kind,), daemon=True)
                t.start()
                threads.append(t)
        t0 = time.monotonic()
        t0_wall = time.time()
        result["t0"] = t0_wall
        next_hup = args.hup_every if args.hup_every > 0 else float("inf")
        next_kill = args.kill_every - args.kill_offset if args.kill_every > 0 else float("inf")
        if next_kill <= 0:
            next_kill = args.kill_every
        next_sample = 0.0
        last_print = 0.0
        rng = random.Random(args.seed + 1)
        sup_pid = srv.pid
        while True:
            el = time.monotonic() - t0
            if el >= args.duration:
                break
            if not srv.alive():
                raise RuntimeError(f"the supervisor exited with status {srv.proc.returncode}")
            if el >= next_sample:
                next_sample += args.sample_every
                sr = smaps_rollup(sup_pid)
                sample = {"t": el, "supervisor": sr.get("Pss"), "supervisor_anon": sr.get("Pss_Anon"),
                          "v2ray_client": pss_kb(cli.pid), "targets": pss_kb(tgt.pid), "workers": []}
                try:
                    st = admin_request(control)["status"]
                    table = tcp_table()
                    for w in st["workers"]:
                        outs, ins = ownership(w["pid"], sport, tports["tagged"], table)
                        wr = smaps_rollup(w["pid"])
                        sample["workers"].append({"pid": w["pid"], "generation": w["generation"], "state": w["state"],
                                                  "uptime": w.get("uptimeSeconds"), "pss": wr.get("Pss"),
                                                  "pss_anon": wr.get("Pss_Anon"), "rss": wr.get("Rss"),
                                                  "connections": w.get("connections"), "out_ports": sorted(outs),
                                                  "inbound": ins})
                    sample["generation"] = st.get("generation")
                except Exception as e:  # noqa: BLE001
                    sample["error"] = repr(e)
                result["samples"].append(sample)
            if el >= next_hup:
                next_hup += args.hup_every
                os.kill(sup_pid, signal.SIGHUP)
                result["events"].append({"type": "hup", "t": el, "wall": time.time()})
                print(f"  t={el:6.1f}s SIGHUP", flush=True)
            if el >= next_kill:
                next_kill += args.kill_every
                ev = kill_one(sup_pid, control, sport, tports["tagged"], rng)
                ev["t"] = el
                result["events"].append(ev)
                print(f"  t={el:6.1f}s kill -9 worker {ev.get('victim')} (gen {ev.get('generation')}): it carried "
                      f"{len(ev.get('out_ports', []))} outbound / {ev.get('inbound')} inbound legs"
                      + (f" ERROR {ev['error']}" if ev.get("error") else ""), flush=True)
            if el - last_print >= 30:
                last_print = el
                with streams.lock:
                    recs = list(streams.records)
                c = {s: sum(1 for r in recs if r["status"] == s) for s in ("ok", "broken", "corrupted")}
                print(f"  t={el:6.1f}s streams ok {c['ok']}, broken {c['broken']}, corrupted {c['corrupted']}; "
                      f"workers {worker_pids(sup_pid)}; load {os.getloadavg()[0]:.1f}", flush=True)
            time.sleep(0.05)

        # End: no new streams, SIGTERM while the last ones finish.
        streams.stop.set()
        time.sleep(0.5)
        with streams.lock:
            done_before_term = {r["id"] for r in streams.records}
        t_term = time.monotonic()
        os.kill(sup_pid, signal.SIGTERM)
        result["events"].append({"type": "term", "t": t_term - t0, "wall": time.time()})
        print(f"  t={t_term - t0:6.1f}s SIGTERM (streams still running finish during the drain)", flush=True)
        for t in threads:
            t.join(args.long_seconds[1] + 2 * IO_TIMEOUT)
        try:
            srv.proc.wait(timeout=args.drain_timeout + 15)
        except Exception:  # noqa: BLE001
            result["errors"].append(f"the supervisor did not exit within {args.drain_timeout + 15}s of SIGTERM")
        result["supervisor_exit"] = {"status": srv.proc.returncode, "seconds_after_term": time.monotonic() - t_term}
        with streams.lock:
            result["streams_finishing_at_term"] = [r for r in streams.records if r["id"] not in done_before_term]
        result["hung_stream_threads"] = sum(t.is_alive() for t in threads)
    except (KeyboardInterrupt, Interrupted) as e:
        result["errors"].append(f"interrupted: {e!r}")
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        result["errors"].append(f"{type(e).__name__}: {e}")
    finally:
        if streams is not None:
            streams.stop.set()
        stop_all(managed)

    if streams is not None:
        analyse(result, streams.records, read_tags(tags_path) if streams else {}, args)
    if srv is not None:
        result["vmessd_log"] = srv.log_path
        result["vmessd_log_tail"] = tail(srv.log_path, 60)
    report(result, args)
    path = args.json or results_path("soak")
    write_json(path, result)
    print(f"JSON: {path}")
    return 0 if result.get("ok") else 1


def kill_one(sup_pid, control, vmess_port, target_port, rng):
    ev = {"type": "kill", "wall": time.time()}
    try:
        try:
            ws = admin_request(control)["status"]["workers"]
            gen = max(w["generation"] for w in ws)
            cands = [w for w in ws if w["generation"] == gen and w["state"] == "ready"] or ws
            w = rng.choice(cands)
            victim, ev["generation"] = w["pid"], w["generation"]
        except Exception as e:  # noqa: BLE001
            ev["admin_error"] = repr(e)
            victim = rng.choice(worker_pids(sup_pid))
        ev["victim"] = victim
        os.kill(victim, signal.SIGSTOP)
        ev["stopped_wall"] = time.time()
        outs, ins = ownership(victim, vmess_port, target_port)
        ev["out_ports"] = sorted(outs)
        ev["inbound"] = ins
        os.kill(victim, signal.SIGKILL)
        ev["killed_wall"] = time.time()
    except Exception as e:  # noqa: BLE001
        ev["error"] = f"{type(e).__name__}: {e}"
    return ev


def analyse(result, records, tags, args):
    recs = sorted(records, key=lambda r: r["t_start"])
    kills = [e for e in result["events"] if e["type"] == "kill" and "killed_wall" in e]
    # Which streams did each victim carry? Its outbound local port -> the latest tag logged on that
    # peer port before the victim was stopped.
    port_tags = {}
    for tag, entries in tags.items():
        for port, t in entries:
            port_tags.setdefault(port, []).append((t, tag))
    by_id = {r["id"]: r for r in recs}
    for ev in kills:
        owned, untagged = [], 0
        for p in ev["out_ports"]:
            cand = [(t, tag) for t, tag in port_tags.get(p, []) if t <= ev["stopped_wall"]]
            # The latest stream tagged on this port, unless it had already ended (then the port was
            # reused by a connection whose tag had not reached the target when the victim stopped).
            if cand and by_id.get(max(cand)[1], {}).get("t_end", 0) >= ev["stopped_wall"] - 0.01:
                owned.append(max(cand)[1])
            else:
                untagged += 1
        ev["owned_streams"] = sorted(owned)
        ev["outbound_without_tag"] = untagged
        ev["unmatched_inbound"] = max(0, ev["inbound"] - len(ev["out_ports"])) + untagged
    owner = {}
    for i, ev in enumerate(kills):
        for sid in ev["owned_streams"]:
            owner[sid] = i
    broken = [r for r in recs if r["status"] == "broken"]
    corrupted = [r for r in recs if r["status"] == "corrupted"]
    explained, probable, unexplained = [], [], []
    spare = {i: ev["unmatched_inbound"] for i, ev in enumerate(kills)}
    for r in broken:
        if r["id"] in owner:
            r["killed_by"] = kills[owner[r["id"]]]["victim"]
            explained.append(r)
            continue
        hit = None
        for i, ev in enumerate(kills):
            if r["t_start"] <= ev["killed_wall"] + 0.05 and r["t_end"] >= ev["stopped_wall"] and spare[i] > 0:
                hit = i
                break
        if hit is not None:
            spare[hit] -= 1
            r["probably_killed_by"] = kills[hit]["victim"]
            probable.append(r)
        else:
            unexplained.append(r)
    owned_not_broken = []
    status = {r["id"]: r["status"] for r in recs}
    for ev in kills:
        for sid in ev["owned_streams"]:
            if status.get(sid) != "broken":
                owned_not_broken.append((ev["victim"], sid, status.get(sid)))
    result["streams"] = {
        "total": len(recs), "ok": sum(r["status"] == "ok" for r in recs),
        "long": sum(r["kind"] == "long" for r in recs), "short": sum(r["kind"] == "short" for r in recs),
        "long_bytes_verified": sum(r.get("verified", 0) for r in recs if r["kind"] == "long"),
        "corrupted": corrupted, "broken": len(broken), "broken_explained": len(explained),
        "broken_probably_explained": probable, "broken_unexplained": unexplained,
        "broken_records": broken, "owned_by_victim_but_not_broken": owned_not_broken,
        "tagged_in_target_log": len(tags),
    }
    # Streams carried across a reload: a long stream seen on a worker while that worker was draining.
    carried = set()
    for s in result["samples"]:
        for w in s.get("workers", []):
            if w["state"] == "draining":
                for p in w["out_ports"]:
                    cand = [(t, tag) for t, tag in port_tags.get(p, []) if t <= result["t0"] + s["t"]]
                    if cand:
                        carried.add(max(cand)[1])
    result["streams"]["seen_on_draining_workers"] = len(carried)
    result["streams"]["seen_on_draining_workers_broken"] = sorted(c for c in carried if status.get(c) == "broken")
    # Memory.
    mem = {}
    samples = result["samples"]
    post = [s for s in samples if s["t"] >= args.warmup]

    def flat(series):
        """series of (t, kB) -> stats and growth from the first third to the last third."""
        if len(series) < 3:
            return None
        n = len(series)
        a = [v for _, v in series[: max(1, n // 3)]]
        b = [v for _, v in series[n - max(1, n // 3):]]
        ma, mb = sum(a) / len(a), sum(b) / len(b)
        ts = [t for t, _ in series]
        vs = [v for _, v in series]
        tm, vm = sum(ts) / n, sum(vs) / n
        den = sum((t - tm) ** 2 for t in ts) or 1
        slope = sum((t - tm) * (v - vm) for t, v in series) / den * 60
        return {"n": n, "first_third_mean_kb": ma, "last_third_mean_kb": mb, "growth_pct": (mb - ma) / ma * 100 if ma else None,
                "slope_kb_per_min": slope, "min_kb": min(vs), "max_kb": max(vs)}

    mem["supervisor"] = flat([(s["t"], s["supervisor"]) for s in post if s.get("supervisor")])
    mem["supervisor_anon"] = flat([(s["t"], s["supervisor_anon"]) for s in post if s.get("supervisor_anon")])
    mem["v2ray_client"] = flat([(s["t"], s["v2ray_client"]) for s in post if s.get("v2ray_client")])
    mem["targets"] = flat([(s["t"], s["targets"]) for s in post if s.get("targets")])
    mem["server_total"] = flat([(s["t"], (s["supervisor"] or 0) + sum(w["pss"] or 0 for w in s.get("workers", [])))
                                for s in post if s.get("supervisor")])
    mem["ready_workers_mean"] = flat([(s["t"], sum(w["pss"] or 0 for w in ready) / len(ready))
                                      for s in post for ready in [[w for w in s.get("workers", []) if w["state"] == "ready" and w["pss"]]]
                                      if ready])
    # Per worker pid: PSS series summary, and its PSS at its last ready sample, by start order.
    per = {}
    for s in samples:
        for w in s.get("workers", []):
            if w["pss"]:
                per.setdefault(w["pid"], []).append((s["t"], w["pss"], w["state"], w["generation"], w["uptime"],
                                                     w.get("pss_anon") or 0))
    rows = []
    for pid, ser in per.items():
        ready = [x for x in ser if x[2] == "ready"]
        last = (ready or ser)[-1]
        rows.append({"pid": pid, "generation": ser[0][3], "first_t": ser[0][0], "samples": len(ser),
                     "first_pss_kb": ser[0][1], "max_pss_kb": max(x[1] for x in ser), "last_ready_pss_kb": last[1],
                     "last_ready_anon_kb": last[5], "last_ready_uptime": last[4]})
    rows.sort(key=lambda r: r["first_t"])
    mem["workers"] = rows
    late = [r for r in rows if r["first_t"] >= args.warmup and r["last_ready_uptime"] and r["last_ready_uptime"] >= 20]
    mem["worker_last_ready_pss_after_warmup"] = flat([(r["first_t"], r["last_ready_pss_kb"]) for r in late])
    mem["worker_last_ready_anon_after_warmup"] = flat([(r["first_t"], r["last_ready_anon_kb"]) for r in late])
    result["memory"] = mem


def report(result, args):
    print("\n## Result")
    st = result.get("streams")
    ok = not result["errors"]
    if st:
        print(f"streams: {st['total']} ({st['long']} long, {st['short']} short), ok {st['ok']}, "
              f"{st['long_bytes_verified'] / 1e6:.0f} MB verified byte-for-byte on long streams")
        print(f"corrupted: {len(st['corrupted'])} (must be 0)")
        for r in st["corrupted"][:10]:
            print(f"  {r}")
        print(f"broken: {st['broken']}: {st['broken_explained']} carried by a killed worker (socket ownership at the kill), "
              f"{len(st['broken_probably_explained'])} in flight at a kill whose victim held inbound legs without an "
              f"outbound, {len(st['broken_unexplained'])} unexplained")
        for r in st["broken_unexplained"][:20]:
            print(f"  UNEXPLAINED {r['id']} {r['kind']} start {r['t_start'] - result['t0']:.2f}s end "
                  f"{r['t_end'] - result['t0']:.2f}s: {r.get('error')}")
        if st["owned_by_victim_but_not_broken"]:
            print(f"streams a victim carried that did not break: {st['owned_by_victim_but_not_broken'][:10]}")
        print(f"long streams seen on a draining (old-generation) worker after a reload: {st['seen_on_draining_workers']}, "
              f"of which broken: {len(st['seen_on_draining_workers_broken'])}")
        ok = ok and not st["corrupted"] and not st["broken_unexplained"]
        fin = result.get("streams_finishing_at_term", [])
        bad_fin = [r for r in fin if r["status"] != "ok"]
        print(f"streams still running at SIGTERM: {len(fin)}, not ok: {len(bad_fin)}")
        ok = ok and not bad_fin
    kills = [e for e in result["events"] if e["type"] == "kill"]
    hups = [e for e in result["events"] if e["type"] == "hup"]
    print(f"events: {len(hups)} SIGHUP, {len(kills)} kill -9")
    for e in kills:
        print(f"  kill t={e['t']:.1f}s victim {e.get('victim')} gen {e.get('generation')}: carried "
              f"{len(e.get('owned_streams', []))} streams, {e.get('unmatched_inbound')} inbound-only legs"
              + (f" ERROR {e['error']}" if e.get("error") else ""))
    ex = result.get("supervisor_exit")
    if ex:
        print(f"SIGTERM: supervisor exit status {ex['status']} after {ex['seconds_after_term']:.1f}s")
        ok = ok and ex["status"] == 0
    mem = result.get("memory")
    if mem:
        print(f"\nmemory (PSS, kB) after the {args.warmup:g}s warm-up: first third mean -> last third mean "
              "(growth), slope, min..max")
        for k in ("supervisor", "supervisor_anon", "server_total", "ready_workers_mean",
                  "worker_last_ready_pss_after_warmup", "worker_last_ready_anon_after_warmup", "v2ray_client", "targets"):
            f = mem.get(k)
            if f:
                print(f"  {k:38s} {f['first_third_mean_kb']:9.0f} -> {f['last_third_mean_kb']:9.0f} "
                      f"({f['growth_pct']:+.1f}%), {f['slope_kb_per_min']:+.1f} kB/min, {f['min_kb']}..{f['max_kb']}")
        judged = ("supervisor", "supervisor_anon", "worker_last_ready_pss_after_warmup",
                  "worker_last_ready_anon_after_warmup")
        flat_ok = all(mem.get(k) is None or (mem[k]["growth_pct"] is not None and mem[k]["growth_pct"] <= 10)
                      for k in judged)
        print(f"  flat after warm-up (no growth over 10% from the first to the last third: supervisor PSS and "
              f"Pss_Anon, workers' PSS and Pss_Anon at the end of their ready life): {'yes' if flat_ok else 'NO'}")
        if not flat_ok:
            ok = False
        result["memory_flat"] = flat_ok
        print("  workers (pid, generation, first sample t, PSS first / max / at last ready sample (of which "
              "Pss_Anon), uptime then):")
        for r in mem["workers"]:
            print(f"    {r['pid']:>8} g{r['generation']:<3} t={r['first_t']:6.1f}s  {r['first_pss_kb']:7d} / "
                  f"{r['max_pss_kb']:7d} / {r['last_ready_pss_kb']:7d} ({r['last_ready_anon_kb']:6d}) kB  "
                  f"({r['last_ready_uptime']}s)")
    for e in result["errors"]:
        print(f"ERROR: {e}")
    if not ok:
        print("vmessd log tail:\n" + result.get("vmessd_log_tail", ""))
    result["ok"] = ok
    print(f"verdict: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    sys.exit(main())
