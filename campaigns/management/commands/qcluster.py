"""`manage.py qcluster`: django-q2's cluster plus the due-send dispatcher in its main process.

One command runs everything a worker host needs, so a delayed send cannot be forgotten because a
second process was not started.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQClusterCommand

from campaigns.dispatch import dispatcher_run


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
        cluster.start()
        # The cluster's SIGTERM/SIGINT handler stops the sentinel; the loop then ends too.
        dispatcher_run(should_stop=lambda: cluster.sentinel is None or not cluster.sentinel.is_alive())
