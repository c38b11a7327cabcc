"""`python -m bench.queue_hop`: how long a queued task waits before the ORM broker's consumer takes it.

P3 runs the whole pipeline on a machine it shares with everything else, where scheduling delays
blur a wait of tens of milliseconds. This measures the one hand-off alone: a task row is committed
at a random moment (uniform over 0-100 ms after the previous one, so at a random phase of any poll),
and a consumer thread in this process takes it with django-q2's stock ORM broker (looks, and sleeps
Q_POLL when it found nothing) or triggermail.broker.NotifiedORM (woken by the commit's NOTIFY).
Per task: taken minus committed, on one clock. The cases alternate, each twice, on a test database
made for the run (DATABASE_URL's server, `test_` + its name, dropped after).

    DATABASE_URL=postgres://root@127.0.0.1:5432/test TEST_DATABASE_NAME=test_queue_hop \\
        SECRET_KEY=x python -m bench.queue_hop [tasks per case, default 200]
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from typing import Any


def _consume(broker: Any, taken: dict[str, float], ready: threading.Event, stop: threading.Event) -> None:
    from django.db import connection

    try:
        # One empty look first: the notified consumer connects and LISTENs in it.
        broker.dequeue()
        ready.set()
        while not stop.is_set():
            for _, payload in broker.dequeue() or []:
                taken[payload] = time.perf_counter()
    finally:
        connection.close()


def _case(broker: Any, count: int) -> list[float]:
    from django.db import transaction
    from django.utils import timezone
    from django_q.models import OrmQ

    taken: dict[str, float] = {}
    committed: dict[str, float] = {}
    ready, stop = threading.Event(), threading.Event()
    consumer = threading.Thread(target=_consume, args=(broker, taken, ready, stop), daemon=True)
    consumer.start()
    ready.wait(10)
    for n in range(count):
        # The pace of the workload (a task now and then), not a wait for a result.
        time.sleep(random.uniform(0, 0.1))
        with transaction.atomic():
            OrmQ.objects.create(key=broker.list_key, payload=str(n), lock=timezone.now())
        committed[str(n)] = time.perf_counter()
    deadline = time.monotonic() + 10
    while len(taken) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    consumer.join(5)
    OrmQ.objects.filter(key=broker.list_key).delete()
    return [taken[k] - committed[k] for k in committed if k in taken]


def main(count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment
    from django_q.brokers.orm import ORM
    from django_q.conf import Conf

    from bench.stats import percentile
    from triggermail.broker import NotifiedORM

    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0)
    try:
        load = os.getloadavg()[0]
        print(f"{count:,} tasks per case, {connection.vendor} ({name}), Q_POLL {Conf.POLL} s, load average {load:.2f}")
        print("| consumer | taken | p50 | p90 | p99 | max |")
        print("|---|---|---|---|---|---|")
        cases: list[tuple[str, type[ORM]]] = [("stock ORM broker", ORM), ("NotifiedORM", NotifiedORM)]
        for label, broker_class in cases + cases:
            hops = _case(broker_class(list_key=f"hop-{label}"), count)
            cells = " | ".join(f"{percentile(hops, p) * 1000:.1f} ms" for p in (50, 90, 99))
            print(f"| {label} | {len(hops)} of {count} | {cells} | {max(hops) * 1000:.1f} ms |")
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
