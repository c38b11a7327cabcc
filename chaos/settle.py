"""The running deployment of a chaos run, and waiting for it to settle once the faults stop.

Settled means: every event is processed, no send is `scheduled` or `sending`, every webhook
callback has been posted, and no send is `unknown` (each became `sent` on evidence, `not_accepted`
and resent, or `abandoned` after the grace window). Every wait has a deadline; a run that does not
settle is reported as such.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaos.config import Config
from chaos.faults import Host, ProcessChaos
from chaos.ingest import Poster
from chaos.webhooks import WebhookPoster
from harness.processes import ManagedProcess, database_sessions_wait, qcluster_ready
from harness.sendgrid_server import SendGridServer
from harness.sendgrid_webhook import WebhookKeypair

# Seconds for the dispatchers' slow checks (stale `sending`, lost events) to come round again.
SLOW_CHECK_PERIOD = 10.0
# A host whose django-q2 workers stalled (one killed holding the task queue's lock) is restarted
# after this long without a task taken (campaigns.operations.cluster_watch); chaos.run sets it.
CLUSTER_STALL_AFTER = 35.0
SETTLE_MARGIN = 60.0


@dataclass
class Deployment:
    config: Config
    server: SendGridServer
    keypair: WebhookKeypair
    write_key: str
    seed: int
    webs: list[ManagedProcess] = field(default_factory=list)
    base_urls: list[str] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)
    webhooks: WebhookPoster | None = None
    stopped: bool = False

    def poster(self, clock: Any, seed: int) -> Poster:
        return Poster(
            base_urls=self.base_urls,
            write_key=self.write_key,
            clock=clock,
            threads=3,
            impatient_rate=0.03,
            repost_rate=0.02,
            seed=seed,
        )

    def webhooks_start(self, seed: int) -> WebhookPoster:
        self.webhooks = WebhookPoster(
            base_urls=self.base_urls, keypair=self.keypair, redelivery_rate=0.15, seed=seed
        ).start()
        return self.webhooks

    def pg_drop_timers(self, at: list[float], faults: Counter[str], drop: Callable[[], int]) -> list[threading.Timer]:
        def fire() -> None:
            faults["PostgreSQL connection drops"] += 1
            faults["PostgreSQL sessions terminated"] += drop()

        timers = [threading.Timer(seconds, fire) for seconds in at]
        for timer in timers:
            timer.daemon = True
            timer.start()
        return timers

    def stop(self) -> None:
        """Stop everything this run started (once); the ledger stays readable."""
        if self.stopped:
            return
        self.stopped = True
        if self.webhooks is not None:
            self.webhooks.stop()
        for process in [h.process for h in self.hosts] + self.webs:
            process.stop()
        self.server.stop()
        try:
            database_sessions_wait()
        except AssertionError as exc:
            # Not a verdict on the run: the database is dropped WITH (FORCE) at the end regardless.
            print(f"chaos: {exc}")


def _counts() -> dict[str, int]:
    """What is still open, read from the database; a dropped connection is retried on the next poll."""
    from django.db import DatabaseError, connection
    from django.db.models import Count

    from campaigns.models import Send
    from events.models import Event

    try:
        states = dict(Send.objects.values_list("state").annotate(n=Count("pk")).order_by())
        unprocessed = Event.objects.filter(processed_at__isnull=True).count()
    except DatabaseError:
        connection.close()
        return {"database unreachable": 1}
    return {
        "unprocessed events": unprocessed,
        "scheduled": states.get(Send.State.SCHEDULED, 0),
        "sending": states.get(Send.State.SENDING, 0),
        "unknown": states.get(Send.State.UNKNOWN, 0),
    }


def _wait(condition: Callable[[], bool], *, timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    print(f"chaos: gave up after {timeout:.0f}s waiting for {what}: {_counts()}")
    return False


def _wait_draining(pending: Callable[[], int], *, stall: float, what: str) -> bool:
    """Wait until nothing is pending, for as long as the backlog keeps shrinking within `stall` s.

    A loaded machine takes longer to take the webhook's backlog, and that is not a failure; a
    backlog that stops shrinking is.
    """
    best = pending()
    deadline = time.monotonic() + stall
    while time.monotonic() < deadline:
        left = pending()
        if left == 0:
            return True
        if left < best:
            best, deadline = left, time.monotonic() + stall
        time.sleep(0.5)
    print(f"chaos: gave up waiting for {what}: {best} still pending and none taken for {stall:.0f}s")
    return False


def settle(deployment: Deployment, chaos: ProcessChaos) -> bool:
    """Restart any host left dead, then wait, bounded, for everything to come to rest."""
    config = deployment.config
    chaos.supervise()
    for host in deployment.hosts:
        qcluster_ready(host.process)
    webhooks = deployment.webhooks

    def open_work() -> bool:
        chaos.supervise()
        counts = _counts()
        return sum(counts[k] for k in ("unprocessed events", "scheduled", "sending") if k in counts) == 0 and (
            "database unreachable" not in counts
        )

    # A lost task is re-found after Q_RETRY, a dead worker's `sending` after SENDING_STALE_AFTER plus a
    # slow-check period, a stalled cluster's after its restart; 429s push retries a few seconds out.
    flowing = _wait(
        open_work,
        timeout=config.cart_delay + CLUSTER_STALL_AFTER + 35 + SLOW_CHECK_PERIOD + SETTLE_MARGIN,
        what="open work",
    )
    drained = webhooks is None or _wait_draining(webhooks.pending, stall=60, what="webhook callbacks")
    # An unknown send becomes abandoned once its attempt is older than the grace window.
    resolved = _wait(
        lambda: open_work() and _counts().get("unknown", 1) == 0,
        timeout=config.grace + 2 * SLOW_CHECK_PERIOD + SETTLE_MARGIN,
        what="unknown sends to settle",
    )
    return flowing and drained and resolved
