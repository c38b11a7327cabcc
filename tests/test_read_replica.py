"""The Dashboard is served from a real streaming replica while the primary sends.

A primary and a standby made from it with `pg_basebackup` (harness/replica.py) run on ports of their
own; both log every statement they run. A real gunicorn and a real qcluster run with
DATABASE_URL on the primary and DATABASE_REPLICA_URL on the standby (the worker too: were anything
that decides a send routed there, the standby would refuse its writes). Signups are posted in
batches while the Dashboard is read; what the provider received, the standby's statement log and
the page's own "Read from" line say where each part read. Then the standby stops, and the page is
still served, from the primary.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings

from harness.processes import BASE_DIR, VENV_BIN, Deployment, deployment_start, process_env, wait_until
from harness.replica import StreamingPair, cluster_stop, streaming_pair
from harness.sendgrid_server import API_KEY, SendGridServer

pytestmark = pytest.mark.e2e

TIMEOUT = 60.0
DATABASE = "triggermail"
USERS = [f"u{n}" for n in range(12)]
BATCHES = 4
# Run by dashboard_compute at the start of its transaction, and by nothing else.
DASHBOARD_MARKER = "set_config('jit', 'off', true)"
FROM_REPLICA = re.compile(r"Read from the replica, (\d+) s behind\.")
FUNNEL_SENT = re.compile(r"Funnel for all rules: triggered (\d+), scheduled (\d+), sent (\d+)")


@pytest.fixture
def pair() -> Iterator[StreamingPair]:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("a streaming replica is PostgreSQL's; run with DATABASE_URL=postgres://… to test it")
    # Fails (never skips) on PostgreSQL when the clusters cannot be made: ReplicaSetupError with logs.
    with streaming_pair(primary_settings={"log_statement": "all"}, standby_settings={"log_statement": "all"}) as pair:
        pair.primary.query(f"CREATE DATABASE {DATABASE}")
        yield pair


@pytest.fixture
def env(pair: StreamingPair, sendgrid_server: SendGridServer) -> dict[str, str]:
    sendgrid_server.reset()
    env = process_env(
        database_url=pair.primary.url(DATABASE),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=sendgrid_server.url,
        api_key=API_KEY,
    )
    env["DATABASE_REPLICA_URL"] = pair.standby.url(DATABASE)
    # The pair's primary is reached directly, even when the suite itself runs behind PgBouncer.
    for name in ("DATABASE_POOLING", "DATABASE_DIRECT_URL"):
        env.pop(name, None)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture
def deployment(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Deployment, str, str]]:
    """Web and worker on the primary with the standby as their replica; (deployment, write key, admin password)."""
    manage(env, "migrate", "--noinput")
    demo = manage(env, "demo_setup")
    password = re.search(r"user admin\s+password (\S+)", demo)
    key = re.search(r"curl -sS -u '?([^:' ]+):", demo)
    assert password and key, demo
    deployment = deployment_start(env=env, log_dir=tmp_path)
    try:
        yield deployment, key.group(1), password.group(1)
    finally:
        deployment.stop()
        print(deployment.logs())


def admin_login(base_url: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base_url}/admin/login/", timeout=10).raise_for_status()
    answer = session.post(
        f"{base_url}/admin/login/?next=/admin/",
        data={"username": "admin", "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        timeout=10,
    )
    assert answer.url.endswith("/admin/"), answer.text[:2000]
    return session


def signups_post(base_url: str, key: str, users: list[str]) -> None:
    batch: list[dict[str, Any]] = []
    for user in users:
        batch.append({"type": "identify", "userId": user, "traits": {"email": f"{user}@example.com"}})
        batch.append({"type": "track", "userId": user, "event": "user_signup"})
    answer = requests.post(f"{base_url}/v1/batch", json={"batch": batch}, auth=(key, ""), timeout=10)
    assert answer.json() == {"success": True}


def dashboard(session: requests.Session, base_url: str) -> str:
    answer = session.get(f"{base_url}/admin/campaigns/performance/?period=24h", timeout=30)
    assert answer.status_code == 200, answer.text[:2000]
    return answer.text


def funnel_sent(page: str) -> int:
    match = FUNNEL_SENT.search(page)
    assert match, page[:3000]
    return int(match.group(3))


def test_the_dashboard_is_read_from_the_replica_while_the_primary_sends(
    pair: StreamingPair, deployment: tuple[Deployment, str, str], sendgrid_server: SendGridServer, env
):
    processes, key, password = deployment
    base_url = processes.base_url
    session = admin_login(base_url, password)
    standby_log_before, primary_log_before = len(pair.standby.log()), len(pair.primary.log())

    pages: list[str] = []
    for n in range(BATCHES):
        signups_post(base_url, key, USERS[n::BATCHES])
        pages.append(dashboard(session, base_url))

    def all_sent() -> str | None:
        page = dashboard(session, base_url)
        return page if funnel_sent(page) == len(USERS) else None

    pages.append(
        wait_until(
            all_sent,
            what=f"the Dashboard (read from the replica) to count {len(USERS)} emails sent",
            timeout=TIMEOUT,
            interval=0.3,
            processes=processes.processes,
        )
    )

    # Every page was read from the replica, and said how far behind it was.
    assert all(FROM_REPLICA.search(page) for page in pages), [p[:3000] for p in pages if not FROM_REPLICA.search(p)]
    # Some pages were read while emails were still going out, and they showed fewer.
    assert funnel_sent(pages[0]) < len(USERS)
    # The primary sent each email once; the standby ran the Dashboard's queries, the primary did not.
    assert sorted(m.to[0] for m in sendgrid_server.accepted) == sorted(f"{user}@example.com" for user in USERS)
    assert pair.primary.query("SELECT state, count(*) FROM campaigns_send GROUP BY state", database=DATABASE) == [
        ("sent", len(USERS))
    ]
    standby_statements = pair.standby.log()[standby_log_before:]
    assert DASHBOARD_MARKER in standby_statements
    assert 'FROM "campaigns_decision"' in standby_statements
    assert DASHBOARD_MARKER not in pair.primary.log()[primary_log_before:]
    assert "read-only transaction" not in processes.logs()
    assert "System check identified no issues" in manage(env, "check", "--database", "default", "--database", "replica")
    export = manage(env, "export_rules")
    assert FROM_REPLICA.search(export) and '"Welcome"' in export, export

    # The standby stops: the page still renders, from the primary, and says so; the web process logs why.
    cluster_stop(pair.standby)
    page = dashboard(session, base_url)

    assert "Read from the primary (replica unreachable" in page
    assert funnel_sent(page) == len(USERS)
    assert "Reading from the primary: the replica" in processes.gunicorn.log()
    assert DASHBOARD_MARKER in pair.primary.log()[primary_log_before:]
