"""A write key over its rate limit is answered 429 by the web worker's event loop, before Django:
real gunicorn as shipped (the Procfile's command line), real rate limits in the database.

The first refusal is the view's; the worker then answers the key's next requests itself, with the
same status, headers and body, and the key's refusals still add up in /metrics. What proves that
no thread and no Django ran: gunicorn's access log, which a worker thread writes for each request
it handles, shows the view's 429 only.
"""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from events.models import Event, WriteKey
from harness.processes import wait_until, web_serving

pytestmark = pytest.mark.e2e

TOKEN = "metrics-token-for-this-test"
TRACK = {"type": "track", "event": "cart_viewed", "userId": "u1"}


@pytest.fixture
def web(transactional_db, sendgrid_server, tmp_path, monkeypatch) -> Iterator[str]:
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prometheus"))
    with web_serving(sendgrid_url=sendgrid_server.url, log_dir=tmp_path) as base_url:
        yield base_url


def _auth(raw_key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()}


def _post(conn: http.client.HTTPConnection, raw_key: str, n: int) -> http.client.HTTPResponse:
    body = json.dumps({**TRACK, "messageId": f"m-{n}"})
    conn.request("POST", "/v1/track", body, {**_auth(raw_key), "Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response


def _headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.getheaders() if k not in {"Date"}}


def _access_log_429s(log: Path) -> int:
    return log.read_text().count('"POST /v1/track HTTP/1.1" 429')


def _access_log_caught_up(log: Path, conn: http.client.HTTPConnection) -> None:
    """A thread writes a request's access log line after its answer; the connection's next request
    runs only after that, so once a last request's line is there, every earlier one's is too."""
    marker = f"/v1/openapi.json?after={log.stat().st_size}"
    conn.request("GET", marker)
    conn.getresponse().read()
    wait_until(lambda: marker in log.read_text(), what="gunicorn's access log to catch up")


def _rate_limited_total(base_url: str, key: WriteKey) -> float:
    page = requests.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    line = next(
        row
        for row in page.splitlines()
        if row.startswith(f'triggermail_ingest_rate_limited_total{{write_key="{key.pk}"}}')
    )
    return float(line.rsplit(" ", 1)[1])


def test_a_refused_key_is_answered_by_the_worker_and_a_quiet_key_still_gets_200(web, tmp_path):
    flooding, raw = WriteKey.issue(name="flooding", rate_limit=0.1, rate_burst=1)
    _, quiet_raw = WriteKey.issue(name="quiet")
    # One connection, kept alive: every request reaches the same worker process.
    conn = http.client.HTTPConnection(urlsplit(web).hostname, urlsplit(web).port, timeout=10)
    assert _post(conn, raw, 0).status == 200
    by_view = _post(conn, raw, 1)
    by_worker = [_post(conn, raw, n) for n in range(2, 12)]

    assert by_view.status == 429 and [r.status for r in by_worker] == [429] * 10
    # The same answer as the view's: its security headers, JSON error naming the field and the
    # limit, Retry-After counting down (one request per 10 s, so 10 s or a little less).
    assert all(_headers(r).keys() == _headers(by_view).keys() for r in by_worker)
    assert by_worker[-1].getheader("Content-Type") == "application/json"
    assert by_worker[-1].getheader("X-Content-Type-Options") == "nosniff"
    assert int(by_worker[-1].getheader("Retry-After", "")) in range(1, 11)
    assert conn.sock is not None  # still open: the worker kept the connection alive
    _access_log_caught_up(tmp_path / "gunicorn.log", conn)
    assert _access_log_429s(tmp_path / "gunicorn.log") == 1
    assert _rate_limited_total(web, flooding) == 11
    # Meanwhile another key is let in, and only the accepted request of the flooding key is stored.
    quiet = requests.post(f"{web}/v1/track", json={**TRACK, "messageId": "q-1"}, headers=_auth(quiet_raw), timeout=10)
    assert quiet.status_code == 200
    assert list(Event.objects.filter(source=flooding).values_list("message_id", flat=True)) == ["m-0"]


def test_the_body_of_an_early_429_is_the_view_s(web, tmp_path):
    _, raw = WriteKey.issue(name="flooding", rate_limit=0.1, rate_burst=1)
    conn = http.client.HTTPConnection(urlsplit(web).hostname, urlsplit(web).port, timeout=10)
    _post(conn, raw, 0)
    body = json.dumps({**TRACK, "messageId": "m-1"})
    answers = []
    for _ in range(2):
        conn.request("POST", "/v1/track", body, {**_auth(raw), "Content-Type": "application/json"})
        response = conn.getresponse()
        answers.append(json.loads(response.read()))
    by_view, by_worker = answers
    assert by_worker == by_view
    assert by_view["errors"][0]["field"] == "writeKey"
    assert by_view["errors"][0]["reason"].startswith("this write key is over its limit of 0.1 requests/s")


def test_a_key_sent_in_the_body_takes_the_normal_path(web, tmp_path):
    _, raw = WriteKey.issue(name="body key", rate_limit=0.1, rate_burst=1)
    statuses = [
        requests.post(f"{web}/v1/track", json={**TRACK, "messageId": f"m-{n}", "writeKey": raw}, timeout=10).status_code
        for n in range(4)
    ]
    assert statuses == [200, 429, 429, 429]
    # Each 429 was the view's: the key is only known once the body is parsed.
    wait_until(lambda: _access_log_429s(tmp_path / "gunicorn.log") == 3, what="the view's three 429s in the log")
