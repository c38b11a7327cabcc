"""The TriggerMail admin: where marketers edit rules and anyone can ask why an email (didn't) go.

Split by what people look at: templates, rules, and the sends with their decisions. The events,
contacts and write keys pages live in `events/admin.py` and reuse the trace tables from here.
"""

from __future__ import annotations

from campaigns.admin import campaign_settings, email_templates, history, rules, sends, settling, suppressions

__all__ = ["campaign_settings", "email_templates", "history", "rules", "sends", "settling", "suppressions"]
