#!/usr/bin/env bash
# Checks the quickstart as a person meets it: `make run` comes up, the admin login answers, the
# curl command it prints is accepted, and the welcome email appears where it says mail goes.
# Uses a database and mail folder of its own, so a developer's var/ is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
export PORT=${SMOKE_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
export DATABASE_URL="sqlite:///${work}/db.sqlite3" MAIL_CAPTURE_DIR="${work}/mail"
unset SENDGRID_API_KEY

setsid make run >"${work}/run.log" 2>&1 </dev/null &
run_pid=$!
stop() {
  kill -TERM -- "-${run_pid}" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 -- "-${run_pid}" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-${run_pid}" 2>/dev/null || true
}
fail() { echo "smoke-run: $*" >&2; echo "---- make run output ----" >&2; cat "${work}/run.log" >&2; stop; exit 1; }
trap stop EXIT

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  fail "timed out after ${seconds}s waiting for ${what}"
}

wait_for 300 "the admin login page on port ${PORT}" curl -fsS "http://127.0.0.1:${PORT}/admin/login/"
grep -q "Admin      http://127.0.0.1:${PORT}/admin/  user admin  password " "${work}/run.log" \
  || fail "make run did not print the admin login"
curl_line=$(grep -m1 '^  curl ' "${work}/run.log") || fail "make run printed no curl command"
answer=$(bash -c "${curl_line}") || fail "the printed curl command failed"
[ "${answer}" = '{"success": true}' ] || fail "the ingest API answered ${answer}"
grep -q "${work}/mail/" "${work}/run.log" || fail "make run did not say where mail goes"
wait_for 30 "the welcome email in ${work}/mail" bash -c "grep -ls 'Welcome' '${work}/mail/'*.log"
echo "smoke-run: make run served the admin on port ${PORT}, accepted the printed curl, and wrote:"
grep -h '^Subject:\|^To:' "${work}/mail/"*.log
