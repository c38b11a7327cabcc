"""Campaign settings: one row (caps, default send window, fallback zone), edited in place."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from campaigns.authoring.form_fields import HumanDurationField
from campaigns.authoring.timing_forms import WINDOW_WIDGETS, WeekdaysField, timing_clean
from campaigns.models import CampaignSettings


class CampaignSettingsForm(forms.ModelForm):
    marketing_cap_period = HumanDurationField(label="Marketing cap period", help_text="e.g. 24 hours, 1 week.")
    window_days = WeekdaysField(label="Window weekdays", help_text="None ticked: every day.")

    class Meta:
        model = CampaignSettings
        fields = ["marketing_cap_count", "marketing_cap_period", "window_start", "window_end", "window_days",
                  "fallback_timezone"]  # fmt: skip
        labels = {"marketing_cap_count": "Marketing cap", "window_start": "Send from", "window_end": "Send until"}
        widgets = WINDOW_WIDGETS
        help_texts = {
            "window_start": "The contact's local time (the fallback zone's for a contact without one), e.g. 08:00.",
            "window_end": "The contact's local time, e.g. 20:00.",
        }

    def clean_fallback_timezone(self) -> str:
        name = str(self.cleaned_data.get("fallback_timezone") or "").strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"{name!r} is not an IANA time zone such as Europe/Paris or UTC.") from None
        return name

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # The global cap uses the same checks as a rule's, under its own field names.
        renamed = {**cleaned, "cap_count": cleaned.get("marketing_cap_count"),
                   "cap_period": cleaned.get("marketing_cap_period")}  # fmt: skip
        timing_clean(self, renamed)
        if cleaned.get("marketing_cap_count") is not None and cleaned["marketing_cap_count"] < 1:
            self.add_error("marketing_cap_count", "At least 1; leave it empty for no cap.")
        return cleaned


@admin.register(CampaignSettings)
class CampaignSettingsAdmin(admin.ModelAdmin):
    form = CampaignSettingsForm
    fieldsets = [
        ("Frequency cap on marketing email, per contact", {"fields": ["marketing_cap_count", "marketing_cap_period"]}),
        (
            "Default send window, for rules without their own",
            {"fields": [("window_start", "window_end"), "window_days"]},
        ),
        ("Time zone", {"fields": ["fallback_timezone"]}),
    ]

    # A singleton: the list leads straight to the one row, which cannot be added twice or deleted.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        settings, _ = CampaignSettings.objects.get_or_create(pk=1)
        return HttpResponseRedirect(reverse("admin:campaigns_campaignsettings_change", args=[settings.pk]))
