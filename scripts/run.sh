#!/usr/bin/env bash
# `make run`: prepares a checkout to serve (a .env with a fresh SECRET_KEY, the database, static
# files, the demo campaign), says where to look, then runs web + worker in the foreground with
# honcho until Ctrl-C. The Makefile has already made .venv match the requirements files.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Procfile names `python` and `gunicorn`: make them the virtualenv's.
export PATH="$PWD/.venv/bin:$PATH"
# honcho hands PORT to the first process (web) and defaults to 5000 without it.
export PORT="${PORT:-8000}"

# A SECRET_KEY in the environment needs no .env (the tests start make run that way).
if [ ! -f .env ] && [ -z "${SECRET_KEY:-}" ]; then
  secret_key=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')
  (umask 077 && cat >.env) <<ENV
# Written by \`make run\`. Settings read from the environment override these (see .env.example).
SECRET_KEY=${secret_key}
DEBUG=false
ALLOWED_HOSTS=127.0.0.1,localhost
ENV
  echo "Wrote .env with a new random SECRET_KEY."
fi

# Unsubscribe and preference links in emails must point where this run answers. The settings cannot
# derive it from PORT, because honcho gives the worker, which renders the emails, PORT + 100. An
# explicit SITE_URL, in the environment or in .env, wins.
if [ -z "${SITE_URL:-}" ] && ! grep -qs '^SITE_URL=' .env; then
  export SITE_URL="http://127.0.0.1:${PORT}"
fi

# gunicorn would retry a taken port for a while and then stop both processes; say so up front.
if ! python - "$PORT" <<'PY'
import socket
import sys

with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
PY
then
  echo "Port ${PORT} is in use. Choose another: PORT=8001 make run" >&2
  exit 1
fi

# Every process of this host (gunicorn's workers, qcluster's workers) writes its metrics here and
# /metrics adds them up. prometheus-client asks for the directory to be emptied before the
# processes start, or the files of a previous run's processes would be counted again.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/prometheus}"
rm -rf "${PROMETHEUS_MULTIPROC_DIR}"
mkdir -p "${PROMETHEUS_MULTIPROC_DIR}"

python manage.py migrate --noinput
python manage.py collectstatic --noinput --verbosity 0
python manage.py demo_setup --base-url "http://127.0.0.1:${PORT}"

mail_to=$(python manage.py shell --no-imports -c '
from django.conf import settings
if settings.SENDGRID_API_KEY:
    print("SendGrid (" + settings.SENDGRID_API_URL + ")")
    print("    Paste this Event Webhook URL into SendGrid (Settings → Mail Settings → Event Webhook):")
    print("            " + settings.SITE_URL + "/anymail/sendgrid/tracking/")
    if not settings.SITE_URL.startswith("https://"):
        print("            SendGrid must reach it: set SITE_URL to your public https:// address.")
else:
    path = settings.MAIL_CAPTURE_DIR
    if path.is_relative_to(settings.BASE_DIR):
        path = path.relative_to(settings.BASE_DIR)
    print(f"{path}/  (one file per email, because SENDGRID_API_KEY is not set)")
    print("    To send through SendGrid, set SENDGRID_API_KEY and SENDGRID_WEBHOOK_VERIFICATION_KEY in .env")
    print("    (README: Sending through SendGrid) and start again.")
print("    Links:  " + settings.SITE_URL + "  (unsubscribe and preference links in emails; SITE_URL)")
')

cat <<BANNER

  TriggerMail is starting (web + worker). Ctrl-C stops both.
    Admin:  http://127.0.0.1:${PORT}/admin/
    Ingest: http://127.0.0.1:${PORT}/v1/batch  (also /v1/track, /v1/identify)
    Email:  ${mail_to}

BANNER

# web is gunicorn with triggermail/gunicorn_conf.py, the serving configuration that ships.
exec honcho start web worker
