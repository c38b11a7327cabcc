"""A web process's database connection dies between two requests (a database restart, here
pg_terminate_backend): with the ingest's health check skipped (INGEST_DATABASE_HEALTH_CHECKS, the
default since issue #15) the next ingest request answers a retriable 503 and stores nothing, and the
retry is stored; with the check on, that request reconnects first and is stored at once."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from events.models import Event, WriteKey
from events.openapi import openapi_document
from harness.processes import (
    database_sessions_of_others,
    database_sessions_wait,
    database_url,
    gunicorn_start,
    process_env,
    wait_until,
)
from harness.sendgrid_server import API_KEY, SendGridServer
from tests.test_openapi import assert_documented

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_terminate_backend is PostgreSQL's"),
    pytest.mark.skipif(
        settings.DATABASE_POOLING == "transaction",
        reason="behind PgBouncer the web server holds no server session of its own to lose: the pooler does",
    ),
]


def _post(base_url: str, raw: str, message_id: str) -> requests.Response:
    auth = "Basic " + base64.b64encode(f"{raw}:".encode()).decode()
    body = {"type": "track", "event": "page_viewed", "userId": "u1", "messageId": message_id}
    return requests.post(f"{base_url}/v1/track", json=body, headers={"Authorization": auth}, timeout=10)


def _backends_terminate() -> None:
    """End every session of the web server on the test database, and wait until they are gone."""
    pids = [row[0] for row in database_sessions_of_others()]
    assert pids, "the web server holds no database session"
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    wait_until(lambda: not database_sessions_of_others(), what="the terminated sessions to end", timeout=10)


@pytest.mark.parametrize("health_checks", [False, True], ids=["check-skipped", "check-on"])
def test_a_connection_lost_between_requests(
    health_checks: bool, settings, sendgrid_server: SendGridServer, tmp_path: Path
):
    env = process_env(
        database_url=database_url(connection.settings_dict),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=sendgrid_server.url,
        api_key=API_KEY,
    )
    # One process, one thread: the request after the loss meets the very connection that died.
    env.update(WEB_THREADS="1", INGEST_DATABASE_HEALTH_CHECKS=str(health_checks).lower())
    _, raw = WriteKey.issue(name="tests")
    gunicorn, base_url = gunicorn_start(env=env, log_dir=tmp_path, workers=1)
    try:
        assert _post(base_url, raw, "m-1").status_code == 200
        _backends_terminate()

        answer = _post(base_url, raw, "m-2")
        if health_checks:
            assert answer.status_code == 200
        else:
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "1"
            assert [e["field"] for e in answer.json()["errors"]] == ["database"]
            assert_documented(openapi_document(base_url=base_url), "/v1/track", answer)
            assert not Event.objects.filter(message_id="m-2").exists()
            # What an SDK does with a 503: post it again.
            assert _post(base_url, raw, "m-2").status_code == 200
    finally:
        gunicorn.stop()
    database_sessions_wait()
    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["m-1", "m-2"]
