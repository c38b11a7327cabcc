"""Rules and their conditions, as marketers edit them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, FilteredRelation, Q, QuerySet
from django.forms import BaseFormSet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from campaigns.admin.history import HistoryAdmin, last_change_annotations, last_change_text
from campaigns.admin.variants import PromoteAdminMixin, RuleVariantInline
from campaigns.authoring.durations import NO_COOLDOWN, NO_DELAY, duration_words
from campaigns.authoring.forms import ConditionForm, ConditionFormSet, RuleForm
from campaigns.authoring.history import RULE, rules_active_set
from campaigns.authoring.summary import rule_summary
from campaigns.matching.selectors import rule_data
from campaigns.models import CampaignSettings, Condition, Rule, Send
from events.models import Event

# How far back the change page looks for the trigger event, to catch a misspelt event name.
TRIGGER_LOOKBACK = timedelta(days=7)
# The rule list's "Sent (7 days)" column.
RECENT_SENDS = timedelta(days=7)


class ConditionInline(admin.TabularInline):
    model = Condition
    form = ConditionForm
    formset = ConditionFormSet
    fields = ["source", "key", "operator", "value"]
    extra = 0
    verbose_name = "condition (all must hold)"
    verbose_name_plural = "conditions (all must hold)"


@admin.register(Rule)
class RuleAdmin(PromoteAdminMixin, HistoryAdmin):
    history_kind = RULE
    form = RuleForm
    inlines = [ConditionInline, RuleVariantInline]
    list_display = [
        "name",
        "trigger_event",
        "template",
        "delay_words",
        "cooldown_words",
        "active",
        "dedupe_policy",
        "sends_recent",
        "last_change",
    ]
    list_filter = ["trigger_event", "active", "template__category", "dedupe_policy"]
    list_select_related = ["template"]
    search_fields = ["name", "trigger_event"]
    actions = ["rules_pause", "rules_resume"]
    readonly_fields = ["summary", "trigger_activity", "updated_at"]
    fieldsets = [
        (None, {"fields": ["summary", "name", "active"]}),
        ("When", {"fields": ["trigger_event", "trigger_activity", "delay", "exit_events"]}),
        ("What", {"fields": ["template"]}),
        (
            "How often",
            {"fields": ["dedupe_policy", "dedupe_property", "cooldown", "cap_count", "cap_period", "capped_action"]},
        ),
        ("Send window (the contact's time zone)", {"fields": [("window_start", "window_end"), "window_days"]}),
        ("Goal", {"fields": ["goal_event", "goal_window"]}),
        (None, {"fields": ["updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Rule]:
        since = timezone.now() - RECENT_SENDS
        # Emails that went out, by when they went out: scheduled, cancelled and suppressed sends are not
        # emails a contact got. The filter goes into the join, so only those sends are joined and
        # counted: one COUNT for the page.
        recent = FilteredRelation("sends", condition=Q(sends__state=Send.State.SENT, sends__sent_at__gte=since))
        return (
            super()
            .get_queryset(request)
            .annotate(recent_sends=recent, sends_recent=Count("recent_sends"), **last_change_annotations(RULE))
        )

    @admin.display(description="Sent (7 days)", ordering="sends_recent")
    def sends_recent(self, rule: Rule) -> int:
        return int(getattr(rule, "sends_recent", 0))

    @admin.display(description="Last change", ordering="last_change_at")
    def last_change(self, rule: Rule) -> str:
        return last_change_text(rule)

    def get_fieldsets(self, request: HttpRequest, obj: Rule | None = None) -> Any:
        if obj is None:
            # A rule that does not exist yet has nothing to summarise or look up.
            hidden = {"summary", "trigger_activity", "updated_at"}
            return [(name, {"fields": [f for f in opts["fields"] if f not in hidden]}) for name, opts in self.fieldsets]
        return self.fieldsets

    @admin.display(description="Delay", ordering="delay")
    def delay_words(self, rule: Rule) -> str:
        return duration_words(rule.delay) if rule.delay else NO_DELAY

    @admin.display(description="Cooldown", ordering="cooldown")
    def cooldown_words(self, rule: Rule) -> str:
        return duration_words(rule.cooldown) if rule.cooldown else NO_COOLDOWN

    @admin.display(description="In plain words")
    def summary(self, rule: Rule) -> SafeString:
        return format_html("<strong>{}</strong>", rule_summary(rule_data(rule, CampaignSettings.current())))

    @admin.display(description="Seen lately")
    def trigger_activity(self, rule: Rule) -> str:
        since = timezone.now() - TRIGGER_LOOKBACK
        count = Event.objects.filter(name=rule.trigger_event, received_at__gte=since).count()
        if count == 0:
            return f"No {rule.trigger_event} event received in the last 7 days. Is the name spelt as the app sends it?"
        return f"{count} {rule.trigger_event} event{'' if count == 1 else 's'} received in the last 7 days."

    @admin.action(description="Pause selected rules", permissions=["change"])
    def rules_pause(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        # Pending sends of a paused rule are cancelled when they come due (campaigns.sending.checks).
        count = rules_active_set(queryset, active=False, user=request.user.get_username())
        self.message_user(request, f"Paused {count} rule{'' if count == 1 else 's'}.", messages.SUCCESS)

    @admin.action(description="Resume selected rules", permissions=["change"])
    def rules_resume(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        count = rules_active_set(queryset, active=True, user=request.user.get_username())
        self.message_user(request, f"Resumed {count} rule{'' if count == 1 else 's'}.", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: Rule, form: Any, change: bool) -> None:
        renamed_from = form.initial.get("name") if change and "name" in form.changed_data else None
        super().save_model(request, obj, form, change)
        if renamed_from:
            # Engagement conditions name the rule they read: they follow it to its new name.
            Condition.objects.filter(source=Condition.Source.ENGAGEMENT, key=renamed_from).update(key=obj.name)

    def save_formset(self, request: HttpRequest, form: Any, formset: BaseFormSet, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        # The rule's updated_at is the time marketers look at; a change to its conditions counts.
        if formset.has_changed():
            Rule.objects.filter(pk=form.instance.pk).update(updated_at=timezone.now())
