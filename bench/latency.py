"""Event-to-provider latency, measured on the production processes.

Starts gunicorn (2 workers) and `manage.py qcluster` on a database of its own, and a local
SendGrid-compatible server that answers after a realistic 50 ms. Then:

- immediate: posts `identify` + `user_signup` for N users at a steady rate and measures, per user,
  the time from the ingest API's 200 to the welcome email's arrival at the SendGrid server;
- delayed: posts `cart_abandoned` events whose 60-minute delay falls due a few seconds later and
  measures how late each recovery email arrives after its due time.

    python -m bench.latency [--database postgres|sqlite] [--events 200] [--rate 20] [--delayed 100]

The load generator is this process's one thread; the app's processes share the machine's other
capacity with it (the report says how many cores there were).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
RECOVERY_DELAY = timedelta(hours=1)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@contextmanager
def bench_database(kind: str) -> Iterator[str]:
    """A fresh database URL for this run, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.sqlite3"
        return
    import psycopg

    name = f"triggermail_bench_{os.getpid()}"
    with psycopg.connect("postgresql://root@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://root@127.0.0.1:5432/{name}"
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect("postgresql://root@127.0.0.1:5432/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def campaign_seed() -> str:
    """The two rules measured here; returns a write key."""
    from campaigns.models import Category, Rule, Template
    from events.models import WriteKey

    welcome = Template.objects.create(
        name="Welcome", subject="Welcome {{ contact.first_name }}", text_body="Hi", category=Category.TRANSACTIONAL
    )
    recovery = Template.objects.create(name="Recovery", subject="Your cart", text_body="Come back")
    Rule.objects.create(name="welcome", trigger_event="user_signup", template=welcome)
    Rule.objects.create(name="recovery", trigger_event="cart_abandoned", template=recovery, delay=RECOVERY_DELAY)
    return WriteKey.issue(name="bench")[1]


def post_batch(base_url: str, key: str, messages: list[dict[str, Any]]) -> float:
    """POST /v1/batch; return the time the 200 arrived (the moment the events were accepted)."""
    request = urllib.request.Request(
        f"{base_url}/v1/batch",
        data=json.dumps({"batch": messages}).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200, response.read()
    return time.time()


def paced(count: int, rate: float) -> Iterator[int]:
    """0..count-1, one every 1/rate seconds."""
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield i


def arrivals(server, wanted: set[str]) -> dict[str, float] | None:
    """When each wanted address's email reached the server, once all of them have."""
    got = {a.to[0]: a.received_at for a in list(server.accepted) if a.to[0] in wanted}
    return got if len(got) == len(wanted) else None


def immediate_measure(base_url: str, key: str, server, events: int, rate: float, processes) -> list[float]:
    from tests.processes import wait_until

    accepted_at: dict[str, float] = {}
    for i in paced(events, rate):
        email = f"now-{i}@example.com"
        identify = {"type": "identify", "userId": f"now-{i}", "traits": {"email": email, "first_name": "B"}}
        signup = {"type": "track", "event": "user_signup", "userId": f"now-{i}"}
        accepted_at[email] = post_batch(base_url, key, [identify, signup])
    arrived = wait_until(
        lambda: arrivals(server, set(accepted_at)),
        what=f"{events} welcome emails",
        timeout=120,
        processes=processes,
    )
    return [arrived[email] - accepted_at[email] for email in accepted_at]


def delayed_measure(base_url: str, key: str, server, events: int, processes) -> list[float]:
    from campaigns.models import Send
    from tests.processes import wait_until

    lead = timedelta(seconds=3)
    for i in range(events):
        # The delay counts from the event's timestamp: an event 59 min 57 s old falls due in ~3 s.
        occurred = datetime.now(UTC) - RECOVERY_DELAY + lead + timedelta(milliseconds=20 * i)
        identify = {"type": "identify", "userId": f"late-{i}", "traits": {"email": f"late-{i}@example.com"}}
        cart = {"type": "track", "event": "cart_abandoned", "userId": f"late-{i}", "timestamp": occurred.isoformat()}
        post_batch(base_url, key, [identify, cart])
    wanted = {f"late-{i}@example.com" for i in range(events)}
    arrived = wait_until(
        lambda: arrivals(server, wanted),
        what=f"{events} recovery emails",
        timeout=120,
        processes=processes,
    )
    due = {s.to_email: s.due_at.timestamp() for s in Send.objects.filter(rule__name="recovery")}
    return [arrived[email] - due[email] for email in wanted]


def report(rows: list[tuple[str, list[float]]], args: argparse.Namespace) -> str:
    lines = [
        f"TriggerMail latency benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"database {args.database}, SendGrid server answering in 50 ms",
        f"command: python -m bench.latency --database {args.database} --events {args.events} "
        f"--rate {args.rate} --delayed {args.delayed}",
        "",
        "| measure | n | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in rows:
        cells = " | ".join(f"{percentile(values, p) * 1000:.0f} ms" for p in (50, 95, 99, 100))
        lines.append(f"| {name} | {len(values)} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--delayed", type=int, default=100)
    args = parser.parse_args()
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(32)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    with bench_database(args.database) as url, tempfile.TemporaryDirectory() as logs:
        os.environ["DATABASE_URL"] = url
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        key = campaign_seed()
        from tests.processes import deployment_start, process_env
        from tests.sendgrid_server import API_KEY, SendGridServer

        server = SendGridServer(latency=0.05).start()
        env = process_env(
            database_url=url, secret_key=os.environ["SECRET_KEY"], sendgrid_url=server.url, api_key=API_KEY
        )
        deployment = deployment_start(env=env, log_dir=Path(logs))
        try:
            rows = [
                ("event accepted → provider received (no delay)", immediate_measure(
                    deployment.base_url, key, server, args.events, args.rate, deployment.processes)),
                ("provider received minus due time (delayed send)", delayed_measure(
                    deployment.base_url, key, server, args.delayed, deployment.processes)),
            ]  # fmt: skip
        finally:
            deployment.stop()
            server.stop()
    text = report(rows, args)
    print(text)
    out = BASE_DIR / "var" / f"bench-latency-{datetime.now(UTC):%Y%m%d-%H%M%S}.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print(f"\nwritten to {out.relative_to(BASE_DIR)}")


if __name__ == "__main__":
    main()
