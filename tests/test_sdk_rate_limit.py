"""A real SDK told 429 by the ingest's rate limit waits Retry-After, sends the same batch again,
and its email is delivered once: a 429 loses nothing.

Segment's Python SDK (2.4.0) reads Retry-After, holds its queue until then and re-sends the batch
(segment/analytics/consumer.py); RudderStack's Python SDK retries a 429 with exponential backoff
(rudderstack/analytics/consumer.py: 4xx but 429 are fatal). One SDK is run here: real gunicorn,
qcluster and rate limit, through a proxy that records each request and its answer.
"""

from __future__ import annotations

import base64

import pytest
import requests

from events.models import Event, WriteKey
from harness.fault_proxy import FaultProxy
from tests.test_sdk_matrix import SDKS, carries_the_signup, deployment, sdk_run, welcome_emails

__all__ = ["deployment"]  # the fixture, imported so pytest finds it here

pytestmark = pytest.mark.e2e


@pytest.fixture
def slow_key(transactional_db: None) -> str:
    # One request every 5 s: the SDK's batch, posted within 5 s of the request below, is refused.
    _, raw = WriteKey.issue(name="rate limited sdk", rate_limit=0.2, rate_burst=1)
    return raw


def test_the_segment_sdk_told_429_waits_and_delivers_its_batch_once(deployment, slow_key, sendgrid_server):
    auth = "Basic " + base64.b64encode(f"{slow_key}:".encode()).decode()
    warm_up = {"batch": [{"type": "track", "event": "page_loaded", "userId": "someone-else"}]}
    assert requests.post(f"{deployment.base_url}/v1/batch", json=warm_up, headers={"Authorization": auth}).ok
    proxy = FaultProxy(deployment.base_url, when=carries_the_signup).start()
    try:
        sdk_run(SDKS["segment-python"], host=proxy.url, write_key=slow_key, user_id="limited", email="lim@example.com")
    finally:
        proxy.stop()

    [welcome] = welcome_emails(sendgrid_server, "lim@example.com", "limited", deployment)
    assert welcome.subject == "Welcome, Ann! Your account is ready"
    statuses = [s.status for s in proxy.seen]
    assert statuses[0] == 429 and statuses[-1] == 200, statuses
    assert proxy.seen[0].message_ids() == proxy.seen[-1].message_ids()
    for message_id in proxy.seen[-1].message_ids():
        assert Event.objects.filter(message_id=message_id).count() == 1
