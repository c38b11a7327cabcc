"""WAL written for one database between two points, from the WAL itself (pg_waldump).

`pg_current_wal_lsn()` moves with every database of the cluster, and on a shared machine other
databases write too; pg_waldump lists each record with the relations it touches, so the bytes of
the records that touch this database's relations, plus the commit records of their transactions,
are this database's WAL. Needs read access to the server's pg_wal (the bench runs on the database
host); returns None when pg_waldump cannot read it, and the caller falls back to the cluster's figure.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
_RECORD = re.compile(r"len \(rec/tot\):\s*\d+/\s*(\d+), tx:\s*(\d+),")
_COMMIT = re.compile(r"^rmgr: Transaction .*desc: (COMMIT|ABORT)")


@dataclass(frozen=True)
class WalPoint:
    lsn: str
    database_oid: int
    wal_dir: str


def wal_point(url: str) -> WalPoint:
    with psycopg.connect(url, autocommit=True) as connection:
        row: Any = connection.execute(
            "SELECT pg_current_wal_lsn()::text, (SELECT oid FROM pg_database WHERE datname = current_database()),"
            " current_setting('data_directory')"
        ).fetchone()
    return WalPoint(str(row[0]), int(row[1]), str(Path(str(row[2])) / "pg_wal"))


def wal_bytes(url: str, start: WalPoint) -> tuple[int, int | None]:
    """(the cluster's WAL bytes since `start`, this database's share of them or None if unknown)."""
    end = wal_point(url)
    with psycopg.connect(url, autocommit=True) as connection:
        row: Any = connection.execute("SELECT pg_wal_lsn_diff(%s, %s)", (end.lsn, start.lsn)).fetchone()
    cluster = int(row[0])
    return cluster, database_wal_bytes(start, end.lsn)


def database_wal_bytes(start: WalPoint, end_lsn: str) -> int | None:
    marker = f" rel 1663/{start.database_oid}/"
    try:
        out = subprocess.run(
            [str(PG_BIN / "pg_waldump"), "-p", start.wal_dir, "-s", start.lsn, "-e", end_lsn],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0 and not out.stdout:
        return None
    ours: set[str] = set()
    total = 0
    commits: list[tuple[str, int]] = []
    for line in out.stdout.splitlines():
        match = _RECORD.search(line)
        if match is None:
            continue
        size, xid = int(match.group(1)), match.group(2)
        if marker in line:
            total += size
            ours.add(xid)
        elif _COMMIT.match(line):
            commits.append((xid, size))
    return total + sum(size for xid, size in commits if xid in ours and xid != "0")
