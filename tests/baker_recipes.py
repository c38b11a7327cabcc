"""model-bakery recipes for the rows the tests keep making: a template, a rule with its template, a
contact with an email, a track event, a scheduled send, a condition, a decision, an idempotency key,
a provider event, the campaign settings row, a suppression, a worker heartbeat and a change record.

Defaults read like the product; a test passes the fields it asserts on and baker fills the rest:
`rule.make(name="welcome", trigger_event="user_signup")`.
"""

from __future__ import annotations

from django.utils import timezone
from model_bakery.recipe import Recipe, foreign_key, seq

from campaigns.models import (
    CampaignSettings,
    ChangeRecord,
    Condition,
    Decision,
    IdempotencyKey,
    ProviderEvent,
    Rule,
    Send,
    Suppression,
    Template,
    TemplateTranslation,
    WorkerHeartbeat,
)
from events.models import Contact, Event

template = Recipe(Template, name=seq("Cart recovery "), subject="Your cart", text_body="Come back")

rule = Recipe(Rule, name=seq("Welcome "), trigger_event="user_signup", template=foreign_key(template))

contact = Recipe(Contact, user_id=seq("user-"), email=seq("user-", suffix="@example.com"))

track_event = Recipe(
    Event,
    type=Event.Type.TRACK,
    name="user_signup",
    message_id=seq("message-"),
    user_id=seq("user-"),
    occurred_at=timezone.now,
    received_at=timezone.now,
)

scheduled_send = Recipe(
    Send,
    rule=foreign_key(rule),
    contact=foreign_key(contact),
    state=Send.State.SCHEDULED,
    triggered_at=timezone.now,
    due_at=timezone.now,
    dedupe_key=seq("dedupe-"),
)

condition = Recipe(Condition, rule=foreign_key(rule), key="plan", operator=Condition.Operator.EQUALS, value="pro")

# A day-2 step that waits on the day-0 email: `engagement_condition.make(rule=day2, key="Day 0")`.
engagement_condition = Recipe(
    Condition, rule=foreign_key(rule), source=Condition.Source.ENGAGEMENT, operator=Condition.Operator.NOT_OPENED
)

translation = Recipe(
    TemplateTranslation, template=foreign_key(template), locale="fr", subject="Votre panier", text_body="Revenez"
)

decision = Recipe(
    Decision,
    event=foreign_key(track_event),
    rule=foreign_key(rule),
    outcome=Decision.Outcome.SKIPPED,
    reason=Decision.Reason.COOLDOWN,
)

idempotency_key = Recipe(IdempotencyKey, key=seq("rule:1:event:"))

provider_event = Recipe(ProviderEvent, event_id=seq("sg-event-"), event_type="delivered", recipient="u1@example.com")

# The one row CampaignSettings.current() reads.
campaign_settings = Recipe(CampaignSettings, pk=1)

suppression = Recipe(Suppression, email=seq("user-", suffix="@example.com"), reason=Suppression.Reason.MANUAL)

worker_heartbeat = Recipe(
    WorkerHeartbeat,
    name=seq("worker-"),
    hostname="worker-1",
    pid=1,
    started_at=timezone.now,
    beat_at=timezone.now,
)

change_record = Recipe(
    ChangeRecord,
    kind=ChangeRecord.Kind.RULE,
    object_id=seq(0),
    version=1,
    object_name=seq("Welcome "),
    action="changed",
)
