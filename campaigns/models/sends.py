"""What the rules caused: decisions, sends, idempotency keys and the provider's events about them.

State lives in these rows. A django-q2 task only says "look at these rows"; losing one, running
one late or twice does not change what a person receives, because every transition below is a
conditional update on the row's state and every reservation a unique constraint.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from campaigns.matching.reasons import DecisionReason
from campaigns.models.rules import Rule
from events.models import Contact, Event


class Send(models.Model):
    class State(models.TextChoices):
        SCHEDULED = "scheduled"
        SENDING = "sending"  # key reserved and committed; provider call in flight
        SENT = "sent"
        UNKNOWN = "unknown"  # ambiguous provider answer; settled from evidence, never resent
        FAILED = "failed"  # the provider refused it or retries ran out; it was not sent
        CANCELLED = "cancelled"  # exit event, paused rule, duplicate key, cooldown at send time
        SUPPRESSED = "suppressed"  # the contact cannot be emailed (no address)
        ABANDONED = "abandoned"  # unknown past the grace window with no evidence: a person decides
        # Unknown, but the Event Webhook was live for later sends and posted nothing for this one:
        # judged not accepted and resent automatically, once (campaigns.sending.ambiguous).
        NOT_ACCEPTED = "not_accepted"

    # States in which a dedupe key is taken: a cancelled or failed send frees it. A send judged not
    # accepted keeps its key: its resend stands in for it, and late evidence may still make it `sent`.
    LIVE_STATES = (State.SCHEDULED, State.SENDING, State.SENT, State.UNKNOWN, State.ABANDONED, State.NOT_ACCEPTED)
    # States in which the provider may have accepted the message: they count for cooldowns and caps.
    # Not `not_accepted`: its resend counts instead, and must not be held back by it.
    MAYBE_SENT_STATES = (State.SENDING, State.SENT, State.UNKNOWN, State.ABANDONED)

    rule = models.ForeignKey(Rule, on_delete=models.PROTECT, related_name="sends")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="sends")
    # No foreign key in the database: events are partitioned on PostgreSQL, and a foreign key must
    # reference a unique key, which there includes received_at. The ORM's SET_NULL still applies to
    # ORM deletes; dropping a day of events sets these NULL first (triggermail.partitions).
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="sends", db_constraint=False
    )
    # When the triggering action happened: exit events after it cancel this send.
    triggered_at = models.DateTimeField()
    dedupe_key = models.CharField(max_length=255)
    state = models.CharField(max_length=12, choices=State.choices, default=State.SCHEDULED)
    reason = models.CharField(max_length=255, blank=True, help_text="Why the send is in its state, for people.")
    due_at = models.DateTimeField()
    # Set when a delivery task was queued for this send, so the dispatcher does not queue it again
    # until the task has had time to run.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    to_email = models.CharField(max_length=254, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True, help_text="SendGrid's X-Message-Id.")
    last_error = models.TextField(blank=True)
    # Last-touch conversion: the rule's goal event from this contact within its window after the send.
    converted_at = models.DateTimeField(null=True, blank=True)
    conversion_event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    revenue = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # What the Dashboard reads, kept on the send where each fact is learned so that the page never
    # joins provider events or events: the first provider event of each type (the webhook receiver),
    # and how long the email took to reach the provider (when it became `sent`; see
    # campaigns.reporting.latency). Provider events are pruned; these stay.
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    latency_kind = models.CharField(max_length=10, blank=True, help_text="immediate, delayed, or empty: not measured.")
    # A resend points at the original: a person's deliberate one of an abandoned send, or the
    # automatic one of a send judged not accepted.
    resend_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends")
    # The A/B variant (campaigns.models.variants) whose template this send carries; empty: the rule has
    # none. A name, not a key, so the Dashboard still tells the variants apart once the test is over.
    # db_default: rows written by raw SQL (bench seeds, bulk inserts) that name no variant have none.
    variant = models.CharField(max_length=40, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"],
                condition=Q(state__in=["scheduled", "sending", "sent", "unknown", "abandoned", "not_accepted"]),
                name="send_dedupe_key_live",
            ),
        ]
        indexes = [
            models.Index(fields=["due_at"], condition=Q(state="scheduled"), name="send_due"),
            models.Index(fields=["sending_started_at"], condition=Q(state="sending"), name="send_in_flight"),
            models.Index(fields=["contact", "rule", "state"], name="send_contact_rule"),
            models.Index(fields=["state", "created_at"], name="send_state_created"),
            # Webhook events without our key are matched by SendGrid's message id.
            models.Index(
                fields=["provider_message_id"], condition=~Q(provider_message_id=""), name="send_provider_message_id"
            ),
            # The Dashboard's period: sent sends by sent_at, covering every column it aggregates, so
            # PostgreSQL answers from the index alone (SQLite ignores `include`).
            models.Index(
                fields=["sent_at"],
                condition=Q(state="sent"),
                include=[
                    "rule",
                    "delivered_at",
                    "opened_at",
                    "clicked_at",
                    "converted_at",
                    "revenue",
                    "latency_ms",
                    "latency_kind",
                ],
                name="send_dashboard_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} → {self.contact} ({self.state})"


class EventReceivedAtField(models.DateTimeField):
    """A decision's copy of its event's received_at, taken from the event when the row is saved
    (save and bulk_create both call pre_save): decisions are partitioned by it on PostgreSQL."""

    def pre_save(self, model_instance: models.Model, add: bool) -> object:
        value = getattr(model_instance, self.attname)
        if value is None:
            value = model_instance.event.received_at  # type: ignore[attr-defined]
            setattr(model_instance, self.attname, value)
        return value


class Decision(models.Model):
    """What matching decided for one (event, rule) pair: the answer to "why (not)?".

    On PostgreSQL decisions are partitioned by their event's day (event_received_at), so an event's
    decisions live and are dropped with it (triggermail.partitions); the event foreign key is the
    ORM's only (db_constraint=False), and (event, rule) is unique with event_received_at in the key.
    """

    class Outcome(models.TextChoices):
        SCHEDULED = "scheduled"
        SKIPPED = "skipped"

    # One list shared with the pure matching code (campaigns.matching.reasons).
    Reason = DecisionReason

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="decisions", db_constraint=False)
    event_received_at = EventReceivedAtField(editable=False, blank=True)
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="decisions")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="decisions")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=500, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    send = models.OneToOneField(Send, null=True, blank=True, on_delete=models.SET_NULL, related_name="decision")
    # The A/B variant the contact was assigned (a holdout's decision is skipped with reason holdout).
    variant = models.CharField(max_length=40, blank=True, default="", db_default="")
    # A holdout decision's conversion, as a send's: the rule's goal event within its goal window after
    # the due time its email would have had (campaigns.matching.conversions). Only holdouts have one.
    converted_at = models.DateTimeField(null=True, blank=True)
    conversion_event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    revenue = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["event", "rule"], name="decision_once_per_event_rule")]
        indexes = [
            # The Dashboard counts the decisions made in a period, per rule.
            models.Index(fields=["created_at", "rule"], name="decision_created_rule"),
            # ... and the A/B holdouts due in it (campaigns.reporting.variants): without this the query
            # reads every decision of the whole history (bench.scale: 3.4 s with 60 days of 100,000 events).
            models.Index(fields=["due_at"], condition=Q(reason="holdout"), name="decision_holdout_due"),
        ]

    def __str__(self) -> str:
        return f"{self.rule}: {self.outcome} ({self.reason})"


class IdempotencyKey(models.Model):
    """A reservation of one provider call.

    The row is committed before the provider is called. While it exists no other attempt with the
    same key calls the provider; it is deleted only when the provider's answer proves the message
    was not accepted (connection refused, 4xx), so the send may be tried again.
    """

    key = models.CharField(max_length=255, unique=True)
    send = models.ForeignKey(Send, null=True, on_delete=models.SET_NULL, related_name="idempotency_keys")
    created_at = models.DateTimeField(auto_now_add=True)
    # Kept at least as long as the rule's dedupe window; empty means kept for good.
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.key


class ProviderEvent(models.Model):
    """One event from the provider's Event Webhook, normalized by Anymail and recorded once.

    An event carrying a send's key is evidence of what the provider did with it: any of them proves
    the message was accepted, which settles an `unknown` send as `sent`.
    """

    # SendGrid's sg_event_id: a redelivered event is recognised and applied once.
    event_id = models.CharField(max_length=255, unique=True)
    event_type = models.CharField(max_length=20, help_text="Anymail's normalized type: delivered, bounced, …")
    send = models.ForeignKey(Send, null=True, blank=True, on_delete=models.SET_NULL, related_name="provider_events")
    key = models.CharField(max_length=255, blank=True, db_index=True, help_text="The send's idempotency key.")
    provider_message_id = models.CharField(max_length=255, blank=True)
    recipient = models.CharField(max_length=254, blank=True)
    reject_reason = models.CharField(max_length=30, blank=True)
    description = models.TextField(blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["send", "event_type"], name="provider_event_send_type"),
            # Pruning deletes by age.
            models.Index(fields=["received_at"], name="provider_event_received"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} for {self.key or self.recipient}"


class ProviderEventKey(models.Model):
    """A provider event id recorded, for MESSAGE_DEDUPE_DAYS: on PostgreSQL provider events are
    partitioned by day and cannot keep a unique index on event_id across partitions, so a BEFORE
    INSERT trigger (migration 0018) inserts the id here, and a redelivered event fails with the
    IntegrityError the webhook receiver expects. Unused on SQLite."""

    event_id = models.CharField(max_length=255, primary_key=True)
    received_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.event_id
