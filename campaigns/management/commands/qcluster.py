"""`manage.py qcluster`: django-q2's cluster plus the due-send dispatcher in its main process.

One command runs everything a worker host needs, so a delayed send cannot be forgotten because a
second process was not started.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQClusterCommand

from campaigns.sending.dispatcher import dispatcher_run


class Command(DjangoQClusterCommand):
    help = "Starts the django-q2 cluster and, beside it, the dispatcher that queues due sends."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--no-dispatcher", action="store_true", help="Run only django-q2's cluster, without the dispatcher."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["run_once"] or options["no_dispatcher"]:
            super().handle(*args, **options)
            return
        assert settings.SECRET_KEY  # tasks are signed with it
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = Cluster()
        # django-q2's own handler stops the cluster inside the signal handler. When the signal went
        # to the whole process group (honcho, systemd, Heroku do that) the sentinel has already died
        # holding the stop event's lock, and that handler waits for it forever. Ours only records
        # the request; the cluster is stopped below, outside signal context, if it still runs.
        stop_requested = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop_requested.set())
        cluster.start()
        dispatcher_run(should_stop=lambda: stop_requested.is_set() or not _alive(cluster))
        if _alive(cluster):
            cluster.stop()


def _alive(cluster: Cluster) -> bool:
    return cluster.sentinel is not None and cluster.sentinel.is_alive()
