"""The simulator: what the rules would do with an event, and why, without sending or storing anything.

It reads rules and the contact through the same selectors as event processing and decides with
the same pure `rules_matching`, so a simulation cannot disagree with production. For each email
that would be scheduled it also runs production's send-time checks (campaigns.sending.checks, caps) as
if the email were due right now, on unsaved rows. Everything here only reads the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from campaigns.authoring.localized import template_localized
from campaigns.authoring.preview import Preview, Sample, template_preview
from campaigns.consent.suppression import suppression_reason
from campaigns.matching.engagement_facts import engagement_rule_ids
from campaigns.matching.rules import ContactData, EventData, MatchDecision, RuleData, contact_with_send, rules_matching
from campaigns.matching.selectors import contacts_data, rules_current
from campaigns.models import CampaignSettings, Decision, Rule, Send
from campaigns.sending.checks import exit_event_since_trigger, send_checks_run
from campaigns.sending.claim_facts import claim_facts_load
from campaigns.sending.message import send_template
from campaigns.sending.verdict import Verdict
from events.models import Contact
from triggermail.errors import error_summary
from triggermail.times import time_text

SNIPPET_CHARS = 240
# The id a simulated event has in dedupe keys: a simulation is a new arrival, so a once-per-event
# key never collides with the stored event it was copied from, while per-user keys still do.
SIMULATED_EVENT_ID = 0


@dataclass(frozen=True)
class SimulatedEvent:
    name: str
    user_id: str
    properties: Mapping[str, Any]
    # None: now. Like ingest, a time in the future is clamped to now.
    occurred_at: datetime | None = None
    # The stored event it was copied from, if any: it is never its own exit event.
    copied_from: int | None = None


@dataclass(frozen=True)
class RuleOutcome:
    rule: RuleData
    decision: MatchDecision
    # For a scheduled email: what production's checks would say if it were due right now.
    checks_now: tuple[Verdict, ...] = ()
    preview: Preview | None = None

    @property
    def reason_label(self) -> str:
        # Some labels are Django's capitalised defaults ("Cooldown"); after "Skipped: " all read lower-case.
        return str(Decision.Reason(self.decision.reason).label).lower()

    @property
    def window_moved(self) -> bool:
        return "moved to the send window" in self.decision.detail

    @property
    def text_snippet(self) -> str:
        text = self.preview.text if self.preview is not None else ""
        return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rstrip() + "…"


@dataclass(frozen=True)
class Simulation:
    event: EventData
    contact: ContactData
    contact_stored: bool
    now: datetime
    outcomes: tuple[RuleOutcome, ...]
    # Every event name some rule listens to, to help when none listens to this one.
    trigger_events: tuple[str, ...]


def contact_override(contact: ContactData, traits: Mapping[str, Any] | None) -> ContactData:
    """The contact with some traits replaced; `email`, `timezone` and `locale` replace the contact's own."""
    if not traits:
        return contact
    changes: dict[str, Any] = {"traits": {**contact.traits, **traits}}
    for name in ("timezone", "locale"):
        if name in traits:
            changes[name] = str(traits[name] or "")
    if "email" in traits:
        email = str(traits["email"] or "")
        changes.update(email=email, suppressed=suppression_reason(email) if email else "")
    return replace(contact, **changes)


def simulation_run(event: SimulatedEvent, *, traits: Mapping[str, Any] | None, now: datetime) -> Simulation:
    defaults = CampaignSettings.current()
    rules = rules_current(defaults)
    listening = [rule for rule in rules if rule.trigger_event == event.name]
    pair = contacts_data(
        [event.user_id],
        [rule.id for rule in listening],
        fallback_timezone=defaults.fallback_timezone,
        engagement_rule_ids=engagement_rule_ids(c for rule in listening for c in rule.conditions),
    ).get(event.user_id)
    stored = pair[0] if pair is not None else None
    contact = pair[1] if pair is not None else ContactData(user_id=event.user_id, email="")
    contact = contact_override(contact, traits)
    occurred_at = min(event.occurred_at or now, now)
    data = EventData(SIMULATED_EVENT_ID, event.name, event.user_id, event.properties, occurred_at)
    decisions = _decisions_isolated(data, contact, listening, now)
    outcomes = _outcomes(
        decisions,
        listening,
        event=event,
        stored=stored,
        contact=contact,
        occurred_at=occurred_at,
        now=now,
        defaults=defaults,
    )
    return Simulation(
        event=data,
        contact=contact,
        contact_stored=stored is not None,
        now=now,
        outcomes=tuple(outcomes),
        trigger_events=tuple(sorted({rule.trigger_event for rule in rules})),
    )


def _outcomes(
    decisions: list[MatchDecision],
    listening: list[RuleData],
    *,
    event: SimulatedEvent,
    stored: Contact | None,
    contact: ContactData,
    occurred_at: datetime,
    now: datetime,
    defaults: CampaignSettings,
) -> list[RuleOutcome]:
    """One RuleOutcome per decision; a scheduled one also gets the checks at send time and a preview."""
    models = Rule.objects.select_related("template").in_bulk([d.rule_id for d in decisions])
    by_id = {rule.id: rule for rule in listening}
    sample = Sample(
        properties=dict(event.properties), user_id=event.user_id, email=contact.email, traits=dict(contact.traits)
    )
    outcomes = []
    for decision in decisions:
        rule = models[decision.rule_id]
        if not decision.scheduled:
            outcomes.append(RuleOutcome(rule=by_id[decision.rule_id], decision=decision))
            continue
        send = _send_unsaved(rule, stored, contact, event, decision, occurred_at)
        outcomes.append(
            RuleOutcome(
                rule=by_id[decision.rule_id],
                decision=decision,
                checks_now=_checks_now(send, stored is not None, now=now, defaults=defaults),
                # What this contact would get: the A/B variant's template when the rule runs a test,
                # in the language the email would be sent in (the contact's locale, overridden or not).
                preview=template_preview(template_localized(send_template(send), contact.locale)[0], sample),
            )
        )
    return outcomes


def _decisions_isolated(
    event: EventData, contact: ContactData, rules: list[RuleData], now: datetime
) -> list[MatchDecision]:
    """rules_matching's decisions; should it raise, each rule's own, with the error as the decision of
    a rule that raises: the page shows what processing would mark failed instead of answering 500."""
    try:
        return rules_matching(event, contact, rules, now)
    except Exception:
        pass
    decisions: list[MatchDecision] = []
    for rule in rules:
        try:
            decided = rules_matching(event, contact, [rule], now)
        except Exception as exc:
            decided = [MatchDecision(rule.id, Decision.Reason.ERROR, f"matching raised {error_summary(exc)}")]
        for decision in decided:
            decisions.append(decision)
            if decision.scheduled:
                contact = contact_with_send(contact, decision)
    return decisions


def _send_unsaved(
    rule: Rule,
    stored: Contact | None,
    contact: ContactData,
    event: SimulatedEvent,
    decision: MatchDecision,
    occurred_at: datetime,
) -> Send:
    """The send production would store, never saved: the send-time checks read it as they read a real one."""
    person = stored if stored is not None else Contact(user_id=contact.user_id)
    # An overridden address is what the checks must see (suppression); the row itself stays untouched.
    person.email = contact.email
    assert decision.due_at is not None  # a scheduled decision has one
    return Send(
        rule=rule,
        contact=person,
        event_id=event.copied_from,
        triggered_at=occurred_at,
        dedupe_key=decision.dedupe_key,
        due_at=decision.due_at,
        variant=decision.variant,
    )


def _checks_now(send: Send, contact_stored: bool, *, now: datetime, defaults: CampaignSettings) -> tuple[Verdict, ...]:
    """What would stop or delay this email if it were due now: exit events, cooldown, consent, caps."""
    if not contact_stored:
        # A contact that is not stored has no emails to count for cooldowns and caps and no
        # consent choices; only its exit events can exist (events arrive before an identify).
        if not send.rule.exit_events:
            return ()
        facts = claim_facts_load([send], now=now, settings=defaults)
        exit_event = exit_event_since_trigger(send, now=now, facts=facts)
        if exit_event is None:
            return ()
        when = time_text(exit_event.occurred_at)
        return (Verdict(Send.State.CANCELLED, f"exit event {exit_event.name} at {when}"),)
    # Read once for both checks, as a claim reads them once for its batch.
    facts = claim_facts_load([send], now=now, settings=defaults)
    # Every check but the window: the email is shown as if it were due now.
    return tuple(send_checks_run(send, facts=facts, now=now, window=False))
