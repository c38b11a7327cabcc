"""Filters for the Dashboard page."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def latency(value: timedelta | None) -> str:
    """A latency as people read it: 169 ms, 2.4 s, 3.5 min; an em dash when there is none."""
    if value is None:
        return "—"
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@register.filter
def percent(value: float | None) -> str:
    """A share as a percentage with one decimal: 0.1234 → 12.3 %."""
    return "—" if value is None else f"{value * 100:.1f} %"


@register.filter
def points(value: float | None) -> str:
    """A difference of two rates in percentage points, signed: 0.021 → +2.1 pp."""
    return "—" if value is None else f"{value * 100:+.1f} pp"
