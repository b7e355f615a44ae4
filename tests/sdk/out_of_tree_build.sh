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
# 5. the pkg-config route: cc $(pkg-config --cflags --libs aurora) builds
#    echo.c against the same prefix (the .pc finds its prefix from where it lies).
# 6. the installed aurora-host, given a config that names plugins without a
#    path and no AURORA_PLUGIN_PATH, loads them from <prefix>/lib/aurora/plugins.
# 7. tests/sdk/word_filter, a C++ plugin that uses the helper library
#    (Aurora::kit) in under 30 lines of its own, builds the same way, and
#    the installed host runs it in front of echo (word_filter/drive.py, with
#    $PYTHON: the project's venv).
# Steps 5 to 7 run from a copy of the prefix moved elsewhere: nothing may
# depend on the path it was installed to.
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

step "configure and build word_filter (Aurora::kit) against $prefix"
wf_src=$(cd "$(dirname "${BASH_SOURCE[0]}")/word_filter" && pwd)
wf_build=$work/wf-build
"$cmake_bin" -S "$wf_src" -B "$wf_build" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON >"$work/wf-configure.log" 2>&1 ||
    { cat "$work/wf-configure.log" >&2; fail "word_filter: configure failed"; }
"$cmake_bin" --build "$wf_build" -j 1 >"$work/wf-build.log" 2>&1 ||
    { cat "$work/wf-build.log" >&2; fail "word_filter: build failed"; }
wf_so=$wf_build/plugins/word_filter.so
[[ $(nm -D --defined-only "$wf_so" | awk '{print $NF}') == "aurora_plugin_entry" ]] ||
    fail "word_filter.so must export aurora_plugin_entry and nothing else"
own_lines=$(grep -v -e '^[[:space:]]*$' -e '^[[:space:]]*//' -e '^#include' -e '^using ' "$wf_src/word_filter.cpp" | wc -l)
echo "word_filter.cpp: $own_lines lines of its own code"
((own_lines <= 30)) || fail "word_filter.cpp has $own_lines lines of its own code; the helper library promises <= 30"
for d in lib lib64; do [[ -d $prefix/$d/aurora/plugins ]] && cp "$wf_so" "$prefix/$d/aurora/plugins/"; done

# A relocated install: the same files, moved after cmake --install.
moved=$work/moved
mv "$prefix" "$moved"
libdir=""
for d in lib lib64; do [[ -f $moved/$d/pkgconfig/aurora.pc ]] && { libdir=$d; break; }; done
[[ -n $libdir ]] || fail "no lib/pkgconfig/aurora.pc under the install"

step "pkg-config route against $moved"
cflags=$(PKG_CONFIG_PATH="$moved/$libdir/pkgconfig" pkg-config --cflags aurora) || fail "pkg-config does not find aurora"
libs=$(PKG_CONFIG_PATH="$moved/$libdir/pkgconfig" pkg-config --libs aurora)
plugindir=$(PKG_CONFIG_PATH="$moved/$libdir/pkgconfig" pkg-config --variable=plugindir aurora)
echo "cflags: $cflags; libs: $libs; plugindir: $plugindir"
[[ $(cd "$plugindir" 2>/dev/null && pwd -P) == "$(cd "$moved/$libdir/aurora/plugins" && pwd -P)" ]] ||
    fail "the .pc's plugindir '$plugindir' is not the install's $moved/$libdir/aurora/plugins"
# shellcheck disable=SC2086  # word splitting of the flags is meant
cc -std=c11 -fPIC -shared -fvisibility=hidden -o "$work/echo-pc.so" "$echo_src/echo.c" $cflags $libs \
    $(pkg-config --cflags --libs libcjson) -Wl,--no-undefined >"$work/pc-build.log" 2>&1 ||
    { cat "$work/pc-build.log" >&2; fail "echo.c does not build with pkg-config's flags"; }
nm -D --defined-only "$work/echo-pc.so" | grep -q ' aurora_plugin_entry$' || fail "echo-pc.so has no aurora_plugin_entry"

step "the installed aurora-host loads plugins from its own prefix"
host_bin=$moved/bin/aurora-host
[[ -x $host_bin ]] || fail "no bin/aurora-host under the install"
cat >"$work/host.json" <<'EOF'
{"listen": {"host": "127.0.0.1", "port": 0}, "allow_anonymous": true, "log": {"level": "info", "format": "text"},
 "plugins": [{"name": "echo", "config": {"tick_ms": 0}}]}
EOF
check_rc=0
env -u AURORA_PLUGIN_PATH "$host_bin" --check-config "$work/host.json" >"$work/check.log" 2>&1 || check_rc=$?
cat "$work/check.log"
((check_rc == 0)) || fail "aurora-host --check-config exited $check_rc: it did not load echo from its own prefix"
grep -q -- "$moved/$libdir/aurora/plugins/echo.so" "$work/check.log" ||
    fail "aurora-host did not say it loaded $moved/$libdir/aurora/plugins/echo.so"

step "the installed host runs word_filter in front of echo"
[[ -n ${PYTHON:-} && -x ${PYTHON:-} ]] || fail "PYTHON must name the project's Python (the venv's), got '${PYTHON:-}'"
env -u AURORA_PLUGIN_PATH "$PYTHON" "$wf_src/drive.py" "$host_bin" "$work" || fail "word_filter did not behave"

echo "out-of-tree build ok: $so, $wf_so; pkg-config route ok; installed host found its plugins in $moved/$libdir/aurora/plugins"
