"""django-q2's ORM broker, woken by the commit of a queued task instead of polling for it.

The stock ORM broker looks for tasks and, finding none, sleeps Q_POLL seconds: a task queued just
after a look waits that long before a worker sees it (half of it on average, on every hand-off).
On PostgreSQL a trigger on the task table (migration campaigns/0018) sends a NOTIFY when a task
row's transaction commits, and this broker waits for that instead of sleeping, so the consumer looks
again the moment a task exists. It still looks every NOTIFIED_POLL seconds regardless, for what no
notification announces: a task whose lease ran out (a worker died with it), a notification lost
while the listening connection was down; and the consumer notices a stop request only between
looks, so this also bounds how long a graceful stop waits for it. Elsewhere (SQLite) it sleeps
Q_POLL, as the stock broker does, and so it does behind PgBouncer without DATABASE_DIRECT_URL
(transaction pooling gives LISTEN no session of its own; triggermail.wakeup.listening_alias).

Claiming is the stock broker's, unchanged: a compare-and-set on the row's `lock`, so several
consumers (hosts) woken by one notification share the tasks without running one twice at once.

Both brokers here (this one, and django-q2's Redis broker as StampedRedis) note when the cluster
takes tasks (triggermail.task_clock), for the qcluster's watch on a stalled cluster.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf

from triggermail.task_clock import pulled_stamp
from triggermail.wakeup import TASKS_CHANNEL, Listener, listening_alias

# The look for tasks no notification announced; on PostgreSQL Q_POLL no longer paces the hand-off.
NOTIFIED_POLL = 0.5


class NotifiedORM(ORM):
    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key)
        # Connected on the first wait, in the process that consumes (the cluster's pusher).
        self._listener = Listener(TASKS_CHANNEL)

    def dequeue(self) -> list[tuple[Any, Any]] | None:
        tasks = self._claim()
        if tasks:
            pulled_stamp()
            return tasks
        if listening_alias() is not None:
            self._listener.wait(max(Conf.POLL, NOTIFIED_POLL))
        else:
            self._listener.wait(Conf.POLL)
        return None

    def _claim(self) -> list[tuple[Any, Any]]:
        """Up to Q_CLUSTER["bulk"] tasks whose lease is free, each leased by a compare-and-set."""
        queued = self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[: Conf.BULK]
        claimed = []
        for task in queued:
            # Zero rows updated: another consumer leased it between our read and this write.
            if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                claimed.append((task.pk, task.payload))
        return claimed


class StampedRedis(Redis):
    """django-q2's Redis broker, noting when the cluster takes tasks (triggermail.task_clock)."""

    def dequeue(self) -> list[tuple[Any, Any]] | None:
        tasks = super().dequeue()
        if tasks:
            pulled_stamp()
        return tasks
