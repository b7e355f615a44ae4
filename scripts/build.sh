#!/usr/bin/env bash
# Configures (once) and builds Aurora into $AURORA_BUILD_DIR (default: build/).
# Incremental: a second run with nothing changed does no work.
#
#   scripts/build.sh                    every target (tests and benchmarks too)
#   scripts/build.sh aurora-host ...    only these targets and what they need
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AURORA_BUILD_DIR:-$ROOT/build}"
VENV_PY="$ROOT/.cache/venv/bin/python"

cmake_args=(-S "$ROOT" -B "$BUILD" -G Ninja
    -DCMAKE_BUILD_TYPE="${AURORA_BUILD_TYPE:-RelWithDebInfo}"
    -DAURORA_WERROR="${AURORA_WERROR:-ON}"
    -DAURORA_SANITIZE="${AURORA_SANITIZE:-}"
    -DPython_EXECUTABLE="$VENV_PY"
    -Dpybind11_DIR="$("$VENV_PY" -m pybind11 --cmakedir)")
if [[ ! -f $BUILD/build.ninja || ${AURORA_RECONFIGURE:-0} == 1 ]]; then
    cmake "${cmake_args[@]}" >"$ROOT/.cache/cmake-configure.log" ||
        { cat "$ROOT/.cache/cmake-configure.log"; exit 1; }
fi
cmake --build "$BUILD" -j "$(nproc)" ${1:+--target "$@"}
