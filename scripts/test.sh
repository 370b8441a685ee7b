#!/usr/bin/env bash
# The whole test suite: install dependencies, build (debug), run `swift test` (extra arguments are
# passed through, e.g. `scripts/test.sh --filter InteropTests`), then, for a full run, a short fuzz
# run (scripts/fuzz.sh --ci) and the unit and handler suites under AddressSanitizer
# (scripts/sanitize.sh address). Exits with swift test's status, or a later step's if only that failed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

scripts/install-deps.sh
swift build

log="$(mktemp "${TMPDIR:-/tmp}/vmessd-test.XXXXXX.log")"
trap 'rm -f "$log"' EXIT
set +e
swift test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

echo
echo "==================== test summary ===================="
# XCTest prints one "Executed …" line per suite; the last one is the total. swift-testing prints its own.
grep -E "^[[:space:]]*Executed [0-9]+ tests?" "$log" | tail -n 1 | sed 's/^[[:space:]]*/XCTest:        /' || true
grep -E "Test run with [0-9]+ tests?" "$log" | tail -n 1 | sed 's/^/swift-testing: /' || true
failed=$(grep -E "^Test Case '.*' failed" "$log" | sed -E "s/^Test Case '(.*)' failed.*/\1/" | sort -u || true)
skipped=$(grep -E "^Test Case '.*' skipped" "$log" | sed -E "s/^Test Case '(.*)' skipped.*/\1/" | sort -u || true)
if [ -n "$skipped" ]; then
    echo "skipped:"; echo "$skipped" | sed 's/^/  /'
fi
if [ -n "$failed" ]; then
    echo "failed:"; echo "$failed" | sed 's/^/  /'
fi
if [ "$status" -eq 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL (swift test exit status $status)"; fi

# A short fuzz run of every parser (scripts/fuzz.sh --ci, about 12 s per target) after a full test
# run; skipped for filtered runs (arguments given) and with VMESSD_SKIP_FUZZ=1. A fuzz failure fails
# the script, but never hides swift test's own status, which wins when both fail.
if [ $# -eq 0 ] && [ "${VMESSD_SKIP_FUZZ:-0}" != "1" ]; then
    echo
    set +e
    scripts/fuzz.sh --ci
    fuzz_status=$?
    set -e
    if [ "$status" -eq 0 ] && [ "$fuzz_status" -ne 0 ]; then
        echo "RESULT: FAIL (scripts/fuzz.sh --ci exit status $fuzz_status)"
        status=$fuzz_status
    fi
fi

# The unit and handler suites under AddressSanitizer (scripts/sanitize.sh address:
# about 17 min from a fresh clone on 2 shared vCPUs, mostly the instrumented build in .build-asan);
# same rules as the fuzz step, VMESSD_SKIP_SANITIZE=1 to skip. ThreadSanitizer (scripts/sanitize.sh
# thread) costs as much again and is left to developers, to keep CI well inside its time budget.
if [ $# -eq 0 ] && [ "${VMESSD_SKIP_SANITIZE:-0}" != "1" ]; then
    echo
    sanitize_status=0
    scripts/sanitize.sh address || sanitize_status=$?
    if [ "$status" -eq 0 ] && [ "$sanitize_status" -ne 0 ]; then
        echo "RESULT: FAIL (scripts/sanitize.sh address exit status $sanitize_status)"
        status=$sanitize_status
    fi
fi
exit "$status"
