"""Reading the times a message carries: ISO 8601 with an offset, within a sane range, skew-corrected.

A bad value is reported in `problems` under the field it came from, as the rest of parsing does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

# A timestamp outside this range is a bug in the sender; it would also overflow the clock-skew
# arithmetic or land before year 1 in PostgreSQL, which stores it but cannot read it back.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)

Problems = list[tuple[str, str]]


def timestamp_parse(raw: dict[str, Any], key: str, problems: Problems) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        # Well formed but impossible, like month 13.
        parsed = None
    if parsed is None:
        problems.append((key, "must be an ISO 8601 date-time, e.g. 2026-11-28T10:00:00Z"))
        return None
    if parsed.tzinfo is None:
        problems.append((key, "must include a time zone offset, e.g. Z or +01:00"))
        return None
    if not EARLIEST <= parsed < LATEST:
        problems.append((key, f"must be between {EARLIEST.year} and {LATEST.year}"))
        return None
    # In UTC: ISO 8601 (and Python) allow offsets up to ±23:59, PostgreSQL only ±15:59, and it
    # refused the whole request over "-19:06" (found by schemathesis). The instant is what counts.
    return parsed.astimezone(UTC)


def occurred_at_parse(
    raw: dict[str, Any], batch_sent_at: datetime | None, received_at: datetime, problems: Problems
) -> datetime:
    """When the person acted: Segment's rule, `receivedAt - (sentAt - originalTimestamp)`.

    Server SDKs put the device's time of the call in `timestamp`; client SDKs and RudderStack's
    Node SDK in `originalTimestamp` (with `sentAt` on the message as well as on the batch).
    """
    # Both are checked when both are sent (RudderStack's SDKs may), so that a bad one is refused
    # rather than ignored because the other was present; `timestamp` wins.
    timestamp = timestamp_parse(raw, "timestamp", problems)
    original = timestamp_parse(raw, "originalTimestamp", problems)
    key = "timestamp" if raw.get("timestamp") is not None else "originalTimestamp"
    timestamp = timestamp if key == "timestamp" else original
    sent_at = timestamp_parse(raw, "sentAt", problems) or batch_sent_at
    if timestamp is None:
        return received_at
    if sent_at is not None:
        # Segment's clock-skew correction: the device's clock may be wrong, but the gap between
        # the action and the send is right, so measure it back from our own receive time.
        timestamp = received_at - (sent_at - timestamp)
        if timestamp < EARLIEST:
            problems.append((key, f"is before {EARLIEST.year} once corrected by sentAt for clock skew"))
            return received_at
    # An action cannot have happened after we received it.
    return min(timestamp, received_at)
