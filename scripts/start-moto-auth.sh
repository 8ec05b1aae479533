#!/usr/bin/env bash
# A second moto S3 server that enforces authentication (INITIAL_NO_AUTH_ACTION_COUNT=0), so tests
# can see how wrong credentials are reported. Prints `export` lines to eval, like start-moto.sh
# (run that one first: it installs moto into $MOTO_VENV).
set -euo pipefail
MOTO_VENV="${MOTO_VENV:-$HOME/.cache/frameline/moto-venv}"
log="$(mktemp -t moto-auth.XXXXXX.log)"
INITIAL_NO_AUTH_ACTION_COUNT=0 setsid "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p 0 >"$log" 2>&1 < /dev/null &
pid=$!
port=""
for _ in $(seq 1 200); do
  port="$(grep -oE '127\.0\.0\.1:[0-9]+' "$log" | head -1 | cut -d: -f2 || true)"
  if [ -n "$port" ] && curl -s -o /dev/null "http://127.0.0.1:$port/"; then break; fi
  port=""; sleep 0.1
done
if [ -z "$port" ]; then
  echo "moto (auth) did not start; its log:" >&2; cat "$log" >&2; kill "$pid" 2>/dev/null || true; exit 1
fi
echo "moto S3 with authentication on http://127.0.0.1:$port (pid $pid)" >&2
echo "export FRAMELINE_TEST_S3_AUTH_ENDPOINT=http://127.0.0.1:$port FRAMELINE_TEST_S3_AUTH_PID=$pid"
