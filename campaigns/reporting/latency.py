"""How long sent emails took to reach the provider: measured once per send, when it becomes sent.

Two measures, because they answer different questions:

- immediate: the send was due as soon as its event was matched (no delay, or an event that arrived
  after its delay had already passed; matching sets such a send's due time to the moment it ran,
  which is also the event's `processed_at`): the time from the ingest API accepting the event
  (`Event.received_at`) to the provider accepting the email (`Send.sent_at`).
- delayed: the send fell due later than that: the time from its due time
  (`Send.due_at`, which already includes the rule's delay, send windows and frequency-cap slots) to
  the provider accepting it. Measuring a delayed email from its event would only measure the delay.

The kind is decided per send from its own rows when it becomes `sent` (`sends_latency_record`), and
stored on it with the latency in milliseconds, so editing a rule does not reclassify its past
emails, pruning its event later does not lose the measure, and the Dashboard reads one table. Sends
without an event and a person's resends are left out: they have no accepted moment to measure from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from campaigns.models import Send

IMMEDIATE = "immediate"
DELAYED = "delayed"
KINDS = (IMMEDIATE, DELAYED)
PERCENTILES = (0.5, 0.95, 0.99)

# Histogram buckets (upper bounds); the last bucket is open-ended.
BUCKET_EDGES = (
    timedelta(milliseconds=250),
    timedelta(milliseconds=500),
    timedelta(seconds=1),
    timedelta(seconds=2),
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=5),
)


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50: timedelta | None
    p95: timedelta | None
    p99: timedelta | None

    @classmethod
    def empty(cls) -> Percentiles:
        return cls(0, None, None, None)


@dataclass(frozen=True)
class Bucket:
    label: str
    immediate: int
    delayed: int


# Percentiles per (rule id, kind), and per kind for all rules.
RuleAndOverall = tuple[dict[tuple[int, str], Percentiles], dict[str, Percentiles]]


def latency_measure(
    *, sent_at: datetime, due_at: datetime, accepted_at: datetime | None, matched_at: datetime | None, resend: bool
) -> tuple[int | None, str]:
    """(milliseconds, kind) of one sent email; (None, "") when there is nothing to measure from."""
    if accepted_at is None or resend:
        return None, ""
    # A send is "immediate" when it was due the moment its event was matched: matching gives a send
    # with nothing to wait for the matching time itself as due time, later than the acceptance.
    if due_at <= (matched_at or accepted_at):
        return _milliseconds(sent_at - accepted_at), IMMEDIATE
    return _milliseconds(sent_at - due_at), DELAYED


def sends_latency_record(send_ids: Sequence[int]) -> None:
    """Store the latency of sends that have just become `sent` (by their provider answer or by evidence)."""
    rows = Send.objects.filter(pk__in=list(send_ids), state=Send.State.SENT, sent_at__isnull=False).values(
        "pk", "sent_at", "due_at", "event__received_at", "event__processed_at", "resend_of_id"
    )
    measured = []
    for row in rows:
        assert row["sent_at"] is not None  # filtered above
        latency_ms, kind = latency_measure(
            sent_at=row["sent_at"],
            due_at=row["due_at"],
            accepted_at=row["event__received_at"],
            matched_at=row["event__processed_at"],
            resend=row["resend_of_id"] is not None,
        )
        measured.append(Send(pk=row["pk"], latency_ms=latency_ms, latency_kind=kind))
    Send.objects.bulk_update(measured, ["latency_ms", "latency_kind"])


def bucket_labels() -> list[str]:
    labels, low = [], "0"
    for edge in BUCKET_EDGES:
        labels.append(f"{low} to {_short(edge)}")
        low = _short(edge)
    labels.append(f"≥ {low}")
    return labels


# How many sends took each whole number of milliseconds, per (rule id, kind): what the Dashboard's
# one query over sends returns, and all that percentiles and the histogram need.
Distribution = Mapping[tuple[int, str], Mapping[int, int]]


def latency_percentiles(distribution: Distribution) -> RuleAndOverall:
    """p50/p95/p99 of each kind, per rule and for all rules.

    Computed here from counts per millisecond rather than by the database's `percentile_cont`: the
    counts come from the same grouped scan as the funnel (a second pass sorting every send cost more
    than the rest of the page), and SQLite has no percentile aggregate. The result is exactly
    PostgreSQL's `percentile_cont` over the sends' `latency_ms`.
    """
    per_rule = {key: percentiles_of(counts) for key, counts in distribution.items() if key[1] in KINDS}
    return per_rule, {kind: percentiles_of(_merged(distribution, kind)) for kind in KINDS}


def latency_histogram(distribution: Distribution) -> list[Bucket]:
    """How many sends of each kind took how long, in BUCKET_EDGES' buckets."""
    counted: dict[tuple[str, int], int] = {}
    for kind in KINDS:
        for latency_ms, number in _merged(distribution, kind).items():
            key = (kind, _bucket_of(latency_ms))
            counted[key] = counted.get(key, 0) + number
    return [
        Bucket(label=label, immediate=counted.get((IMMEDIATE, index), 0), delayed=counted.get((DELAYED, index), 0))
        for index, label in enumerate(bucket_labels())
    ]


def percentiles_of(counts: Mapping[int, int]) -> Percentiles:
    """PostgreSQL's percentile_cont over the values `counts` holds: linear interpolation between ranks."""
    total = sum(counts.values())
    if not total:
        return Percentiles.empty()
    ordered = sorted(counts.items())

    def at_rank(rank: int) -> int:
        seen = 0
        for value, number in ordered:
            seen += number
            if rank < seen:
                return value
        return ordered[-1][0]

    def cont(fraction: float) -> timedelta:
        position = fraction * (total - 1)
        low, high = at_rank(math.floor(position)), at_rank(math.ceil(position))
        return timedelta(milliseconds=low + (high - low) * (position - math.floor(position)))

    p50, p95, p99 = (cont(fraction) for fraction in PERCENTILES)
    return Percentiles(total, p50, p95, p99)


def _merged(distribution: Distribution, kind: str) -> dict[int, int]:
    merged: dict[int, int] = {}
    for (_, row_kind), counts in distribution.items():
        if row_kind == kind:
            for latency_ms, number in counts.items():
                merged[latency_ms] = merged.get(latency_ms, 0) + number
    return merged


def _bucket_of(latency_ms: int) -> int:
    for index, edge in enumerate(BUCKET_EDGES):
        if latency_ms < edge / timedelta(milliseconds=1):
            return index
    return len(BUCKET_EDGES)


def _milliseconds(duration: timedelta) -> int:
    return round(duration / timedelta(milliseconds=1))


def _short(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:g} s"
    return f"{seconds / 60:g} min"
