"""The report's pictures: latency histograms and CDFs (P3, P4) and P5's backlog over time.

matplotlib on the Agg backend: no display, the same PNG on a laptop and in CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def latency_png(latencies: dict[str, list[float]], path: Path) -> Path | None:
    """Per measure, a histogram and a CDF of the latencies in milliseconds."""
    measured = {name: [v * 1000 for v in values] for name, values in latencies.items() if values}
    if not measured:
        return None
    figure, axes = plt.subplots(len(measured), 2, figsize=(12, 3.6 * len(measured)), squeeze=False)
    for row, (name, values) in enumerate(measured.items()):
        ordered = sorted(values)
        histogram, cdf = axes[row]
        histogram.hist(ordered, bins=60, color="#2b59c3")
        histogram.set_title(f"{name} (n={len(ordered):,})")
        histogram.set_xlabel("ms")
        histogram.set_ylabel("emails")
        cdf.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], color="#2b59c3")
        for q, style in ((0.5, ":"), (0.95, "--"), (0.99, "-.")):
            cdf.axhline(q, color="grey", linestyle=style, linewidth=0.8)
        cdf.axvline(1000, color="#c33", linewidth=0.8, label="target p99 ≤ 1 s")
        cdf.set_title("CDF")
        cdf.set_xlabel("ms")
        cdf.set_ylim(0, 1.01)
        cdf.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def timeline_png(samples: Sequence[Any], path: Path) -> Path | None:
    """P5: events acknowledged and emails delivered (cumulative), and the backlog, over time."""
    if len(samples) < 2:
        return None
    t = [s.t for s in samples]
    figure, (progress, backlog) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    progress.plot(t, [s.acked for s in samples], label="events acknowledged")
    progress.plot(t, [s.delivered for s in samples], label="emails delivered")
    progress.set_ylabel("cumulative")
    progress.set_title("P5 sustained load")
    progress.legend(loc="upper left")
    backlog.plot(t, [s.unprocessed for s in samples], label="unprocessed events")
    backlog.plot(t, [s.due for s in samples], label="due scheduled sends")
    backlog.plot(t, [s.sending for s in samples], label="sending")
    backlog.set_xlabel("seconds since the load started")
    backlog.set_ylabel("rows")
    backlog.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
