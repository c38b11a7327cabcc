"""bench.scale's report: empty against full, with ratios, the load, sizes and CPU; printed and written to var/."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.context import Run
from bench.report import _git_commit, _postgres_version, correctness, cpu_table
from harness.processes import BASE_DIR

GOAL = 1.2
# bench.scale's P3 variants: with full-page images compressed, and at half the rate (cores not saturated).
WAL_LZ4 = " wal_compression=lz4"
AT_100 = " at 100 events/s"
# Below this difference two retention times are the same (a DROP's catalog work and commit).
SAME_WITHIN = 0.05
# The messageId dedup index: on the events table (SQLite, before partitioning), or its own key table.
MESSAGE_ID_INDEXES = ("event_source_message", "events_messagekey_pkey")


@dataclass
class Measure:
    results: dict[str, dict[str, float]]
    notes: list[str]
    run: Run
    sizes: list[tuple[str, str, int, int]]

    def get(self, measure: str, state: str) -> float:
        return self.results.get(measure, {}).get(state, math.nan)


def _ms(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


def _ms_fine(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1000:,.2f} ms"


def _bytes(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f} B"


def _rate(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f} events/s"


def _ratio(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}"


def _met(ratio: float, *, same: bool = False) -> str:
    if math.isnan(ratio):
        return "—"
    if ratio <= GOAL:
        return "yes"
    return f"yes (within {SAME_WITHIN * 1000:.0f} ms)" if same else "**no**"


def table(m: Measure) -> list[str]:
    lines = [
        "| measure | empty | newest 8 days only | full | ratio | goal | met? |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(name: str, empty: str, recent: str, full: str, ratio: float, goal: str, met: str) -> None:
        lines.append(f"| {name} | {empty} | {recent} | {full} | {_ratio(ratio)} | {goal} | {met} |")

    empty, full = m.get("P1", "empty"), m.get("P1", "full")
    ratio = empty / full if full else math.nan
    row("P1 /v1/batch events/s (ratio: empty / full)", _rate(empty), "—", _rate(full), ratio, "≤ 1.2", _met(ratio))
    for variant, rate in (("", 200), (AT_100, 100), (WAL_LZ4, 200)):
        suffix = "" if variant == AT_100 else variant
        for name in ("P3 p50", "P3 p99"):
            empty, full = m.get(name + variant, "empty"), m.get(name + variant, "full")
            ratio = full / empty if empty else math.nan
            title = f"{name} event → provider, {rate} events/s{suffix}"
            row(title, _ms(empty), "—", _ms(full), ratio, "≤ 1.2", _met(ratio))
        empty, full = m.get(f"P3 CPU{variant}", "empty"), m.get(f"P3 CPU{variant}", "full")
        ratio = full / empty if empty else math.nan
        cpu = f"P3 CPU per event + email (web + worker + PostgreSQL), {rate} events/s{suffix}"
        row(cpu, _ms_fine(empty), "—", _ms_fine(full), ratio, "≤ 1.2", _met(ratio))
    for name in ("P3 WAL", f"P3 WAL{WAL_LZ4}"):
        empty, full = m.get(name, "empty"), m.get(name, "full")
        ratio = full / empty if empty else math.nan
        row(f"{name} bytes per event + email, 200 events/s", _bytes(empty), "—", _bytes(full), ratio, "reported", "—")
    empty, recent, full = (m.get("Dashboard 7d", s) for s in ("empty", "8 days", "full"))
    ratio = full / empty if empty else math.nan
    row(
        "Dashboard 7 days, median of 5 (ratio: full / empty)",
        _ms(empty),
        _ms(recent),
        _ms(full),
        ratio,
        "≤ 1.2",
        _met(ratio),
    )
    ratio = full / recent if recent else math.nan
    row("Dashboard 7 days (ratio: full / newest 8 days only)", "—", _ms(recent), _ms(full), ratio, "≤ 1.2", _met(ratio))
    empty, full = m.get("drop a day", "empty"), m.get("drop a day", "full")
    ratio = full / empty if empty else math.nan
    rows = f"{m.get('rows dropped', 'empty'):,.0f} rows → {m.get('rows dropped', 'full'):,.0f} rows"
    files = f"{m.get('bytes dropped', 'full') / 2**20:,.0f} MiB"
    row(
        f"retention: drop the oldest day's partitions ({rows}, {files} of files)",
        _ms(empty),
        "—",
        _ms(full),
        ratio,
        "≤ 1.2 (O(1) in rows)",
        _met(ratio, same=abs(full - empty) < SAME_WITHIN),
    )
    empty, full = m.get("DELETE a day", "empty"), m.get("DELETE a day", "full")
    rows = f"{m.get('rows deleted', 'empty'):,.0f} rows → {m.get('rows deleted', 'full'):,.0f} rows"
    row(
        f"retention: DELETE the next day's rows, one transaction ({rows})",
        _ms(empty),
        "—",
        _ms(full),
        full / empty if empty else math.nan,
        "reported",
        "—",
    )
    vacuum = m.get("VACUUM after DELETE", "full")
    drop = m.get("drop a day", "full")
    row(
        "retention, full: (DELETE + its VACUUM) / drop",
        "—",
        "—",
        f"{_ms(full)} + {_ms(vacuum)} vs {_ms(drop)}",
        (full + vacuum) / drop if drop else math.nan,
        "reported",
        "—",
    )
    return lines


def sizes_table(m: Measure) -> list[str]:
    events = next((rows for table, index, _size, rows in m.sizes if table == "events_event" and not index), 0)
    lines = [
        f"Sizes after the load ({events:,} events; bytes per stored event = size / events):",
        "",
        "| table | index | size | bytes per event |",
        "|---|---|---|---|",
    ]
    for table, index, size, rows in m.sizes:
        name = (
            f"**{index}** (the messageId dedup index)"
            if index in MESSAGE_ID_INDEXES
            else (index or "(all, with indexes)")
        )
        rows_text = f" ({rows:,} rows)" if not index else ""
        per = f"{size / events:,.1f}" if events else "—"
        lines.append(f"| {table}{rows_text} | {name} | {size / 2**20:,.0f} MiB | {per} |")
    return lines


def report_write(m: Measure, *, stamp: str, command: str, elapsed: float, failure: str = "") -> Path:
    cores = os.cpu_count() or 0
    lines = [
        "# TriggerMail at scale: empty database against a loaded one (bench.scale)",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {cores} cores ({platform.machine()}), "
        f"Python {platform.python_version()}, PostgreSQL {_postgres_version()}; commit {_git_commit()}",
        f"- command: `{command}` (took {elapsed / 60:.1f} min); load average at the end "
        + "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        "- both states on one database, measured minutes apart on the same shared machine: the ratios are the "
        "comparable figures, the absolute ones move with other work on the machine",
        "",
        *table(m),
        "",
    ]
    if failure:
        lines += [
            "**The run stopped early with an error; the rows above are what was measured.**",
            "",
            "```",
            failure.strip(),
            "```",
            "",
        ]
    lines += ["## Details", "", *[f"- {n}" for n in m.notes], ""]
    if m.sizes:
        lines += [*sizes_table(m), ""]
    lines += [*correctness(m.run), "", *cpu_table(m.run)]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    out_dir = BASE_DIR / "var"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"bench-scale-{stamp}.md"
    path.write_text(text)
    return path
