"""SendGrid's Event Webhook, played by the fake provider: signed `delivered` callbacks through gunicorn.

SendGrid posts events for every message it accepted — also when its answer to the API call was
lost (a timeout or a dropped connection after accepting) — some time after accepting it, and
redelivers a batch that did not get a 2xx (or sometimes one that did), for up to 72 hours. So:
every accepted message gets a callback a moment later (those due together share a request), some
get it twice with the same sg_event_id, and a refused batch is posted again until it is taken or
the run stops.
Callbacks are the only evidence that settles a send the worker left `unknown`, and their absence
for one send while later sends get theirs is what lets TriggerMail resend it: a fake provider that
skipped callbacks for accepted messages would make TriggerMail send those twice, which the real
SendGrid gives no reason to.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from harness.sendgrid_server import Accepted
from harness.sendgrid_webhook import WEBHOOK_PATH, WebhookKeypair, sendgrid_events_for, webhook_body, webhook_sign

# SendGrid retries an unacknowledged callback with back-off for up to 72 hours: longer than any run.
MAX_BACKOFF = 5.0
# Callbacks posted in one request at most (SendGrid batches events too).
BATCH = 50
POSTERS = 4


@dataclass(order=True)
class _Callback:
    due: float
    order: int
    events: list[dict[str, object]] = field(compare=False)
    send_id: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


class WebhookPoster:
    def __init__(self, *, base_urls: list[str], keypair: WebhookKeypair, redelivery_rate: float, seed: int) -> None:
        self.base_urls = base_urls
        self.keypair = keypair
        self.redelivery_rate = redelivery_rate
        self.counts: Counter[str] = Counter()
        # Send ids (from the message's custom args) for which a callback was acknowledged.
        self.evidenced: set[str] = set()
        self._rng = random.Random(seed)
        self._heap: list[_Callback] = []
        self._order = itertools.count()
        self._lock = threading.Condition()
        self._stop = False
        # SendGrid posts several batches at once; one thread would make the poster the bottleneck.
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(POSTERS)]

    def start(self) -> WebhookPoster:
        for thread in self._threads:
            thread.start()
        return self

    def on_accept(self, accepted: Accepted) -> None:
        """Called by the fake SendGrid server for each accepted message; schedules its callbacks."""
        with self._lock:
            events = sendgrid_events_for(accepted, "delivered")
            self._push(time.monotonic() + self._rng.uniform(0.3, 3.0), events, accepted.send_id)
            if self._rng.random() < self.redelivery_rate:
                # The same events (same sg_event_id) again, as SendGrid's at-least-once delivery does.
                self._push(time.monotonic() + self._rng.uniform(1.0, 5.0), events, accepted.send_id)
                self.counts["webhook redeliveries"] += 1

    def _push(self, due: float, events: list[dict[str, object]], send_id: str, attempt: int = 1) -> None:
        heapq.heappush(self._heap, _Callback(due, next(self._order), events, send_id, attempt))
        self._lock.notify()

    def pending(self) -> int:
        with self._lock:
            return len(self._heap)

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        session = requests.Session()
        while True:
            with self._lock:
                while not self._stop and (not self._heap or self._heap[0].due > time.monotonic()):
                    self._lock.wait(timeout=(self._heap[0].due - time.monotonic()) if self._heap else 1.0)
                if self._stop:
                    return
                # SendGrid posts the events that are due together, many to a request.
                batch = [heapq.heappop(self._heap)]
                while self._heap and self._heap[0].due <= time.monotonic() and len(batch) < BATCH:
                    batch.append(heapq.heappop(self._heap))
            self._deliver(session, batch)

    def _deliver(self, session: requests.Session, batch: list[_Callback]) -> None:
        body = webhook_body([event for callback in batch for event in callback.events])
        url = self.base_urls[batch[0].order % len(self.base_urls)] + WEBHOOK_PATH
        headers = {"Content-Type": "application/json", **webhook_sign(body, self.keypair.private_key)}
        try:
            status = str(session.post(url, data=body, headers=headers, timeout=30).status_code)
        except requests.RequestException as exc:
            status = type(exc).__name__
        with self._lock:
            self.counts["webhooks posted"] += 1
            self.counts[f"webhook answer {status}"] += 1
            for callback in batch:
                if status.startswith("2"):
                    self.evidenced.add(callback.send_id)
                else:
                    # SendGrid retries a batch that was not acknowledged, with back-off.
                    backoff = min(MAX_BACKOFF, 0.5 * 2**callback.attempt)
                    self._push(time.monotonic() + backoff, callback.events, callback.send_id, callback.attempt + 1)
