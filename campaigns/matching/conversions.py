"""Conversions: a rule's goal event from the contact soon after its email counts for that email.

Attribution is last touch: a goal event converts the most recent `sent` send, across every rule
whose goal is that event, with `sent_at <= occurred_at <= sent_at + goal_window` and not converted
yet. Each event converts at most one send and each send is converted at most once, so processing
the same event again changes nothing.

An A/B test's holdout (campaigns.matching.variants) is a touch too: its decision, at the due time
its email would have had, converts exactly as a send would, so the control group's conversion rate
is measured the same way as each variant's. Sends and holdout decisions compete for the same goal
event under the same last-touch rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Q

from campaigns.matching.rules import RuleData
from campaigns.models import Decision, Send
from events.models import Event

REVENUE_PROPERTIES = ("revenue", "total")
# Send.revenue holds 14 digits, 2 after the point: at most 999,999,999,999.99 either way.
_REVENUE_LARGEST = Decimal("999999999999.99")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Touch:
    send_id: int  # the send's id, or the holdout decision's
    user_id: str
    goal_event: str
    sent_at: datetime  # a holdout's: the due time its email would have had
    goal_window: timedelta
    holdout: bool = False


def revenue_of(properties: Mapping[str, Any]) -> Decimal | None:
    """The event's `revenue` (else `total`) property when it is a number, to the cent.

    An amount the column cannot hold (NaN, infinite, or beyond 999,999,999,999.99 once rounded to
    the cent) is ignored, not clamped: a wrong figure in the Dashboard's revenue would mislead,
    while a conversion without revenue is still counted. Checked after rounding, because
    999999999999.995 rounds up to 13 integer digits, one more than the column has.
    """
    for name in REVENUE_PROPERTIES:
        value = properties.get(name)
        # True is an int in Python, and "yes" is not an amount.
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            continue
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            continue
        # Bounded before rounding, because quantize raises for a number with more digits than its
        # context; with copy_abs, because abs() rounds to the context and overflows on "1E+999999999".
        if not amount.is_finite() or amount.copy_abs() > 2 * _REVENUE_LARGEST:
            continue
        cents = amount.quantize(_CENT)
        if cents.copy_abs() <= _REVENUE_LARGEST:
            return cents
    return None


def touch_pick(event: Event, touches: Sequence[Touch], taken: set[tuple[bool, int]]) -> Touch | None:
    """The send (or holdout) this event converts: the latest one whose goal window holds the event."""
    best: Touch | None = None
    for touch in touches:
        if (touch.holdout, touch.send_id) in taken or touch.goal_event != event.name:
            continue
        if not touch.sent_at <= event.occurred_at <= touch.sent_at + touch.goal_window:
            continue
        if best is None or (touch.sent_at, touch.send_id) > (best.sent_at, best.send_id):
            best = touch
    return best


def conversions_record(events: Sequence[Event], rules: Sequence[RuleData]) -> int:
    """Mark the sends (and holdouts) these track events convert; return how many. Runs in the batch's transaction."""
    names = {e.name for e in events if e.type == Event.Type.TRACK}
    # The batch's rules (read once for matching) say which events are goals and how far back to look.
    windows = [r.goal_window for r in rules if r.goal_event and r.goal_event in names]
    if not windows:
        return 0
    goals = {r.goal_event for r in rules if r.goal_event in names}
    candidates = [e for e in events if e.type == Event.Type.TRACK and e.name in goals]
    # An event that already converted a send (the batch runs again) must not convert another one.
    used = set(Send.objects.filter(conversion_event__in=candidates).values_list("conversion_event_id", flat=True))
    used |= set(Decision.objects.filter(conversion_event__in=candidates).values_list("conversion_event_id", flat=True))
    candidates = [e for e in candidates if e.pk not in used]
    if not candidates:
        return 0
    touches = _touches(candidates, goals, max(windows))
    taken: set[tuple[bool, int]] = set()
    for event in sorted(candidates, key=lambda e: (e.occurred_at, e.pk)):
        touch = touch_pick(event, touches.get(event.user_id, ()), taken)
        if touch is None:
            continue
        taken.add((touch.holdout, touch.send_id))
        model = Decision if touch.holdout else Send
        model.objects.filter(pk=touch.send_id, converted_at__isnull=True).update(
            converted_at=event.occurred_at, conversion_event=event, revenue=revenue_of(event.properties)
        )
    return len(taken)


def _touches(candidates: Sequence[Event], goals: set[str], window: timedelta) -> dict[str, list[Touch]]:
    """Per user id, the sent sends and holdout decisions the candidates could convert."""
    since, until = min(e.occurred_at for e in candidates) - window, max(e.occurred_at for e in candidates)
    users = {e.user_id for e in candidates}
    sends = Send.objects.filter(
        state=Send.State.SENT, converted_at__isnull=True, contact__user_id__in=users, rule__goal_event__in=goals,
        sent_at__gte=since, sent_at__lte=until,
    ).values_list("pk", "contact__user_id", "rule__goal_event", "sent_at", "rule__goal_window")  # fmt: skip
    holdouts = Decision.objects.filter(
        reason=Decision.Reason.HOLDOUT, converted_at__isnull=True, contact__user_id__in=users,
        rule__goal_event__in=goals, due_at__gte=since, due_at__lte=until,
    ).values_list("pk", "contact__user_id", "rule__goal_event", "due_at", "rule__goal_window")  # fmt: skip
    touches: dict[str, list[Touch]] = defaultdict(list)
    for rows, holdout in ((sends, False), (holdouts, True)):
        for touch_id, user_id, goal_event, at, goal_window in rows:
            if at is not None:  # always set on a sent send and a holdout; the columns allow null
                touches[user_id].append(Touch(touch_id, user_id, goal_event, at, goal_window, holdout))
    return touches


def holdouts_exit(*, event: Event, rule_ids: Sequence[int]) -> int:
    """Take holdouts out of the control group when an exit event came before their would-be due time.

    The same event would have cancelled the email had the contact been sent one (see
    campaigns.sending.queueing.exit_sends_cancel), and a cancelled email is not counted among those
    sent; so the holdout leaves the control group's count too, and the two compare like with like.
    """
    # Triggered before the exit event; at the same instant, only if the trigger arrived first.
    before_exit = Q(event__occurred_at__lt=event.occurred_at) | Q(
        event__occurred_at=event.occurred_at, event_id__lt=event.pk
    )
    return Decision.objects.filter(
        before_exit,
        reason=Decision.Reason.HOLDOUT,
        rule_id__in=rule_ids,
        contact__user_id=event.user_id,
        due_at__gt=event.occurred_at,
        converted_at__isnull=True,
    ).update(reason=Decision.Reason.HOLDOUT_EXITED)
