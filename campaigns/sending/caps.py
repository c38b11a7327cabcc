"""Frequency caps: at most N emails per contact within a period, checked when a send is claimed.

Two limits may apply to a send: the global cap on MARKETING email (CampaignSettings) and the rule's
own cap (any category). A send counts from the moment its provider call starts: sends that are
sending, sent, unknown or abandoned may all have reached the person. The claim
(campaigns.sending.claiming) calls this, through `campaigns.sending.checks.send_checks_run`, with
the contact's row locked, so two workers cannot both take the last free slot; the Simulator
(campaigns.authoring.simulator) calls it the same way to say what a cap would do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from campaigns.authoring.durations import duration_words
from campaigns.models import CampaignSettings, CappedAction, Category, Send
from campaigns.sending.claim_facts import ClaimFacts, CountedSend
from campaigns.sending.verdict import Verdict
from triggermail.times import time_text


@dataclass(frozen=True)
class CapLimit:
    count: int
    period: timedelta
    label: str  # what the limit is, for the send's reason

    def describe(self) -> str:
        return f"{self.label} of {self.count} per {duration_words(self.period)}"


def cap_free_at(times: Sequence[datetime], limit: CapLimit, *, now: datetime) -> datetime | None:
    """None while the limit leaves a slot free at `now`, else when the next slot frees up."""
    recent = sorted(t for t in times if t > now - limit.period)
    if limit.count < 1:
        # A cap of zero admits nothing; checking again after a period is as good as any time.
        return now + limit.period
    if len(recent) < limit.count:
        return None
    # With k counted sends and room for n, the (k - n + 1)-th oldest must leave the period.
    return recent[len(recent) - limit.count] + limit.period


def _limits(send: Send, settings: CampaignSettings) -> list[tuple[CapLimit, Callable[[CountedSend], bool]]]:
    """The limits that apply to this send, each with which counted sends it counts."""
    limits: list[tuple[CapLimit, Callable[[CountedSend], bool]]] = []
    if send.rule.template.category == Category.MARKETING and settings.marketing_cap_count is not None:
        limit = CapLimit(settings.marketing_cap_count, settings.marketing_cap_period, "marketing cap")
        limits.append((limit, lambda row: row.category == Category.MARKETING))
    if send.rule.cap_count is not None:
        limit = CapLimit(send.rule.cap_count, send.rule.cap_period, f"cap of rule {send.rule.name!r}")
        limits.append((limit, lambda row: row.rule_id == send.rule_id))
    return limits


def send_cap_check(send: Send, *, now: datetime, settings: CampaignSettings, facts: ClaimFacts) -> Verdict | None:
    """Cancel or delay (per the rule's capped_action) a send over a cap; None when it may go.

    `facts` are read for a whole batch by the claim (campaigns.sending.claim_facts).
    """
    limits = _limits(send, settings)
    if not limits:
        return None
    since = now - max(limit.period for limit, _ in limits)
    counted = [
        (row, moment)
        for row in facts.counted_sends(send.contact_id)
        if row.pk != send.pk and (moment := row.sending_started_at or row.sent_at) is not None and moment > since
    ]
    over: list[tuple[CapLimit, datetime]] = []
    for limit, counts in limits:
        free_at = cap_free_at([moment for row, moment in counted if counts(row)], limit, now=now)
        if free_at is not None:
            over.append((limit, free_at))
    if not over:
        return None
    reached = "; ".join(f"{limit.describe()} reached" for limit, _ in over)
    if send.rule.capped_action == CappedAction.DELAY:
        slot = max(free_at for _, free_at in over)
        return Verdict(Send.State.SCHEDULED, f"frequency cap: {reached}; delayed to {time_text(slot)}", due_at=slot)
    return Verdict(Send.State.CANCELLED, f"frequency cap: {reached}")
