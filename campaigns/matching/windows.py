"""Send windows (quiet hours) in the contact's time zone: a pure function of times and a zone.

A window is a daily span of local wall-clock time, `start` to `end`, on some weekdays:

- `start < end` (08:00-20:00): open from start to end on each allowed day.
- `start > end` (20:00-02:00): it crosses midnight and closes at `end` the next day. The weekday
  that counts is the day it *opens*, so Friday 20:00-02:00 is open in the small hours of Saturday.
- `start == end` (00:00-00:00): open the whole day, so days alone can say "weekdays only".

Daylight saving time: a window edge is a wall-clock time on a date, which is turned into an instant
the way PostgreSQL and dateutil do. A time the clocks skip (02:30 on a spring-forward night) is
read with the offset before the change, so it lands as much later as the clocks jumped (03:30);
a time that happens twice (02:30 on a fall-back night) is its first occurrence. A window reduced to
nothing by a jump is skipped to the next day's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = ZoneInfo("UTC")
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_WORDS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class SendWindow:
    start: time
    end: time
    days: tuple[int, ...] = ()  # 0 = Monday … 6 = Sunday; empty: every day

    def describe(self) -> str:
        """E.g. "between 08:00 and 20:00 on Monday to Friday"."""
        if self.start == self.end:
            hours = "at any hour"
        else:
            hours = f"between {time_text(self.start)} and {time_text(self.end)}"
        return f"{hours} on {weekdays_words(self.days)}" if self.days else hours


def time_text(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def weekdays_words(days: Sequence[int]) -> str:
    ordered = sorted(set(days))
    if not ordered or len(ordered) == 7:
        return "every day"
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{_WEEKDAY_WORDS[ordered[0]]} to {_WEEKDAY_WORDS[ordered[-1]]}"
    return ", ".join(_WEEKDAY_WORDS[day] for day in ordered)


def zone_resolve(name: str, fallback: str = "UTC") -> ZoneInfo:
    """The contact's IANA zone, else the fallback zone, else UTC: a bad name never stops a send."""
    for candidate in (name, fallback):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return UTC


def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    # fold=0: a skipped time takes the offset before the jump, a repeated time its first occurrence.
    return datetime.combine(day, wall.replace(fold=0), tzinfo=zone).astimezone(UTC)


def _openings(local_day: date, window: SendWindow, zone: ZoneInfo) -> Iterator[tuple[datetime, datetime]]:
    """(opens, closes) of the windows that open from the day before `local_day` on, in order."""
    # The day before is included because a window crossing midnight may still be open.
    for offset in range(-1, 9):
        day = local_day + timedelta(days=offset)
        if window.days and day.weekday() not in window.days:
            continue
        closing_day = day if window.start < window.end else day + timedelta(days=1)
        opens, closes = local_instant(day, window.start, zone), local_instant(closing_day, window.end, zone)
        if closes > opens:
            yield opens, closes


def window_next_open(due: datetime, zone: ZoneInfo, start: time, end: time, days: Sequence[int] = ()) -> datetime:
    """`due` if the window is open then, else the moment it next opens (an aware UTC datetime)."""
    window = SendWindow(start=start, end=end, days=tuple(days))
    due = due.astimezone(UTC)
    for opens, closes in _openings(due.astimezone(zone).date(), window, zone):
        if due < closes:
            return max(due, opens)
    # Unreachable with at least one valid weekday: some window opens within every eight days.
    raise ValueError(f"the window {window.describe()} never opens")
