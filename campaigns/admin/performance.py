"""The Dashboard: per rule, for a chosen period, the funnel from event to conversion, why events were
skipped, how fast emails reached the provider, conversion rate and revenue, with two charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone

from campaigns.admin.charts import funnel_chart, histogram_chart
from campaigns.reporting.performance import SKIP_REASONS, dashboard_compute
from campaigns.reporting.variants import ALPHA, variant_tests
from triggermail.replica import read_preferring_replica

# The quick choices: query value → (length, label).
PERIODS = {
    "24h": (timedelta(hours=24), "24 hours"),
    "7d": (timedelta(days=7), "7 days"),
    "30d": (timedelta(days=30), "30 days"),
    "90d": (timedelta(days=90), "90 days"),
}
DEFAULT_PERIOD = "30d"


@dataclass(frozen=True)
class Period:
    key: str  # a PERIODS key, or "custom"
    start: datetime
    end: datetime
    label: str


class DatesForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if cleaned.get("start") and cleaned.get("end") and cleaned["end"] < cleaned["start"]:
            raise forms.ValidationError("The end date is before the start date.")
        return cleaned


def period_parse(query: QueryDict, *, now: datetime) -> tuple[Period, DatesForm]:
    """The period the query asks for: ?period=7d, ?from=…&to=… (whole days, local time), or the default.

    `?days=7` (the old performance page's links) still works.
    """
    form = DatesForm({"start": query.get("from"), "end": query.get("to")} if "from" in query else None)
    if form.is_bound and form.is_valid():
        zone = timezone.get_current_timezone()
        start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=zone)
        end = datetime.combine(form.cleaned_data["end"] + timedelta(days=1), time.min, tzinfo=zone)
        label = f"{form.cleaned_data['start']:%Y-%m-%d} to {form.cleaned_data['end']:%Y-%m-%d}"
        return Period("custom", start, end, label), form
    key = query.get("period") or (f"{query['days']}d" if "days" in query else DEFAULT_PERIOD)
    if key not in PERIODS:
        key = DEFAULT_PERIOD
    length, label = PERIODS[key]
    return Period(key, now - length, now, f"last {label}"), form


def dashboard_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("campaigns.view_rule"):
        raise PermissionDenied
    now = timezone.now()
    period, dates_form = period_parse(request.GET, now=now)
    # Figures a person reads, a moment stale at most: from the replica when there is one (the page
    # says which, and how far behind it is), from the primary when it does not answer.
    (dashboard, ab_tests), source = read_preferring_replica(
        lambda: (
            dashboard_compute(start=period.start, end=period.end),
            # A holdout counts once its email would have gone out: never later than now.
            variant_tests(start=period.start, end=min(period.end, now)),
        )
    )
    skip_columns = [reason for reason in SKIP_REASONS if reason.value in dashboard.totals.skipped]
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "period": period,
        "periods": [(key, label) for key, (_, label) in PERIODS.items()],
        "dates_form": dates_form,
        "dashboard": dashboard,
        # Only the reasons that occurred in the period get a column, in the order Decision lists them.
        "skip_columns": [reason.label for reason in skip_columns],
        "rows": [(row, [row.skipped.get(reason.value, 0) for reason in skip_columns]) for row in dashboard.rows],
        "skipped_totals": [dashboard.totals.skipped[reason.value] for reason in skip_columns],
        "funnel": funnel_chart(dashboard.totals.funnel),
        "histogram": histogram_chart(dashboard.latency_histogram),
        "ab_tests": ab_tests,
        "read_source": source,
        "ab_alpha": ALPHA,
    }
    return TemplateResponse(request, "admin/campaigns/performance.html", context)
