"""Handing work to the django-q2 cluster.

A task carries only row ids; the rows say what is to be done. With the ORM broker the task row is
written in the caller's transaction, so it exists exactly when the work it points at does. With
Redis it is pushed after commit; if that push is lost, the dispatcher finds the rows again.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task


def enqueue(func: str, *args: Any) -> None:
    if settings.Q_BROKER == "orm":
        async_task(func, *args)
    else:
        transaction.on_commit(lambda: async_task(func, *args))
