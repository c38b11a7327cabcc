"""The send-time checks: the world may have changed while the send waited.

`send_checks_run` is the one entry: the claim (campaigns.sending.claiming) acts on the first verdict,
the Simulator (campaigns.authoring.simulator) shows them all. Both pass the facts read for the batch
(campaigns.sending.claim_facts), so no check reads on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from campaigns.consent.policy import Refusal, consent_refusal
from campaigns.matching.engagement import engagement_holds, engagement_of
from campaigns.models import Send
from campaigns.sending.caps import send_cap_check
from campaigns.sending.claim_facts import ClaimFacts, ExitEvent
from campaigns.sending.timing import send_window_check
from campaigns.sending.verdict import Verdict
from triggermail.times import time_text


def send_checks_run(send: Send, *, facts: ClaimFacts, now: datetime, window: bool = True) -> Iterator[Verdict]:
    """Why this send must not go out now, one verdict per check that says so; none if it may.

    In order: the re-check (rule paused, exit event, cooldown, resend, consent), the send window (unless
    `window` is False), the frequency caps. Lazy: a caller that acts on the first asks no further check.
    The caps count sends, so the claim runs this while the contact row is locked.
    """
    recheck = send_recheck(send, now=now, facts=facts)
    if recheck is not None:
        yield recheck
    if window:
        moved = send_window_check(send, now=now, settings=facts.settings)
        if moved is not None:
            yield moved
    capped = send_cap_check(send, now=now, settings=facts.settings, facts=facts)
    if capped is not None:
        yield capped


def send_recheck(send: Send, *, now: datetime, facts: ClaimFacts) -> Verdict | None:
    """Why this send must not go out now (rule, exit events, cooldown, resend, consent), or None."""
    rule, contact = send.rule, send.contact
    if not rule.active:
        return Verdict(Send.State.CANCELLED, f"rule {rule.name!r} was paused before the send was due")
    if rule.exit_events:
        exit_event = exit_event_since_trigger(send, now=now, facts=facts)
        if exit_event is not None:
            return Verdict(Send.State.CANCELLED, f"exit event {exit_event.name} at {time_text(exit_event.occurred_at)}")
    if rule.cooldown and _cooldown_holds(send, now=now, facts=facts):
        return Verdict(Send.State.CANCELLED, f"cooldown: another email from this rule within {rule.cooldown}")
    unmet = engagement_unmet(send, facts)
    if unmet is not None:
        return Verdict(Send.State.CANCELLED, f"condition not met when due: {unmet}")
    if send.resend_of_id is not None and _original_accepted(send.resend_of_id):
        return Verdict(
            Send.State.CANCELLED, f"send #{send.resend_of_id}, which this one resends, was accepted after all"
        )
    if not contact.email:
        return Verdict(Send.State.SUPPRESSED, "the contact has no email address")
    refusal = _consent_refusal(send, facts)
    if refusal is not None:
        return Verdict(Send.State.SUPPRESSED, refusal.detail)
    return None


def engagement_unmet(send: Send, facts: ClaimFacts) -> str | None:
    """The first engagement condition of the send's rule that no longer holds, described; else None.

    Judged again now because the contact may have opened (or clicked) the earlier email during the
    delay: the day-2 "not opened" reminder must not go to someone who opened day 0 yesterday.
    """
    earlier = facts.engagement.get(send.contact_id, {}) if send.contact_id is not None else {}
    for condition in facts.engagement_conditions.get(send.rule_id, ()):
        if not engagement_holds(condition.operator, engagement_of(earlier, condition.rule_id)):
            return condition.describe()
    return None


def _cooldown_holds(send: Send, *, now: datetime, facts: ClaimFacts) -> bool:
    assert send.rule.cooldown is not None
    since = now - send.rule.cooldown
    # A person's deliberate resend is not held back by the original it replaces.
    others = {send.pk, send.resend_of_id} - {None}
    return any(
        row.rule_id == send.rule_id and row.pk not in others and row.sending_started_at is not None
        and row.sending_started_at > since
        for row in facts.counted_sends(send.contact_id)
    )  # fmt: skip


def _original_accepted(original_id: int) -> bool:
    # Webhook evidence for the original may arrive after it was resent and before the resend goes:
    # then sending the resend would be the duplicate. A query only for resends, which are rare.
    return Send.objects.filter(pk=original_id, state=Send.State.SENT).exists()


def _consent_refusal(send: Send, facts: ClaimFacts) -> Refusal | None:
    contact, template = send.contact, send.rule.template
    # The claim read these under the contact's row lock: an unsubscribe that committed after the
    # send row was read still counts.
    consent = facts.consent_of(contact)
    return consent_refusal(
        category=template.category,
        topic=template.topic,
        suppressed=facts.suppression_of(contact.email),
        unsubscribed=consent.unsubscribed,
        unsubscribed_topics=consent.unsubscribed_topics,
    )


def exit_event_since_trigger(send: Send, *, now: datetime, facts: ClaimFacts) -> ExitEvent | None:
    """The first of the rule's exit events this contact sent after the trigger, up to `now`."""
    exits = [
        e for e in facts.exit_events(send.contact.user_id)
        if e.name in send.rule.exit_events and e.occurred_at <= now
        and after_trigger(e, triggered_at=send.triggered_at, trigger_id=send.event_id)
    ]  # fmt: skip
    return min(exits, key=lambda e: (e.occurred_at, e.pk), default=None)


def after_trigger(event: ExitEvent, *, triggered_at: datetime, trigger_id: int | None) -> bool:
    """Whether the event happened after the trigger. Two events at the same instant (a clamped or
    coarse clock) are ordered by arrival: an exit stored after the trigger counts, one stored before
    it does not. The trigger itself never counts, even when its rule lists it as an exit event."""
    if event.occurred_at != triggered_at:
        return event.occurred_at > triggered_at
    return trigger_id is None or event.pk > trigger_id
