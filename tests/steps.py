"""One step of the worker, or one question about a window, in a single call: shortcuts only the tests
need. The product runs these steps inside its loops (campaigns.sending.dispatcher) and on batches
(campaigns.sending.claiming.sends_claim, campaigns.sending.delivery.sends_deliver), so they live
here rather than in the apps."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from campaigns.matching.processing import BATCH_SIZE, events_process_batch
from campaigns.matching.windows import SendWindow, window_next_open
from campaigns.operations.heartbeats import heartbeats_prune
from campaigns.sending.claiming import Claim, sends_claim
from campaigns.sending.delivery import sends_deliver
from campaigns.sending.dispatcher import stuck_sends_settle
from campaigns.sending.queueing import due_sends_queue
from campaigns.sending.retention import records_prune


def events_process_pending(*, batch_size: int = BATCH_SIZE) -> int:
    """Process unprocessed events until none are left; return how many were processed."""
    total = 0
    while processed := events_process_batch(batch_size=batch_size):
        total += processed
    return total


def dispatch_once(*, now: datetime, slow_checks: bool, prune: bool = False) -> int:
    """One pass of the dispatcher's work at `now`: queue due sends, optionally with the slow sweeps
    (stale `sending`, unknown sends past their grace) and pruning; return how many sends were queued."""
    queued = due_sends_queue(now=now)
    if slow_checks:
        stuck_sends_settle(now=now)
    if prune:
        records_prune(now=now)
        heartbeats_prune(now=now)
    return queued


def send_claim(send_id: int, *, now: datetime) -> Claim | None:
    """Claim one send (see sends_claim); None if it is not ours to send."""
    claims = sends_claim([send_id], now=now)
    return claims[0] if claims else None


def send_deliver(send_id: int) -> str:
    """Deliver one send as the delivery task does; return the outcome it counted."""
    counts = sends_deliver([send_id])
    return next(iter(counts))


def window_is_open(at: datetime, zone: ZoneInfo, window: SendWindow) -> bool:
    return window_next_open(at, zone, window.start, window.end, window.days) == at.astimezone(UTC)
