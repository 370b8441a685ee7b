#!/usr/bin/env bash
# libFuzzer targets for vmessd's parsers (Fuzz/, one executable per parser): build, then run each
# target (or the named ones) for a time or a number of executions, with its committed seed corpus.
#
#   scripts/fuzz.sh [--time SECONDS | --runs N] [TARGET…]   default: 60 s per target, every target
#   scripts/fuzz.sh --ci                                    CI: 12 s per target
#   scripts/fuzz.sh --seeds                                 regenerate Fuzz/Corpus/* from the targets
#   scripts/fuzz.sh --list                                  the target names
#   --no-build: use the binaries already in Fuzz/.build/debug (parallel runs of this script)
#
# Inputs the fuzzer finds go to Fuzz/.build/fuzz/TARGET/corpus (gitignored), crashes, hangs and
# leaks to Fuzz/.build/fuzz/TARGET/crashes/. Exits non-zero when the build fails or any target found
# anything. Reproduce a crash with: Fuzz/.build/debug/TARGET FILE
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

all_targets=(FuzzAEADHeader FuzzLegacyHeader FuzzBodyDecoder FuzzMuxServer FuzzMuxClient FuzzWebSocket
             FuzzUpgradeRequest FuzzUpgradeResponse FuzzSOCKS FuzzHTTPProxy FuzzConfig FuzzControlMessage
             FuzzAdminMessages FuzzGeoData FuzzSniffer FuzzDNSMessage FuzzTCPHTTPHeader FuzzProxyProtocol
             FuzzSwitchAccount FuzzGunHunk FuzzUnixListen FuzzKCP)
seconds=60
runs=""
seeds=false
build=true
time_given=false
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --ci) seconds=12 ;;
        --time) seconds="$2"; time_given=true; shift ;;
        --runs) runs="$2"; shift ;;
        --seeds) seeds=true ;;
        --no-build) build=false ;;
        --list) printf '%s\n' "${all_targets[@]}"; exit 0 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        Fuzz*) targets+=("$1") ;;
        *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

# Coverage instrumentation and ASan reach every Swift module of the build (the parsers in Shared and
# Worker included), which is why the fuzz package has its own build directory. One -sanitize= with
# both values: swiftc keeps only the last -sanitize= option, so `-sanitize=fuzzer -sanitize=address`
# silently builds without coverage (libFuzzer then warns "Is the code instrumented for coverage?").
# -O on top of the debug configuration (which keeps -enable-testing for the @testable imports): the
# crypto in the VMess paths runs several times faster, and checks (preconditions, bounds, overflow)
# stay in.
swift_flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -O)
# The build plan is cached per package, and a source file added to the main package (a path
# dependency here) is not always noticed: touching the fuzz manifest makes SwiftPM plan afresh.
$build && touch Fuzz/Package.swift
echo "== building the fuzz targets (Fuzz/.build, ${swift_flags[*]})"
if $build && ! swift build --package-path Fuzz -c debug "${swift_flags[@]}"; then
    echo "fuzz.sh: BUILD FAILED" >&2
    exit 1
fi
bin=Fuzz/.build/debug

if $seeds; then
    for t in "${targets[@]}"; do
        rm -rf "Fuzz/Corpus/$t"
        VMESSD_FUZZ_WRITE_SEEDS="Fuzz/Corpus/$t" "$bin/$t" </dev/null
        echo "$t: $(ls "Fuzz/Corpus/$t" | wc -l) seeds"
    done
    exit 0
fi

failed=()
summary=()
for t in "${targets[@]}"; do
    work="Fuzz/.build/fuzz/$t"
    mkdir -p "$work/corpus" "$work/crashes"
    # --runs alone: that many executions; with --time too, whichever limit comes first.
    limit=(-max_total_time="$seconds")
    [ -n "$runs" ] && { $time_given && limit+=(-runs="$runs") || limit=(-runs="$runs"); }
    echo "== $t (${limit[*]})"
    log="$work/last-run.log"
    set +e
    # stdin from /dev/null: a fuzzed config naming /dev/stdin as a certificate file must not block.
    "$bin/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/crashes/" "$work/corpus" "Fuzz/Corpus/$t" </dev/null >"$log" 2>&1
    status=$?
    set -e
    if ! grep -q "^INFO: Loaded [0-9]* modules" "$log"; then
        # libFuzzer runs uninstrumented code too, blindly; that must not pass for a fuzz run.
        echo "$t: NO COVERAGE INSTRUMENTATION (see $log)" >&2
        status=99
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    line="$t: status $status, ${execs:-?} executions, ${rate:-?} exec/s"
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        line="$line — FOUND A PROBLEM (see $log, artifacts in $work/crashes/)"
        grep -E "ERROR: |SUMMARY: |Fatal error|Precondition failed|==[0-9]+==" "$log" | head -n 8 || true
    fi
    touch "$work/corpus"
    summary+=("$line")
    echo "$line"
done

echo
echo "==================== fuzz summary ===================="
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "RESULT: FAIL (${failed[*]})"
    exit 1
fi
echo "RESULT: PASS"
