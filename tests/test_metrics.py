"""/metrics: private unless configured, and its numbers move with what the pipeline does."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from campaigns.operations.heartbeats import dispatcher_beat, heartbeat_name
from harness.sendgrid_server import Fault
from tests.conftest import identify, run_worker, track
from tests.world import T0, rule_make

TOKEN = "s3cret-metrics-token"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client, token=TOKEN):
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
    return families


def value(families, family, sample, **labels):
    """One sample's value; 0 when the process files hold no such series yet."""
    for s in families[family].samples if family in families else []:
        if s.name == sample and s.labels == labels:
            return s.value
    return 0.0


def test_it_does_not_exist_until_a_token_is_configured(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


def test_it_asks_for_a_bearer_token_and_refuses_a_wrong_one(client, db, token):
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": f"Basic {token}"}).status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 403
    assert TOKEN not in wrong.content.decode()


def test_it_lists_every_family_operators_are_told_about(client, db, token):
    dispatcher_beat(name=heartbeat_name(), at=timezone.now())
    families = scrape(client)
    for name, kind in [
        ("triggermail_database_up", "gauge"),
        ("triggermail_event_matching_lag_seconds", "gauge"),
        ("triggermail_send_lateness_seconds", "gauge"),
        ("triggermail_send_in_flight_max_seconds", "gauge"),
        ("triggermail_sends", "gauge"),
        ("triggermail_sends_needing_attention", "gauge"),
        ("triggermail_dispatcher_heartbeat_age_seconds", "gauge"),
    ]:
        assert families[name].type == kind, name
    assert value(families, "triggermail_database_up", "triggermail_database_up") == 1
    assert {s.labels["state"] for s in families["triggermail_sends"].samples} == {
        "scheduled",
        "sending",
        "unknown",
        "abandoned",
    }
    assert len(families["triggermail_dispatcher_heartbeat_age_seconds"].samples) == 1


def test_ingested_messages_are_counted_by_type_and_outcome(client, api, token):
    before = scrape(client)
    messages = [identify("u1", "u1@example.com"), track("user_signup", "u1", message_id="m-1")]
    api.batch(messages)
    # One duplicate, and one track call without an event name.
    api.batch([track("user_signup", "u1", message_id="m-1"), {"type": "track", "userId": "u1"}])
    after = scrape(client)

    def moved(kind, outcome):
        sample = ("triggermail_events_ingested", "triggermail_events_ingested_total")
        return value(after, *sample, type=kind, outcome=outcome) - value(before, *sample, type=kind, outcome=outcome)

    assert (moved("identify", "stored"), moved("track", "stored")) == (1, 1)
    assert (moved("track", "duplicate"), moved("track", "rejected")) == (1, 1)


def test_rate_limited_requests_are_counted_by_write_key(client, db, token, settings):
    from events.models import WriteKey
    from tests.conftest import Api

    settings.INGEST_RATE_LIMIT_STORE = "database"
    key, raw = WriteKey.issue(name="flood", rate_limit=0.001, rate_burst=1)
    before = scrape(client)
    answers = [Api(client, raw).batch([track("viewed", "u1")]).status_code for _ in range(3)]
    after = scrape(client)

    sample = ("triggermail_ingest_rate_limited", "triggermail_ingest_rate_limited_total")
    assert answers == [200, 429, 429]
    assert value(after, *sample, write_key=str(key.pk)) - value(before, *sample, write_key=str(key.pk)) == 2


def test_provider_calls_are_timed_by_outcome_class(client, api, sendgrid, token):
    rule_make("welcome", "user_signup")
    before = scrape(client)
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    run_worker()
    api.batch([identify("u2", "u2@example.com"), track("user_signup", "u2")])
    sendgrid.fail_next(Fault(kind="status", status=503))
    run_worker()
    after = scrape(client)

    def calls(outcome):
        sample = ("triggermail_provider_call_seconds", "triggermail_provider_call_seconds_count")
        return value(after, *sample, outcome=outcome) - value(before, *sample, outcome=outcome)

    assert (calls("sent"), calls("ambiguous"), calls("not_sent"), calls("refused")) == (1, 1, 0, 0)
    assert value(after, "triggermail_sends", "triggermail_sends", state="unknown") == 1
    assert value(after, "triggermail_sends_needing_attention", "triggermail_sends_needing_attention") == 1


def test_the_pipeline_gauges_read_the_rows(client, api, token):
    rule_make("recovery", "cart_abandoned", delay=timedelta(hours=1))
    with time_machine.travel(T0, tick=False):
        api.batch([identify("u1", "u1@example.com"), track("cart_abandoned", "u1")])
    lag = ("triggermail_event_matching_lag_seconds",) * 2
    lateness = ("triggermail_send_lateness_seconds",) * 2
    scheduled = ("triggermail_sends", "triggermail_sends")
    with time_machine.travel(T0 + timedelta(seconds=30), tick=False):
        waiting = scrape(client)
    assert (value(waiting, *lag), value(waiting, *scheduled, state="scheduled")) == (30, 0)
    run_worker(at=T0 + timedelta(seconds=30))
    with time_machine.travel(T0 + timedelta(hours=1, seconds=45), tick=False):
        overdue = scrape(client)
    assert (value(overdue, *lag), value(overdue, *scheduled, state="scheduled")) == (0, 1)
    assert value(overdue, *lateness) == 45
