#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzingclient (RFC 6455 and RFC 7692
# conformance) against a WebSocket server and prints a summary per section.
# tests/conformance/README.md says how to read the result.
#
#   scripts/autobahn.sh --host build            start build/host/aurora-host with
#                                               the echo plugin, run every case
#   scripts/autobahn.sh --host build --ci       sections 1-7 and 10 and one case of each
#                                               compression group (what pytest runs)
#   scripts/autobahn.sh --url ws://127.0.0.1:8080/   a server that is already running
#                                               (or AURORA_AUTOBAHN_URL)
#   scripts/autobahn.sh --install-only          set up the test suite, run nothing
#
#   --cases '1.*,9.1.*'      case patterns (default: every case, "*")
#   --exclude '9.*'          patterns to leave out (default: none)
#   --reports DIR            report folder (default .cache/autobahn/reports)
#   --allow-unimplemented    UNIMPLEMENTED cases (compression) do not fail the run
#   --echo-config JSON       the echo plugin's config with --host (default
#                            {"mode":"raw"}, or AURORA_AUTOBAHN_ECHO_CONFIG)
#   --host-config JSON       merged into the host's config with --host, e.g.
#                            '{"compression":{"enabled":false}}'
#   --timeout SECONDS        stop wstest after this long (default 3600)
#
# Autobahn|Testsuite runs only on Python 2.7. The first run makes a 2.7
# environment in .cache/autobahn/venv (virtualenv 20.21.1, the last that can,
# from tests/conformance/requirements-tools.txt, with the Python 2.7 found in
# AURORA_PYTHON27, on PATH as python2.7, or under pyenv) and installs the
# pinned set of tests/conformance/requirements-py27.txt (about a minute);
# later runs reuse it until one of those files changes. It needs PyPI and
# nothing else.
#
# With --host, the host listens on a free loopback port (port 0, read back
# from its log), is ready when GET /health answers 200, and is stopped with
# SIGTERM after the run. Its limits are raised for the suite (16 MiB
# messages, no frame budget). The report folder also holds wstest.log and
# aurora-host/ (the host's config and log).
#
# Exit status: 0 if every case ran and none FAILED (nor was UNIMPLEMENTED,
# unless allowed); 1 otherwise, or if the host did not start or exit 0;
# 2 for a usage error.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/.cache/autobahn"
CONF="$ROOT/tests/conformance"
TOOLS="$WORK/tools"
VENV="$WORK/venv"
# Sections 1-7 and 10, and the first (16-byte messages) case of each
# compression group: every negotiation variant in 7 s.
CI_CASES="1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*,12.1.1,12.1.11,12.2.1,12.3.1,12.4.1,12.5.1,13.1.1,13.2.1,13.3.1,13.4.1,13.5.1,13.6.1,13.7.1"
MARKER=".autobahn-reports"  # in a report folder this script may clear

log() { printf 'autobahn: %s\n' "$*" >&2; }
die() { printf 'autobahn: error: %s\n' "$*" >&2; exit 1; }
usage() { printf 'autobahn.sh: %s (see --help)\n' "$*" >&2; exit 2; }
indent() { sed 's/^/    | /' >&2; }

url="${AURORA_AUTOBAHN_URL:-}"
build=""
cases="*"
exclude=""
reports="$WORK/reports"
allow_unimplemented=0
install_only=0
default_echo_config='{"mode": "raw"}'
echo_config="${AURORA_AUTOBAHN_ECHO_CONFIG:-$default_echo_config}"
host_config_extra='{}'
timeout_s=3600
while (($#)); do
    case $1 in
        --host) build="${2:?--host needs a build folder}"; shift 2 ;;
        --host=*) build="${1#*=}"; shift ;;
        --url) url="${2:?--url needs a ws:// URL}"; shift 2 ;;
        --url=*) url="${1#*=}"; shift ;;
        --ci) cases="$CI_CASES"; shift ;;
        --cases) cases="${2:?--cases needs a list}"; shift 2 ;;
        --cases=*) cases="${1#*=}"; shift ;;
        --exclude) exclude="${2:?--exclude needs a list}"; shift 2 ;;
        --exclude=*) exclude="${1#*=}"; shift ;;
        --reports) reports="${2:?--reports needs a folder}"; shift 2 ;;
        --reports=*) reports="${1#*=}"; shift ;;
        --allow-unimplemented) allow_unimplemented=1; shift ;;
        --echo-config) echo_config="${2:?--echo-config needs a JSON object}"; shift 2 ;;
        --echo-config=*) echo_config="${1#*=}"; shift ;;
        --host-config) host_config_extra="${2:?--host-config needs a JSON object}"; shift 2 ;;
        --host-config=*) host_config_extra="${1#*=}"; shift ;;
        --timeout) timeout_s="${2:?--timeout needs seconds}"; shift 2 ;;
        --timeout=*) timeout_s="${1#*=}"; shift ;;
        --install-only) install_only=1; shift ;;
        -h|--help) sed -n '2,40p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) usage "unknown argument '$1'" ;;
    esac
done
((install_only)) || [[ -n $build || -n $url ]] || usage "give --host BUILD_DIR or --url ws://..."
[[ -z $build || -z $url ]] || usage "--host and --url exclude each other"
[[ $timeout_s =~ ^[0-9]+$ && $timeout_s -gt 0 ]] || usage "--timeout must be a positive integer"
IFS=, read -ra patterns <<<"$cases,$exclude"
for pattern in "${patterns[@]}"; do
    [[ -z $pattern || $pattern =~ ^[0-9.*]+$ ]] || usage "'$pattern' is not a case pattern such as 1.* or 9.1.6"
done

# Python 3 for virtualenv, the JSON files and the summary: the project's venv
# (scripts/bootstrap.sh) when there is one.
PY3="$ROOT/.cache/venv/bin/python"
[[ -x $PY3 ]] || PY3="$(command -v python3)" || die "no Python 3 (run scripts/bootstrap.sh)"
for json in "$echo_config" "$host_config_extra"; do
    "$PY3" -c 'import json, sys; sys.exit(not isinstance(json.loads(sys.argv[1]), dict))' "$json" 2>/dev/null ||
        usage "--echo-config and --host-config take a JSON object, got '$json'"
done

# --- install ------------------------------------------------------------------
find_python27() {
    local p
    for p in "${AURORA_PYTHON27:-}" "$(command -v python2.7 || true)" \
        "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/2.7.*/bin/python; do
        [[ -n $p && -x $p ]] && "$p" -c 'import sys, ssl, zlib; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null &&
            { echo "$p"; return 0; }
    done
    return 1
}

# sha256 of the files an install came from, kept beside it as a stamp.
want_tools="$(sha256sum <"$CONF/requirements-tools.txt" | cut -d' ' -f1)"
want_venv="$(cat "$CONF/requirements-tools.txt" "$CONF/requirements-py27.txt" | sha256sum | cut -d' ' -f1)"
installed() { [[ -x $VENV/bin/wstest && -f $VENV/.stamp && $(cat "$VENV/.stamp") == "$want_venv" ]]; }

install() {
    local started=$SECONDS py27
    if [[ ! -f $TOOLS/.stamp || $(cat "$TOOLS/.stamp") != "$want_tools" ]]; then
        log "installing virtualenv into .cache/autobahn/tools"
        rm -rf "$TOOLS"
        "$PY3" -m pip install -q --disable-pip-version-check --no-input --no-deps --target "$TOOLS" \
            -r "$CONF/requirements-tools.txt"
        echo "$want_tools" >"$TOOLS/.stamp"
    fi
    py27="$(find_python27)" || die "no Python 2.7 with ssl and zlib: set AURORA_PYTHON27" \
        "(looked on PATH and in \$(pyenv root)/versions/2.7.*)"
    log "making the Python 2.7 environment .cache/autobahn/venv from $py27"
    rm -rf "$VENV"
    PYTHONPATH="$TOOLS" "$PY3" -m virtualenv -q --no-download --no-periodic-update -p "$py27" "$VENV"
    log "installing $(grep -c '^[A-Za-z]' "$CONF/requirements-py27.txt") pinned packages (wstest)"
    # --no-deps: exactly the pinned set; pip check says if it is not whole.
    # PIP_CONSTRAINT pins what pip's isolated build environments fetch.
    PIP_CONSTRAINT="$CONF/requirements-py27.txt" PIP_NO_INPUT=1 \
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-python-version-warning \
        --no-deps -r "$CONF/requirements-py27.txt"
    "$VENV/bin/python" -m pip check --disable-pip-version-check --no-python-version-warning >"$WORK/pip-check.log" 2>&1 ||
        { indent <"$WORK/pip-check.log"; die "tests/conformance/requirements-py27.txt is not a complete set (pip check)"; }
    "$VENV/bin/wstest" --autobahnversion >/dev/null 2>&1 || die "wstest does not run: $VENV/bin/wstest --autobahnversion"
    echo "$want_venv" >"$VENV/.stamp"
    log "installed in $((SECONDS - started)) s"
}

if ! installed; then
    mkdir -p "$WORK"
    # One installer at a time (two test runs starting together): the second
    # waits, then finds the environment made.
    exec {lock}>"$WORK/.install.lock"
    flock "$lock"
    installed || install
    flock -u "$lock"
fi
((install_only)) && { "$VENV/bin/wstest" --autobahnversion 2>/dev/null; exit 0; }

# --- the report folder ------------------------------------------------------------
# wstest writes index.json/index.html and a .json/.html per case into it. An
# earlier report is cleared; a folder that holds something else is refused.
mkdir -p "$reports"
reports="$(cd "$reports" && pwd)"
if [[ -n "$(ls -A "$reports")" && ! -f $reports/$MARKER ]]; then
    die "$reports is not empty and holds no earlier report: give another --reports"
fi
find "$reports" -mindepth 1 -delete
touch "$reports/$MARKER"
HOST_DIR="$reports/aurora-host"

# --- the host ---------------------------------------------------------------------
host_pid=""
host_rc=0

start_host() {
    local binary="$build/host/aurora-host" echo_so="$build/plugins/echo.so" port="" deadline rc
    [[ -x $binary ]] || die "$binary is missing: build it first (scripts/build.sh)"
    [[ -f $echo_so ]] || die "$echo_so is missing: build it first (scripts/build.sh)"
    mkdir -p "$HOST_DIR"
    # The suite's largest message is 16 MiB (9.1.6, 9.2.6), echoed back whole;
    # 9.7/9.8 send 1000 messages without waiting, so neither the frame budget
    # nor the send queue may close the connection. No host ping in a case.
    "$PY3" - "$echo_so" "$echo_config" "$host_config_extra" >"$HOST_DIR/host.json" <<'EOF'
import json, sys
echo_so, echo_config, extra = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
config = {
    "listen": {"host": "127.0.0.1", "port": 0},
    "allow_anonymous": True,
    "log": {"level": "info", "format": "text"},
    "limits": {
        "max_frame_bytes": 16 << 20, "hard_max_frame_bytes": 16 << 20,
        "send_queue_max_bytes": 64 << 20, "send_queue_max_frames": 1000000,
        "max_pending_per_conn": 4096, "frames_per_s": 1000000, "frames_burst": 1000000,
    },
    "heartbeat": {"ping_interval_s": 3600, "timeout_s": 60},
    "plugins": [{"name": "echo", "path": echo_so, "config": echo_config}],
}
def merge(base, more):
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
merge(config, extra)
print(json.dumps(config, indent=2))
EOF
    # The config written here is the whole truth: no AURORA_* overrides.
    env -u AURORA_HOST -u AURORA_PORT -u AURORA_REDIS_URL -u AURORA_MONGO_URL -u AURORA_JWT_SECRET \
        -u AURORA_PLUGIN_PATH -u AURORA_LOG_LEVEL \
        "$binary" --config "$HOST_DIR/host.json" </dev/null >"$HOST_DIR/host.stdout" 2>"$HOST_DIR/host.stderr" &
    host_pid=$!
    # Ready = the port is in the log ("listening on 127.0.0.1:PORT") and
    # GET /health answers 200; polled, bounded by 20 s.
    deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$host_pid" 2>/dev/null; then
            wait "$host_pid" && rc=0 || rc=$?
            host_pid=""
            log "aurora-host exited with code $rc before it was ready; config $HOST_DIR/host.json; stderr:"
            tail -n 20 "$HOST_DIR/host.stderr" | indent
            exit 1
        fi
        [[ -n $port ]] || port="$(grep -oE 'listening on [^ ]+:[0-9]+' "$HOST_DIR/host.stderr" | head -n1 |
            grep -oE '[0-9]+$' || true)"
        if [[ -n $port ]] && curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/health" 2>/dev/null; then
            url="ws://127.0.0.1:$port/"
            log "aurora-host (pid $host_pid) ready on $url"
            return 0
        fi
        sleep 0.05  # readiness poll, bounded by the deadline
    done
    log "aurora-host did not answer GET /health within 20 s; stderr:"
    tail -n 20 "$HOST_DIR/host.stderr" | indent
    exit 1
}

# SIGTERM, then SIGKILL after 10 s (shutdown_grace_ms is 3 s). Sets host_rc.
stop_host() {
    [[ -n $host_pid ]] || return 0
    if kill -0 "$host_pid" 2>/dev/null; then
        kill -TERM "$host_pid"
        local deadline=$((SECONDS + 10))
        while kill -0 "$host_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
        if kill -0 "$host_pid" 2>/dev/null; then
            log "aurora-host did not exit 10 s after SIGTERM: killed"
            kill -KILL "$host_pid" 2>/dev/null || true
        fi
    else
        log "aurora-host (pid $host_pid) died during the run"
    fi
    wait "$host_pid" && host_rc=0 || host_rc=$?
    host_pid=""
}

spec_dir="$(mktemp -d)"
trap 'stop_host; rm -rf "$spec_dir"' EXIT
if [[ -n $build ]]; then
    build="$(cd "$build" && pwd)" || die "no build folder '$build'"
    start_host
fi

# --- the run ----------------------------------------------------------------------
"$PY3" - "$reports" "$url" "$cases" "$exclude" >"$spec_dir/fuzzingclient.json" <<'EOF'
import json, sys
outdir, url, cases, exclude = sys.argv[1:]
patterns = lambda text: [p for p in text.split(",") if p]
print(json.dumps({
    "outdir": outdir,
    "options": {"failByDrop": False},
    "servers": [{"agent": "aurora-host", "url": url}],
    "cases": patterns(cases),
    "exclude-cases": patterns(exclude),
    "exclude-agent-cases": {},
}, indent=2))
EOF

log "wstest -m fuzzingclient against $url, cases $cases${exclude:+, without $exclude}"
started=$(date +%s.%N)
wstest_rc=0
# --foreground: wstest stays in this script's process group, so that a
# caller who stops the group (pytest on its deadline) stops it too.
(cd "$spec_dir" && timeout --foreground --kill-after=10 "$timeout_s" \
    "$VENV/bin/wstest" -m fuzzingclient -s "$spec_dir/fuzzingclient.json") >"$reports/wstest.log" 2>&1 || wstest_rc=$?
wall=$("$PY3" -c 'import sys, time; print(round(time.time() - float(sys.argv[1]), 1))' "$started")
stop_host

failed=0
if ((wstest_rc != 0)); then
    if ((wstest_rc == 124)); then log "wstest did not finish within $timeout_s s"; else log "wstest exited with code $wstest_rc"; fi
    tail -n 20 "$reports/wstest.log" | indent
    failed=1
fi
expected="$(grep -oE 'will run [0-9]+ test cases' "$reports/wstest.log" | grep -oE '[0-9]+' || true)"
summary_args=("$reports" --wall-seconds "$wall")
[[ -n $expected ]] && summary_args+=(--expected "$expected")
((allow_unimplemented)) && summary_args+=(--allow-unimplemented)
if [[ -f $reports/index.json ]]; then
    summary_rc=0
    "$PY3" "$CONF/autobahn_summary.py" "${summary_args[@]}" || summary_rc=$?
    if ((summary_rc != 0)); then failed=1; fi
    if ((summary_rc == 2)); then tail -n 5 "$reports/wstest.log" | indent; fi
else
    log "no report was written ($reports/index.json); wstest.log:"
    tail -n 20 "$reports/wstest.log" | indent
    failed=1
fi
if [[ -n $build ]] && ((host_rc != 0)); then
    log "aurora-host exited with code $host_rc (want 0); stderr tail ($HOST_DIR/host.stderr):"
    tail -n 20 "$HOST_DIR/host.stderr" | indent
    failed=1
fi
exit $failed
