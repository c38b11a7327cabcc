"""Waking a waiting loop the moment its work is committed, without polling for it.

On PostgreSQL the ingest, once its events are committed, sends a NOTIFY (`wake`) as a statement of
its own; each qcluster's dispatcher LISTENs on a connection of its own and starts matching at once.
Not from inside the ingest's transaction: PostgreSQL serialises the commits of all transactions
that sent a NOTIFY under one lock held until each commit is on disk, so a NOTIFY in the ingest's
durable transaction made every ingest commit wait for the one before it (events/0008 dropped the
trigger that did so). A transaction that only notifies writes no WAL and does not wait for the disk.
A trigger on django-q2's task table (campaigns/0019) wakes the queue's consumer (triggermail.broker)
from the matching's transaction, whose commit does not wait for the disk either
(triggermail.durability). Elsewhere (SQLite), and whenever a notification is missed (the listening
connection dropped, a web process gone between its commit and its NOTIFY), the loops' regular looks
find the work a moment later.

LISTEN needs a session that stays ours, which PgBouncer in transaction mode does not give: behind
it (DATABASE_POOLING=transaction) the listener connects through DATABASE_DIRECT_URL (the `direct`
connection), and without one it does not listen at all, so the dispatcher simply looks every
DISPATCH_INTERVAL (triggermail.checks reports which, I014 or W014).
"""

from __future__ import annotations

import logging
import time

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, connections

logger = logging.getLogger(__name__)

CHANNEL = "triggermail_events"
TASKS_CHANNEL = "triggermail_tasks"
# The connection alias that reaches PostgreSQL without the pooler (settings: DATABASE_DIRECT_URL).
DIRECT = "direct"


def wake(channel: str = CHANNEL) -> None:
    """Tell the loops listening on `channel` that work was committed (PostgreSQL; elsewhere nothing).

    Call it after the commit (transaction.on_commit): a notification sent inside a transaction is
    delivered at its commit, but holds every other notifying commit until this one is on disk. A
    failure is logged and ignored: what was committed stays committed, and the regular looks find it.
    """
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [channel])
    except DatabaseError:
        logger.warning("could not wake the loops listening on %s; they will look on their own", channel, exc_info=True)


def listening_alias() -> str | None:
    """The connection whose parameters the listener uses, or None when it must not listen."""
    if connection.vendor != "postgresql":
        return None
    if DIRECT in settings.DATABASES:
        return DIRECT
    # Through a transaction pooler a LISTEN lands on whichever server session runs that statement,
    # and the notifications go to a session that is no longer ours.
    return None if settings.DATABASE_POOLING == "transaction" else "default"


class Listener:
    """Waits for a channel's notifications; on a database without them, simply waits."""

    def __init__(self, channel: str = CHANNEL) -> None:
        self.channel = channel
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds; True when events arrived meanwhile (as far as we know)."""
        alias = listening_alias()
        if alias is None:
            time.sleep(timeout)
            return False
        try:
            listening = self._listening(alias)
            notified = False
            for _ in listening.notifies(timeout=timeout, stop_after=1):
                notified = True
            if notified:
                # Drain what else is waiting: one pass of the processor serves them all.
                for _ in listening.notifies(timeout=0):
                    pass
            return notified
        except psycopg.Error:
            logger.warning("the listener on %s lost its database connection; reconnecting", self.channel, exc_info=True)
            self.close()
            time.sleep(min(timeout, 1.0))
            return True  # something may have arrived while we were not listening

    def _listening(self, alias: str) -> psycopg.Connection[tuple[object, ...]]:
        if self._connection is None or self._connection.closed:
            params = connections[alias].get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self._connection = psycopg.connect(**params, autocommit=True)
            self._connection.execute(f"LISTEN {self.channel}")
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            finally:
                self._connection = None
