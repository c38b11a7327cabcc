"""Shared fixtures: a write key, an API client that speaks Segment's protocol, the local
SendGrid-compatible server, and helpers that run the worker's steps at a chosen time."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from harness.sendgrid_server import API_KEY, SendGridServer


@pytest.fixture(autouse=True)
def _write_key_cache_cleared() -> None:
    """Each test's keys are its own rows (the database is emptied between tests), so no test may
    see a key another test's requests left in the process's write-key cache (events/auth.py)."""
    from events.auth import write_key_cache_clear

    write_key_cache_clear()


@pytest.fixture
def key_cache_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """A function that moves the write-key cache's clock (events.auth) forward by that many seconds."""
    from events import auth

    offset = [0.0]
    monkeypatch.setattr(auth, "_clock", lambda: time.monotonic() + offset[0])

    def shift(seconds: float) -> None:
        offset[0] += seconds

    return shift


def pooled_test_database_release(name: str) -> None:
    """Behind PgBouncer, close its idle server sessions on the test database `name`, which would
    stop Django from dropping it (before the run, a database left by an earlier one; after it, ours)."""
    from django.conf import settings
    from django.db import connection

    from harness.pgbouncer import server_connections_close

    if settings.DATABASE_POOLING == "transaction":
        server_connections_close(port=int(connection.settings_dict["PORT"]), database=name)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    from django.db import connection
    from django.db.backends.base.creation import TEST_DATABASE_PREFIX

    settings_dict = connection.settings_dict
    pooled_test_database_release(settings_dict["TEST"]["NAME"] or TEST_DATABASE_PREFIX + settings_dict["NAME"])


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    from django.db import connection

    yield
    # Before pytest-django's own teardown, which drops the database.
    pooled_test_database_release(connection.settings_dict["NAME"])


@pytest.fixture(scope="session")
def sendgrid_server() -> Iterator[SendGridServer]:
    server = SendGridServer().start()
    yield server
    server.stop()


@pytest.fixture
def sendgrid(sendgrid_server: SendGridServer, settings: Any) -> SendGridServer:
    """Route email through the project's SendGrid backend (Anymail's, thinly subclassed) to the local server."""
    sendgrid_server.reset()
    settings.EMAIL_BACKEND = "campaigns.sending.sendgrid_backend.EmailBackend"
    settings.ANYMAIL = {
        "SENDGRID_API_KEY": API_KEY,
        "SENDGRID_API_URL": sendgrid_server.url,
        "REQUESTS_TIMEOUT": 2.0,
    }
    return sendgrid_server


@pytest.fixture
def web(transactional_db: None, sendgrid_server: SendGridServer, tmp_path: Path) -> Iterator[str]:
    """The production web server (gunicorn, triggermail/gunicorn_conf.py) on the test database; its base URL.

    The browser tests and the slow-client tests have their own, started differently.
    """
    from harness.processes import web_serving

    with web_serving(sendgrid_url=sendgrid_server.url, log_dir=tmp_path) as base_url:
        yield base_url


@pytest.fixture
def write_key(db: None) -> str:
    from events.models import WriteKey

    _, raw = WriteKey.issue(name="tests")
    return raw


class Api:
    """Posts to the ingest API as a Segment SDK does (HTTP Basic, JSON, optional gzip)."""

    def __init__(self, client: Client, key: str) -> None:
        self.client = client
        self.key = key

    def post(self, path: str, body: Any, *, key: str | None = None, gzipped: bool = False, **headers: str) -> Any:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        extra: dict[str, str] = {}
        if key is None:
            key = self.key
        if key:
            extra["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
        if gzipped:
            raw = gzip.compress(raw)
            extra["HTTP_CONTENT_ENCODING"] = "gzip"
        content_type = headers.pop("content_type", "application/json")
        return self.client.post(path, raw, content_type=content_type, **{**extra, **headers})  # type: ignore[arg-type]

    def batch(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        return self.post("/v1/batch", {"batch": messages}, **kwargs)


@pytest.fixture
def api(client: Client, write_key: str) -> Api:
    return Api(client, write_key)


def staff_client(username: str, *permissions: str, marketing: bool = False) -> Client:
    """A logged-in staff member with these permissions ("app.codename"), in the Marketing group the
    migrations create when `marketing`."""
    from django.contrib.auth.models import Group, Permission, User

    user = User.objects.create_user(username, is_staff=True)
    if marketing:
        user.groups.add(Group.objects.get(name="Marketing"))
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def maria(db: None) -> Client:
    """A marketer: staff, in the Marketing group, nothing more."""
    return staff_client("maria", marketing=True)


# How the run itself reaches its database (directly, or through PgBouncer: README, PgBouncer), which
# tests/test_checks_pooling.py checks; the other checks' tests hold wherever the suite runs.
DATABASE_ROUTE_CHECKS = frozenset({"triggermail.I014", "triggermail.W014"})


def check_ids() -> set[str]:
    """The ids of this project's system check messages for the current settings (deploy checks aside)."""
    from django.core.checks import run_checks

    ids = {str(m.id) for m in run_checks(include_deployment_checks=False) if str(m.id).startswith("triggermail.")}
    return ids - DATABASE_ROUTE_CHECKS


def track(event: str, user_id: str, *, message_id: str | None = None, **properties: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "track", "event": event, "userId": user_id, "properties": properties}
    if message_id:
        message["messageId"] = message_id
    return message


def identify(user_id: str, email: str, *, message_id: str | None = None, **traits: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "identify", "userId": user_id, "traits": {"email": email, **traits}}
    if message_id:
        message["messageId"] = message_id
    return message


def run_worker(at: datetime | None = None) -> None:
    """Do what the cluster does, at time `at`: match pending events, then deliver due sends."""
    from campaigns.models import Send
    from campaigns.sending.delivery import sends_deliver
    from tests.steps import events_process_pending

    with time_machine.travel(at or timezone.now(), tick=True):
        events_process_pending()
        now = timezone.now()
        due = Send.objects.filter(state=Send.State.SCHEDULED, due_at__lte=now).order_by("due_at")
        sends_deliver(list(due.values_list("pk", flat=True)))


def later(**delta: float) -> datetime:
    return timezone.now() + timedelta(**delta)


class Webhook:
    """SendGrid's Event Webhook posting to TriggerMail through the test client, signed or not."""

    path = "/anymail/sendgrid/tracking/"

    def __init__(self, client: Client, keypair: Any) -> None:
        self.client = client
        self.keypair = keypair

    def post(self, events: list[dict[str, Any]], *, signed: bool = True, headers: dict[str, str] | None = None) -> Any:
        from harness.sendgrid_webhook import webhook_body, webhook_sign

        body = webhook_body(events)
        signature = webhook_sign(body, self.keypair.private_key) if signed else {}
        return self.client.post(
            self.path, body, content_type="application/json", headers={**signature, **(headers or {})}
        )


@pytest.fixture
def webhook(sendgrid: SendGridServer, settings: Any, client: Client) -> Webhook:
    """A fresh key pair whose public key the settings trust, as with SendGrid's Signed Event Webhook."""
    from harness.sendgrid_webhook import webhook_keypair

    keypair = webhook_keypair()
    # Anymail's view reads the key when it is instantiated, once per request, so this applies at once.
    settings.ANYMAIL = {**settings.ANYMAIL, "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": keypair.public_key}
    return Webhook(client, keypair)


@pytest.fixture
def unknown(api: Api, sendgrid: SendGridServer) -> Any:
    """A send whose provider call was ambiguous (`unknown`): any webhook event recorded would settle it."""
    from campaigns.models import Send
    from harness.sendgrid_server import Fault
    from tests.world import rule_make

    rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    sendgrid.fail_next(Fault(kind="accept_then_drop"))
    run_worker()
    send = Send.objects.get()
    assert send.state == "unknown"
    return send
