"""Why matching scheduled an email or skipped it: the one list of reasons.

`Decision.Reason` (what is stored) and `MatchDecision.reason` (what the pure matching says) are this
enum, so a reason is written and compared by name, never as a string literal. It has no database
access, so the pure matching code and consent policy can use it.
"""

from __future__ import annotations

from django.db import models


class DecisionReason(models.TextChoices):
    SCHEDULED = "scheduled"
    INACTIVE = "inactive", "rule inactive"
    CONDITION_FALSE = "condition_false", "condition false"
    COOLDOWN = "cooldown"
    DUPLICATE = "duplicate"
    NO_EMAIL = "no_email", "no email address"
    NO_DEDUPE_VALUE = "no_dedupe_value", "dedupe property missing"
    SUPPRESSED = "suppressed", "address suppressed"
    UNSUBSCRIBED = "unsubscribed"
    CAPPED = "capped", "frequency cap"
    # The contact fell in the rule's A/B holdout (control group): sent nothing, counted for conversions.
    HOLDOUT = "holdout", "holdout (control group)"
    # A holdout whose contact did an exit event of the rule before the email's would-be due time: the
    # email would have been cancelled, so, like a cancelled send, it leaves the control group's count.
    HOLDOUT_EXITED = "holdout_exited", "holdout, exited before due"
    # Evaluating the rule for this event raised; the detail names the error.
    ERROR = "error", "processing error"
