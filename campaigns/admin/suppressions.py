"""Suppressed addresses: why each one is blocked, and lifting a block on purpose, with a record of who did.

Rows are written by the provider's webhook (campaigns.consent.suppression) or added here by hand; they are
never edited or deleted, so the list stays the history of the address. Lifting is a confirmed
action that records who and when on the row and in the admin's log.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from campaigns.admin.display import ActionQuestion, admin_link
from campaigns.consent.suppression import email_normalize, suppressions_lift
from campaigns.models import Suppression
from triggermail.admin_filters import null_filter

ActiveFilter = null_filter(
    title="active", parameter="active", field="lifted_at", empty=("yes", "Active"), filled=("no", "Lifted")
)


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["email", "reason", "detail"]

    def clean_email(self) -> str:
        email = email_normalize(str(self.cleaned_data.get("email") or ""))
        # A friendly message first; the partial unique constraint is what really keeps one active row.
        if Suppression.objects.filter(email=email, lifted_at__isnull=True).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"{email} is already suppressed.")
        return email


_LIFT_QUESTION = ActionQuestion(
    title="Lift suppressions",
    template="admin/campaigns/suppression/lift_confirmation.html",
    name="suppressions",
    nothing="None of the selected suppressions is active.",
)


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ["email", "reason", "created_at", "lifted_at", "lifted_by"]
    list_filter = ["reason", ActiveFilter]
    search_fields = ["email"]
    actions = ["suppressions_lift_confirm"]
    readonly_fields = ["provider_event_link", "created_at", "lifted_at", "lifted_by"]

    def get_fields(self, request: HttpRequest, obj: Suppression | None = None) -> tuple[str, ...]:
        # A person adds a suppression by hand with a reason; the rest is recorded, not typed.
        if obj is None:
            return ("email", "reason", "detail")
        return ("email", "reason", "detail", "provider_event_link", "created_at", "lifted_at", "lifted_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Suppression | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("email", "reason", "detail", *self.readonly_fields)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, str | list[str]]:
        return {"reason": Suppression.Reason.MANUAL}

    def has_delete_permission(self, request: HttpRequest, obj: Suppression | None = None) -> bool:
        # Lifting keeps the history of why an address was blocked; deleting would erase it.
        return False

    @admin.display(description="Provider event")
    def provider_event_link(self, suppression: Suppression) -> str:
        return str(admin_link(suppression.provider_event)) if suppression.provider_event_id else "—"

    @admin.action(description="Lift selected suppressions", permissions=["change"])
    def suppressions_lift_confirm(
        self, request: HttpRequest, queryset: QuerySet[Suppression]
    ) -> TemplateResponse | None:
        active = list(queryset.filter(lifted_at__isnull=True))
        gate = _LIFT_QUESTION.gate(self, request, chosen=active, selected=queryset.count())
        if not gate.proceed:
            return gate.answer
        lifted = suppressions_lift(active, by=request.user.get_username(), now=timezone.now())
        for suppression in lifted:
            self.log_change(request, suppression, f"Lifted the suppression ({suppression.get_reason_display()}).")
        self.message_user(
            request,
            f"Lifted {len(lifted)} suppression{'' if len(lifted) == 1 else 's'}: "
            + (", ".join(s.email for s in lifted) or "none")
            + ". Email to these addresses can go out again.",
            messages.SUCCESS if lifted else messages.WARNING,
        )
        return None
