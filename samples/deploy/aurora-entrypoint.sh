#!/bin/bash
# The container's entry point (installed as /usr/local/bin/aurora-entrypoint).
#
#   aurora-entrypoint [PROFILE] [aurora-host options]   run a profile
#   aurora-entrypoint healthcheck                       GET /health on this container
#   aurora-entrypoint aurora-host ARGS...               run the host with any arguments
#
# PROFILE is all-in-one, user-service, chat-service or ingest-worker (or
# AURORA_PROFILE when no argument is given): share/aurora/config/PROFILE.json.
# The AURORA_* environment overrides (docs/configuration.md) apply as usual;
# the image sets AURORA_HOST=0.0.0.0 and AURORA_PORT=8080, so every profile
# listens on 8080 inside its container. AURORA_CONFIG_DIR and AURORA_BIN move
# the profiles and the program (tests run it outside the image).
set -euo pipefail

CONFIG_DIR="${AURORA_CONFIG_DIR:-/usr/local/share/aurora/config}"
BIN="${AURORA_BIN:-/usr/local/bin/aurora-host}"

case "${1:-}" in
    healthcheck)
        # bash's /dev/tcp: no curl in the image.
        exec 3<>"/dev/tcp/127.0.0.1/${AURORA_PORT:-8080}"
        printf 'GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
        IFS= read -r -t 5 status <&3
        [[ $status == "HTTP/1."[01]" 200"* ]]
        exit
        ;;
    aurora-host)
        shift
        exec "$BIN" "$@"
        ;;
esac

profile="${AURORA_PROFILE:-}"
if [[ $# -gt 0 && $1 != -* ]]; then
    profile="$1"
    shift
fi
if [[ -z $profile ]]; then
    echo "aurora-entrypoint: name a profile (argument or AURORA_PROFILE): $(cd "$CONFIG_DIR" && ls -- *.json | sed 's/\.json$//' | tr '\n' ' ')" >&2
    exit 2
fi
config="$CONFIG_DIR/$profile.json"
if [[ ! -f $config ]]; then
    echo "aurora-entrypoint: no profile '$profile' ($config does not exist)" >&2
    exit 2
fi
exec "$BIN" --config "$config" "$@"
