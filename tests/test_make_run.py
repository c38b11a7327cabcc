"""`make run` as a new user meets it: on another port, with files or with SendGrid as the README says.

Each test starts scripts/run.sh (what `make run` runs once .venv is ready) on a free port that is
not 8000, with a SQLite database and mail folder of its own, posts a cart the demo campaign
recovers, and follows the List-Unsubscribe link of the email that went out: it must answer 200 from
the running server, because links follow where the app answers.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from harness.processes import BASE_DIR, ManagedProcess, process_start, wait_until
from harness.sendgrid_server import API_KEY, SendGridServer

TIMEOUT = 180.0
USER = "run-ann"
EMAIL = "run-ann@example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    assert port != 8000
    return port


def run_env(tmp_path: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of a person's shell: the test's own settings left out, the given ones set."""
    if re.search(r"^SITE_URL=", (BASE_DIR / ".env").read_text() if (BASE_DIR / ".env").exists() else "", re.M):
        pytest.skip("this checkout's .env sets SITE_URL, which rightly wins over the port")
    ours = ("PYTEST_", "TEST_DATABASE_NAME", "DATABASE_", "SENDGRID_", "SITE_URL", "DJANGO_SETTINGS_MODULE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MAIL_CAPTURE_DIR=str(tmp_path / "mail"),
        # With a SECRET_KEY in the environment make run writes no .env into the checkout.
        SECRET_KEY="make-run-test",
        # Explicitly empty, so that a .env in this checkout cannot fill them in.
        SENDGRID_API_KEY="",
        SENDGRID_WEBHOOK_VERIFICATION_KEY="",
        WEB_CONCURRENCY="2",
        Q_WORKERS="2",
    )
    env.update(settings)
    return env


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for process in started:
        process.stop()
        print(process.log())


def run_start(make_run: list[ManagedProcess], env: dict[str, str], tmp_path: Path) -> ManagedProcess:
    name = f"make-run-{len(make_run) + 1}"
    process = process_start(name, [str(BASE_DIR / "scripts" / "run.sh")], env=env, log_dir=tmp_path)
    make_run.append(process)
    return process


def write_key_of(process: ManagedProcess, port: int) -> str:
    """The write key from the curl command make run prints, once the web process answers."""
    login = f"http://127.0.0.1:{port}/admin/login/"
    wait_until(lambda: _answers(login), what=f"make run to serve {login}", timeout=TIMEOUT, processes=[process])
    match = wait_until(lambda: re.search(r"curl -sS -u '?([^:' ]+):", process.log()), what="the curl line")
    return match.group(1)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def cart_post(port: int, write_key: str) -> None:
    """A cart abandoned an hour ago: the demo's cart recovery (marketing) is due at once."""
    when = (datetime.now(UTC) - timedelta(minutes=61)).isoformat()
    batch: list[dict[str, Any]] = [
        {"type": "identify", "userId": USER, "traits": {"email": EMAIL, "first_name": "Ann"}},
        {"type": "track", "userId": USER, "event": "cart_abandoned", "timestamp": when, "properties": {"value": 35}},
    ]
    response = requests.post(f"http://127.0.0.1:{port}/v1/batch", json={"batch": batch}, auth=(write_key, ""))
    assert response.json() == {"success": True}


def unsubscribe_link(header: str) -> str:
    [url] = re.findall(r"<(https?://[^>]+)>", header)
    return url


def captured_list_unsubscribe(mail_dir: Path) -> str | None:
    """The List-Unsubscribe header of the email Django's file backend wrote (one message per file)."""
    for path in sorted(mail_dir.glob("*.log")) if mail_dir.is_dir() else []:
        header = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["List-Unsubscribe"]
        if header:
            return str(header)
    return None


@pytest.mark.e2e
def test_make_run_on_another_port_writes_links_that_answer_there(make_run, tmp_path):
    port = free_port()
    process = run_start(make_run, run_env(tmp_path, port), tmp_path)
    cart_post(port, write_key_of(process, port))

    header = wait_until(
        lambda: captured_list_unsubscribe(tmp_path / "mail"), what="the captured cart email", processes=[process]
    )
    link = unsubscribe_link(header)
    assert link.startswith(f"http://127.0.0.1:{port}/u/")
    assert requests.get(link, timeout=10).status_code == 200
    log = process.log()
    assert f"Links:  http://127.0.0.1:{port}" in log
    assert "SENDGRID_WEBHOOK_VERIFICATION_KEY" in log, "the banner must say what SendGrid needs"
    # The first run on SQLite must not greet a new user with a warning that reads like a failure.
    assert "WARNINGS" not in log and "W040" not in log


@pytest.mark.e2e
def test_the_readmes_sendgrid_steps_are_all_it_takes(make_run, tmp_path, sendgrid_server: SendGridServer):
    from harness.sendgrid_webhook import TEST_WEBHOOK_KEYPAIR

    sendgrid_server.reset()
    port = free_port()
    # Only the API key: the start stops and says what else is needed.
    half = run_start(make_run, run_env(tmp_path, port, SENDGRID_API_KEY=API_KEY), tmp_path)
    wait_until(lambda: not half.alive, what="make run to refuse a SendGrid key alone", timeout=TIMEOUT)
    assert half.popen.returncode != 0
    assert "SENDGRID_WEBHOOK_VERIFICATION_KEY" in half.log() and "Sending through SendGrid" in half.log()

    # The README's steps: the API key and the webhook's verification key (and, here, the URL of the
    # local SendGrid-compatible server instead of SendGrid's).
    steps = {
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_WEBHOOK_VERIFICATION_KEY": TEST_WEBHOOK_KEYPAIR.public_key,
        "SENDGRID_API_URL": sendgrid_server.url,
    }
    process = run_start(make_run, run_env(tmp_path, port, **steps), tmp_path)
    cart_post(port, write_key_of(process, port))

    [email] = wait_until(
        lambda: [m for m in sendgrid_server.accepted if EMAIL in m.to], what="the cart email at SendGrid"
    )
    link = unsubscribe_link(email.headers["List-Unsubscribe"])
    assert link.startswith(f"http://127.0.0.1:{port}/u/")
    assert requests.get(link, timeout=10).status_code == 200
    assert f"http://127.0.0.1:{port}/anymail/sendgrid/tracking/" in process.log(), "the banner names the webhook URL"


@pytest.mark.django_db
def test_the_dashboard_index_is_covering_on_postgresql_and_a_partial_index_on_sqlite():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'send_dashboard_period'")
        else:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'send_dashboard_period'")
        [definition] = cursor.fetchone()
    assert "WHERE" in definition
    assert ("INCLUDE" in definition) == (connection.vendor == "postgresql"), definition
