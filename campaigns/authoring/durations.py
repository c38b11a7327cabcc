"""Durations as people say them: "30 minutes", "2 days", "1h 30m"."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_FORMAT_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
# How a zero delay and a zero cooldown are written, in the rule list and in the form alike; both
# read back as zero.
NO_DELAY = "at once"
NO_COOLDOWN = "none"
_ZERO_WORDS = ("", "0", NO_COOLDOWN, NO_DELAY, "immediately", "no delay")


def duration_parse(text: str) -> timedelta:
    """Parse "30 minutes", "1h 30m", "2 days, 4 hours" or "0"; raise ValueError saying why."""
    cleaned = text.strip().lower().replace(",", " ").replace(" and ", " ")
    if cleaned in _ZERO_WORDS:
        return timedelta(0)
    position, seconds = 0, 0.0
    for match in _PART.finditer(cleaned):
        if cleaned[position : match.start()].strip():
            break
        number, unit = match.groups()
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in {text!r}; use seconds, minutes, hours, days or weeks")
        seconds += float(number) * _UNITS[unit]
        position = match.end()
    if position == 0 or cleaned[position:].strip():
        raise ValueError(f"cannot read {text!r} as a duration; write e.g. '30 minutes', '2 days' or '1h 30m'")
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:
        # A form shows a ValueError to the marketer; an OverflowError would be a server error.
        raise ValueError(f"{text!r} is too long for a duration") from exc


def _duration_parts(value: timedelta) -> list[tuple[int, str]]:
    """(count, unit) from weeks down to seconds, leaving out zeros: 5400 s → [(1, "h"), (30, "m")]."""
    total, parts = int(value.total_seconds()), []
    for unit, size in _FORMAT_UNITS:
        count, total = divmod(total, size)
        if count:
            parts.append((count, unit))
    return parts


def duration_format(value: timedelta) -> str:
    """The short form that duration_parse reads back exactly: "1h 30m", "2d", "0s"."""
    return " ".join(f"{count}{unit}" for count, unit in _duration_parts(value)) or "0s"


_UNIT_NAMES = {"w": "week", "d": "day", "h": "hour", "m": "minute", "s": "second"}


def duration_words(value: timedelta) -> str:
    """The long form for sentences: "1 hour 30 minutes", "2 days"."""
    words = [f"{count} {_UNIT_NAMES[unit]}{'' if count == 1 else 's'}" for count, unit in _duration_parts(value)]
    return " ".join(words) or "no time"
