#!/bin/sh
# Builds the routing benchmark with -O from the Config and Routing sources and runs it.
# Usage: Benchmarks/routing/run.sh [GEODATA_DIR]   (a directory holding a full geosite.dat and geoip.dat)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${TMPDIR:-/tmp}/vmessd-routing-bench
PATH=/opt/swift/usr/bin:$PATH swiftc -O -module-name RoutingBench \
    "$root"/Sources/Shared/Config/*.swift "$root"/Sources/Shared/Routing/*.swift "$root/Benchmarks/routing/main.swift" -o "$out"
exec "$out" "$@"
