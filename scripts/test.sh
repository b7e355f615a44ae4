#!/usr/bin/env bash
# Sets everything up and runs every test, in legs:
#
#   plain   the Release-with-debug-info build (build/): CTest (GoogleTest
#           layers), then pytest on tests/
#   asan    the same suite against an ASan+UBSan build (build-asan/), leak
#           detection on in every aurora-host and test binary; pytest runs in
#           a Python with the sanitizer runtime preloaded, so the aurora
#           module and python_policy run instrumented too
#   tsan    ThreadSanitizer (build-tsan/) over the multi-threaded tests: the
#           host's and plugins' GoogleTests and the pytest suites that drive
#           plugin threads (tests/host, tests/plugins, tests/python)
#   conformance  Autobahn|Testsuite, every case (RFC 6455 and RFC 7692), against
#           the plain build's aurora-host with echo in raw mode
#           (scripts/autobahn.sh; sections 1-7 and 10 also run in every
#           pytest leg, tests/conformance)
#   fuzz    every libFuzzer harness for a bounded time (scripts/fuzz.sh)
#
#   scripts/test.sh                  every leg (what .ci/run runs)
#   scripts/test.sh --legs plain     one leg, or a comma list: --legs plain,asan
#   AURORA_FUZZ_SECONDS=60 scripts/test.sh --legs fuzz
#
# Exit status is non-zero if any leg failed; the summary at the end gives
# the count of tests each leg ran. docs/development.md has the details.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AURORA_FERRETDB="$ROOT/.cache/bin/ferretdb"
PY="$ROOT/.cache/venv/bin/python"

legs="plain,conformance,asan,tsan,fuzz"
while (($#)); do
    case $1 in
        --legs) legs="${2:?--legs needs a list}"; shift 2 ;;
        --legs=*) legs="${1#*=}"; shift ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for leg in ${legs//,/ }; do
    case $leg in plain|conformance|asan|tsan|fuzz) ;; *) echo "test.sh: unknown leg '$leg'" >&2; exit 2 ;; esac
done

"$ROOT/scripts/bootstrap.sh" || exit 1
# The conformance suite's Python 2.7 environment (.cache/autobahn, made once):
# installed here so that no test pays for it.
if [[ ${legs//fuzz/} =~ [a-z] ]]; then
    "$ROOT/scripts/autobahn.sh" --install-only >/dev/null || exit 1
fi

declare -A result counts
failed=0

# "N passed" etc. from the last lines of a pytest or ctest log.
pytest_count() { grep -Eo '[0-9]+ (passed|failed|errors?)' "$1" | awk '{s+=$1} END {print s+0}'; }
ctest_count() { grep -Eo 'out of [0-9]+' "$1" | tail -n1 | awk '{print $3+0}'; }

# The sanitizer runtimes a binary links (ldd), as an LD_PRELOAD value.
sanitizer_runtimes() {
    ldd "$1" | awk '$1 ~ /^lib(asan|ubsan|tsan)/ && $2 == "=>" {print $3}' | paste -sd: -
}

# run_suite LEG BUILD_DIR CTEST_ARGS PYTEST_ARGS [PRELOAD]
run_suite() {
    local leg=$1 build=$2 ctest_args=$3 pytest_args=$4 preload=${5:-}
    local log="$ROOT/.cache/test-$leg"
    local ctest_rc=0
    : >"$log.ctest"
    if [[ $ctest_args != "-" ]]; then
    echo "== $leg: ctest ($build) =="
    # Test binaries get the strict sanitizer options (leaks are errors).
    (cd "$build" && ASAN_OPTIONS="${AURORA_CHILD_ENV_ASAN_OPTIONS:-${ASAN_OPTIONS:-}}" \
        LSAN_OPTIONS="${AURORA_CHILD_ENV_LSAN_OPTIONS:-${LSAN_OPTIONS:-}}" \
        ctest --output-on-failure -j "$(nproc)" $ctest_args) 2>&1 | tee "$log.ctest"
    ctest_rc=${PIPESTATUS[0]}
    fi
    echo "== $leg: pytest =="
    # With a preload, only pytest's own Python gets it: tests/support starts
    # aurora-host children with AURORA_CHILD_ENV_* restored (their sanitizer
    # options, leak detection on, no preload).
    (cd "$ROOT" && env AURORA_BUILD_DIR="$build" ${preload:+"LD_PRELOAD=$preload"} \
        "$PY" -m pytest $pytest_args) 2>&1 | tee "$log.pytest"
    local pytest_rc=${PIPESTATUS[0]}
    counts[$leg]="ctest $(ctest_count "$log.ctest"), pytest $(pytest_count "$log.pytest")"
    if ((ctest_rc != 0 || pytest_rc != 0)); then
        result[$leg]="FAILED (ctest exit $ctest_rc, pytest exit $pytest_rc)"
        failed=1
    else
        result[$leg]="ok"
    fi
}

build() {  # build LEG DIR SANITIZE
    echo "== $1: build ($2) =="
    if ! AURORA_BUILD_DIR="$2" AURORA_SANITIZE="$3" "$ROOT/scripts/build.sh"; then
        result[$1]="FAILED (build)"
        counts[$1]="-"
        failed=1
        return 1
    fi
}

for leg in ${legs//,/ }; do
    case $leg in
    plain)
        build plain "${AURORA_BUILD_DIR:-$ROOT/build}" "" &&
            run_suite plain "${AURORA_BUILD_DIR:-$ROOT/build}" "-LE python" "tests"
        ;;
    asan)
        # The sanitizer legs look at Aurora's code, which is the same on either
        # store: they run the store suites on FerretDB's SQLite backend only
        # (tests/support/store_backends.py); the plain leg runs both.
        export AURORA_STORE_BACKENDS=sqlite
        dir="$ROOT/build-asan"
        build asan "$dir" "address,undefined" || continue
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
        # Test binaries and aurora-host: leaks are errors. pytest's Python is
        # not leak-clean itself, so it runs with leak detection off and gives
        # its children the strict options back (tests/support/aurora_host.py).
        export AURORA_CHILD_ENV_ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1"
        export AURORA_CHILD_ENV_LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
        ASAN_OPTIONS="detect_leaks=0" \
            run_suite asan "$dir" "-LE python" "tests --ignore=tests/bench" \
            "$(sanitizer_runtimes "$dir/host/aurora-host")"
        unset AURORA_CHILD_ENV_ASAN_OPTIONS AURORA_CHILD_ENV_LSAN_OPTIONS UBSAN_OPTIONS AURORA_STORE_BACKENDS
        ;;
    tsan)
        dir="$ROOT/build-tsan"
        build tsan "$dir" "thread" || continue
        export TSAN_OPTIONS="suppressions=$ROOT/tests/tsan.supp:second_deadlock_stack=1:halt_on_error=0:exitcode=66"
        export AURORA_STORE_BACKENDS=sqlite  # as in the asan leg
        export AURORA_CHILD_ENV_TSAN_OPTIONS="$TSAN_OPTIONS"
        # Hosts and plugins run in instrumented aurora-host processes: pytest
        # itself needs no runtime for these.
        run_suite tsan "$dir" "-L unit|plugin|host -LE python" "tests/host tests/plugins"
        # tests/python loads the module and plugins into pytest's Python: the
        # runtime is preloaded there, and its reports go to files (pytest
        # would swallow a passing test's stderr), printed here.
        rm -rf "$ROOT/.cache/tsan-python" && mkdir -p "$ROOT/.cache/tsan-python"
        TSAN_OPTIONS="$TSAN_OPTIONS:log_path=$ROOT/.cache/tsan-python/report" \
            run_suite tsan-python "$dir" "-" "tests/python" "$(sanitizer_runtimes "$dir/host/aurora-host")"
        if compgen -G "$ROOT/.cache/tsan-python/report*" >/dev/null; then
            cat "$ROOT"/.cache/tsan-python/report*
        fi
        unset TSAN_OPTIONS AURORA_CHILD_ENV_TSAN_OPTIONS AURORA_STORE_BACKENDS
        ;;
    conformance)
        dir="${AURORA_BUILD_DIR:-$ROOT/build}"
        build conformance "$dir" "" || continue
        echo "== conformance: Autobahn|Testsuite, every case =="
        if "$ROOT/scripts/autobahn.sh" --host "$dir" 2>&1 | tee "$ROOT/.cache/test-conformance.log"; then
            result[conformance]="ok"
        else
            result[conformance]="FAILED"
            failed=1
        fi
        counts[conformance]="$(grep -Eo 'will run [0-9]+ test cases' "$ROOT/.cache/autobahn/reports/wstest.log" 2>/dev/null |
            grep -Eo '[0-9]+' || echo 0) Autobahn cases"
        ;;
    fuzz)
        echo "== fuzz: every harness, ${AURORA_FUZZ_SECONDS:-30} s each =="
        if "$ROOT/scripts/fuzz.sh" --seconds "${AURORA_FUZZ_SECONDS:-30}" 2>&1 | tee "$ROOT/.cache/test-fuzz.log"; then
            result[fuzz]="ok"
        else
            result[fuzz]="FAILED"
            failed=1
        fi
        counts[fuzz]="$(grep -c '^fuzz_.*execs' "$ROOT/.cache/test-fuzz.log" 2>/dev/null || echo 0) harnesses"
        ;;
    esac
done

echo
echo "== summary: tests run per leg =="
for leg in "${!result[@]}"; do
    printf '  %-12s %-40s %s\n' "$leg" "${counts[$leg]:-}" "${result[$leg]}"
done | sort
exit $failed
