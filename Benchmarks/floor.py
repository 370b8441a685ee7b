#!/usr/bin/env python3
"""What any proxy server must pay on this machine, beside what vmessd and sing-box pay, in one run.

    python3 Benchmarks/floor.py [--vmessd-bin-dir .build-bench/release] [--bulk-mib 512] [--conns 2000]

Rows (server CPU, as compare.py measures it: utime+stime of the server's processes):
- **AES-128-GCM, one pass**: `openssl speed -evp aes-128-gcm -bytes 16384` (libcrypto, one core),
  as CPU-s per GB: what encrypting or decrypting the payload once costs at the least.
- **C relay**: Benchmarks/floor_relay.c, built here with the system C compiler: one thread,
  epoll, no protocol, one read buffer per direction (64 KiB and 256 KiB). The python client talks
  to it directly (no v2ray client in front). Its CPU per GB and per connection is the kernel's
  share of relaying (two socket copies, loopback TCP on both sockets, accept, connect, close),
  which every proxy pays and none can avoid with plain sockets.
- **vmessd, sing-box** behind the v2ray client as in compare.py, with the client's body security
  `none` (VMess framing and the AEAD header, no payload cipher) and `aes-128-gcm` (compare.py's).

Every figure comes from this one run; compare ratios within it. Needs what compare.py needs, plus a
C compiler (`cc`, or the Swift toolchain's `clang`) and the `openssl` command for the AES row
(without them those rows say n/a). Loopback only; every wait is bounded (compare.py's helpers).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (HERE, REPO, Interrupted, Managed, echo_check, free_port, machine_info,  # noqa: E402
                      parse_args_or_run_targets, raise_nofile, results_path, singbox_binary, start_targets, wait_listening,
                      write_json)
import compare  # noqa: E402


def aes_pass_cpu_s_per_gb():
    """CPU-s per GB of one AES-128-GCM pass over 16 KiB records, from `openssl speed`, or None."""
    if not shutil.which("openssl"):
        return None
    r = subprocess.run(["openssl", "speed", "-evp", "aes-128-gcm", "-bytes", "16384", "-seconds", "2"],
                       capture_output=True, text=True, timeout=60)
    for line in r.stdout.splitlines():
        if line.upper().startswith("AES-128-GCM"):
            rate_kb = float(line.split()[-1].rstrip("k"))  # 1000s of bytes per second
            return 1e9 / (rate_kb * 1000)
    return None


def build_relay(workdir):
    cc = shutil.which("cc") or shutil.which("clang")
    if not cc:
        return None, "no C compiler (cc or clang) on the PATH"
    out = os.path.join(workdir, "floor_relay")
    r = subprocess.run([cc, "-O2", "-o", out, os.path.join(HERE, "floor_relay.c")], capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        return None, f"{cc} failed: {r.stderr.strip()}"
    return out, None


def measure_relay(binary, buffer_bytes, targets, args, workdir, managed):
    """CPU per GB each way (bulk target) and per connection (echo target) of the C relay."""
    res = {}
    for target in ("bulk", "echo"):
        port = free_port()
        relay = Managed(f"relay-{buffer_bytes}-{target}", [binary, str(port), str(targets[target]), str(buffer_bytes)],
                        os.path.join(workdir, f"relay-{buffer_bytes}-{target}.log"))
        managed.append(relay)
        try:
            wait_listening(port, relay.proc, 15)
            if target == "bulk":
                compare.bulk_download(port, 16 << 20)  # warm-up
                res["throughput"] = compare.measure_throughput(relay, port, args.bulk_mib << 20, args.repeat)
            else:
                echo_check(port, time.monotonic() + 5)
                res["connections"] = compare.measure_connections(relay, port, args.conns)
        finally:
            relay.stop()
            managed.remove(relay)
    return res


def row(label, res):
    t = res.get("throughput", {})
    c = res.get("connections", {})

    def f(v, fmt):
        return format(v, fmt) if v is not None else "n/a"
    return (f"| {label} | {f(t.get('download', {}).get('cpu_s_per_gb'), '.3f')} | "
            f"{f(t.get('upload', {}).get('cpu_s_per_gb'), '.3f')} | {f(c.get('cpu_ms_per_conn'), '.3f')} |")


def main():
    ap = argparse.ArgumentParser(description="Floors: what relaying costs any server here, beside vmessd and sing-box.")
    ap.add_argument("--vmessd-bin-dir", default=os.path.join(REPO, ".build-bench", "release"))
    ap.add_argument("--workers", type=int, default=2, help="vmessd worker processes (default 2)")
    ap.add_argument("--v2ray", default="/usr/bin/v2ray")
    ap.add_argument("--sing-box", default=singbox_binary())
    ap.add_argument("--bulk-mib", type=int, default=512, help="MiB per bulk transfer (512)")
    ap.add_argument("--repeat", type=int, default=3, help="bulk transfers per direction (3)")
    ap.add_argument("--conns", type=int, default=2000, help="short connections for CPU per connection (2000)")
    ap.add_argument("--json", help="JSON output (default Benchmarks/results/floor-<time>.json)")
    args = parse_args_or_run_targets(ap)
    raise_nofile()
    workdir = tempfile.mkdtemp(prefix="vmessd-floor-")
    info = machine_info()
    print(f"# floors, {info['date']}, {info['nproc']} CPUs, {info['cpu_model']}, HEAD {info['repo_commit']}; "
          f"logs in {workdir}", flush=True)

    results = {"machine": info, "aes_128_gcm_pass_cpu_s_per_gb": aes_pass_cpu_s_per_gb(), "rows": {}}
    managed = []
    try:
        targets = start_targets(__file__, workdir, managed)
        relay, why = build_relay(workdir)
        for size in (65536, 262144):
            key = f"C relay, {size // 1024} KiB buffers"
            print(f"== {key} ==", flush=True)
            results["rows"][key] = measure_relay(relay, size, targets, args, workdir, managed) if relay else {"error": why}
        for kind in ("vmessd", "sing-box"):
            for security in ("none", "aes-128-gcm"):
                key = f"{kind}, security {security}"
                print(f"== {key} ==", flush=True)
                run_args = types.SimpleNamespace(**vars(args), security=security)
                res = compare.run_server(kind, run_args, targets, workdir, managed, steps=("connections", "throughput"),
                                         label=f"{kind}-{security}")
                results["rows"][key] = {**res["measurements"], **({"errors": res["errors"]} if res["errors"] else {})}
    except (Interrupted, KeyboardInterrupt) as e:
        print(f"interrupted: {e}", flush=True)
        return 130
    finally:
        for m in reversed(managed):
            m.stop()

    aes = results["aes_128_gcm_pass_cpu_s_per_gb"]
    lines = ["| server CPU | download CPU-s/GB | upload CPU-s/GB | ms per new connection |", "|---|---:|---:|---:|",
             f"| AES-128-GCM, one pass (openssl speed, 16 KiB) | {aes:.3f} | {aes:.3f} | |" if aes
             else "| AES-128-GCM, one pass | n/a | n/a | |"]
    lines += [row(k, v) for k, v in results["rows"].items()]
    table = "\n".join(lines)
    print("\n" + table, flush=True)
    results["table_markdown"] = table
    path = args.json or results_path("floor")
    write_json(path, results)
    print(f"\nJSON: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
