"""How the web process is served: gunicorn's configuration, the one place for it.

The Procfile's `web`, `make run` (through the Procfile), the tests (`harness/processes.py`) and the
benchmarks (`bench/deploy.py`) all start `gunicorn -c python:triggermail.gunicorn_conf
triggermail.wsgi`, so what is tested and measured is what ships. Tests and benchmarks add only
`--bind 127.0.0.1:0` (and tests `--workers`/`--graceful-timeout`) on the command line, which
gunicorn lets override this file.

TriggerMail may face its clients directly (a Heroku-style router passes each connection through
without buffering the request), so no worker may wait on a slow client: the worker class reads
every request whole in its event loop, within `WEB_HEAD_TIMEOUT` for the head and
`WEB_BODY_TIMEOUT` for the body, before one of its `WEB_THREADS` threads runs the (synchronous)
Django application. See `triggermail.gunicorn_worker`.
"""

from __future__ import annotations

import os


def _number(name: str, default: float, *, integer: bool = False, minimum: float = 0) -> float:
    """The environment variable `name` as a number, or stop start-up with a message naming it."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        kind = "a whole number" if integer else "a number"
        raise SystemExit(f"{name}={raw!r}: must be {kind} of at least {minimum:g}")
    return value


# Seconds from a connection's first byte of a request (or from its accept) to the blank line that
# ends the request head; then seconds for its whole body. A client slower than that gets 408.
HEAD_TIMEOUT = _number("WEB_HEAD_TIMEOUT", 10.0, minimum=0.1)
BODY_TIMEOUT = _number("WEB_BODY_TIMEOUT", 30.0, minimum=0.1)

bind = f"0.0.0.0:{int(_number('PORT', 8000, integer=True, minimum=1))}"
# About 2 processes per core, as with the sync workers before, each with 2 threads: a request spends
# much of its time waiting for PostgreSQL (its commit above all), when another thread can run.
# Measured with `make bench` P1/P2 against 2 x 4 and 4 x 1 (README, Speed).
workers = int(_number("WEB_CONCURRENCY", 4, integer=True, minimum=1))
threads = int(_number("WEB_THREADS", 2, integer=True, minimum=1))
worker_class = "triggermail.gunicorn_worker.BufferingWorker"
# The access log leaves out %(u)s: the ingest API's Basic-auth user name is the secret write key.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# No control socket: its default path is per user, so a second gunicorn on the host would take it.
control_socket_disable = True
