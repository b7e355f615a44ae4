#!/usr/bin/env bash
# Installs everything Aurora needs on a fresh Debian 12 machine, idempotently:
#   1. Debian packages (compilers, clang and its libFuzzer runtime for
#      scripts/fuzz.sh, -dev libraries, redis-server, nginx), only if missing;
#   2. FerretDB v1.24.2 built with Go into .cache/bin/ (reused when present);
#   3. a Python virtual environment in .cache/venv with scripts/requirements.txt;
#   4. the browser test's npm packages (playwright-core, ws) in .cache/node,
#      from tests/e2e/web/package-lock.json; the browser is Debian's chromium.
# A second run checks and does nothing. Nothing is fetched from outside
# Debian's packages, PyPI, the npm registry and the Go module proxy (never a
# browser download).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
FERRETDB_VERSION="v1.24.2"
FERRETDB_MODULE="github.com/FerretDB/FerretDB"

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE/bin"

# --- 1. Debian packages -------------------------------------------------------
DEB_PACKAGES=(
    build-essential cmake ninja-build pkg-config git curl ca-certificates procps
    libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libhiredis-dev libmongoc-dev libbson-dev libjwt-dev
    libcrypt-dev libcjson-dev libssl-dev libcurl4-openssl-dev zlib1g-dev pybind11-dev libgtest-dev googletest
    libbenchmark-dev redis-server redis-sentinel redis-tools golang-go chromium fonts-noto-color-emoji nginx
    clang libclang-rt-dev postgresql-15
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
    # golang-go is only needed when no Go toolchain is on PATH already.
    if [[ $p == golang-go ]] && command -v go >/dev/null; then continue; fi
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # nginx and PostgreSQL (the tests run their own, on free ports) must not
    # start Debian's services: nginx would take port 80, and the install fails
    # when port 80 is taken; PostgreSQL would run a cluster nobody uses.
    # invoke-rc.d asks policy-rc.d; 101 = "not allowed". Added only for this
    # install, and only when the machine has none.
    policy_rc=""
    if [[ " ${missing[*]} " =~ " "(nginx|postgresql-15)" " && ! -e /usr/sbin/policy-rc.d ]]; then
        policy_rc=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy_rc" >/dev/null
        $SUDO chmod 755 "$policy_rc"
    fi
    install_rc=0
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || install_rc=$?
    if [[ -n $policy_rc ]]; then $SUDO rm -f "$policy_rc"; fi
    ((install_rc == 0)) || die "apt-get install failed (exit $install_rc)"
else
    log "Debian packages: all present"
fi
# redis-server's Debian package starts a system instance; the project never
# uses it (fixtures start their own on free ports), so it is left alone.
# nginx's service is never started (above) and never used: the deployment
# test runs `nginx -c <its conf> -p <its prefix>` as a child process.

# --- 2. FerretDB ----------------------------------------------------------------
ferretdb_ok() {
    # Output captured first: `| grep -q` can end the pipe early, and with
    # pipefail the SIGPIPE would read as "not installed".
    local out
    [[ -x "$CACHE/bin/ferretdb" ]] && out="$("$CACHE/bin/ferretdb" --version 2>/dev/null)" &&
        [[ $out == *"version: $FERRETDB_VERSION"* ]]
}

build_ferretdb() {
    export GOFLAGS="-buildvcs=false"
    # The checksum database is normally reached through the module proxy. If
    # neither answers, Go's documented switch is GOSUMDB=off (modules are then
    # trusted as the proxy serves them).
    if [[ -z ${GOSUMDB:-} ]] && ! curl -fsS -m 10 -o /dev/null \
            "$(go env GOPROXY | cut -d, -f1)/sumdb/sum.golang.org/supported" 2>/dev/null; then
        log "the Go checksum database is unreachable: building with GOSUMDB=off"
        export GOSUMDB=off
    fi

    # go install into a scratch folder: only a binary that runs is kept.
    local scratch
    scratch="$(mktemp -d)"
    log "go install $FERRETDB_MODULE/cmd/ferretdb@$FERRETDB_VERSION"
    if GOBIN="$scratch" go install "$FERRETDB_MODULE/cmd/ferretdb@$FERRETDB_VERSION" 2>"$CACHE/ferretdb-install.log" &&
        [[ $("$scratch/ferretdb" --version 2>/dev/null) == *"version: $FERRETDB_VERSION"* ]]; then
        mv "$scratch/ferretdb" "$CACHE/bin/ferretdb"
        rm -rf "$scratch"
        return 0
    fi
    # The usual case: the released module zip carries an empty
    # build/version/version.txt (upstream's release tooling generates it), so
    # the go install binary panics at start; or the proxy refused the
    # module's version list (go install asks it for deprecation notices).
    # Build the same pinned version from the module cache, with version.txt
    # filled in. Same source, same go.sum.
    if [[ -x $scratch/ferretdb ]]; then
        log "the go install binary does not start (the released module has no version.txt): building $FERRETDB_VERSION from the module source with it filled in"
    else
        log "go install failed ($(tail -n1 "$CACHE/ferretdb-install.log" | cut -c1-160)): building $FERRETDB_VERSION from the module source"
    fi
    rm -rf "$scratch"
    local dir src="$CACHE/src/ferretdb-$FERRETDB_VERSION"
    dir="$(go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [[ -n $dir && -d $dir ]] || die "go mod download $FERRETDB_MODULE@$FERRETDB_VERSION failed"
    rm -rf "$src"
    mkdir -p "$(dirname "$src")"
    cp -r "$dir" "$src"
    chmod -R u+w "$src"
    echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
    (cd "$src" && go build -o "$CACHE/bin/ferretdb" ./cmd/ferretdb)
    ferretdb_ok || die "FerretDB built but '$CACHE/bin/ferretdb --version' does not report $FERRETDB_VERSION"
}

if ferretdb_ok; then
    log "FerretDB $FERRETDB_VERSION: cached in .cache/bin"
else
    command -v go >/dev/null || die "no Go toolchain found (package golang-go)"
    build_ferretdb
    log "FerretDB $FERRETDB_VERSION: built into .cache/bin"
fi

# --- 3. Python virtual environment ----------------------------------------------
VENV="$CACHE/venv"
REQ="$ROOT/scripts/requirements.txt"
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
    log "Python venv: up to date"
else
    PY="${AURORA_PYTHON:-python3}"
    command -v "$PY" >/dev/null || die "no $PY on PATH"
    [[ -x $VENV/bin/python ]] || "$PY" -m venv "$VENV"
    log "Python venv: installing $(grep -vc '^\s*#' "$REQ") pinned packages"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
    echo "$want" >"$STAMP"
fi

# --- 4. npm packages for the browser test ---------------------------------------
# `npm ci` into .cache/node from the committed lock file; skipped while the
# lock file is unchanged. Node.js and npm come with the machine (Debian 12's
# nodejs is v18; playwright-core needs >= 20).
NODE_DIR="$CACHE/node"
LOCK="$ROOT/tests/e2e/web/package-lock.json"
NODE_STAMP="$NODE_DIR/.lock.sha256"
want="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [[ -f $NODE_STAMP && $(cat "$NODE_STAMP") == "$want" && -d $NODE_DIR/node_modules/playwright-core ]]; then
    log "npm packages: up to date"
else
    command -v npm >/dev/null || die "no npm on PATH (Node.js >= 20 is needed for the browser test)"
    mkdir -p "$NODE_DIR"
    cp "$ROOT/tests/e2e/web/package.json" "$LOCK" "$NODE_DIR/"
    log "npm packages: npm ci into .cache/node"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: belt and braces, playwright-core has no install script.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$NODE_DIR" --no-audit --no-fund --ignore-scripts --loglevel=error >&2
    echo "$want" >"$NODE_STAMP"
fi

log "ready (ferretdb: .cache/bin/ferretdb, python: .cache/venv/bin/python, node packages: .cache/node, chromium: /usr/bin/chromium)"
