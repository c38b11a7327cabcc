"""`python -m bench`: TriggerMail's throughput benchmark (issue #5), on the production configuration.

Starts gunicorn (the Procfile's command line), `manage.py qcluster`, PostgreSQL databases of the
run's own on loopback and bench.sendgrid_fast (a SendGrid-compatible server answering in 50 ms),
then measures:

    P1  /v1/batch events/s                  vs raw psycopg COPY of the same rows
    P2  /v1/track requests/s (wrk)          vs a Django view doing one INSERT, and one doing none
    P3  event accepted -> provider received, no-delay rule, steady 200 events/s (P3R: Redis broker)
    P4  provider received - due time, with 1,000,000 pending sends in the table
    P5  sustained ingest -> match -> send, 1,000 events/s for 5 minutes; backlog slope, drain
    P6  peak memory of web and worker during P5
    S   2 qcluster hosts vs 1 on one PostgreSQL with the Redis broker; its peer, django-post_office
        tuned, draining as many emails (bench/peer.py; full run only, or --only PEER)
    R1  a quiet write key's p99 while another key floods (rate limits), vs the quiet key alone
    R2  /v1/track requests/s with rate limits on vs off (full run only)

and checks that every acknowledged event's email reached the provider exactly once. Prints the
table, writes it to var/bench-<stamp>.md with a latency PNG beside it.

    python -m bench [--quick] [--only P1,P3,...] [--p3-rate 200] [--p3-seconds 45]
                    [--p5-rate 1000] [--p5-seconds 300] [--p5-triggering 1.0] [--s-hosts 1]

Exit status: 1 when an email was lost, sent twice or never asked for (with --quick also when one
was still undelivered when the wait ended), 2 on a benchmark error. Timings never fail the run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from bench.context import Run
from bench.database import Databases, database_url, template_prepare
from bench.ingest import ingest_phases
from bench.latency import latency_phases
from bench.monitor import Monitor
from bench.peer import peer_phase
from bench.profile import PROFILES
from bench.provider import ProviderServer
from bench.ratelimit import ratelimit_phases
from bench.report import report_write
from bench.scaling import scaling_phase
from bench.sustained import sustained_phase
from bench.verify import unexpected
from harness.processes import BASE_DIR

PHASES: list[tuple[frozenset[str], Callable[[Run], None]]] = [
    (frozenset({"P1", "P2"}), ingest_phases),
    (frozenset({"P3", "P4", "P3R"}), latency_phases),
    (frozenset({"P5", "P6"}), sustained_phase),
    (frozenset({"S"}), scaling_phase),
    (frozenset({"S", "PEER"}), peer_phase),
    (frozenset({"R1", "R2"}), ratelimit_phases),
]


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small CI run (under 2 minutes)")
    parser.add_argument("--only", default="", help="comma-separated phases: P1,P2,P3,P3R,P4,P5,P6,S,PEER,R1,R2")
    parser.add_argument("--p3-rate", type=float, help="P3's offered events/s (default 200)")
    parser.add_argument("--p3-seconds", type=float, help="P3's duration")
    parser.add_argument("--p5-rate", type=float, help="P5's offered events/s")
    parser.add_argument("--p5-seconds", type=float, help="P5's duration")
    parser.add_argument("--p5-triggering", type=float, help="share of P5's events that cause an email (0..1)")
    parser.add_argument("--provider-latency", type=float, help="the SendGrid server's answer time, seconds")
    parser.add_argument("--s-hosts", help="S's host counts, comma-separated (default 1,2; 1 to profile one host)")
    parser.add_argument("--s-events", type=int, help="S's (and the peer's) backlog, events (default 10,000)")
    return parser.parse_args(argv)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (CI's timeout, a person's kill) must run the clean-up below, as Ctrl-C does.
    raise KeyboardInterrupt(f"signal {signum}")


def _phase_run(run: Run, phase: Callable[[Run], None]) -> str:
    """Run one phase; an error in it is reported and the next phase still runs."""
    try:
        phase(run)
    except Exception:
        text = traceback.format_exc()
        run.detail(f"**{phase.__name__} stopped with an error**: {text.strip().splitlines()[-1]}")
        print(text, file=sys.stderr)
        return f"{phase.__name__}: {text}"
    return ""


def main(argv: list[str] | None = None) -> int:
    args = arguments(sys.argv[1:] if argv is None else argv)
    profile = PROFILES["quick" if args.quick else "full"].with_options(
        p3_rate=args.p3_rate,
        p3_seconds=args.p3_seconds,
        p5_rate=args.p5_rate,
        p5_seconds=args.p5_seconds,
        p5_triggering=args.p5_triggering,
        provider_latency=args.provider_latency,
        scaling_hosts=tuple(int(n) for n in args.s_hosts.split(",")) if args.s_hosts else None,
        scaling_events=args.s_events,
        # A longer backlog takes longer to drain: at least 250 emails/s before S gives up waiting.
        scaling_timeout=max(40.0, args.s_events / 250) if args.s_events else None,
    )
    only = {p.strip().upper() for p in args.only.split(",") if p.strip()}
    signal.signal(signal.SIGTERM, _terminate)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log_dir = BASE_DIR / "var" / f"bench-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    databases = Databases()
    monitor = Monitor().start()
    provider: ProviderServer | None = None
    failure = ""
    run: Run | None = None
    try:
        print(f"bench: {profile.name} run {databases.run_id}, logs in {log_dir.relative_to(BASE_DIR)}", flush=True)
        template = databases.create("template")
        secret_key = secrets.token_urlsafe(32)
        os.environ["SECRET_KEY"] = secret_key
        write_key = template_prepare(database_url(template))
        provider = ProviderServer.start(env=dict(os.environ), log_dir=log_dir, latency=profile.provider_latency)
        monitor.roots["provider"] = lambda: [provider.process.popen.pid] if provider else []
        run = Run(profile, databases, template, write_key, secret_key, provider, monitor, log_dir, only=only)
        for ids, phase in PHASES:
            if not only or ids & only:
                failure += _phase_run(run, phase)
    except KeyboardInterrupt as interrupt:
        failure += f"interrupted ({interrupt})\n"
    except Exception:
        failure += traceback.format_exc()
    finally:
        monitor.stop()
        if provider is not None:
            provider.stop()
        databases.drop_all()
    if run is None:
        print(f"bench: could not start: {failure}", file=sys.stderr)
        return 2
    run.unexpected = unexpected(run.provider.ledger, run.attempted)
    path = report_write(run, stamp=stamp, command=command, elapsed=time.monotonic() - started, failure=failure)
    print(f"\nbench: written to {path.relative_to(BASE_DIR)} (logs in {log_dir.relative_to(BASE_DIR)})")
    if failure:
        print(f"bench: FAILED with an error:\n{failure}", file=sys.stderr)
        return 2
    bad = [
        c for c in run.checks if c.lost or c.duplicates or c.duplicate_keys or (profile.fail_on_pending and c.pending)
    ]
    delivered = sum(c.delivered for c in run.checks)
    if bad or run.unexpected or (run.checks and not delivered):
        print("bench: FAILED: an email was lost, sent twice, never delivered or never asked for", file=sys.stderr)
        return 1
    return 0
