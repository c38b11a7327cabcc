"""The send-time check of when a send may go: its send window, then the frequency caps.

Matching already moved each send into its window, but a marketer may change the window while the
send waits, or the worker may be late; a send claimed outside its window is moved to the next
opening and stays scheduled. Then the caps (see campaigns.sending.caps) are checked with the contact locked.
"""

from __future__ import annotations

from datetime import datetime

from campaigns.matching.selectors import rule_window
from campaigns.matching.windows import window_next_open, zone_resolve
from campaigns.models import CampaignSettings, Send
from campaigns.sending.caps import send_cap_check
from campaigns.sending.checks import Verdict
from campaigns.sending.claim_facts import ClaimFacts
from triggermail.times import time_text


def send_timing_check(send: Send, *, now: datetime, facts: ClaimFacts | None = None) -> Verdict | None:
    """Reschedule (or, for a cap with `skip`, cancel) a send that may not go out now; None if it may."""
    settings = facts.settings if facts is not None else CampaignSettings.current()
    window = rule_window(send.rule, settings)
    if window is not None:
        zone = zone_resolve(send.contact.timezone, settings.fallback_timezone)
        opening = window_next_open(now, zone, window.start, window.end, window.days)
        if opening > now:
            at = f"{time_text(opening)} = {time_text(opening, zone=zone)}"
            reason = f"outside the send window ({window.describe()}); moved to the next opening at {at}"
            return Verdict(Send.State.SCHEDULED, reason, due_at=opening)
    return send_cap_check(send, now=now, settings=settings, facts=facts)
