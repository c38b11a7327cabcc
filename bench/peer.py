"""S's peer: django-post_office, tuned, draining the same number of emails to the same SendGrid server.

Issue #15 asks how TriggerMail's delivery compares with the obvious alternative a Django shop would
install. The peer is django-post_office with Anymail's SendGrid backend (bench/peer_project), tuned
with the three knobs its documentation offers, to the values of the issue's earlier measurement:
`send_queued_mail --processes 2`, 50 threads per process, batches of 1,000. It runs from a
virtualenv of its own (var/bench-peer-venv, from bench/peer-requirements.txt, built on first use
and kept while that file is unchanged), so that TriggerMail's requirements do not grow for a
benchmark.

On a PostgreSQL database of the run's own, `scaling_events` pre-rendered emails (S's emails: same
sender, subject and body, one address each) are queued with post_office's bulk path, then one
sender drains them. Emails/s is measured as S measures it: between the 10% and 90% marks of the
deliveries in the provider's ledger. The peer starts from rendered emails while TriggerMail's S
starts from events (match, render, send), so the comparison leans towards the peer.

CPU: post_office forks a new pool of processes for every batch, each living a few seconds, so the
monitor's half-second sampling would miss part of their time. The sender's CPU is instead read
exactly: its own times, those of its live descendants, and those of the descendants it has reaped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.context import Row, Run
from bench.database import database_url, query
from bench.monitor import COMPONENTS, MACHINE, Mark
from bench.scaling import Window
from bench.sendgrid_fast import LEDGER_FLUSH_EVERY
from harness.processes import BASE_DIR, ManagedProcess, process_start

VENV = BASE_DIR / "var" / "bench-peer-venv"
REQUIREMENTS = BASE_DIR / "bench" / "peer-requirements.txt"
SETTINGS = "bench.peer_project.settings"
PREFIX = "peer"
PROCESSES = 2
# Longer than S's wait: post_office with its defaults (not what runs here) drains about 200 emails/s.
TIMEOUT = 120.0
# How long the sender may take to record its last batch and exit once its emails have arrived.
SENDER_EXIT = 15.0
# post_office's Email.status values (post_office.models.STATUS).
QUEUED, REQUEUED = 2, 3
STATUS_NAMES = {0: "sent", 1: "failed", QUEUED: "queued", REQUEUED: "requeued"}
CPU_PHASE = "S peer (django-post_office), start-up included"


def venv_python(log_dir: Path) -> Path:
    """The peer virtualenv's python, built (13-70 s here, by load) when missing or its requirements changed."""
    python, stamp = VENV / "bin" / "python", VENV / "peer-requirements.txt"
    wanted = REQUIREMENTS.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    with (log_dir / "peer-venv.log").open("wb") as log:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, stdout=log, stderr=log)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(REQUIREMENTS)]
        subprocess.run(pip, check=True, stdout=log, stderr=log)
    # Written last: an interrupted install is redone next time.
    stamp.write_text(wanted)
    return python


def peer_env(run: Run, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATABASE_URL=url,
        SECRET_KEY=run.secret_key,
        SENDGRID_API_KEY=run.provider.api_key,
        SENDGRID_API_URL=run.provider.url,
    )
    return env


def manage(python: Path, args: list[str], *, env: dict[str, str], log_dir: Path, name: str) -> None:
    """Run a management command of the peer project to completion; fail with its output."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        done = subprocess.run(
            [str(python), "-m", "django", *args], cwd=BASE_DIR, env=env, stdout=log, stderr=log, check=False
        )
    if done.returncode:
        raise RuntimeError(f"peer: `django-admin {' '.join(args)}` failed:\n{log_path.read_text()[-2000:]}")


def tree_cpu(pid: int) -> float | None:
    """CPU seconds of a process and all its descendants, those it has reaped included; None once it is gone."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        children = root.children(recursive=True)
    except psutil.Error:
        return None
    total = times.user + times.system + times.children_user + times.children_system
    for child in children:
        try:
            child_times = child.cpu_times()
        except psutil.Error:
            continue
        total += child_times.user + child_times.system
    return total


def reaped_cpu() -> float:
    """CPU seconds of this process's children that have exited and been waited for."""
    times = os.times()
    return times.children_user + times.children_system


@dataclass(frozen=True)
class Point:
    mark: Mark
    worker: float | None
    delivered: int


def drain_measure(run: Run, sender: ManagedProcess, total: int) -> Window:
    """Wait for the peer's emails (or its sender's exit), marking CPU at 10% and 90% of them, as S does."""
    ledger, deadline = run.provider.ledger, time.monotonic() + TIMEOUT
    low: Point | None = None
    high: Point | None = None
    while True:
        ledger.read()
        delivered = ledger.prefixes[PREFIX]
        if low is None and delivered >= 0.1 * total:
            low = Point(run.monitor.mark(), tree_cpu(sender.popen.pid), delivered)
        if high is None and delivered >= 0.9 * total:
            high = Point(run.monitor.mark(), tree_cpu(sender.popen.pid), delivered)
        if delivered >= total or not sender.alive or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if low is None:
        return Window(1, 0, 0.0, {}, delivered)
    if high is None:
        high = Point(run.monitor.mark(), None, delivered)
    cpu = run.monitor.cpu_between(low.mark, high.mark)
    if low.worker is not None and high.worker is not None:
        cpu["worker"] = high.worker - low.worker
    return Window(1, high.delivered - low.delivered, high.mark.at - low.mark.at, cpu, delivered)


@dataclass(frozen=True)
class Verdict:
    """The ledger's verdict on the peer's emails, by address (post_office sends no idempotency key)."""

    queued: int
    once: int
    twice: int
    pending: int
    lost: Counter[str]  # by post_office status

    def line(self) -> str:
        lost = sum(self.lost.values())
        text = (
            f"peer: {self.queued:,} emails queued, {self.once:,} delivered once, {self.twice} sent twice "
            f"(by address), {self.pending:,} still queued when the wait ended, {lost} lost"
        )
        return text + (" (" + ", ".join(f"{s}: {n}" for s, n in self.lost.most_common()) + ")" if lost else "")


def peer_verdict(addresses: set[str], delivered: Counter[str], rows: list[tuple[str, int]]) -> Verdict:
    """Count each address's deliveries; an undelivered email is pending while post_office would still send it."""
    missing = Counter(STATUS_NAMES.get(status, str(status)) for to, status in rows if delivered[to] == 0)
    pending = missing.pop("queued", 0) + missing.pop("requeued", 0)
    return Verdict(
        queued=len(addresses),
        once=sum(1 for a in addresses if delivered[a] == 1),
        twice=sum(1 for a in addresses if delivered[a] > 1),
        pending=pending,
        lost=missing,
    )


def peer_check(url: str, run: Run, addresses: set[str]) -> Verdict:
    """The rows first, then the ledger once the provider has flushed it (bench.verify.check's order)."""
    rows = [(str(to), int(status)) for to, status in query(url, 'SELECT "to", status FROM post_office_email')]
    time.sleep(max(0.5, 10 * LEDGER_FLUSH_EVERY))
    run.provider.ledger.read()
    return peer_verdict(addresses, run.provider.ledger.addresses, rows)


def peer_run(run: Run) -> Window:
    """Queue and drain the peer's emails on a database of its own; the measured window."""
    log_dir = run.log_dir / "peer"
    log_dir.mkdir(exist_ok=True)
    python = venv_python(log_dir)
    name = run.databases.create("peer")
    url = database_url(name)
    env = peer_env(run, url)
    count = run.profile.scaling_events
    addresses = {f"{PREFIX}-{n}@bench.example" for n in range(count)}
    run.attempted.update(addresses)
    sender: ManagedProcess | None = None
    try:
        manage(python, ["migrate", "-v", "0"], env=env, log_dir=log_dir, name="migrate")
        queue = ["peer_queue", "--count", str(count), "--prefix", PREFIX]
        manage(python, queue, env=env, log_dir=log_dir, name="queue")
        run.monitor.database = name
        start, reaped = run.monitor.mark(), reaped_cpu()
        argv = [str(python), "-m", "django", "send_queued_mail", "--processes", str(PROCESSES)]
        argv += ["--lockfile", str(log_dir / "post_office")]
        sender = process_start("peer-sender", argv, env=env, log_dir=log_dir)
        run.monitor.roots["worker"] = lambda: [sender.popen.pid] if sender and sender.alive else []
        window = drain_measure(run, sender, count)
        # Every email is at the provider (or the wait ran out): post_office marks its last batch sent and
        # exits. One that does not is stopped, and what it left queued counts as pending.
        with contextlib.suppress(subprocess.TimeoutExpired):
            sender.popen.wait(timeout=SENDER_EXIT)
        sender.stop(timeout=5)
        used = run.cpu_record(CPU_PHASE, start, run.monitor.mark())
        # The sender has been waited for: its time and that of every pool it forked is now exact.
        used["worker"] = reaped_cpu() - reaped
        used["other"] = max(0.0, used[MACHINE] - sum(used[c] for c in COMPONENTS))
        run.detail(peer_check(url, run, addresses).line())
    finally:
        if sender is not None:
            sender.stop(timeout=5)
        run.monitor.database = ""
        run.databases.drop(name)
    return window


def peer_phase(run: Run) -> None:
    if run.profile.name == "quick" and "PEER" not in run.only:
        run.detail(
            "S peer: skipped in the quick run (its virtualenv takes a fresh machine 13 s to over a minute to build); "
            "`make bench` runs it, or `python -m bench --quick --only PEER`"
        )
        return
    if not (run.wants("S") or "PEER" in run.only):
        return
    run.say("S peer: django-post_office 3.12 tuned (2 processes x 50 threads, batch 1,000) via Anymail SendGrid")
    peer = peer_run(run)
    ours = run.rates.get("S 1 host", 0.0)
    ratio = ours / peer.rate if ours and peer.rate else 0.0
    run.rows.append(
        Row(
            id="S peer",
            measure="TriggerMail (1 qcluster host, from events: match, render, send) vs django-post_office "
            "tuned (2 processes x 50 threads, batch 1,000, pre-rendered emails), emails/s draining "
            f"{peer.delivered:,} emails",
            baseline=f"peer (django-post_office tuned): {peer.rate:,.0f} emails/s" + run.noise(CPU_PHASE),
            value=f"TriggerMail 1 host: {ours:,.0f} emails/s" if ours else "S not run",
            ratio=f"{ratio:.2f}" if ratio else "-",
            target="> 1",
            met=("yes" if ratio > 1 else "**no**") if ratio else "-",
        )
    )
    run.detail(
        f"S peer: {peer.emails:,} emails in the 10-90% window ({peer.seconds:.1f} s); CPU per 1,000 emails: "
        f"sender {peer.per_thousand('worker'):.2f} s (exact), PostgreSQL {peer.per_thousand('postgres'):.2f} s "
        f"(a lower bound: post_office reconnects every batch), whole machine {peer.per_thousand(MACHINE):.2f} s"
    )
    cpu_compare(run, peer)


def cpu_compare(run: Run, peer: Window) -> None:
    """CPU per email, which other workloads on the machine disturb less than emails/s do."""
    ours = run.rates.get("S 1 host worker s/1000", 0.0)
    theirs = peer.per_thousand("worker")
    if not ours or not theirs:
        return
    run.detail(
        f"S peer: CPU per 1,000 emails, TriggerMail's 1 host worker {ours:.2f} s + PostgreSQL "
        f"{run.rates.get('S 1 host postgres s/1000', 0.0):.2f} s vs the peer's sender {theirs:.2f} s: "
        f"TriggerMail's workers spend {ours / theirs:.2f} times the peer's CPU per email"
    )
