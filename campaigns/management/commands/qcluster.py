"""`manage.py qcluster`: TriggerMail's extension of django-q2's own `qcluster` command.

It subclasses django-q2's command (same name, same options, plus `--no-dispatcher`; listed before
django_q in INSTALLED_APPS so that this one is found first) because engineers already run that
command: it starts django-q2's cluster unchanged and, in its main process, the dispatcher and sweeps
loops and the heartbeat. One command runs everything a worker host needs, so a delayed send cannot
be forgotten because a second process was not started. The loops run under
campaigns.operations.supervision: restarted after an error, and the process exits non-zero (for its
process manager to restart) when one keeps failing or the cluster dies. A cluster that runs but takes
no task while tasks wait is restarted in place (campaigns.operations.cluster_watch).
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django_q.management.commands.qcluster import Command as DjangoQClusterCommand

from campaigns.operations.cluster_watch import ClusterKeeper
from campaigns.operations.supervision import Loop, Supervisor
from campaigns.sending.dispatcher import dispatcher_run, sweeps_run
from triggermail.metrics import worker_metrics_serve


class Command(DjangoQClusterCommand):
    help = (
        "Extends django-q2's qcluster: starts its cluster and, beside it, TriggerMail's supervised "
        "dispatcher (matching, due sends), sweeps and heartbeat."
    )

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
        # django-q2's own handler stops the cluster inside the signal handler. When the signal went
        # to the whole process group (honcho, systemd, Heroku do that) the sentinel has already died
        # holding the stop event's lock, and that handler waits for it forever. Ours only records
        # the request; the cluster is stopped below, outside signal context, if it still runs.
        stop_requested = threading.Event()
        keeper = ClusterKeeper(on_signal=stop_requested.set)
        keeper.start()
        if settings.WORKER_METRICS_PORT is not None:
            # After the cluster started, so that its forked processes do not inherit the socket.
            worker_metrics_serve(port=settings.WORKER_METRICS_PORT, addr=settings.WORKER_METRICS_ADDR)
        supervisor = Supervisor(cluster_alive=keeper.alive, cluster_check=keeper.check)
        loops: dict[str, Loop] = {
            "dispatcher": functools.partial(dispatcher_run, heartbeat_name=supervisor.heartbeat.name),
            "sweeps": sweeps_run,
        }
        code = supervisor.run(loops, stop_requested=stop_requested, on_stop=keeper.stop)
        if code:
            sys.exit(code)
