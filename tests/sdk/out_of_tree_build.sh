#!/usr/bin/env bash
# Builds samples/echo out of tree against an INSTALLED SDK, as a plugin author
# would (docs/plugin-guide.md), and checks that the plugin exports exactly one
# symbol, aurora_plugin_entry.
#
#   out_of_tree_build.sh <aurora build dir> <samples/echo source dir>
#
# 1. cmake --install <build dir> --prefix <temp prefix>
# 2. cmake -S samples/echo -B <temp>/echo-build -DCMAKE_PREFIX_PATH=<temp prefix>
#    (the project is top-level there, so it calls find_package(Aurora))
# 3. cmake --build <temp>/echo-build
# 4. nm -D --defined-only echo.so lists aurora_plugin_entry and nothing else.
# Needs a complete build of <build dir>: cmake --install installs every target.
set -euo pipefail

if (($# != 2)); then
    echo "usage: $0 <aurora build dir> <samples/echo source dir>" >&2
    exit 64
fi
build_dir=$1
echo_src=$2
cmake_bin=${CMAKE:-cmake}

work=$(mktemp -d "${TMPDIR:-/tmp}/aurora-out-of-tree.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
echo_build=$work/echo-build

step() { echo "== $*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step "install $build_dir into $prefix"
"$cmake_bin" --install "$build_dir" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "cmake --install failed (is $build_dir completely built?)"; }
[[ -f $prefix/lib/cmake/Aurora/AuroraConfig.cmake || -f $prefix/lib64/cmake/Aurora/AuroraConfig.cmake ]] ||
    fail "no lib/cmake/Aurora/AuroraConfig.cmake under $prefix"

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi

step "configure $echo_src against $prefix"
"$cmake_bin" -S "$echo_src" -B "$echo_build" "${generator[@]}" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; fail "configure failed"; }
grep -q "Aurora_DIR:PATH=$prefix/" "$echo_build/CMakeCache.txt" ||
    fail "find_package(Aurora) did not use the installed SDK: $(grep Aurora_DIR "$echo_build/CMakeCache.txt")"

step "build"
"$cmake_bin" --build "$echo_build" -j 1 >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; fail "build failed"; }

so=$echo_build/plugins/echo.so
[[ -f $so ]] || fail "no $so after the build"
commands=$echo_build/compile_commands.json
grep -q -- "$prefix/include" "$commands" || fail "echo.c was not compiled against $prefix/include: $(cat "$commands")"
! grep -q -- "/sdk/include" "$commands" || fail "echo.c was compiled against a source tree's sdk/include: $(cat "$commands")"

step "exported symbols of $so"
exported=$(nm -D --defined-only "$so" | awk '{print $NF}' | sort)
echo "$exported"
[[ $exported == "aurora_plugin_entry" ]] ||
    fail "echo.so must export aurora_plugin_entry and nothing else; it exports: $(echo "$exported" | tr '\n' ' ')"

echo "out-of-tree build ok: $so"
