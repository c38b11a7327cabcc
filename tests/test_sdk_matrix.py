"""The SDKs customers use, each a real process, deliver exactly one email through real processes.

Segment's and RudderStack's Python SDKs (requirements-dev.txt) and Node SDKs (tests/sdk/package.json,
installed by `make pytest` with `npm ci`) each identify a person and track their signup, through
harness/fault_proxy.py into gunicorn, with qcluster delivering to the SendGrid-compatible server. The
ledger must hold exactly one welcome email to the right address — also when the request that
carried the signup was committed and the SDK was then told 503, or lost its connection, and so sent
it again.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from campaigns.authoring.demo import DEMO_CAMPAIGN
from campaigns.authoring.transfer import document_loads, rules_import
from campaigns.models import Send
from events.models import Event, WriteKey
from harness.fault_proxy import FaultProxy, Seen
from harness.processes import (
    BASE_DIR,
    VENV_BIN,
    Deployment,
    database_sessions_wait,
    database_url,
    deployment_start,
    process_env,
    wait_until,
)
from harness.sendgrid_server import API_KEY, SendGridServer

pytestmark = pytest.mark.e2e

SDK_DIR = BASE_DIR / "tests" / "sdk"
TIMEOUT = 60.0


@dataclass(frozen=True)
class Sdk:
    name: str
    argv: list[str]
    # What the SDK's source says it puts on the wire (read in site-packages and node_modules).
    content_type: str
    gzip: bool


SDKS = {
    "segment-python": Sdk(
        "segment-python", [str(VENV_BIN / "python"), "tests/sdk/send.py", "segment"], "application/json", True
    ),
    "rudderstack-python": Sdk(
        "rudderstack-python", [str(VENV_BIN / "python"), "tests/sdk/send.py", "rudderstack"], "application/json", True
    ),
    "segment-node": Sdk("segment-node", ["node", "tests/sdk/send.js", "segment"], "application/json", False),
    # axios labels the raw gzip buffer with its default for POST bodies.
    "rudderstack-node": Sdk(
        "rudderstack-node", ["node", "tests/sdk/send.js", "rudderstack"], "application/x-www-form-urlencoded", True
    ),
}


@pytest.fixture
def deployment(transactional_db: None, sendgrid_server: SendGridServer, tmp_path: Path) -> Iterator[Deployment]:
    """The demo campaign (its welcome email goes out at once), gunicorn and qcluster on the test database."""
    rules_import(document_loads(DEMO_CAMPAIGN.read_text(encoding="utf-8")))
    sendgrid_server.reset()
    env = process_env(
        database_url=database_url(connection.settings_dict),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=sendgrid_server.url,
        api_key=API_KEY,
    )
    running = deployment_start(env=env, log_dir=tmp_path)
    try:
        yield running
    finally:
        running.stop()
        print(running.logs())
    database_sessions_wait()


@pytest.fixture
def write_key(transactional_db: None) -> str:
    _, raw = WriteKey.issue(name="sdk matrix")
    return raw


def carries_the_signup(document: Any) -> bool:
    batch = document.get("batch", []) if isinstance(document, dict) else []
    return any(isinstance(m, dict) and m.get("event") == "user_signup" for m in batch)


def sdk_run(sdk: Sdk, *, host: str, write_key: str, user_id: str, email: str) -> None:
    if sdk.argv[0] == "node" and shutil.which("node") is None:
        pytest.skip("node is not installed, so the Node SDKs cannot run")
    if sdk.argv[0] == "node" and not (SDK_DIR / "node_modules").is_dir():
        pytest.fail("tests/sdk/node_modules is missing: run the tests with `make pytest`, which runs npm ci there")
    # The SDK process inherits nothing of the test's settings; RudderStack's Python SDK would even
    # read a .env file if it found one.
    env = {"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": str(SDK_DIR), "PYTHONPATH": ""}
    result = subprocess.run(
        [*sdk.argv, host, write_key, user_id, email],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, f"{sdk.name} failed:\n{result.stdout}\n{result.stderr}"


def welcome_emails(provider: SendGridServer, email: str, user_id: str, deployment: Deployment) -> list[Any]:
    """Every email the provider accepted for this address, once the user's events and sends settled."""

    def settled() -> bool:
        events = Event.objects.filter(user_id=user_id)
        open_sends = Send.objects.filter(contact__user_id=user_id, state__in=[Send.State.SCHEDULED, Send.State.SENDING])
        return events.exists() and not events.filter(processed_at__isnull=True).exists() and not open_sends.exists()

    what = f"the welcome email to {email}"
    wait_until(
        lambda: [m for m in provider.accepted if email in m.to],
        what=what,
        timeout=TIMEOUT,
        processes=deployment.processes,
    )
    wait_until(settled, what=f"{user_id}'s events and sends to settle", timeout=TIMEOUT, processes=deployment.processes)
    return [m for m in list(provider.accepted) if email in m.to]


def assert_retried_once_and_stored_once(seen: list[Seen]) -> None:
    [faulted] = [s for s in seen if s.fault]
    assert faulted.status == 200, "the fault must hit a request the ingest API had committed"
    retries = [s for s in seen if not s.fault and set(faulted.message_ids()) <= set(s.message_ids())]
    assert retries, f"the SDK did not send the faulted messages again; it sent {[s.message_ids() for s in seen]}"
    for message_id in faulted.message_ids():
        assert Event.objects.filter(message_id=message_id).count() == 1


@pytest.mark.parametrize("sdk", list(SDKS.values()), ids=list(SDKS))
def test_the_sdk_delivers_exactly_one_welcome_email_even_when_it_has_to_retry(
    sdk, deployment, write_key, sendgrid_server
):
    # One deployment for the three runs (starting one costs more than a run); each run is its own
    # person, so their emails cannot be mistaken for each other's.
    for fault in ("", "503", "drop"):
        user_id, email = f"{sdk.name}-{fault or 'clean'}", f"{sdk.name}-{fault or 'clean'}@example.com"
        proxy = FaultProxy(deployment.base_url, fault=fault, when=carries_the_signup).start()
        try:
            sdk_run(sdk, host=proxy.url, write_key=write_key, user_id=user_id, email=email)
        finally:
            proxy.stop()

        [welcome] = welcome_emails(sendgrid_server, email, user_id, deployment)
        assert welcome.subject == "Welcome, Ann! Your account is ready"
        wire = {(s.path, s.content_type, s.content_encoding) for s in proxy.seen}
        assert wire == {("/v1/batch", sdk.content_type, "gzip" if sdk.gzip else "")}
        if fault:
            assert_retried_once_and_stored_once(proxy.seen)
