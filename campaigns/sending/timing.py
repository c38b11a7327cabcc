"""The send-time check of the send window (run by campaigns.sending.checks.send_checks_run).

Matching already moved each send into its window, but a marketer may change the window while the
send waits, or the worker may be late; a send claimed outside its window is moved to the next
opening and stays scheduled.
"""

from __future__ import annotations

from datetime import datetime

from campaigns.matching.selectors import rule_window
from campaigns.matching.windows import window_next_open, zone_resolve
from campaigns.models import CampaignSettings, Send
from campaigns.sending.verdict import Verdict
from triggermail.times import time_text


def send_window_check(send: Send, *, now: datetime, settings: CampaignSettings) -> Verdict | None:
    """Reschedule a send that is outside its send window now to the next opening; None if it is inside."""
    window = rule_window(send.rule, settings)
    if window is not None:
        zone = zone_resolve(send.contact.timezone, settings.fallback_timezone)
        opening = window_next_open(now, zone, window.start, window.end, window.days)
        if opening > now:
            at = f"{time_text(opening)} = {time_text(opening, zone=zone)}"
            reason = f"outside the send window ({window.describe()}); moved to the next opening at {at}"
            return Verdict(Send.State.SCHEDULED, reason, due_at=opening)
    return None
