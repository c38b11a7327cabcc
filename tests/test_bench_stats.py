"""The benchmark's verdicts rest on these helpers (bench/stats.py): percentiles and "is the backlog growing"."""

from __future__ import annotations

import math

from bench.stats import backlog_growing, percentile, slope


def test_percentile_is_a_value_that_was_observed() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([0.3], 99) == 0.3
    assert math.isnan(percentile([], 50))


def test_slope_of_a_line_and_of_too_few_points() -> None:
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == 2.0
    assert slope([(5.0, 1.0)]) == 0.0
    assert slope([(1.0, 1.0), (1.0, 9.0)]) == 0.0


def test_a_backlog_that_wobbles_around_a_level_is_not_growing() -> None:
    points = [(float(t), 500.0 + (200.0 if t % 2 else -200.0)) for t in range(0, 240, 2)]
    growing, _, _ = backlog_growing(points, rate=1000)
    assert not growing


def test_a_backlog_falling_behind_by_one_percent_of_the_rate_is_growing() -> None:
    # 1,000 events/s offered, 990/s handled: 10 more events every second, 2,400 over four minutes.
    points = [(float(t), 10.0 * t) for t in range(0, 240, 2)]
    growing, fitted, allowed = backlog_growing(points, rate=1000)
    assert growing
    assert round(fitted) == 10
    assert allowed == 1000
