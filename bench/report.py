"""The benchmark's report: the table, correctness, who used the cores; printed and written to var/."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.context import Run
from bench.database import ADMIN_URL, query
from bench.deploy import configuration, procfile_web_serving
from bench.monitor import COMPONENTS, MACHINE
from bench.plot import latency_png, timeline_png
from harness.processes import BASE_DIR

CORES_SHARED = (
    "Every process — load generator (this process, one thread of asyncio on uvloop; wrk for P2), gunicorn, qcluster, "
    "PostgreSQL, the SendGrid-compatible server — runs on the same {cores} cores with no pinning or "
    "priorities, as on a single production host. The CPU table says how the cores were actually shared "
    "in each phase; 'other' is busy time no component accounts for (other databases' sessions, anything "
    "else on the machine)."
)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=BASE_DIR, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _postgres_version() -> str:
    try:
        return str(query(ADMIN_URL, "SHOW server_version")[0][0])
    except Exception:
        return "unknown"


def header(run: Run, *, command: str, elapsed: float) -> list[str]:
    cores = os.cpu_count() or 0
    profile = run.profile
    return [
        f"# TriggerMail throughput benchmark ({profile.name})",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {cores} cores ({platform.machine()}), "
        f"Python {platform.python_version()}, PostgreSQL {_postgres_version()}; commit {_git_commit()}",
        f"- command: `{command}` (took {elapsed / 60:.1f} min)",
        f"- production configuration: gunicorn from the Procfile ({procfile_web_serving()}), "
        f"`manage.py qcluster` ({configuration()}; S uses the Redis broker), PostgreSQL on loopback, "
        f"bench.sendgrid_fast answering in {profile.provider_latency * 1000:.0f} ms",
        "- P1 and P2 run with only the web process up (ingest alone); P3-P6 and S run the full deployment",
        f"- how cores were shared: {CORES_SHARED.format(cores=cores)}",
    ]


def table(run: Run) -> list[str]:
    lines = ["| id | measure | baseline (same run) | value | ratio | target | met? |", "|---|---|---|---|---|---|---|"]
    for row in run.rows:
        lines.append(
            f"| {row.id} | {row.measure} | {row.baseline} | {row.value} | {row.ratio} | {row.target} | {row.met} |"
        )
    return lines


def correctness(run: Run) -> list[str]:
    lines = ["## Correctness: every acknowledged event's email exactly once", ""]
    for c in run.checks:
        failed = c.lost or c.duplicates or c.duplicate_keys or (c.pending and run.profile.fail_on_pending)
        status = "ok" if c.ok else ("**FAILED**" if failed else "incomplete (not lost: still pending in the rows)")
        lines.append(f"- {status}: {c.line()}")
    lines.append(
        f"- {'ok' if not run.unexpected else '**FAILED**'}: {run.unexpected} emails reached the provider that no "
        "posted event asked for (P4's seeded pending sends included)"
    )
    return lines


def cpu_table(run: Run) -> list[str]:
    cores = os.cpu_count() or 1
    names = [*COMPONENTS, "other"]
    lines = [
        "## CPU seconds by component (all on the same cores)",
        "",
        "| phase | wall s | " + " | ".join(names) + " | machine busy |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for phase, used, wall in run.cpu:
        cells = " | ".join(f"{used[n]:.1f}" for n in names)
        busy = used[MACHINE] / (wall * cores) if wall else 0.0
        lines.append(f"| {phase} | {wall:.1f} | {cells} | {used[MACHINE]:.1f} s ({busy:.0%} of {cores} cores) |")
    return lines


def report_write(run: Run, *, stamp: str, command: str, elapsed: float, failure: str = "") -> Path:
    lines = [*header(run, command=command, elapsed=elapsed), "", *table(run), ""]
    if failure:
        lines += ["**The run stopped early with an error; the rows above are what was measured.**", ""]
    lines += [*correctness(run), "", "## Details", "", *[f"- {d}" for d in run.details], "", *cpu_table(run)]
    out_dir = BASE_DIR / "var"
    out_dir.mkdir(exist_ok=True)
    png = latency_png(run.latencies, out_dir / f"bench-{stamp}-latency.png")
    timeline = timeline_png(run.timeline, out_dir / f"bench-{stamp}-p5.png")
    lines += [""] + [f"![{p.stem}]({p.name})" for p in (png, timeline) if p is not None]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    path = out_dir / f"bench-{stamp}.md"
    path.write_text(text)
    return path
