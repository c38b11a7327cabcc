"""Health and metrics with the real processes: /readyz follows the qcluster's dispatcher, and
/metrics adds up what every gunicorn worker and every django-q2 worker counted."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from events.models import WriteKey
from harness.processes import (
    ManagedProcess,
    database_sessions_wait,
    database_url,
    gunicorn_start,
    process_env,
    qcluster_start,
    wait_until,
)
from harness.sendgrid_server import API_KEY, SendGridServer
from tests.conftest import identify, track
from tests.world import rule_make

pytestmark = pytest.mark.e2e

TOKEN = "e2e-metrics-token"
TIMEOUT = 30.0


@pytest.fixture
def provider(sendgrid_server: SendGridServer) -> SendGridServer:
    sendgrid_server.reset()
    return sendgrid_server


@pytest.fixture
def env(transactional_db: None, provider: SendGridServer, tmp_path: Path) -> dict[str, str]:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = process_env(
        database_url=database_url(connection.settings_dict),
        secret_key=settings.SECRET_KEY,
        sendgrid_url=provider.url,
        api_key=API_KEY,
    )
    # One directory for the web and the worker processes, as on one host.
    env.update(METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), HEARTBEAT_STALE_AFTER="5")
    return env


@pytest.fixture
def started(env: dict[str, str]) -> Iterator[list[ManagedProcess]]:
    """The processes a test starts (appended to it), stopped before pytest-django flushes the database."""
    processes: list[ManagedProcess] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()
            print(process.log())
        database_sessions_wait()


def readyz(base_url: str) -> tuple[int, dict]:
    response = requests.get(f"{base_url}/readyz", timeout=5)
    return response.status_code, response.json()


def test_readyz_is_unavailable_while_no_dispatcher_runs_and_ready_once_one_beats(env, started, tmp_path):
    gunicorn, base_url = gunicorn_start(env=env, log_dir=tmp_path)
    started.append(gunicorn)
    status, body = readyz(base_url)
    assert status == 503
    assert body["checks"]["dispatcher"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True

    qcluster = qcluster_start(env=env, log_dir=tmp_path)
    started.append(qcluster)
    wait_until(lambda: readyz(base_url)[0] == 200, what="/readyz to turn 200", timeout=TIMEOUT, processes=started)

    qcluster.stop()
    wait_until(lambda: readyz(base_url)[0] == 503, what="/readyz to turn 503", timeout=TIMEOUT, processes=[gunicorn])
    assert readyz(base_url)[1]["checks"]["dispatcher"]["ok"] is False

    again = qcluster_start(env=env, log_dir=tmp_path, name="qcluster-again")
    started.append(again)
    wait_until(lambda: readyz(base_url)[0] == 200, what="/readyz to turn 200 again", timeout=TIMEOUT)


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert response.status_code == 200, response.text
    return samples_parse(response.text)


def samples_parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def post_signup(base_url: str, key: str, n: int) -> None:
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    batch = [identify(f"u{n}", f"u{n}@example.com"), track("user_signup", f"u{n}")]
    # A new connection per request, so that both gunicorn workers take some.
    response = requests.post(f"{base_url}/v1/batch", json={"batch": batch}, headers={"Authorization": auth}, timeout=10)
    assert response.status_code == 200, response.text


def web_worker_pids(gunicorn: ManagedProcess) -> set[int] | None:
    pids = {child.pid for child in psutil.Process(gunicorn.popen.pid).children()}
    return pids if len(pids) == 2 else None


def counting_pids(metrics_dir: Path) -> set[int]:
    return {int(path.stem.rpartition("_")[2]) for path in metrics_dir.glob("counter_*.db")}


def test_metrics_add_up_every_web_and_worker_process(env, started, provider, tmp_path):
    rule_make("welcome", "user_signup")
    _, key = WriteKey.issue(name="e2e")
    gunicorn, base_url = gunicorn_start(env=env, log_dir=tmp_path, workers=2)
    started.append(gunicorn)
    qcluster = qcluster_start(env=env, log_dir=tmp_path)
    started.append(qcluster)
    web_workers = wait_until(lambda: web_worker_pids(gunicorn), what="gunicorn's two workers", processes=started)
    metrics_dir = Path(env["PROMETHEUS_MULTIPROC_DIR"])

    # Post until both web workers have counted some events, so that no single one holds the total.
    posted = 0
    while posted < 40 and len(web_workers & counting_pids(metrics_dir)) < 2:
        post_signup(base_url, key, posted)
        posted += 1
    assert web_workers <= counting_pids(metrics_dir), "both gunicorn workers should have taken requests"

    wait_until(lambda: len(provider.accepted) >= posted, what=f"{posted} emails", timeout=TIMEOUT, processes=started)
    sent = ("triggermail_provider_call_seconds_count", (("outcome", "sent"),))
    wait_until(lambda: scrape(base_url).get(sent) == posted, what="the sent calls to be counted", timeout=TIMEOUT)
    # The supervisor's thread writes the heartbeat every HEARTBEAT_INTERVAL: the emails can be out
    # before the first write that carries a completed dispatcher pass.
    beating = "triggermail_dispatcher_heartbeat_age_seconds"
    wait_until(lambda: any(k[0] == beating for k in scrape(base_url)), what="a dispatcher heartbeat", timeout=TIMEOUT)
    # Whichever web worker answers, it reports every process's counts.
    for _ in range(6):
        samples = scrape(base_url)
        assert samples[("triggermail_events_ingested_total", (("outcome", "stored"), ("type", "track")))] == posted
        assert samples[("triggermail_events_ingested_total", (("outcome", "stored"), ("type", "identify")))] == posted
        assert samples[sent] == posted
        assert samples[("triggermail_sends", (("state", "scheduled"),))] == 0
        assert samples[("triggermail_database_up", ())] == 1
        assert [k for k in samples if k[0] == beating]
    assert len(provider.accepted) == posted


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_worker_host_without_a_web_process_serves_its_own_metrics(env, started, provider, api, tmp_path):
    rule_make("welcome", "user_signup")
    port = free_port()
    worker_dir = tmp_path / "worker-host"
    worker_dir.mkdir()
    env.update(WORKER_METRICS_PORT=str(port), WORKER_METRICS_ADDR="127.0.0.1", PROMETHEUS_MULTIPROC_DIR=str(worker_dir))
    started.append(qcluster_start(env=env, log_dir=tmp_path))
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    wait_until(lambda: provider.accepted, what="the welcome email", timeout=TIMEOUT, processes=started)

    sent = ("triggermail_provider_call_seconds_count", (("outcome", "sent"),))

    def worker_samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        try:
            samples = samples_parse(requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
        except requests.ConnectionError:
            return None
        return samples if samples.get(sent) == 1 else None

    samples = wait_until(worker_samples, what="the worker's metrics to count the sent email", processes=started)
    # The pipeline's gauges come from the database, once, through the web's /metrics.
    assert not [k for k in samples if k[0] == "triggermail_sends"]


def test_without_a_database_the_web_is_alive_but_not_ready(env, started, tmp_path):
    # Nothing listens on port 1: every connection attempt is refused at once.
    env.update(DATABASE_URL="postgres://nobody@127.0.0.1:1/nowhere")
    gunicorn, base_url = gunicorn_start(env=env, log_dir=tmp_path, ready_path="/healthz")
    started.append(gunicorn)
    assert requests.get(f"{base_url}/healthz", timeout=5).json() == {"status": "ok"}
    status, body = readyz(base_url)
    assert status == 503
    assert body["checks"]["database"] == {"ok": False, "value": None, "threshold": None}
    assert {name for name, check in body["checks"].items() if not check["ok"]} == {
        "database",
        "dispatcher",
        "event_lag",
        "send_lateness",
    }
    assert "nobody" not in json.dumps(body)
