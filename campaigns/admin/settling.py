"""Settling sends in the admin: what SendGrid reported, what needs a person, and the deliberate resend.

An `abandoned` send may or may not have reached its recipient. Nothing resends it automatically
(campaigns.sending.ambiguous resends only `unknown` sends the live webhook's silence judged not accepted);
a person checks SendGrid's activity and, on a confirmation page that says exactly what goes to
whom, may send it again as a new send with a key of its own.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import SafeString

from campaigns.admin.display import ActionQuestion, ReadOnlyAdmin, admin_link, pretty_json
from campaigns.models import ProviderEvent, Send
from campaigns.sending.settlement import send_resend, sends_needing_attention, sends_sent_twice


class AttentionFilter(admin.SimpleListFilter):
    title = "attention"
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("yes", "Needs attention (unknown, abandoned)"),
            ("twice", "Resent, and the first was accepted after all"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(pk__in=sends_needing_attention().values("pk"))
        if self.value() == "twice":
            return queryset.filter(pk__in=sends_sent_twice().values("pk"))
        return queryset


class ProviderEventInline(admin.TabularInline):
    model = ProviderEvent
    fields = ["event_type", "occurred_at", "recipient", "reject_reason", "description", "event_id"]
    readonly_fields = ["event_type", "occurred_at", "recipient", "reject_reason", "description", "event_id"]
    ordering = ["occurred_at", "id"]
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = "provider event"
    verbose_name_plural = "What SendGrid reported (Event Webhook)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ProviderEvent)
class ProviderEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "event_type", "send_link", "recipient", "reject_reason", "occurred_at", "received_at"]
    list_filter = ["event_type"]
    list_select_related = ["send"]
    search_fields = ["recipient", "key", "event_id", "provider_message_id"]
    show_full_result_count = False
    fields = [
        "event_type",
        "send_link",
        "key",
        "recipient",
        "reject_reason",
        "description",
        "occurred_at",
        "received_at",
        "event_id",
        "provider_message_id",
        "payload_pretty",
    ]
    readonly_fields = ["send_link", "payload_pretty"]

    @admin.display(description="Send")
    def send_link(self, event: ProviderEvent) -> SafeString | str:
        return admin_link(event.send, f"#{event.send_id}") if event.send_id else "— no send carries this key"

    @admin.display(description="Payload")
    def payload_pretty(self, event: ProviderEvent) -> SafeString:
        return pretty_json(event.payload)


_RESEND_QUESTION = ActionQuestion(
    title="Resend after checking",
    template="admin/campaigns/send/resend_confirmation.html",
    name="sends",
    nothing="None of the selected sends is abandoned and not yet resent.",
)


@admin.action(description="Resend after checking (abandoned sends)", permissions=["resend"])
def sends_resend(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Send]
) -> TemplateResponse | None:
    eligible = [
        send
        for send in queryset.filter(state=Send.State.ABANDONED).select_related("rule__template", "contact")
        if not send.resends.filter(state__in=Send.LIVE_STATES).exists()
    ]
    gate = _RESEND_QUESTION.gate(modeladmin, request, chosen=eligible, selected=queryset.count())
    if not gate.proceed:
        return gate.answer
    by = request.user.get_username()
    resent = [r for send in eligible if (r := send_resend(send.pk, by=by, now=timezone.now())) is not None]
    text = ", ".join(f"#{r.resend_of_id} as #{r.pk}" for r in resent)
    modeladmin.message_user(
        request,
        f"Resent {len(resent)} send{'' if len(resent) == 1 else 's'}: {text}." if resent else "Nothing was resent.",
        messages.SUCCESS if resent else messages.WARNING,
    )
    return None
