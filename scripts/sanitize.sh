#!/usr/bin/env bash
# The unit and handler suites (SharedTests, WorkerTests, SupervisorTests) under a sanitizer:
#   scripts/sanitize.sh address   # AddressSanitizer, build dir .build-asan
#   scripts/sanitize.sh thread    # ThreadSanitizer, build dir .build-tsan
# Extra arguments go to `swift test` (e.g. `scripts/sanitize.sh thread --filter WorkerTests`; a later
# --filter narrows the default one). Each sanitizer has its own scratch path, because everything,
# dependencies included, is compiled with the sanitizer's instrumentation; a first run builds from
# scratch. Exits with swift test's status, or 1 when it passed but the log holds a sanitizer report.
# The interop and end-to-end suites are left out: they time real binaries, which the instrumentation
# slows several-fold, and the handler tests already drive the same code in-process.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

kind="${1:-}"
case "$kind" in
    address) scratch=.build-asan ;;
    thread) scratch=.build-tsan ;;
    *) echo "usage: scripts/sanitize.sh address|thread [swift test arguments…]" >&2; exit 2 ;;
esac
shift

scripts/install-deps.sh

# ASan stops the test process at its first report (the code is not built to recover); TSan goes on
# after a report, so one run shows every race, and exits 66 at the end.
# No LeakSanitizer by default: it cannot follow the pointers Swift's runtime stores with extra bits
# (weak-reference side tables, multi-payload enums), so on Linux it reports live Swift objects as
# leaks, even in an empty test bundle (llvm/llvm-project#56751, swift-corelibs-xctest#342 and #534);
# a suppression would have to list every object type that may sit behind one. For a manual look:
# ASAN_OPTIONS=detect_leaks=1 scripts/sanitize.sh address.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0:exitcode=66}"

log="$(mktemp "${TMPDIR:-/tmp}/vmessd-sanitize.XXXXXX.log")"
trap 'rm -f "$log"' EXIT
set +e
swift test --sanitize="$kind" --scratch-path "$scratch" \
    --filter 'SharedTests|WorkerTests|SupervisorTests' "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

reports=$(grep -cE "^(==[0-9]+==ERROR: (Address|Leak)Sanitizer|WARNING: ThreadSanitizer)" "$log" || true)
echo
echo "==================== sanitize ($kind) summary ===================="
grep -E "^[[:space:]]*Executed [0-9]+ tests?" "$log" | tail -n 1 | sed 's/^[[:space:]]*/XCTest: /' || true
echo "sanitizer reports: $reports"
# A child process (a spawned worker) or a report after XCTest chose its exit status could otherwise
# leave a finding with a zero status.
if [ "$status" -eq 0 ] && [ "$reports" -gt 0 ]; then status=1; fi
if [ "$status" -eq 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL (status $status)"; fi
exit "$status"
