"""The TriggerMail admin: where marketers edit rules and anyone can ask why an email (didn't) go.

Split by what people look at: templates, rules, and the sends with their decisions. The events,
contacts and write keys pages live in `events/admin.py` and reuse the trace tables from here.
"""

from __future__ import annotations

from django.contrib import admin

from campaigns.admin import campaign_settings, email_templates, history, rules, sends, settling, suppressions

admin.site.site_header = "TriggerMail"
admin.site.site_title = "TriggerMail"
admin.site.index_title = "Rules, templates and what they sent"
# Django's navigation sidebar takes 300 px of every page: on a 1366 px laptop the rule list and the
# Dashboard no longer fit beside it. The index and the breadcrumbs lead to every page anyway.
admin.site.enable_nav_sidebar = False

__all__ = ["campaign_settings", "email_templates", "history", "rules", "sends", "settling", "suppressions"]
