"""Through PgBouncer in transaction pooling: ingest, matching, claiming and delivery by real processes.

A PgBouncer of this module's own (harness.pgbouncer) stands between a real gunicorn and a real
`manage.py qcluster` and the test database. With DATABASE_DIRECT_URL the dispatcher LISTENs on a
direct session and is woken by the ingest's NOTIFY; without it, it finds the events by polling.
Whether the test process itself goes through a pooler (CI's PostgreSQL suite does) does not matter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from campaigns.authoring.demo import DEMO_CAMPAIGN
from campaigns.authoring.transfer import document_loads, rules_import
from campaigns.models import Send
from events.models import WriteKey
from harness.pgbouncer import PgBouncer, admin_command, installed, pgbouncer_run, server_connections_close
from harness.processes import Deployment, database_sessions_wait, deployment_start, process_env, wait_until
from harness.sendgrid_server import API_KEY, SendGridServer
from tests.conftest import identify, track

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PgBouncer pools PostgreSQL connections"),
    pytest.mark.skipif(not installed(), reason="pgbouncer is not installed (make deps-system)"),
]

TIMEOUT = 30.0
# Longer than TIMEOUT: with it, only a NOTIFY can have woken the dispatcher in time.
NO_POLLING = 600.0


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    with pgbouncer_run() as running:
        yield running


def listen_sessions(bouncer: PgBouncer, *, since: float) -> list[tuple[str, bool]]:
    """(LISTEN statement, through PgBouncer?) of the sessions on the test database that LISTENed, begun since."""
    pooled_ports = {int(str(row[7])) for row in admin_command(bouncer.port, "SHOW SERVERS")}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query, client_port FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE 'LISTEN %%' AND backend_start >= to_timestamp(%s) ORDER BY query",
            [since],
        )
        return [(query, port in pooled_ports) for query, port in cursor.fetchall()]


def deployment_behind(bouncer: PgBouncer, provider: SendGridServer, log_dir: Path, **extra: str) -> Deployment:
    name = connection.settings_dict["NAME"]
    env = process_env(
        database_url=bouncer.url(name),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=provider.url,
        api_key=API_KEY,
    )
    env.pop("DATABASE_DIRECT_URL", None)
    env.update(DATABASE_POOLING="transaction", **extra)
    return deployment_start(env=env, log_dir=log_dir)


@pytest.fixture
def deploy(transactional_db: None, bouncer: PgBouncer, sendgrid_server: SendGridServer, tmp_path: Path) -> Iterator:
    """Start gunicorn and qcluster behind the bouncer with these extra settings; stop them afterwards."""
    sendgrid_server.reset()
    rules_import(document_loads(DEMO_CAMPAIGN.read_text(encoding="utf-8")))
    started: list[Deployment] = []

    def start(**extra: str) -> Deployment:
        started.append(deployment_behind(bouncer, sendgrid_server, tmp_path, **extra))
        return started[-1]

    yield start
    for deployment in started:
        deployment.stop()
        print(deployment.logs())
    # PgBouncer keeps its server sessions after its clients go; pytest-django's flush needs none of them.
    server_connections_close(port=bouncer.port, database=connection.settings_dict["NAME"])
    database_sessions_wait()


def signup_post(deployment: Deployment, user_id: str, email: str) -> None:
    _, key = WriteKey.issue(name="pgbouncer")
    answer = requests.post(
        f"{deployment.base_url}/v1/batch",
        json={"batch": [identify(user_id, email, first_name="Pat"), track("user_signup", user_id)]},
        auth=(key, ""),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def welcome_sent(deployment: Deployment, provider: SendGridServer, email: str) -> None:
    send = wait_until(
        lambda: Send.objects.filter(contact__email=email, state=Send.State.SENT).first(),
        what=f"the welcome email to {email} to be sent",
        timeout=TIMEOUT,
        processes=deployment.processes,
    )
    assert [m.to for m in provider.accepted] == [[email]]
    assert provider.keys() == {send.dedupe_key: 1}


def test_behind_pgbouncer_a_notify_on_the_direct_url_wakes_the_dispatcher(deploy, bouncer, sendgrid_server):
    name = connection.settings_dict["NAME"]
    since = time.time()
    deployment = deploy(DATABASE_DIRECT_URL=f"postgres://root@127.0.0.1:5432/{name}", DISPATCH_INTERVAL=str(NO_POLLING))
    # The dispatcher's first look happens at start-up; from then on it waits for the NOTIFY.
    # The dispatcher listens for events and, with the ORM broker, the queue's consumer for tasks.
    sessions = wait_until(
        lambda: (found := listen_sessions(bouncer, since=since)) and len(found) == 2 and found,
        what="the dispatcher and the task consumer to LISTEN",
    )
    assert sessions == [("LISTEN triggermail_events", False), ("LISTEN triggermail_tasks", False)], (
        "both wake-ups must LISTEN on a direct session"
    )

    signup_post(deployment, "pgb-ann", "ann@example.com")

    welcome_sent(deployment, sendgrid_server, "ann@example.com")


def test_behind_pgbouncer_without_a_direct_url_polling_still_delivers(deploy, bouncer, sendgrid_server):
    since = time.time()
    deployment = deploy(DISPATCH_INTERVAL="0.5")

    signup_post(deployment, "pgb-bob", "bob@example.com")

    welcome_sent(deployment, sendgrid_server, "bob@example.com")
    assert listen_sessions(bouncer, since=since) == [], "behind a pooler with no direct URL, nobody LISTENs"
