"""The "Campaign performance" page: per rule, what it triggered, sent and converted lately."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from campaigns.performance import rules_performance

PERIODS = (7, 30, 90)


def performance_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("campaigns.view_rule"):
        raise PermissionDenied
    try:
        days = int(request.GET.get("days", "30"))
    except ValueError:
        days = 30
    if days not in PERIODS:
        days = 30
    rows = rules_performance(since=timezone.now() - timedelta(days=days))
    context = {
        **admin.site.each_context(request),
        "title": "Campaign performance",
        "days": days,
        "periods": PERIODS,
        "rows": rows,
        "totals": {
            "sent": sum(r.sent for r in rows),
            "converted": sum(r.converted for r in rows),
            "revenue": sum((r.revenue for r in rows), Decimal("0.00")),
        },
    }
    return TemplateResponse(request, "admin/campaigns/performance.html", context)


def performance_urls() -> list[URLPattern]:
    # Mounted before the admin's own URLs in triggermail/urls.py; admin_view asks for a staff login,
    # and whoever may look at rules may look at how they perform.
    view = admin.site.admin_view(performance_view)
    return [path("admin/campaigns/performance/", view, name="campaigns_performance")]
