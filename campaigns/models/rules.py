"""Rules and their templates and conditions: what a marketer authors."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q

from campaigns.matching.conditions import ConditionData


class Category(models.TextChoices):
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"


class CappedAction(models.TextChoices):
    SKIP = "skip", "Skip the email"
    DELAY = "delay", "Delay it to the next free slot"


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
        # The key names an earlier rule; the operator is one of the engagement ones below
        # (campaigns.matching.engagement).
        ENGAGEMENT = "engagement", "Engagement with an earlier rule's email"

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
        # Engagement with the contact's most recent email from the rule the key names.
        SENT = "sent", "was sent"
        NOT_SENT = "not_sent", "was not sent"
        OPENED = "opened", "was opened"
        NOT_OPENED = "not_opened", "was not opened"
        CLICKED = "clicked", "was clicked"
        NOT_CLICKED = "not_clicked", "was not clicked"
        CONVERTED = "converted", "converted"
        NOT_CONVERTED = "not_converted", "did not convert"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="conditions")
    position = models.PositiveSmallIntegerField(default=0)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PROPERTY)
    key = models.CharField(max_length=255, help_text="Dotted path, e.g. cart.value; for engagement, a rule's name.")
    operator = models.CharField(max_length=20, choices=Operator.choices, default=Operator.EQUALS)
    value = models.JSONField(null=True, blank=True, help_text='JSON: 50, "gold", true. Unused by exists.')

    class Meta:
        ordering = ["rule", "position", "id"]

    def __str__(self) -> str:
        return ConditionData(source=self.source, key=self.key, operator=self.operator, value=self.value).describe()
