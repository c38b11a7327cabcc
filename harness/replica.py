"""A real PostgreSQL primary and a streaming replica of it, for the read-replica test.

`streaming_pair()` makes two throwaway clusters on free ports: a primary (`initdb`) and a standby
made from it with `pg_basebackup -R` (which writes `standby.signal` and `primary_conninfo`), started
with `pg_ctl`, and waits until the standby is in recovery and its WAL receiver is streaming. Both are
stopped and removed on the way out.

Why a primary of its own rather than a replica of the machine's cluster on port 5432: a replication
connection needs a `replication` line in that cluster's pg_hba.conf, which this project's machines
do not have (and a test must not edit system files); and `pg_basebackup` copies every database of a
cluster, which on a shared machine holds other runs' multi-gigabyte benchmark databases. A cluster
of its own starts in a few seconds, allows replication from 127.0.0.1 (initdb's default pg_hba),
and copies only what the test puts in it.

PostgreSQL refuses to run as root, so when the tests run as root (CI does) the server binaries run as
the `postgres` user (`runuser`), which then owns the data directories (mode 0700, as it requires).
Anything that goes wrong raises `ReplicaSetupError` with the servers' logs: on PostgreSQL the test
fails loudly, it never skips.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


def _pg_bin() -> Path:
    """Where initdb, pg_ctl and pg_basebackup are: $PG_BIN, else pg_config's answer, else Debian's 15."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        answer = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True)
        return Path(answer.stdout.strip())
    return Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
CLUSTER_OWNER = "postgres"
SUPERUSER = "root"
REPLICATION_ROLE = "replicator"
TIMEOUT = 60.0
PORT_ATTEMPTS = 3


class ReplicaSetupError(RuntimeError):
    """The primary or its standby could not be made or started; the message says what and shows logs."""


@dataclass
class Cluster:
    name: str
    data_dir: Path
    port: int
    log_path: Path

    def url(self, database: str, *, user: str = SUPERUSER) -> str:
        return f"postgres://{user}@127.0.0.1:{self.port}/{database}"

    def query(self, sql: str, *params: Any, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement (autocommit) and return its rows (none for a statement without)."""
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass
class StreamingPair:
    primary: Cluster
    standby: Cluster

    def replayed(self) -> bool:
        """Whether the standby has replayed everything the primary has written so far."""
        [(written,)] = self.primary.query("SELECT pg_current_wal_lsn()::text")
        [(caught_up,)] = self.standby.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", written)
        return bool(caught_up)

    def logs(self) -> str:
        return "\n".join(f"----- {c.name} ({c.log_path}) -----\n{c.log()}" for c in (self.primary, self.standby))


@contextlib.contextmanager
def streaming_pair(
    *, primary_settings: dict[str, str] | None = None, standby_settings: dict[str, str] | None = None
) -> Iterator[StreamingPair]:
    """A running primary and a streaming standby of it; the `…_settings` are extra `-c` settings of each."""
    base = Path(tempfile.mkdtemp(prefix="triggermail-replica-"))
    clusters: list[Cluster] = []
    try:
        _give_to_owner(base)
        primary = Cluster("primary", base / "primary", _free_port(), base / "primary.log")
        _initdb(primary.data_dir)
        clusters.append(primary)
        _start(primary, base, settings=primary_settings)
        primary.query(f"CREATE ROLE {REPLICATION_ROLE} REPLICATION LOGIN")
        standby = Cluster("standby", base / "standby", _free_port(), base / "standby.log")
        _basebackup(primary, standby.data_dir)
        clusters.append(standby)
        _start(standby, base, settings={"hot_standby_feedback": "on", **(standby_settings or {})})
        pair = StreamingPair(primary, standby)
        _wait_streaming(pair)
        yield pair
    finally:
        for cluster in reversed(clusters):
            cluster_stop(cluster)
        shutil.rmtree(base, ignore_errors=True)


def cluster_stop(cluster: Cluster) -> None:
    """Stop the server at once (its data is thrown away); nothing if it is not running."""
    if (cluster.data_dir / "postmaster.pid").exists():
        _run([str(PG_BIN / "pg_ctl"), "-D", str(cluster.data_dir), "-m", "immediate", "-w", "stop"], check=False)
    _running.discard(cluster.data_dir)


# Data directories of servers started and not yet stopped: stopped when the test process exits
# another way than through `streaming_pair`'s exit (an interrupt), so no server outlives the run.
_running: set[Path] = set()


@atexit.register
def _stop_leftovers() -> None:
    for data_dir in list(_running):
        _run([str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop"], check=False)


def _initdb(data_dir: Path) -> None:
    # trust: only 127.0.0.1 and the directory's own socket reach it, and it lives for one test.
    # initdb's pg_hba.conf allows replication connections from 127.0.0.1, which pg_basebackup needs.
    _run(
        [
            *(str(PG_BIN / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "-A", "trust"),
            *("--no-sync", "--no-instructions", "-E", "UTF8", "--locale", "C"),
        ]
    )


def _basebackup(primary: Cluster, data_dir: Path) -> None:
    # -R writes standby.signal and primary_conninfo; -X stream copies the WAL written meanwhile.
    _run(
        [
            *(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", REPLICATION_ROLE),
            *("-D", str(data_dir), "-R", "-X", "stream", "-c", "fast", "--no-sync"),
        ],
        logs_of=[primary],
    )


def _start(cluster: Cluster, base: Path, *, settings: dict[str, str] | None = None) -> None:
    options = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(base),
        # A throwaway cluster: durability only costs time here.
        "fsync": "off",
        **(settings or {}),
    }
    _running.add(cluster.data_dir)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        server_options = " ".join([f"-p {cluster.port}", *(f"-c {key}={value}" for key, value in options.items())])
        try:
            _run(
                [
                    *(str(PG_BIN / "pg_ctl"), "-D", str(cluster.data_dir), "-l", str(cluster.log_path)),
                    *("-w", "-t", str(int(TIMEOUT)), "-o", server_options, "start"),
                ],
                logs_of=[cluster],
            )
            return
        except ReplicaSetupError:
            # Another process took the free port between our look and the server's bind: take another.
            if attempt == PORT_ATTEMPTS or f"port {cluster.port}" not in cluster.log():
                raise
            cluster.port = _free_port()


def _wait_streaming(pair: StreamingPair) -> None:
    """Until the standby is in recovery and its WAL receiver streams from the primary."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.OperationalError):
            rows = pair.standby.query("SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver)")
            if rows == [(True, "streaming")]:
                return
        time.sleep(0.1)
    raise ReplicaSetupError(f"the standby did not start streaming within {TIMEOUT:.0f} s\n{pair.logs()}")


def _run(argv: list[str], *, check: bool = True, logs_of: Sequence[Cluster] = ()) -> None:
    try:
        result = subprocess.run(
            _as_owner(argv), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReplicaSetupError(f"{' '.join(argv)} failed: {exc}") from exc
    if check and result.returncode != 0:
        logs = "\n".join(f"----- {c.name} log -----\n{c.log()}" for c in logs_of)
        raise ReplicaSetupError(
            f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout}{result.stderr}{logs}"
        )


def _as_owner(argv: list[str]) -> list[str]:
    """PostgreSQL's binaries refuse root: as root, run them as the cluster owner."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", CLUSTER_OWNER, "--", *argv]


def _give_to_owner(base: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        owner = pwd.getpwnam(CLUSTER_OWNER)
    except KeyError:
        raise ReplicaSetupError(
            f"running as root, the servers must run as the user {CLUSTER_OWNER!r}, which does not exist "
            "(Debian's postgresql package creates it)"
        ) from None
    os.chown(base, owner.pw_uid, owner.pw_gid)
    if subprocess.run(_as_owner(["test", "-w", str(base)]), check=False).returncode != 0:
        raise ReplicaSetupError(
            f"the user {CLUSTER_OWNER!r} cannot write to {base}: a directory above it is closed to it; "
            "set TMPDIR to a directory every user can reach (such as /tmp)"
        )


def _free_port() -> int:
    # The kernel's choice, released at once: another process could take it before the server binds,
    # which `pg_ctl start` then reports, as a loud failure rather than a wrong result.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
