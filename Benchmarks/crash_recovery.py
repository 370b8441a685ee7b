#!/usr/bin/env python3
"""Worker crash recovery: how long from a worker's death to a replacement that serves.

For each backtracer mode (--modes), each signal (--signals, default KILL, SEGV, ILL) and each trial:

  1. start a fresh `vmessd run --workers 1` (fresh, so that this death is the position's first and
     the respawn is not delayed by the crash-loop backoff), wait until its worker reports ready and a
     probe echo through the real v2ray client works;
  2. make it die: KILL/SEGV/ILL are sent with kill(2) (what `kill -SEGV PID` does); fault-SEGV and
     fault-ILL are genuine faults, injected with ptrace (the main thread resumes at address 0, or on a
     ud2 instruction), i.e. what a real bug looks like to the process and its signal handlers. The two
     differ under the Swift runtime's backtracer: after printing its report, its handler returns, which
     re-executes a faulting instruction (and then the process dies) but simply resumes after a signal
     that came from kill(2);
  3. from that instant, poll at ~1 ms:
       exit     the victim is a zombie or gone (/proc/PID/stat) — the process has finished dying,
       reaped   /proc/PID is gone (the supervisor waited for it),
       new pid  a new vmessd-worker child of the supervisor exists (/proc/SUP/task/*/children),
       ready    the admin socket (`vmessd ctl status --json`'s request, sent directly) lists the new
                pid as "ready",
       echo     a probe connection through the v2ray client — opened right after the signal, so it
                waits in the listening socket's queue, which the supervisor keeps — gets its echo
                (the first probe that fails is replaced by a new one).

Modes: "default" leaves the environment as it is (the Swift runtime's backtracer does what it does by
default); "bt-off" starts the supervisor with SWIFT_BACKTRACE=enable=no, which it passes on to its
workers (simulating the supervisor change that disables the backtracer for workers).

Goal: a replacement within 100 ms. Prints a table and writes Benchmarks/results/crash-recovery-<time>.json.
"""

import argparse
import os
import signal
import socket
import sys
import tempfile
import threading
import time

from benchlib import (built_from, REPO, START_TIMEOUT, Interrupted, Managed, admin_request, children_of, distinct_ports,
                      echo_check, machine_info, proc_comm, proc_state, raise_nofile, recv_exact, results_path,
                      start_async_targets, start_vmessd, stop_all, summarize, tail, v2ray_client_config,
                      v2ray_version, vmessd_config, wait_listening, wait_workers_ready, worker_pids, write_json)

POLL = 0.001

# ---- a genuine fault, injected with ptrace (x86_64 Linux) ----------------------------------------

PTRACE_PEEKTEXT, PTRACE_POKETEXT, PTRACE_GETREGS, PTRACE_SETREGS = 1, 4, 12, 13
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
REG_ORIG_RAX, REG_RIP = 15, 16   # indices in struct user_regs_struct (27 unsigned longs)


def inject_fault(pid, kind):
    """Makes the process's main thread really fault: attach, point rip at address 0 (SEGV: a genuine
    SEGV_MAPERR page fault) or write ud2 (0f 0b) at rip (ILL: a genuine illegal instruction), cancel
    any syscall restart, detach. The fault happens as the thread resumes, so the kernel delivers the
    signal exactly as for a bug in the code (si_code from the fault, not SI_USER as with kill(2))."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

    def pt(req, addr=None, data=None):
        ctypes.set_errno(0)
        r = libc.ptrace(req, pid, addr, data)
        e = ctypes.get_errno()
        if r == -1 and e:
            raise OSError(e, f"ptrace({req}): {os.strerror(e)}")
        return r

    regs = (ctypes.c_ulong * 27)()
    pt(PTRACE_ATTACH)
    try:
        os.waitpid(pid, getattr(os, "__WALL", 0x40000000))
        pt(PTRACE_GETREGS, None, ctypes.addressof(regs))
        regs[REG_ORIG_RAX] = (1 << 64) - 1   # -1: the kernel must not restart an interrupted syscall
        if kind == "SEGV":
            regs[REG_RIP] = 0
        else:
            rip = regs[REG_RIP]
            word = pt(PTRACE_PEEKTEXT, rip) & ((1 << 64) - 1)
            word = (word & ~0xFFFF) | 0x0B0F   # little endian: bytes 0f 0b = ud2
            pt(PTRACE_POKETEXT, rip, ctypes.c_void_p(word if word < (1 << 63) else word - (1 << 64)))
        pt(PTRACE_SETREGS, None, ctypes.addressof(regs))
    finally:
        pt(PTRACE_DETACH, None, None)


def probe_until_echo(port, t0, deadline, out):
    """Probes through the tunnel until one echo comes back; records the time since t0."""
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(max(0.5, deadline - time.monotonic()))
            with s:
                s.sendall(b"probe123")
                if recv_exact(s, 8) == b"probe123":
                    out["echo"] = time.monotonic() - t0
                    out["probe_attempts"] = attempts
                    return
        except Exception as e:  # noqa: BLE001
            out.setdefault("probe_errors", []).append(f"{time.monotonic() - t0:.3f}s: {type(e).__name__}: {e}")
            time.sleep(0.002)
    out["probe_attempts"] = attempts


def trial(args, bindir, sig, env_extra, workdir, tports, label, fault=None):
    sport, dport = distinct_ports(2)
    control = os.path.join(workdir, f"admin-{label}.sock")
    scfg = os.path.join(workdir, f"server-{label}.json")
    write_json(scfg, vmessd_config(sport))
    log = os.path.join(workdir, f"vmessd-{label}.log")
    managed = []
    out = {"label": label, "signal": f"fault-{fault}" if fault else sig.name, "loadavg_1m": os.getloadavg()[0]}
    try:
        srv = start_vmessd(bindir, scfg, 1, log, ["--control", control], env_extra=env_extra)
        managed.append(srv)
        wait_listening(sport, srv.proc, START_TIMEOUT)
        wait_workers_ready(control, 1)
        ccfg = os.path.join(workdir, f"client-{label}.json")
        write_json(ccfg, v2ray_client_config(sport, [(dport, tports["echo"])]))
        cli = Managed("v2ray-client", [args.v2ray, "-config", ccfg], os.path.join(workdir, f"v2ray-{label}.log"))
        managed.append(cli)
        wait_listening(dport, cli.proc, START_TIMEOUT)
        echo_check(dport, time.monotonic() + START_TIMEOUT)
        for _ in range(5):
            echo_check(dport, time.monotonic() + 5)
        victim = worker_pids(srv.pid)[0]
        out["victim"] = victim
        log_size0 = os.path.getsize(log)
        time.sleep(0.2)

        if fault:
            inject_fault(victim, fault)   # the fault happens as the thread resumes, at detach
            t0 = time.monotonic()
        else:
            t0 = time.monotonic()
            os.kill(victim, sig)
        probe = threading.Thread(target=probe_until_echo, args=(dport, t0, t0 + args.timeout, out), daemon=True)
        probe.start()
        new = None
        while time.monotonic() - t0 < args.timeout:
            now = time.monotonic() - t0
            st = proc_state(victim)
            if "exit" not in out and st in (None, "Z"):
                out["exit"] = now
            if "reaped" not in out and st is None:
                out["reaped"] = now
            if new is None:
                for p in children_of(srv.pid):
                    if p != victim and proc_comm(p) == "vmessd-worker" and proc_state(p) not in (None, "Z"):
                        new = p
                        out["new_pid"] = now
                        out["replacement"] = p
                        break
            if new is not None and "ready" not in out:
                try:
                    ws = admin_request(control, timeout=1.0)["status"]["workers"]
                    if any(w["pid"] == new and w["state"] == "ready" for w in ws):
                        out["ready"] = time.monotonic() - t0
                except (OSError, ValueError, KeyError, TypeError):
                    pass
            if all(k in out for k in ("exit", "reaped", "new_pid", "ready")) and not probe.is_alive():
                break
            if "echo" in out and "exit" not in out and now > out["echo"] + args.survive_wait:
                # The traffic is back and the victim still runs: it survived the signal (the Swift
                # backtracer's handler returned after its report; see the module comment).
                out["victim_survived"] = True
                out["victim_state"] = st
                break
            time.sleep(POLL)
        probe.join(max(0.0, args.timeout - (time.monotonic() - t0)))
        # What the crash left in the log (a backtrace, if the runtime printed one).
        time.sleep(0.3)
        with open(log, "rb") as f:
            f.seek(log_size0)
            added = f.read().decode("utf-8", "replace")
        out["log_bytes_after_signal"] = len(added)
        out["log_mentions_backtrace"] = ("Crash" in added or "backtrace" in added.lower() or "Thread 0" in added)
        out["log_excerpt"] = added[:1500]
        try:
            st = admin_request(control)["status"]
            out["status_after"] = [{k: w.get(k) for k in ("pid", "state", "restarts")} for w in st["workers"]]
        except Exception as e:  # noqa: BLE001
            out["status_after"] = repr(e)
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
        out["log_tail"] = tail(log, 40)
    finally:
        stop_all(managed)
    return out


def main():
    ap = argparse.ArgumentParser(description="Time from a worker's death to a serving replacement.")
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-rel", "release"))
    ap.add_argument("--v2ray", default="/usr/bin/v2ray")
    ap.add_argument("--signals", default="KILL,SEGV,ILL,fault-SEGV,fault-ILL",
                    help="comma-separated: signal names sent with kill(2), and fault-SEGV / fault-ILL, a genuine "
                         "fault injected with ptrace (default KILL,SEGV,ILL,fault-SEGV,fault-ILL)")
    ap.add_argument("--modes", default="default,bt-off",
                    help="backtracer modes: default (environment untouched), bt-off (SWIFT_BACKTRACE=enable=no), "
                         "bt-on (SWIFT_BACKTRACE=enable=yes)")
    ap.add_argument("--trials", type=int, default=3, help="trials per signal and mode (3)")
    ap.add_argument("--timeout", type=float, default=30.0, help="give up on one trial after this many seconds")
    ap.add_argument("--goal-ms", type=float, default=100.0)
    ap.add_argument("--survive-wait", type=float, default=5.0,
                    help="a victim still running this long after traffic came back has survived (5 s)")
    ap.add_argument("--vmessd-label", default="", help="what the binaries are (commit, patch), for the report")
    ap.add_argument("--json")
    ap.add_argument("--workdir")
    args = ap.parse_args()

    bindir = os.path.abspath(args.vmessd_bin_dir)
    raise_nofile()
    workdir = args.workdir or tempfile.mkdtemp(prefix="vmessd-crash-")
    os.makedirs(workdir, exist_ok=True)
    info = machine_info()
    info.update(v2ray=v2ray_version(args.v2ray), vmessd_bin_dir=bindir, vmessd_built_from=built_from(bindir), workdir=workdir, params=vars(args),
                env_SWIFT_BACKTRACE=os.environ.get("SWIFT_BACKTRACE"))
    print(f"# crash_recovery\n- date {info['date']}, commit {info['repo_commit']}"
          + (f" ({args.vmessd_label})" if args.vmessd_label else "")
          + f", load {os.getloadavg()[0]:.1f}\n- vmessd {bindir} (built from {info['vmessd_built_from']})\n- SWIFT_BACKTRACE in our environment: "
          f"{info['env_SWIFT_BACKTRACE']!r}\n- logs: {workdir}", flush=True)
    result = {"machine": info, "trials": [], "errors": []}
    managed = []

    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    modes = {"default": None, "bt-off": {"SWIFT_BACKTRACE": "enable=no"}, "bt-on": {"SWIFT_BACKTRACE": "enable=yes"}}
    try:
        tgt, tports, _ = start_async_targets(workdir)
        managed.append(tgt)
        for mode in args.modes.split(","):
            for name in args.signals.split(","):
                name = name.strip().upper()
                fault = name.removeprefix("FAULT-") if name.startswith("FAULT-") else None
                sig = None if fault else signal.Signals["SIG" + name.removeprefix("SIG")]
                for i in range(args.trials):
                    label = f"{mode}-{'fault-' + fault if fault else sig.name}-{i}"
                    r = trial(args, bindir, sig, modes[mode], workdir, tports, label, fault)
                    r["mode"] = mode
                    result["trials"].append(r)

                    def ms(k):
                        return f"{r[k] * 1000:.1f}" if k in r else "never"

                    print(f"  {label}: exit {ms('exit')} ms, reaped {ms('reaped')}, new pid {ms('new_pid')}, "
                          f"ready {ms('ready')}, echo {ms('echo')} ms (load {r['loadavg_1m']:.1f})"
                          + (f"; backtrace in log ({r['log_bytes_after_signal']} bytes)" if r.get("log_mentions_backtrace") else "")
                          + ("; THE WORKER SURVIVED (still running, same pid, serving)" if r.get("victim_survived") else "")
                          + (f"; ERROR {r['error']}" if r.get("error") else ""), flush=True)
    except (KeyboardInterrupt, Interrupted) as e:
        result["errors"].append(f"interrupted: {e!r}")
    finally:
        stop_all(managed)

    print("\n## Result (ms from the signal; median / max over trials)")
    print("| mode | signal | exit | reaped | new worker pid | ready | first echo | within goal |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    summary = {}
    ok_all = True
    for mode in args.modes.split(","):
        for name in args.signals.split(","):
            name = name.strip().upper()
            sig = ("fault-" + name.removeprefix("FAULT-")) if name.startswith("FAULT-") else "SIG" + name.removeprefix("SIG")
            rs = [r for r in result["trials"] if r["mode"] == mode and r["signal"] == sig]
            row = {}
            cells = []
            for k in ("exit", "reaped", "new_pid", "ready", "echo"):
                vals = [r[k] * 1000 for r in rs if k in r]
                row[k] = summarize(vals)
                missing = len(rs) - len(vals)
                cells.append((f"{row[k]['p50']:.1f} / {row[k]['max']:.1f}" if vals else "never")
                             + (f" ({missing} never)" if vals and missing else ""))
            within = all(k in r and r[k] * 1000 <= args.goal_ms for r in rs for k in ("new_pid", "echo")) and bool(rs)
            row["within_goal"] = within
            row["survived"] = sum(1 for r in rs if r.get("victim_survived"))
            if row["survived"]:
                cells[-1] += f"; victim survived in {row['survived']}/{len(rs)}"
            ok_all = ok_all and within
            summary[f"{mode}/{sig}"] = row
            print(f"| {mode} | {sig} | " + " | ".join(cells) + f" | {'yes' if within else 'NO'} |")
    result["summary"] = summary
    result["ok"] = ok_all and not result["errors"]
    for r in result["trials"]:
        if r.get("error"):
            print(f"\n{r['label']}: {r['error']}\n{r.get('log_tail', '')}")
    bt = [r for r in result["trials"] if r.get("log_mentions_backtrace")]
    if bt:
        print(f"\nbacktrace printed by {len(bt)} crashed worker(s); first excerpt ({bt[0]['label']}):\n"
              + bt[0]["log_excerpt"][:800])
    print(f"verdict (replacement pid and first echo within {args.goal_ms:g} ms in every trial of every mode run): "
          f"{'PASS' if result['ok'] else 'FAIL'}")
    path = args.json or results_path("crash-recovery")
    write_json(path, result)
    print(f"JSON: {path}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
