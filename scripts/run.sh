#!/usr/bin/env bash
# Sets everything up and runs the all-in-one server: Redis and FerretDB with
# their data under .cache/run/, then aurora-host with the all-in-one profile
# on http://127.0.0.1:8080. Ctrl-C (or SIGTERM) stops everything it started.
#
# Ports: AURORA_PORT (8080), AURORA_RUN_REDIS_PORT (6380: Debian's own
# redis-server service may hold 6379), AURORA_RUN_MONGO_PORT (27017).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${AURORA_BUILD_DIR:-$ROOT/build}"
DATA="$ROOT/.cache/run"
REDIS_PORT="${AURORA_RUN_REDIS_PORT:-6380}"
MONGO_PORT="${AURORA_RUN_MONGO_PORT:-27017}"
PY="$ROOT/.cache/venv/bin/python"

log() { printf 'run: %s\n' "$*" >&2; }

"$ROOT/scripts/bootstrap.sh"
# Only what runs: the host and the profile's plugins (not the tests and
# benchmarks, which are most of a cold build).
"$ROOT/scripts/build.sh" aurora-host aurora_plugin_auth aurora_plugin_ratelimit aurora_plugin_chat aurora_plugin_ingest

mkdir -p "$DATA/redis" "$DATA/ferretdb"

# The auth plugin refuses weak or missing secrets outside dev mode: make a
# random one on the first run and keep it, so tokens survive restarts.
SECRET_FILE="$DATA/jwt_secret"
if [[ -z ${AURORA_JWT_SECRET:-} ]]; then
    if [[ ! -s $SECRET_FILE ]]; then
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$SECRET_FILE")
        log "generated a JWT secret in .cache/run/jwt_secret"
    fi
    AURORA_JWT_SECRET="$(cat "$SECRET_FILE")"
    export AURORA_JWT_SECRET
fi
# Children run in sessions of their own (setsid), so Ctrl-C reaches this
# script only; it stops them in the reverse order of their start: the host
# first (it drains while Redis and FerretDB are still there), then FerretDB,
# then Redis. Each gets SIGTERM and 5 s before SIGKILL.
pids=()
cleanup() {
    # Once: a second Ctrl-C (or the terminal closing) must not cut the
    # children's stop short; they are in sessions of their own and would
    # keep running. A closed terminal makes log fail: that must not stop it.
    trap - EXIT
    trap '' INT TERM HUP
    set +e
    log "stopping" 2>/dev/null
    local i pid
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done  # bounded: 5 s
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    log "stopped" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$REDIS_PORT" "$MONGO_PORT" "${AURORA_PORT:-8080}"; do
    if port_busy "$p"; then log "port $p is already in use (set AURORA_RUN_REDIS_PORT, AURORA_RUN_MONGO_PORT or AURORA_PORT)"; exit 1; fi
done

# Wait (bounded) until a probe command succeeds; fail with the log tail.
wait_ready() {
    local name=$1 logf=$2 pid=$3; shift 3
    for _ in $(seq 300); do
        if "$@" >/dev/null 2>&1; then log "$name ready"; return 0; fi
        kill -0 "$pid" 2>/dev/null || { log "$name exited; log:"; tail -n 30 "$logf" >&2; exit 1; }
        sleep 0.1  # polling readiness, bounded to 30 s
    done
    log "$name did not become ready in 30 s; log:"; tail -n 30 "$logf" >&2; exit 1
}

setsid redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
    --appendonly yes --daemonize no --logfile "$DATA/redis.log" &
pids+=($!)
wait_ready redis "$DATA/redis.log" "${pids[-1]}" redis-cli -p "$REDIS_PORT" ping

# WAL synced at checkpoints and one transaction per ingest batch: ~2x the
# insert rate (docs/ingest.md, Performance); an OS crash may lose the last
# commits, a killed process does not.
setsid "$ROOT/.cache/bin/ferretdb" --handler=sqlite --sqlite-url="file:$DATA/ferretdb/?_pragma=synchronous(normal)" \
    --test-batch-size=1000 --state-dir="$DATA/ferretdb" --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr=- \
    --telemetry=disable --log-level=warn >"$DATA/ferretdb.log" 2>&1 &
pids+=($!)
wait_ready ferretdb "$DATA/ferretdb.log" "${pids[-1]}" "$PY" -c \
    "import pymongo,sys; c=pymongo.MongoClient('mongodb://127.0.0.1:$MONGO_PORT', serverSelectionTimeoutMS=500); c.admin.command('ping')"

export AURORA_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export AURORA_MONGO_URL="mongodb://127.0.0.1:$MONGO_PORT/aurorachat"
export AURORA_PLUGIN_PATH="$BUILD/plugins"
CONFIG="$ROOT/samples/config/all-in-one.json"
HOST_BIN="$BUILD/host/aurora-host"

if [[ -x $HOST_BIN && -f $CONFIG ]]; then
    log "aurora-host: chat at http://${AURORA_HOST:-127.0.0.1}:${AURORA_PORT:-8080} (Ctrl-C stops everything)"
    setsid "$HOST_BIN" --config "$CONFIG" &
    pids+=($!)
    wait "${pids[-1]}"
else
    log "aurora-host is not built yet (the host issue is still open): Redis on :$REDIS_PORT and"
    log "FerretDB on :$MONGO_PORT are running with data in .cache/run/. Ctrl-C stops them."
    wait "${pids[0]}"
fi
