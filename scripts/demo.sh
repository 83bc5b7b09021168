#!/usr/bin/env bash
# `make demo`: migrate, load the challenge set, start the web server (tool + development LMS), a Celery worker on
# both queues and Celery beat, register the tool with the development LMS by Dynamic Registration, and wait.
# Ctrl-C stops everything this script started. Nothing needs configuring: without DATABASE_URL/CELERY_BROKER_URL
# the settings use SQLite, a filesystem broker and a file cache under .cache/.
#
# Options (environment variables):
#   DEMO_PORT=8000               the port on 127.0.0.1 (open http://localhost:$DEMO_PORT/devlms/)
#   DEMO_LOG_DIR=.cache/demo-logs where the web server, worker and beat write their logs (web.log, worker.log,
#                                beat.log), so that the terminal keeps showing the address to open
#   DEMO_VERBOSE=1               write those logs to the terminal instead
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
CELERY=.venv/bin/celery
PORT="${DEMO_PORT:-8000}"
BASE_URL="http://localhost:${PORT}"
LOG_DIR="${DEMO_LOG_DIR:-.cache/demo-logs}"
VERBOSE="${DEMO_VERBOSE:-0}"

if [ ! -x "$PY" ]; then
  echo "No virtualenv at .venv: run 'make demo' (it creates it) or 'make venv' first." >&2
  exit 1
fi

mkdir -p .cache/broker .cache/django "$LOG_DIR"

# Run a long-lived demo process in the background, its output in $LOG_DIR/<name>.log (or the terminal).
declare -A logs=()
start() {
  local name="$1"
  shift
  if [ "$VERBOSE" = 1 ]; then
    "$@" &
  else
    : >"$LOG_DIR/$name.log"
    "$@" >>"$LOG_DIR/$name.log" 2>&1 &
  fi
  pids+=($!)
  logs[$!]="$LOG_DIR/$name.log"
}

# The grading sandbox needs bubblewrap (and unprivileged user namespaces). Without it the demo still runs, but
# student code then runs WITHOUT isolation: fine for trying the tool alone on your own machine, never otherwise.
if [ -z "${GRADING_SANDBOX:-}" ]; then
  if ! command -v bwrap >/dev/null 2>&1 || ! bwrap --ro-bind / / --unshare-all true >/dev/null 2>&1; then
    export GRADING_SANDBOX=unsafe
    echo "######################################################################################" >&2
    echo "# WARNING: bubblewrap (bwrap) is missing or cannot create a sandbox on this machine.  #" >&2
    echo "# GRADING_SANDBOX=unsafe: submitted code runs WITHOUT ISOLATION. Demo use only.        #" >&2
    echo "# Install it with 'sudo apt-get install bubblewrap' (make system-deps).               #" >&2
    echo "######################################################################################" >&2
  fi
fi

echo "== Migrating the database"
"$PY" manage.py migrate --noinput
if "$PY" manage.py help load_challenge_sets >/dev/null 2>&1; then
  echo "== Loading the challenge set"
  "$PY" manage.py load_challenge_sets
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "== Stopping"
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
# Ctrl-C is the way to stop the demo: a clean exit (the EXIT trap stops the processes), not "a process exited".
trap cleanup EXIT
trap 'exit 0' INT
trap 'exit 143' TERM

echo "== Starting the web server on 127.0.0.1:${PORT}"
start web "$PY" manage.py runserver "127.0.0.1:${PORT}" --noreload
echo "== Starting a Celery worker (queues default and gpu) and Celery beat"
start worker "$CELERY" -A config worker -Q default,gpu --concurrency 1 --loglevel INFO
start beat "$CELERY" -A config beat --loglevel INFO --schedule .cache/celerybeat-schedule
if [ "$VERBOSE" != 1 ]; then
  echo "   their logs: $LOG_DIR/web.log, worker.log, beat.log (DEMO_VERBOSE=1 shows them here)"
fi

echo "== Registering the tool with the development LMS (Dynamic Registration over HTTP)"
"$PY" manage.py devlms_register_tool --tool-url "$BASE_URL" --wait 90

echo
echo "======================================================================"
echo " Open ${BASE_URL}/devlms/"
echo " (use exactly this address: the LMS issuer is derived from it)"
echo " Pick a student or an instructor and launch the tool. Ctrl-C stops all."
[ "$VERBOSE" = 1 ] || echo " Logs: tail -f $LOG_DIR/*.log"
echo "======================================================================"
echo

# Wait until Ctrl-C, or until one of the processes dies.
while true; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "A demo process ($pid) exited; stopping the others." >&2
      if [ "$VERBOSE" != 1 ]; then
        echo "The end of its log, ${logs[$pid]}:" >&2
        tail -n 20 "${logs[$pid]}" >&2 || true
      fi
      exit 1
    fi
  done
  sleep 2
done
