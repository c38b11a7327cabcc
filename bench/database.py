"""The benchmark's PostgreSQL databases: one migrated template per run, a fresh copy per phase.

Phases must not inherit each other's rows (P1 leaves 100,000 unprocessed events that a worker
would then process during P3), and migrating takes seconds; `CREATE DATABASE … TEMPLATE` copies a
migrated, seeded database in about a second. Every name carries the run's id, and everything the
run created is dropped on the way out, whatever ended it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg

from bench import payloads

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://root@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql)


class Databases:
    """Creates and remembers this run's databases; `drop_all` removes them."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.created: list[str] = []

    def name(self, label: str) -> str:
        return f"tm_bench_{self.run_id}_{label}"

    def create(self, label: str, *, template: str | None = None) -> str:
        name = self.name(label)
        source = f' TEMPLATE "{template}"' if template else ""
        _admin(f'CREATE DATABASE "{name}"{source}')
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            with contextlib.suppress(psycopg.Error):
                self.drop(name)


def template_prepare(url: str) -> str:
    """Migrate the database at `url` with Django, create the benchmark's rules; return a write key.

    This process's Django points at the template only while preparing it; the phases talk to
    their copies over plain psycopg, so nothing in this process holds the template open.
    """
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "triggermail.settings")
    import django
    from django.core.management import call_command
    from django.db import connections

    django.setup()
    call_command("migrate", verbosity=0)
    key = rules_seed()
    connections.close_all()
    return key


def rules_seed() -> str:
    from campaigns.models import Category, Rule, Template
    from events.models import WriteKey

    rules = [
        ("bench now", payloads.NOW_EVENT, timedelta(0)),
        ("bench later", payloads.LATER_EVENT, timedelta(seconds=payloads.LATER_DELAY)),
        ("bench seeded", payloads.SEEDED_EVENT, timedelta(days=1)),
    ]
    for name, event, delay in rules:
        # Transactional: no frequency cap or unsubscribe footer stands between an event and its email.
        template = Template.objects.create(
            name=name,
            subject="Hello {{ contact.first_name }}, about your {{ event.plan }} plan",
            text_body="Hi {{ contact.first_name }},\n\nYour cart holds {{ event.items }} items.\n",
            category=Category.TRANSACTIONAL,
        )
        Rule.objects.create(name=name, trigger_event=event, template=template, delay=delay)
    # The phases measure capacity, so the bench's key is never refused; its limit is still counted
    # on every request (R2 measures what that costs). R1 makes keys with the default limits.
    return WriteKey.issue(name="bench", rate_limit=1e9, rate_burst=10**9)[1]


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(sql, params).fetchall()


def pipeline_counts(connection: psycopg.Connection[Any]) -> tuple[int, int, int]:
    """(unprocessed events, due scheduled sends, sends in flight): the pipeline's backlog."""
    row = connection.execute(
        "SELECT (SELECT count(*) FROM events_event WHERE processed_at IS NULL),"
        " (SELECT count(*) FROM campaigns_send WHERE state = 'scheduled' AND due_at <= now()),"
        " (SELECT count(*) FROM campaigns_send WHERE state = 'sending')"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


@contextlib.contextmanager
def prepared_database(label: str) -> Iterator[str]:
    """A fresh PostgreSQL database, migrated with the benchmark's rules, for this process's Django to
    use (bench.bulk_cpu, bench.claim_cpu); yields the write key, and drops the database afterwards."""
    databases = Databases()
    try:
        yield template_prepare(database_url(databases.create(label)))
    finally:
        from django.db import connections

        connections.close_all()
        databases.drop_all()


@contextlib.contextmanager
def bench_database(kind: str) -> Iterator[str]:
    """A fresh, empty database URL (PostgreSQL or SQLite), removed afterwards (bench.dashboard uses it)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.sqlite3"
        return
    databases = Databases()
    name = databases.create("db")
    try:
        yield database_url(name).replace("postgresql://", "postgres://", 1)
    finally:
        from django.db import connections

        connections.close_all()
        databases.drop_all()
