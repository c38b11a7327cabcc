"""Commits that need not wait for the disk.

PostgreSQL makes a commit durable by flushing the WAL before it answers; on a busy 2-core host
that wait is most of a small transaction's time. Some transactions are harmless to lose in a
database crash (the data survives a crash of any other process): lost matching is redone from the
still-unprocessed events (same decisions, same dedupe keys), and a lost "sent" record leaves the
send `sending`, which becomes `unknown` and is settled from the provider's webhook evidence —
never sent again. Those transactions skip the wait. Everything else stays synchronous: an ingest
answers 200 only once its events are on disk, and a claim's reserved key is on disk before the
provider is called (and its flush also flushes every earlier commit, the send rows included).
"""

from __future__ import annotations

from django.db import connection


def commit_without_waiting() -> None:
    """Inside a transaction that may be lost in a database crash: let its commit skip the WAL flush."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # LOCAL: this transaction only; the connection's next transaction is synchronous again.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
