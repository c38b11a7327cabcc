"""Rules, templates and what they caused: decisions, sends and idempotency keys.

State lives in these rows. A django-q2 task only says "look at these rows"; losing one, running
one late or twice does not change what a person receives, because every transition below is a
conditional update on the row's state and every reservation a unique constraint.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q

from campaigns.matching.conditions import ConditionData
from campaigns.matching.reasons import DecisionReason
from events.models import Contact, Event


class Category(models.TextChoices):
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"


class Template(models.Model):
    name = models.CharField(max_length=100, unique=True)
    subject = models.CharField(
        max_length=255, blank=True, help_text="Django template syntax, e.g. {{ event.order_id }}."
    )
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    sendgrid_template_id = models.CharField(
        max_length=64, blank=True, help_text="A SendGrid dynamic template id (d-…); replaces subject and bodies."
    )
    from_email = models.CharField(max_length=255, blank=True, help_text="Empty: DEFAULT_FROM_EMAIL.")
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.MARKETING)
    topic = models.CharField(
        max_length=100, blank=True, help_text="Marketing topic people can leave on their preference page, e.g. Offers."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DedupePolicy(models.TextChoices):
    PER_EVENT = "per_event", "Once per event"
    PER_USER_DAY = "per_user_day", "Once per user per day"
    ONCE_PER_USER = "once_per_user", "Once per user, ever"
    PER_PROPERTY = "per_property", "Once per value of a property"


class CappedAction(models.TextChoices):
    SKIP = "skip", "Skip the email"
    DELAY = "delay", "Delay it to the next free slot"


class Rule(models.Model):
    name = models.CharField(max_length=100, unique=True)
    trigger_event = models.CharField(max_length=255, db_index=True)
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="rules")
    delay = models.DurationField(default=timedelta(0))
    cooldown = models.DurationField(
        default=timedelta(0), help_text="No second email from this rule to the same contact within this time."
    )
    active = models.BooleanField(default=True)
    exit_events = models.JSONField(
        default=list, blank=True, help_text="Events that cancel a pending send, e.g. order_completed."
    )
    dedupe_policy = models.CharField(max_length=20, choices=DedupePolicy.choices, default=DedupePolicy.PER_EVENT)
    dedupe_property = models.CharField(max_length=255, blank=True, help_text="With 'once per value of a property'.")
    # At most cap_count emails from this rule per contact within cap_period (the global marketing cap
    # in CampaignSettings applies too).
    cap_count = models.PositiveSmallIntegerField(null=True, blank=True)
    cap_period = models.DurationField(default=timedelta(days=1))
    capped_action = models.CharField(max_length=10, choices=CappedAction.choices, default=CappedAction.SKIP)
    # Send only between these hours on these weekdays, in the contact's time zone; empty: the default
    # window of CampaignSettings (which may be none).
    window_start = models.TimeField(null=True, blank=True)
    window_end = models.TimeField(null=True, blank=True)
    window_days = models.JSONField(default=list, blank=True, help_text="Weekdays 0 (Monday) to 6; empty: every day.")
    # A goal event from the contact within goal_window after a send counts as its conversion.
    goal_event = models.CharField(max_length=255, blank=True)
    goal_window = models.DurationField(default=timedelta(days=3))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["trigger_event", "delay", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(dedupe_policy="per_property") | ~Q(dedupe_property=""),
                name="rule_per_property_names_property",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Condition(models.Model):
    class Source(models.TextChoices):
        PROPERTY = "property", "Event property"
        TRAIT = "trait", "Contact trait"

    class Operator(models.TextChoices):
        EQUALS = "eq", "equals"
        NOT_EQUALS = "ne", "does not equal"
        GREATER = "gt", "is greater than"
        GREATER_OR_EQUAL = "gte", "is at least"
        LESS = "lt", "is less than"
        LESS_OR_EQUAL = "lte", "is at most"
        CONTAINS = "contains", "contains"
        EXISTS = "exists", "exists"
        NOT_EXISTS = "not_exists", "does not exist"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="conditions")
    position = models.PositiveSmallIntegerField(default=0)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PROPERTY)
    key = models.CharField(max_length=255, help_text="Dotted path, e.g. cart.value.")
    operator = models.CharField(max_length=12, choices=Operator.choices, default=Operator.EQUALS)
    value = models.JSONField(null=True, blank=True, help_text='JSON: 50, "gold", true. Unused by exists.')

    class Meta:
        ordering = ["rule", "position", "id"]

    def __str__(self) -> str:
        return ConditionData(source=self.source, key=self.key, operator=self.operator, value=self.value).describe()


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
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="sends")
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
    conversion_event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
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


class Decision(models.Model):
    """What matching decided for one (event, rule) pair: the answer to "why (not)?"."""

    class Outcome(models.TextChoices):
        SCHEDULED = "scheduled"
        SKIPPED = "skipped"

    # One list shared with the pure matching code (campaigns.matching.reasons).
    Reason = DecisionReason

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="decisions")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="decisions")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="decisions")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=500, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    send = models.OneToOneField(Send, null=True, blank=True, on_delete=models.SET_NULL, related_name="decision")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["event", "rule"], name="decision_once_per_event_rule")]
        # The Dashboard counts the decisions made in a period, per rule.
        indexes = [models.Index(fields=["created_at", "rule"], name="decision_created_rule")]

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


class CampaignSettings(models.Model):
    """Settings marketers change in Admin: one row."""

    marketing_cap_count = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="At most this many marketing emails per contact; empty: no cap."
    )
    marketing_cap_period = models.DurationField(default=timedelta(hours=24))
    window_start = models.TimeField(null=True, blank=True, help_text="Default send window for rules without one.")
    window_end = models.TimeField(null=True, blank=True)
    window_days = models.JSONField(default=list, blank=True, help_text="Weekdays 0 (Monday) to 6; empty: every day.")
    fallback_timezone = models.CharField(max_length=64, default="UTC", help_text="For contacts without a time zone.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "campaign settings"
        verbose_name_plural = "campaign settings"

    def __str__(self) -> str:
        return "Campaign settings"

    @classmethod
    def current(cls) -> CampaignSettings:
        """The settings in force: the row, or the defaults while nobody has saved it. Read on every
        batch and claim, so it never writes; the Admin creates the row when someone edits it."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class RulesStamp(models.Model):
    """One row whose stamp changes whenever a rule, condition, template or the campaign settings do.

    Database triggers (migration 0008) write a new random stamp on every insert, update and delete
    of those tables, whoever makes it: the Admin, an import, a bulk update, SQL by hand. The event
    processor reads this one value per batch and re-reads the rules only when it changed
    (campaigns.matching.rules_cache). Random rather than a counter: a rolled-back change must not leave a
    number that a later, different change could reach again.
    """

    stamp = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"rules stamp {self.stamp}"


class Suppression(models.Model):
    """An address that must not be emailed (marketing or transactional) until a person lifts it."""

    class Reason(models.TextChoices):
        BOUNCE = "bounce", "hard bounce"
        DROPPED = "dropped", "dropped by the provider"
        COMPLAINT = "complaint", "spam complaint"
        PROVIDER_UNSUBSCRIBE = "unsubscribe", "unsubscribed at the provider"
        MANUAL = "manual"

    email = models.CharField(max_length=254, db_index=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.TextField(blank=True)
    provider_event = models.ForeignKey(
        ProviderEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["email"], condition=Q(lifted_at__isnull=True), name="suppression_one_active_per_address"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


class ChangeRecord(models.Model):
    """One saved change to a rule or a template: who, when, and the whole object before and after.

    Snapshots use the campaign file's format (`campaigns.authoring.transfer`), so a diff reads like a change to
    that file and restoring a version is importing its snapshot.
    """

    class Kind(models.TextChoices):
        RULE = "rule"
        TEMPLATE = "template"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    object_id = models.PositiveBigIntegerField()
    # The object's own version number, 1 for its first record: a rule's history reads #1, #2, #3
    # however many other objects changed in between (campaigns.authoring.history numbers them).
    version = models.PositiveIntegerField()
    object_name = models.CharField(max_length=100)
    # Long enough for "restored version #1234567" and the like.
    action = models.CharField(max_length=40, help_text="created, changed, restored version #N, deleted, imported…")
    user = models.CharField(max_length=150, blank=True, help_text="Who made the change; empty for a command.")
    created_at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["kind", "object_id", "-id"], name="change_record_object")]
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id", "version"], name="change_record_version"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_name} {self.action} by {self.user or 'a command'}"


class WorkerHeartbeat(models.Model):
    """One row per running `manage.py qcluster` process, written by its supervisor every
    HEARTBEAT_INTERVAL seconds. A row whose `beat_at` is older than HEARTBEAT_STALE_AFTER belongs to a
    host that stopped (killed, frozen, cut off): health checks report it and the surviving hosts take
    over the work it held. `stopped_at` is set on a clean shutdown."""

    # hostname:pid:random, unique per process start.
    name = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    # Loop name → {"ok_at": ISO time of its last good pass, "failures": consecutive failures,
    # "error": the last error's one-line summary}.
    loops = models.JSONField(default=dict, blank=True)
    # When a live host re-queued the sends this one may have held after it stopped beating; set
    # once, by a conditional update, so that one host does it.
    recovered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self) -> str:
        return self.name
