#!/usr/bin/env bash
# Sets everything up and runs every test: CTest (GoogleTest layers) then
# pytest (Python and end-to-end layers). Exit status is non-zero if either
# runner failed. See docs/development.md to run one layer.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AURORA_BUILD_DIR:-$ROOT/build}"
export AURORA_BUILD_DIR="$BUILD"
export AURORA_FERRETDB="$ROOT/.cache/bin/ferretdb"

"$ROOT/scripts/bootstrap.sh" || exit 1
"$ROOT/scripts/build.sh" || exit 1

echo "== ctest (GoogleTest layers; pytest runs below) =="
(cd "$BUILD" && ctest --output-on-failure -j "$(nproc)" -LE python)
ctest_rc=$?

echo "== pytest =="
cd "$ROOT" && "$ROOT/.cache/venv/bin/python" -m pytest tests
pytest_rc=$?

if ((ctest_rc != 0 || pytest_rc != 0)); then
    echo "FAILED: ctest exit $ctest_rc, pytest exit $pytest_rc" >&2
    exit 1
fi
