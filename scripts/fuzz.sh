#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz into build-fuzz/ (clang,
# -fsanitize=fuzzer,address,undefined) and runs each of them for a bounded
# time. docs/development.md ("Fuzzing") says what each one covers.
#
#   scripts/fuzz.sh                       every harness, 30 s each (what CI runs)
#   scripts/fuzz.sh --seconds 120         every harness, 120 s each
#   scripts/fuzz.sh --long --seconds 3600 a long run (--long alone: 1 h each)
#   scripts/fuzz.sh --only fuzz_http_head [--only ...]
#   scripts/fuzz.sh --build-only          build, run nothing
#
# Each harness runs on a working corpus in .cache/fuzz/corpus/<name>, seeded
# from tests/fuzz/corpus/<name> (the tree is never written to), with
# tests/fuzz/<name>.dict when there is one. Leak detection is on; a crash, a
# leak, a sanitizer report or a timeout (10 s for one input) stops that
# harness, its input is written to .cache/fuzz/crashes/<name>/ and the script
# exits 1 after running the others. Per harness it prints executions, corpus
# size and time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AURORA_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
WORK="$ROOT/.cache/fuzz"

seconds=""
long=0
build_only=0
only=()
while (($#)); do
    case $1 in
        --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
        --seconds=*) seconds="${1#*=}"; shift ;;
        --long) long=1; shift ;;
        --only) only+=("${2:?--only needs a harness name}"); shift 2 ;;
        --only=*) only+=("${1#*=}"); shift ;;
        --build-only) build_only=1; shift ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if [[ -z $seconds ]]; then seconds=$((long ? 3600 : 30)); fi
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "fuzz.sh: --seconds must be a positive integer" >&2; exit 2; }

# --- build ----------------------------------------------------------------------
# clang and its libFuzzer runtime come from Debian (scripts/bootstrap.sh).
have_toolchain() {
    command -v clang++ >/dev/null && command -v cmake >/dev/null && command -v ninja >/dev/null &&
        [[ -n "$(find "$(clang++ -print-resource-dir)" -name 'libclang_rt.fuzzer-*.a' 2>/dev/null | head -n1)" ]]
}
if ! have_toolchain; then
    echo "fuzz.sh: clang, its libFuzzer runtime or the build tools are missing: running scripts/bootstrap.sh" >&2
    "$ROOT/scripts/bootstrap.sh"
    have_toolchain || { echo "fuzz.sh: still no clang with libFuzzer after bootstrap" >&2; exit 1; }
fi

mkdir -p "$WORK"
if [[ ! -f $BUILD/build.ninja || ${AURORA_RECONFIGURE:-0} == 1 ]]; then
    # Asserts stay on (no NDEBUG): an assert is one more invariant to break.
    cmake -S "$ROOT" -B "$BUILD" -G Ninja \
        -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g" \
        -DAURORA_FUZZ=ON -DAURORA_BUILD_TESTS=OFF -DAURORA_BUILD_PYTHON=OFF \
        -DAURORA_WERROR="${AURORA_WERROR:-ON}" >"$WORK/cmake-configure.log" ||
        { cat "$WORK/cmake-configure.log"; exit 1; }
fi
cmake --build "$BUILD" -j "${AURORA_FUZZ_JOBS:-2}" --target aurora_fuzzers

all=()
for src in "$ROOT"/tests/fuzz/fuzz_*.cpp; do all+=("$(basename "$src" .cpp)"); done
if ((${#only[@]})); then
    for name in "${only[@]}"; do
        [[ " ${all[*]} " == *" $name "* ]] || { echo "fuzz.sh: no harness '$name' (have: ${all[*]})" >&2; exit 2; }
    done
    names=("${only[@]}")
else
    names=("${all[@]}")
fi
((build_only)) && exit 0

# --- run --------------------------------------------------------------------------
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

failed=()
total_execs=0
start_all=$SECONDS
printf 'fuzz.sh: %d harness(es), %d s each\n' "${#names[@]}" "$seconds"
for name in "${names[@]}"; do
    corpus="$WORK/corpus/$name"
    crashes="$WORK/crashes/$name"
    log="$WORK/logs/$name.log"
    mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
    # The tree's seeds (and regression inputs) join the working corpus; what
    # earlier runs found there is kept.
    if [[ -d $ROOT/tests/fuzz/corpus/$name ]]; then
        cp -n "$ROOT/tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true
    fi
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -detect_leaks=1
          -print_final_stats=1 -artifact_prefix="$crashes/")
    [[ -f $ROOT/tests/fuzz/$name.dict ]] && args+=(-dict="$ROOT/tests/fuzz/$name.dict")
    t0=$SECONDS
    rc=0
    # TMPDIR: harnesses that need files make them there and remove them at exit.
    TMPDIR="${TMPDIR:-/tmp}" "$BUILD/fuzz/$name" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
    elapsed=$((SECONDS - t0))
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    execs="${execs:-$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n1)}"
    execs="${execs:-0}"
    total_execs=$((total_execs + execs))
    files="$(find "$corpus" -type f | wc -l)"
    if ((rc == 0)); then
        printf '%-22s ok    %10d execs  %6d corpus files  %4d s\n' "$name" "$execs" "$files" "$elapsed"
    else
        failed+=("$name")
        printf '%-22s FAIL  %10d execs  %6d corpus files  %4d s  (exit %d)\n' "$name" "$execs" "$files" "$elapsed" "$rc"
        grep -E 'ERROR: |runtime error|invariant failed|SUMMARY' "$log" | head -n 8 | sed 's/^/      /'
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)"
        printf '      input: %s\n      log:   %s\n      again: %s %s\n' "${artifact:-(none written)}" "$log" \
            "$BUILD/fuzz/$name" "${artifact:-<input>}"
    fi
done
printf 'fuzz.sh: %d executions in %d s' "$total_execs" "$((SECONDS - start_all))"
if ((${#failed[@]})); then
    printf '; FAILED: %s\n' "${failed[*]}"
    exit 1
fi
printf '; every harness ran clean\n'
