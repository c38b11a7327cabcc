"""The TriggerMail admin: where marketers edit rules and anyone can ask why an email (didn't) go.

Split by what people look at: templates, rules, the sends with their decisions, and the events and
contacts with their decision traces. The write keys page is the ingest's own, in `events/admin.py`.
The site itself, with the pages that are not a model's, is `campaigns.admin_site`.
"""

from __future__ import annotations

from campaigns.admin import (
    campaign_settings,
    email_templates,
    events,
    history,
    rules,
    sends,
    settling,
    suppressions,
)

__all__ = ["campaign_settings", "email_templates", "events", "history", "rules", "sends", "settling", "suppressions"]
