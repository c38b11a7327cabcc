"""Django's date formats for English, replaced by TriggerMail's one format (`triggermail.times`).

Django's own "Dec. 1, 2026, 11:35 p.m." drops seconds and the zone, and a sentence ending after it
reads "p.m.."; every date Django shows in Admin (list columns, read-only fields) uses these instead.
"""

from __future__ import annotations

from triggermail.times import DATE_TIME

# "T" is the zone's abbreviation for the time shown (Admin shows times in the site's TIME_ZONE).
DATETIME_FORMAT = f"{DATE_TIME} T"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = DATE_FORMAT
TIME_FORMAT = "H:i:s"
