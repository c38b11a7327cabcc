"""Starting and stopping the real TriggerMail processes (gunicorn, `manage.py qcluster`) for tests.

The end-to-end tests run the product as a deployment does: separate processes that share nothing
with the test but the database and the provider's URL. Each process writes its output to a log
file, so a failing test can print what the processes said; every process is started in its own
session, so stopping it also reaches the children it forked (gunicorn and django-q2 workers).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = BASE_DIR / ".venv" / "bin"

T = TypeVar("T")

# gunicorn binds port 0 (the kernel picks a free port, so there is no race with another test run)
# and reports the port it got in this line.
_LISTENING = re.compile(r"Listening at: http://[^:]+:(\d+)")
_QCLUSTER_RUNNING = re.compile(r"Q Cluster .+ running\.")
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Stop gracefully (SIGTERM to the main process), then kill the whole session if it lingers."""
        if self.alive:
            # Only the main process gets SIGTERM: both gunicorn's master and django-q2's cluster
            # then stop their children in order, whereas a group-wide SIGTERM kills django-q2's
            # sentinel outright (it keeps the default SIGTERM action).
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # Children that outlived their parent (or a parent that ignored SIGTERM) must not keep
        # database connections open: pytest-django drops the test database after the run.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        if self.alive:
            self.popen.wait(5)
        if self in _started:
            _started.remove(self)


# Every process started and not yet stopped. A fixture's finalizer normally stops them; this is the
# net for a test run that ends another way (an error in a finalizer, an interrupt), so that no
# server keeps running, or keeps the test database open, after pytest has gone.
_started: list[ManagedProcess] = []


@atexit.register
def _stop_leftovers() -> None:
    for process in list(_started):
        process.stop(timeout=5)


def process_start(name: str, argv: list[str], *, env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            argv,
            cwd=BASE_DIR,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = ManagedProcess(name=name, popen=popen, log_path=log_path)
    _started.append(process)
    return process


def processes_logs(processes: Iterable[ManagedProcess]) -> str:
    parts = []
    for process in processes:
        state = "running" if process.alive else f"exited with {process.popen.returncode}"
        parts.append(f"----- {process.name} (pid {process.popen.pid}, {state}) -----\n{process.log()}")
    return "\n".join(parts)


def wait_until(
    condition: Callable[[], T | None],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.05,
    processes: Iterable[ManagedProcess] = (),
) -> T:
    """Poll `condition` until it returns something truthy; fail saying `what` was awaited.

    A watched process that exits fails the wait at once, with every process's log, instead of
    letting the test wait out its timeout for work that can no longer happen.
    """
    watched = list(processes)
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        dead = [p for p in watched if not p.alive]
        if dead:
            names = ", ".join(p.name for p in dead)
            raise AssertionError(f"{names} exited while waiting for {what}\n{processes_logs(watched)}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL (django-environ syntax) naming the database these connection settings use."""
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    if engine == "django.db.backends.postgresql":
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return f"postgres://{credentials}{host}{port}/{quote(settings_dict['NAME'], safe='')}"
    raise ValueError(f"end-to-end tests do not know how to point a subprocess at {engine}")


def process_env(*, database_url: str, secret_key: str, sendgrid_url: str, api_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secret_key,
        SENDGRID_API_KEY=api_key,
        SENDGRID_API_URL=sendgrid_url,
        # Short, so that a provider that hangs shows up within a test's wait, not after it.
        PROVIDER_TIMEOUT="5",
        Q_WORKERS="2",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DEBUG="false",
        # The cluster's own INFO lines ("running", task failures) are what a failing test needs.
        LOG_LEVEL="INFO",
        Q_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    # The subprocesses must not believe they run under pytest (pytest-env's defaults, test names).
    env.pop("TEST_DATABASE_NAME", None)
    # Behind PgBouncer (README, PgBouncer) the direct URL reaches the same database as DATABASE_URL.
    if env.get("DATABASE_DIRECT_URL"):
        env["DATABASE_DIRECT_URL"] = same_database(env["DATABASE_DIRECT_URL"], as_url=database_url)
    return env


def same_database(url: str, *, as_url: str) -> str:
    """`url` (its server and credentials) naming the database that `as_url` names."""
    return urlsplit(url)._replace(path=urlsplit(as_url).path).geturl()


def gunicorn_start(
    *,
    env: Mapping[str, str],
    log_dir: Path,
    workers: int = 2,
    argv: Sequence[str] | None = None,
    ready_path: str = "/v1/openapi.json",
    name: str = "gunicorn",
) -> tuple[ManagedProcess, str]:
    """Start gunicorn on a free port; return it with its base URL once it answers HTTP.

    By default the Procfile's command line with `workers` processes; `argv` replaces it (the
    benchmarks run the Procfile's unchanged) and must bind port 0 on 127.0.0.1. `ready_path` is a
    URL that answers 200 GET once the app is up.
    """
    if argv is None:
        argv = _gunicorn_test_argv(workers)
    process = process_start(name, list(argv), env=env, log_dir=log_dir)
    try:
        port = wait_until(
            lambda: (m := _LISTENING.search(process.log())) and m.group(1),
            what="gunicorn to listen",
            processes=[process],
        )
        base_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base_url}{ready_path}"), what="gunicorn to answer", processes=[process])
    except BaseException:
        print(processes_logs([process]), file=sys.stderr)
        process.stop()
        raise
    return process, base_url


def procfile_web_argv() -> list[str]:
    """The Procfile's web command as an argv (`${VAR:-default}` expanded), bound to 127.0.0.1:0.

    The tests and the benchmarks start gunicorn with this command line, so they run the serving
    configuration that ships (triggermail/gunicorn_conf.py); gunicorn lets options given on the
    command line override that file's.
    """
    line = next(row for row in (BASE_DIR / "Procfile").read_text().splitlines() if row.startswith("web:"))
    expanded = _DEFAULTED.sub(lambda m: os.environ.get(m.group(1), m.group(2)), line.removeprefix("web:"))
    argv = shlex.split(expanded)
    argv[0] = str(VENV_BIN / argv[0])
    return [*argv, "--bind", "127.0.0.1:0"]


def _gunicorn_test_argv(workers: int) -> list[str]:
    # Short, so that stopping a test's server does not wait out the production grace period.
    return [*procfile_web_argv(), "--workers", str(workers), "--graceful-timeout", "5"]


def qcluster_start(*, env: Mapping[str, str], log_dir: Path, name: str = "qcluster") -> ManagedProcess:
    """Start `manage.py qcluster` (cluster and dispatcher); it is ready once `qcluster_ready`."""
    argv = [str(VENV_BIN / "python"), "manage.py", "qcluster"]
    return process_start(name, argv, env=env, log_dir=log_dir)


def qcluster_ready(process: ManagedProcess) -> None:
    wait_until(lambda: _QCLUSTER_RUNNING.search(process.log()), what="the qcluster to run", processes=[process])


@dataclass
class Deployment:
    """One web process and one worker process, as the Procfile runs them."""

    gunicorn: ManagedProcess
    qcluster: ManagedProcess
    base_url: str

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.gunicorn, self.qcluster]

    def logs(self) -> str:
        return processes_logs(self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def deployment_start(*, env: Mapping[str, str], log_dir: Path) -> Deployment:
    """Start the worker and the web process side by side (they boot in parallel); wait for both."""
    qcluster = qcluster_start(env=env, log_dir=log_dir)
    try:
        gunicorn, base_url = gunicorn_start(env=env, log_dir=log_dir)
    except BaseException:
        qcluster.stop()
        raise
    deployment = Deployment(gunicorn=gunicorn, qcluster=qcluster, base_url=base_url)
    try:
        qcluster_ready(qcluster)
    except BaseException:
        print(deployment.logs(), file=sys.stderr)
        deployment.stop()
        raise
    return deployment


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def database_sessions_of_others() -> list[tuple[Any, ...]]:
    """Sessions on the test database (PostgreSQL) of other processes: the ones a stopped process
    leaves behind for a moment, which would block the database's flush and drop.

    A session of this very process (a connection another of its threads opened) is not one of
    them: waiting cannot end it, and idle it blocks nothing. It is told apart by its client port.

    Behind PgBouncer in transaction mode the sessions are PgBouncer's, and it keeps them open when
    its clients go: only one in a transaction (or running a statement) may block anything, and
    PgBouncer closes a session whose client left in the middle of a transaction."""
    import psutil
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    own_ports = {c.laddr.port for c in psutil.Process().net_connections(kind="tcp") if c.laddr}
    pooled = settings.DATABASE_POOLING == "transaction"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, application_name, client_port, backend_start, state, left(query, 200)"
            " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            + (" AND state <> 'idle'" if pooled else "")
        )
        return [row for row in cursor.fetchall() if row[2] not in own_ports]


def database_sessions_wait() -> None:
    """PostgreSQL ends a session a moment after its client has gone; wait for the stopped processes'."""
    try:
        wait_until(
            lambda: not database_sessions_of_others(), what="the processes' database sessions to end", timeout=15
        )
    except AssertionError as exc:
        # Say whose sessions stayed (client port, start, last query), so a flake can be traced.
        raise AssertionError(f"{exc}: {database_sessions_of_others()}") from None


@contextlib.contextmanager
def web_serving(*, sendgrid_url: str, log_dir: Path, drop_env: Iterable[str] = ()) -> Iterator[str]:
    """The production web server (gunicorn) on the current test database; yields its base URL.

    Stopped on the way out, its log printed (pytest shows it only for a failed test), and the
    database sessions awaited so that pytest-django's flush and drop never meet one of them.
    """
    from django.conf import settings
    from django.db import connection

    env = process_env(
        database_url=database_url(connection.settings_dict),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=sendgrid_url,
        api_key=_sendgrid_api_key(),
    )
    for name in drop_env:
        env.pop(name, None)
    gunicorn, base_url = gunicorn_start(env=env, log_dir=log_dir)
    try:
        yield base_url
    finally:
        gunicorn.stop()
        print(gunicorn.log())
    database_sessions_wait()


def _sendgrid_api_key() -> str:
    from harness.sendgrid_server import API_KEY

    return API_KEY
