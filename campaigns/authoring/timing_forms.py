"""Form parts for the timing of a rule (send window, frequency cap, goal), shared by Admin and import.

`timing_errors` is the one place that says which combinations make sense, so a rules file is held
to the same rules as the Admin form.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from django import forms

from campaigns.matching.windows import WEEKDAY_NAMES

WEEKDAY_CHOICES = [(str(n), name) for n, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))]
BOTH_TIMES = "Give both the opening and the closing time (00:00 to 00:00 for the whole day)."
# Plain time inputs: Admin's own time widget offers "Now", which fills in the marketer's clock time,
# but a send window is in each contact's local time.
WINDOW_WIDGETS = {
    name: forms.TimeInput(format="%H:%M", attrs={"placeholder": "hh:mm", "size": 6})
    for name in ("window_start", "window_end")
}


class WeekdaysField(forms.TypedMultipleChoiceField):
    """Weekdays as checkboxes, stored as a sorted list of numbers, 0 for Monday."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.CheckboxSelectMultiple)
        super().__init__(choices=WEEKDAY_CHOICES, coerce=int, required=False, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        return [str(day) for day in value] if isinstance(value, list | tuple) else value

    def clean(self, value: Any) -> list[int]:
        return sorted(set(super().clean(value)))


def timing_errors(
    *,
    window_start: time | None,
    window_end: time | None,
    window_days: list[int],
    cap_count: int | None = None,
    cap_period: timedelta | None = None,
    goal_event: str = "",
    goal_window: timedelta | None = None,
) -> dict[str, str]:
    """Field name → what is wrong with it, for the fields of a window, a cap and a goal."""
    errors: dict[str, str] = {}
    if window_start is None and (window_end is not None or window_days):
        errors["window_start"] = BOTH_TIMES
    elif window_start is not None and window_end is None:
        errors["window_end"] = BOTH_TIMES
    if any(day not in range(7) for day in window_days):
        errors["window_days"] = f"Weekdays are {', '.join(WEEKDAY_NAMES)}."
    if cap_count is not None and cap_count < 1:
        errors["cap_count"] = "At least 1; leave it empty for no cap."
    if cap_count is not None and (cap_period is None or cap_period <= timedelta(0)):
        errors["cap_period"] = "Give the period the cap counts over, e.g. 1 day."
    if goal_event and (goal_window is None or goal_window <= timedelta(0)):
        errors["goal_window"] = "Give how long after the email the goal event counts, e.g. 3 days."
    return errors


def timing_clean(form: forms.BaseForm, cleaned: dict[str, Any]) -> None:
    """Put timing_errors on the form's fields (those the form has)."""
    values = {name: cleaned.get(name) for name in ("window_start", "window_end", "cap_count", "cap_period",
                                                   "goal_window") if name in form.fields}  # fmt: skip
    errors = timing_errors(
        **values, window_days=cleaned.get("window_days") or [], goal_event=str(cleaned.get("goal_event") or "")
    )
    for name, message in errors.items():
        if name in form.fields and name not in form.errors:
            form.add_error(name, message)
