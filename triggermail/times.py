"""How TriggerMail writes a moment for people: one format everywhere, with its zone always named.

"2026-12-01 23:35:07 UTC" is a time in the site's TIME_ZONE; "2026-12-02 08:00:00 contact's
time (Europe/Paris)" is a time in a contact's zone, as send windows are. Admin pages, decision details
and send reasons all go through `time_text` (templates through the `when` filter), and Django's own
date displays use the same format through `triggermail.formats`, so a time reads the same wherever
it is shown and is never taken for another zone's.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from django.utils import timezone

# Seconds, because a send's moments are seconds apart; no microseconds. The same format twice: in
# Django's date-format syntax for `triggermail.formats`, and for strftime, which costs matching
# (a decision's detail names its due time) a fraction of what Django's formatter does.
DATE_TIME = "Y-m-d H:i:s"
STRFTIME = "%Y-%m-%d %H:%M:%S"
CONTACT_LABEL = "contact's time"


def time_text(value: datetime | None, *, zone: tzinfo | None = None) -> str:
    """The moment in the site's zone, labelled with its name; with `zone`, in that contact's zone.

    None (a time not reached yet, or unknown) reads as an em dash, as Admin shows empty values.
    """
    if value is None:
        return "—"
    if zone is None:
        local = timezone.localtime(value, timezone.get_default_timezone())
        return f"{local.strftime(STRFTIME)} {local.tzname()}"
    local = value.astimezone(zone)
    return f"{local.strftime(STRFTIME)} {CONTACT_LABEL} ({getattr(zone, 'key', local.tzname())})"
