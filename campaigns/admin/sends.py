"""Sends and the records around them: decisions and idempotency keys. All read-only here.

A send's state changes only through the worker's conditional updates, plus one exception a person
may need: cancelling sends that are still waiting.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from campaigns.admin.display import ReadOnlyAdmin, admin_link
from campaigns.admin.settling import AttentionFilter, ProviderEventInline, sends_resend
from campaigns.models import Decision, IdempotencyKey, Send
from campaigns.sending import lifecycle
from events.models import Event


@admin.register(Send)
class SendAdmin(ReadOnlyAdmin):
    list_display = ["id", "rule", "contact", "state", "due_at", "sent_at", "attempts", "reason"]
    list_filter = [AttentionFilter, "state", "rule"]
    list_select_related = ["rule", "contact"]
    date_hierarchy = "due_at"
    search_fields = ["contact__user_id", "contact__email", "to_email", "dedupe_key"]
    # The sends table grows without bound; an exact count of it on every page is not worth the query.
    show_full_result_count = False
    actions = ["sends_cancel", sends_resend]
    readonly_fields = ["decision_link", "event_link", "idempotency_keys", "resend_of", "resends_list"]
    inlines = [ProviderEventInline]
    fieldsets = [
        (None, {"fields": ["state", "reason", "rule", "contact", "to_email"]}),
        ("Timing", {"fields": ["triggered_at", "due_at", "enqueued_at", "sending_started_at", "sent_at", "attempts"]}),
        ("Provider", {"fields": ["provider_message_id", "last_error", "dedupe_key", "idempotency_keys"]}),
        ("Why", {"fields": ["decision_link", "event_link", "resend_of", "resends_list"]}),
    ]

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("campaigns.change_send")

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("campaigns.change_send")

    @admin.action(description="Cancel selected scheduled sends", permissions=["cancel"])
    def sends_cancel(self, request: HttpRequest, queryset: QuerySet[Send]) -> None:
        selected = queryset.count()
        # Conditional on the state, like every transition: a send the worker claimed a moment ago
        # is already `sending` and is left alone, because it may reach the provider.
        cancelled = lifecycle.sends_cancel_by_person(
            sends=queryset, reason=f"cancelled in the admin by {request.user.get_username()}", now=timezone.now()
        )
        text = f"Cancelled {cancelled} scheduled send{'' if cancelled == 1 else 's'}."
        if selected > cancelled:
            text += f" {selected - cancelled} no longer scheduled and left as they were."
        self.message_user(request, text, messages.SUCCESS if cancelled else messages.WARNING)

    @admin.display(description="Decision")
    def decision_link(self, send: Send) -> SafeString | str:
        decision = Decision.objects.filter(send=send).first()
        if decision is None:
            return "—"
        return admin_link(decision, f"{decision.get_outcome_display()}: {decision.detail or decision.reason}")

    @admin.display(description="Event")
    def event_link(self, send: Send) -> SafeString | str:
        if send.event_id is None:
            return "—"
        # Retention drops an event's whole day without touching the sends that point into it.
        event = Event.objects.filter(pk=send.event_id).only("name", "type").first()
        if event is None:
            return f"#{send.event_id}, past retention (EVENT_RETENTION_DAYS)"
        return admin_link(event, f"{event.name or event.type} #{event.pk}")

    @admin.display(description="Resent as")
    def resends_list(self, send: Send) -> SafeString | str:
        # The original's reason says why (a person, or the live webhook's silence); this links the new sends.
        resends = list(send.resends.order_by("pk"))
        if not resends:
            return "—"
        return format_html_join(", ", "{}", ((admin_link(r, f"#{r.pk} ({r.state})"),) for r in resends))

    @admin.display(description="Idempotency keys")
    def idempotency_keys(self, send: Send) -> str:
        keys = [key.key for key in send.idempotency_keys.all()]
        return ", ".join(keys) or "none reserved"


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "event_link", "rule", "contact", "outcome", "reason", "detail", "send", "created_at"]
    list_filter = ["outcome", "reason", "rule"]
    list_select_related = ["event", "rule", "contact", "send"]
    search_fields = ["contact__user_id", "contact__email", "event__name"]
    show_full_result_count = False
    fields = ["event", "rule", "contact", "outcome", "reason", "detail", "due_at", "send", "created_at"]

    @admin.display(description="Event")
    def event_link(self, decision: Decision) -> SafeString | str:
        return admin_link(decision.event, f"{decision.event.name or decision.event.type} #{decision.event_id}")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ["key", "send", "created_at", "expires_at"]
    list_select_related = ["send"]
    search_fields = ["key"]
    show_full_result_count = False
    fields = ["key", "send", "created_at", "expires_at"]
