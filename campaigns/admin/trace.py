"""The decision trace: tables that answer "why did (or didn't) this user get that email?".

They are rendered tables rather than inlines because a busy contact has thousands of decisions;
a page shows the latest few and links to the full, filterable list.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from campaigns.models import Decision, Send

TRACE_LIMIT = 50


def decision_trace(decisions: QuerySet[Decision], *, show_event: bool, empty_text: str, all_query: str) -> SafeString:
    rows = list(decisions.select_related("rule", "event", "send").order_by("-id")[:TRACE_LIMIT])
    html = render_to_string(
        "admin/campaigns/includes/decision_trace.html",
        {
            "decisions": rows,
            # Counting is only worth a query when the page does not already show everything.
            "total": decisions.count() if len(rows) == TRACE_LIMIT else len(rows),
            "show_event": show_event,
            "empty_text": empty_text,
            "all_url": reverse("admin:campaigns_decision_changelist") + "?" + all_query,
        },
    )
    return mark_safe(html)  # rendered by an autoescaping template


def send_table(sends: QuerySet[Send], *, empty_text: str, all_query: str) -> SafeString:
    rows = list(sends.select_related("rule").order_by("-id")[:TRACE_LIMIT])
    html = render_to_string(
        "admin/campaigns/includes/send_table.html",
        {
            "sends": rows,
            "total": sends.count() if len(rows) == TRACE_LIMIT else len(rows),
            "empty_text": empty_text,
            "all_url": reverse("admin:campaigns_send_changelist") + "?" + all_query,
        },
    )
    return mark_safe(html)  # rendered by an autoescaping template
