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
    value_text: str = ""  # the value as written above a histogram bar, short enough for its width
    label_lines: tuple[str, ...] = ()  # the bucket's label under a histogram bar, one line each
    label_x: float = 0  # where that label is centred: the middle of the bucket's column

    @property
    def middle(self) -> float:
        return round(self.x + self.width / 2, 1)


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


# A histogram column: two bars side by side, each wide enough for a five-digit count above it in
# the dashboard's 11 px labels (about 6.5 px a digit), and a label of two short lines under it.
COLUMN = 84
HISTOGRAM_BAR = 36
HISTOGRAM_GAP = 4


def count_short(value: int) -> str:
    """A count in at most five characters: 12345, 123k, 1.2M (the exact number is in the tooltip)."""
    if value < 100_000:
        return str(value)
    if value < 1_000_000:
        return f"{value // 1000}k"
    return f"{value / 1_000_000:.1f}M"


def label_split(label: str) -> tuple[str, ...]:
    """ "500 ms to 1 s" → ("500 ms", "to 1 s"): one line would run into its neighbours' labels."""
    low, separator, high = label.partition(" to ")
    return (low, f"to {high}") if separator else (label,)


def histogram_chart(buckets: Sequence[Bucket]) -> Chart:
    """Vertical bars, two per bucket (immediate, delayed), each series scaled to its own total share.

    Heights are shares of their series, so a few delayed emails are as readable as many immediate ones.
    """
    column, plot_height, top_margin = COLUMN, 140, 18
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
                    x=index * column
                    + (column - 2 * HISTOGRAM_BAR - HISTOGRAM_GAP) / 2
                    + offset * (HISTOGRAM_BAR + HISTOGRAM_GAP),
                    y=top_margin + plot_height - height,
                    width=HISTOGRAM_BAR,
                    height=height,
                    series=series,
                    value_text=count_short(value),
                    label_lines=label_split(bucket.label),
                    label_x=index * column + column / 2,
                )
            )
    return Chart(
        width=len(buckets) * column, height=top_margin + plot_height + 36, bars=bars, axis_y=top_margin + plot_height
    )
