"""Bar charts for the dashboard, drawn on the server as inline SVG (no JavaScript, nothing external).

These functions only compute geometry; the template draws it, so Django escapes every label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from campaigns.reporting.latency import Bucket

LABEL_WIDTH = 90
BAR_AREA = 420
ROW_HEIGHT = 26
BAR_HEIGHT = 18


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    series: str = ""
    share: str = ""  # "42%" of the first bar, for the funnel


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    axis_y: float = 0  # the histogram's baseline


def funnel_chart(steps: Sequence[tuple[str, int]]) -> Chart:
    """Horizontal bars, one per funnel step, scaled to the first (largest) step."""
    top = max((value for _, value in steps), default=0) or 1
    first = steps[0][1] if steps else 0
    bars = []
    for index, (label, value) in enumerate(steps):
        share = f"{value / first:.0%}" if first else ""
        bars.append(
            Bar(
                label=label,
                value=value,
                x=LABEL_WIDTH,
                y=index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2,
                width=round(max(value / top * BAR_AREA, 1 if value else 0), 1),
                height=BAR_HEIGHT,
                share=share,
            )
        )
    return Chart(width=LABEL_WIDTH + BAR_AREA + 110, height=len(steps) * ROW_HEIGHT, bars=bars)


def histogram_chart(buckets: Sequence[Bucket]) -> Chart:
    """Vertical bars, two per bucket (immediate, delayed), each series scaled to its own total share.

    Heights are shares of their series, so a few delayed emails are as readable as many immediate ones.
    """
    column, plot_height, top_margin = 64, 140, 18
    totals = {"immediate": sum(b.immediate for b in buckets) or 1, "delayed": sum(b.delayed for b in buckets) or 1}
    highest = max(
        [b.immediate / totals["immediate"] for b in buckets] + [b.delayed / totals["delayed"] for b in buckets] + [0.01]
    )
    bars = []
    for index, bucket in enumerate(buckets):
        for offset, series in enumerate(("immediate", "delayed")):
            value = getattr(bucket, series)
            height = round(value / totals[series] / highest * plot_height, 1)
            bars.append(
                Bar(
                    label=bucket.label,
                    value=value,
                    x=index * column + 6 + offset * 26,
                    y=top_margin + plot_height - height,
                    width=24,
                    height=height,
                    series=series,
                )
            )
    return Chart(
        width=len(buckets) * column, height=top_margin + plot_height + 36, bars=bars, axis_y=top_margin + plot_height
    )
