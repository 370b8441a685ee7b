#!/usr/bin/env bash
# Build (release) and start vmessd. Arguments go to `vmessd run`; with none, vmessd uses ./config.json,
# then /etc/vmessd/config.json, else an embedded demo config on 127.0.0.1 and prints its share link.
#   scripts/run.sh                       # demo
#   scripts/run.sh -c config.json --workers 4
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

scripts/install-deps.sh
swift build -c release
exec .build/release/vmessd run "$@"
