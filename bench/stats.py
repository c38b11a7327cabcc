"""The few statistics the benchmark reports: percentiles, a least-squares slope, "is it growing?", and
the latency line P3, P4 and P5 print."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100): a value that was really observed, never interpolated."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (units of y per unit of x); 0 for fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def backlog_growing(points: Sequence[tuple[float, float]], *, rate: float) -> tuple[bool, float, float]:
    """Whether a backlog sampled as (seconds, items) grows, judged against the offered rate.

    "Not growing" means the fitted growth over the whole window is at most one second of offered
    input: a system that keeps up stays within a second of its input however long it runs, while
    one that is 1% short of the rate drifts past that bound within 100 seconds. Returns (growing,
    slope in items/s, the growth allowed over the window).
    """
    if len(points) < 2:
        return False, 0.0, rate
    fitted = slope(points)
    window = points[-1][0] - points[0][0]
    allowed = max(rate * 1.0, 1.0)
    return fitted * window > allowed, fitted, allowed


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def latency_summary(values: list[float], expected: int) -> str:
    """Percentiles of what arrived; an email that never came is later than all of them, so it is named."""
    if not values:
        return f"no email of {expected:,} arrived"
    cells = ", ".join(f"p{p} {ms(percentile(values, p))}" for p in (50, 95, 99))
    text = f"{cells}; max {ms(max(values))}, n={len(values):,}"
    if len(values) < expected:
        text += f" ({expected - len(values):,} more not arrived when the wait ended: later than all of these)"
    return text
