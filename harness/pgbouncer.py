"""A PgBouncer in transaction pooling mode in front of the local PostgreSQL, for tests, CI, chaos and people.

`python -m harness.pgbouncer start` (what `make pgbouncer` and `.ci/run` call) starts one on port
6432 as a daemon, or says it is already running; the tests that need one start their own on a free
port as a child process (`pgbouncer_run`). Both use the same configuration: every database name is
passed through to 127.0.0.1:5432, loopback clients are trusted as PostgreSQL trusts them, and a
server connection belongs to a client only for one transaction.

PgBouncer refuses to run as root; started by root it drops to the `postgres` user (`-u`), so its
configuration, log and pid files live in a directory of theirs under /tmp that that user owns.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

DEFAULT_PORT = 6432
UPSTREAM_HOST = "127.0.0.1"
UPSTREAM_PORT = 5432
# The user PgBouncer runs as when started by root, and who owns its files.
RUN_AS = "postgres"
# The users who may connect (trusted on loopback, like PostgreSQL here) and use the admin console.
USERS = ("root", "postgres")

# Pools: at most 20 server connections per database and user, which a chaos run (two web
# processes, two hosts of three workers and their dispatchers) shares; clients are cheap, so
# max_client_conn is well above what the suites open. server_idle_timeout returns idle server
# connections to PostgreSQL after a while, so that a dropped test database's pool empties on its own.
CONFIG = """\
[databases]
* = host={upstream_host} port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
admin_users = {admin_users}
pool_mode = transaction
default_pool_size = 20
max_client_conn = 1000
server_idle_timeout = 30
ignore_startup_parameters = extra_float_digits,options
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
log_connections = 0
log_disconnections = 0
"""


@dataclass(frozen=True)
class PgBouncer:
    port: int
    directory: Path

    def url(self, database: str, *, user: str = "root") -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}"

    @property
    def log_path(self) -> Path:
        return self.directory / "pgbouncer.log"


def config_write(*, port: int, directory: Path) -> Path:
    """Write pgbouncer.ini and its user list into `directory` (owned by RUN_AS when we are root)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in USERS))
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        CONFIG.format(
            port=port,
            directory=directory,
            upstream_host=UPSTREAM_HOST,
            upstream_port=UPSTREAM_PORT,
            admin_users=",".join(USERS),
        )
    )
    if os.geteuid() == 0:
        account = pwd.getpwnam(RUN_AS)
        for path in (directory, *directory.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
    return ini


def _argv(ini: Path, *, daemon: bool) -> list[str]:
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    argv = [binary, *(["-d"] if daemon else []), str(ini)]
    if os.geteuid() == 0:
        argv[1:1] = ["-u", RUN_AS]
    return argv


def installed() -> bool:
    return bool(shutil.which("pgbouncer") or Path("/usr/sbin/pgbouncer").exists())


def admin_command(port: int, command: str) -> list[tuple[object, ...]]:
    """Run one admin console command (SHOW ..., RECONNECT ..., WAIT_CLOSE ...); its rows, if any."""
    with psycopg.connect(
        host="127.0.0.1", port=port, dbname="pgbouncer", user="root", autocommit=True, connect_timeout=2
    ) as connection:
        # The admin console speaks only the simple query protocol.
        cursor = connection.execute(command.encode(), prepare=False)
        return cursor.fetchall() if cursor.description else []


def answers(port: int) -> bool:
    try:
        admin_command(port, "SHOW VERSION")
    except psycopg.Error:
        return False
    return True


def _wait_answering(port: int, *, log_path: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not answers(port):
        if time.monotonic() >= deadline:
            log = log_path.read_text(errors="replace") if log_path.exists() else "(no log)"
            raise RuntimeError(f"PgBouncer did not answer on port {port} within {timeout:.0f}s:\n{log}")
        time.sleep(0.1)


def daemon_start(port: int = DEFAULT_PORT) -> PgBouncer:
    """Start PgBouncer as a daemon on `port` unless one answers there already (idempotent)."""
    bouncer = PgBouncer(port=port, directory=Path(tempfile.gettempdir()) / f"triggermail-pgbouncer-{port}")
    if answers(port):
        print(f"pgbouncer: already running on 127.0.0.1:{port}")
        return bouncer
    ini = config_write(port=port, directory=bouncer.directory)
    subprocess.run(_argv(ini, daemon=True), check=True, stdin=subprocess.DEVNULL)
    _wait_answering(port, log_path=bouncer.log_path)
    print(f"pgbouncer: running on 127.0.0.1:{port} (transaction pooling to {UPSTREAM_HOST}:{UPSTREAM_PORT});")
    print(f"  config and log in {bouncer.directory}; try DATABASE_URL={bouncer.url('test')}")
    return bouncer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def pgbouncer_run() -> Iterator[PgBouncer]:
    """A PgBouncer of the caller's own on a free port, as a child process, stopped on the way out."""
    directory = Path(tempfile.mkdtemp(prefix="triggermail-pgbouncer-"))
    port = free_port()
    bouncer = PgBouncer(port=port, directory=directory)
    ini = config_write(port=port, directory=directory)
    process = subprocess.Popen(_argv(ini, daemon=False), stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_answering(port, log_path=bouncer.log_path)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(directory, ignore_errors=True)


def server_connections_close(*, port: int, database: str) -> None:
    """Close PgBouncer's server connections to `database` and wait until they are gone.

    In transaction pooling PgBouncer keeps server connections open after its clients leave; they
    hold no locks, but PostgreSQL refuses to drop a database that has any session at all.
    """
    admin_command(port, f"RECONNECT {database}")
    admin_command(port, f"WAIT_CLOSE {database}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.pgbouncer", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    if not installed():
        print("pgbouncer: not installed; `make deps-system` installs it.", file=sys.stderr)
        return 1
    daemon_start(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
