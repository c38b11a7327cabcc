"""Reading figures from the replica when it answers, and saying where they came from and how stale.

`read_preferring_replica(compute)` runs `compute` inside the replica scope (triggermail.db_router)
and, if the replica cannot be reached or drops the connection, logs it and runs `compute` again on
the primary, so the page still renders. After such a failure this process leaves the replica alone
for REPLICA_RETRY_AFTER seconds: a replica that is down would otherwise cost every page its
connection timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connections

from triggermail.db_router import REPLICA, replica_configured, replica_reads

logger = logging.getLogger(__name__)

T = TypeVar("T")

REPLICA_RETRY_AFTER = 30.0

# Caught up (everything received is replayed): 0 s behind, however long ago the primary last wrote.
# Otherwise the age of the last transaction replayed, which is how far behind the reader is.
_LAG_SQL = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END
"""

_replica_down_until = 0.0


@dataclass(frozen=True)
class ReadSource:
    """Where a page's figures were read: the replica (and how far behind it was) or the primary."""

    replica: bool
    lag_seconds: float | None = None  # on the replica: None if it is not a standby
    fallback: str = ""  # on the primary: why not the replica, if one is configured

    def __str__(self) -> str:
        if not self.replica:
            return f"primary ({self.fallback})" if self.fallback else "primary"
        if self.lag_seconds is None:
            return "replica (not a standby: it is not replaying a primary)"
        return f"replica, {self.lag_seconds:.0f} s behind"


def replica_status(alias: str = REPLICA) -> tuple[bool, float | None]:
    """(in recovery, seconds behind) of the database behind `alias`; raises if it does not answer."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_LAG_SQL)
        in_recovery, lag = cursor.fetchone()
    return bool(in_recovery), (float(lag) if in_recovery and lag is not None else None)


def read_preferring_replica(compute: Callable[[], T]) -> tuple[T, ReadSource]:
    """`compute()` with its reads on the replica if one is configured and answers, else on the primary."""
    global _replica_down_until
    if not replica_configured():
        return compute(), ReadSource(replica=False)
    if time.monotonic() < _replica_down_until:
        return compute(), ReadSource(replica=False, fallback="replica unreachable, retried shortly")
    try:
        with replica_reads():
            in_recovery, lag = replica_status()
            result = compute()
    except (OperationalError, InterfaceError) as exc:
        logger.warning("Reading from the primary: the replica (%s) failed: %s", _replica_address(), exc)
        # A broken connection must not be reused by the next request on this thread.
        connections[REPLICA].close()
        _replica_down_until = time.monotonic() + REPLICA_RETRY_AFTER
        return compute(), ReadSource(replica=False, fallback="replica unreachable")
    return result, ReadSource(replica=True, lag_seconds=lag if in_recovery else None)


def replica_retry_now() -> None:
    """Forget a recent replica failure (tests, and after the replica is known to be back)."""
    global _replica_down_until
    _replica_down_until = 0.0


def _replica_address() -> str:
    config = connections[REPLICA].settings_dict
    return f"{config.get('HOST') or 'localhost'}:{config.get('PORT') or 5432}/{config.get('NAME')}"
