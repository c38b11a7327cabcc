"""Which database a query goes to: the primary, except reads inside `replica_reads()`.

A streaming replica is a few milliseconds to minutes behind the primary. That is fine for figures a
person reads (the Dashboard, the rules export), and never fine for anything that decides a send:
matching, claiming, delivery and settling must see the rows as they are, or a send that was just
claimed, cancelled or suppressed would look free. So the replica is opt-in per call site, by a
scope that only those read-only pages enter, and everything outside it (including the Admin's
change forms, which save what they show) reads and writes the primary.

The scope is a context variable, so a thread (gunicorn's gthread workers) or a task sees only its
own; it is never set by default. Writes always go to the primary, even for an object read from the
replica: Django's fallback would otherwise send its save to the database it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPLICA = "replica"

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Inside this block, ORM reads go to the replica (when DATABASE_REPLICA_URL is set)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def reads_alias() -> str:
    """The database alias that ORM reads use here and now."""
    return REPLICA if _replica_reads.get() and replica_configured() else DEFAULT_DB_ALIAS


class ReplicaRouter:
    """Django's router for the optional replica alias (settings.DATABASE_ROUTERS)."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        # An explicit answer even outside the scope: without one, Django reads an object's related
        # rows from the database the object came from, which for a replica-read object is the replica.
        return reads_alias()

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # The replica holds the same rows as the primary: an object from one may point to the other's.
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        # A standby is read-only and gets its schema by replaying the primary's.
        return db != REPLICA
