"""Posting the workload to the ingest API as Segment's SDKs do: batches, HTTP Basic, retries.

An SDK retries a batch after a time-out, a 429 or a 5xx, so the same messages arrive again; this
client does that too, and on purpose some of the time (a first attempt with a time-out too short
to read the answer, or the same batch again after a 200), because that is what "never twice"
must survive.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from chaos.workload import Clock, Message, batch_body

MAX_ATTEMPTS = 15
BATCH_DEADLINE = 180.0
# Short enough that the client gives up before gunicorn answers; the server stores it regardless.
IMPATIENT_TIMEOUT = 0.005
PATIENT_TIMEOUT = 20.0


@dataclass
class IngestStats:
    messages_posted: int = 0  # every message of every attempt, duplicates and retries included
    posts: int = 0
    batches_acknowledged: int = 0
    batches_unacknowledged: int = 0
    impatient_retries: int = 0  # injected: the first attempt timed out on the client's side
    reposts: int = 0  # injected: the same batch posted again after a 200
    answers: Counter[str] = field(default_factory=Counter)  # status codes and client-side errors
    rejected: list[str] = field(default_factory=list)  # 4xx answers: a bug in the workload or the API


class Poster:
    """Posts batches at an even pace over `duration` seconds with a few threads; records acks."""

    def __init__(
        self,
        *,
        base_urls: list[str],
        write_key: str,
        clock: Clock,
        threads: int,
        impatient_rate: float,
        repost_rate: float,
        seed: int,
    ) -> None:
        self.base_urls = base_urls
        self.write_key = write_key
        self.clock = clock
        self.threads = threads
        self.impatient_rate = impatient_rate
        self.repost_rate = repost_rate
        self.stats = IngestStats()
        # messageId -> when an answer first acknowledged it (time.time()).
        self.acks: dict[str, float] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, batches: list[list[Message]], *, duration: float) -> None:
        work: queue.Queue[tuple[int, list[Message]] | None] = queue.Queue()
        workers = [threading.Thread(target=self._work, args=(work,), daemon=True) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        interval = duration / max(1, len(batches))
        started = time.monotonic()
        for index, batch in enumerate(batches):
            # Pacing: batch i is handed out at start + i * interval, however long posting takes.
            self._stop.wait(max(0.0, started + index * interval - time.monotonic()))
            # Stamped here, in stream order: a user's later message must carry a later timestamp
            # even when another thread posts its batch first.
            for message in batch:
                message.stamp(self.clock)
            work.put((index, batch))
        for _ in workers:
            work.put(None)
        deadline = time.monotonic() + BATCH_DEADLINE
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()

    def _work(self, work: queue.Queue[tuple[int, list[Message]] | None]) -> None:
        session = requests.Session()
        while (item := work.get()) is not None:
            index, batch = item
            with self._lock:
                impatient = self._rng.random() < self.impatient_rate
                repost = self._rng.random() < self.repost_rate
            acked = self._post_until_acked(session, index, batch, impatient=impatient)
            if not acked:
                with self._lock:
                    self.stats.batches_unacknowledged += 1
            elif repost:
                with self._lock:
                    self.stats.reposts += 1
                self._post_until_acked(session, index + 1, batch, impatient=False)

    def _post_until_acked(
        self, session: requests.Session, index: int, batch: list[Message], *, impatient: bool
    ) -> bool:
        with self._lock:
            body = batch_body(batch, self.clock)
        deadline = time.monotonic() + BATCH_DEADLINE
        for attempt in range(MAX_ATTEMPTS):
            if time.monotonic() >= deadline or self._stop.is_set():
                break
            url = self.base_urls[(index + attempt) % len(self.base_urls)] + "/v1/batch"
            timeout = IMPATIENT_TIMEOUT if impatient and attempt == 0 else PATIENT_TIMEOUT
            answer, wait = self._post(session, url, body, len(batch), timeout)
            if answer == "200":
                self._acknowledge(batch)
                return True
            if impatient and attempt == 0:
                with self._lock:
                    self.stats.impatient_retries += 1
            if answer.startswith("4") and answer != "429":
                break
            # SDK back-off: exponential with jitter, capped, or what the server asked for.
            self._stop.wait(wait if wait is not None else min(3.0, 0.1 * 2**attempt) * random.uniform(0.5, 1.5))
        return False

    def _post(
        self, session: requests.Session, url: str, body: bytes, size: int, timeout: float
    ) -> tuple[str, float | None]:
        wait: float | None = None
        try:
            response = session.post(
                url,
                data=body,
                auth=(self.write_key, ""),
                headers={"Content-Type": "application/json"},
                timeout=timeout,
            )
            answer = str(response.status_code)
            retry_after = response.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else None
            if answer.startswith("4") and answer != "429":
                with self._lock:
                    self.stats.rejected.append(f"{answer} {response.text[:300]}")
        except requests.Timeout:
            answer = "client timeout"
        except requests.ConnectionError:
            answer = "connection error"
        with self._lock:
            self.stats.posts += 1
            self.stats.messages_posted += size
            self.stats.answers[answer] += 1
        return answer, wait

    def _acknowledge(self, batch: list[Message]) -> None:
        at = time.time()
        with self._lock:
            self.stats.batches_acknowledged += 1
            for message in batch:
                self.acks.setdefault(message.message_id, at)
