"""/healthz says the web process answers; /readyz says whether the pipeline keeps up, check by check."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from campaigns.operations.heartbeats import dispatcher_beat, heartbeat_name
from tests import baker_recipes
from tests.conftest import track
from tests.world import T0, rule_make


def beat(at, *, stopped=False):
    name = heartbeat_name()
    dispatcher_beat(name=name, at=at, stopped=stopped)
    return name


def readyz(client, at):
    with time_machine.travel(at, tick=False):
        response = client.get("/readyz")
    return response.status_code, response.json()


def test_healthz_answers_ok_without_touching_the_database(client):
    # No db fixture: pytest-django refuses any database access, so this passes only without one.
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_it_is_ready_when_a_dispatcher_just_beat_and_nothing_waits(client, db, settings):
    beat(T0)
    status, body = readyz(client, T0 + timedelta(seconds=1))
    assert status == 200
    assert body == {
        "status": "ok",
        "checks": {
            "database": {"ok": True, "value": None, "threshold": None},
            "dispatcher": {"ok": True, "value": 1.0, "threshold": settings.HEARTBEAT_STALE_AFTER},
            "event_lag": {"ok": True, "value": 0.0, "threshold": settings.READY_MAX_EVENT_LAG},
            "send_lateness": {"ok": True, "value": 0.0, "threshold": settings.READY_MAX_SEND_LATENESS},
        },
    }


def test_it_is_unavailable_when_no_dispatcher_ever_beat(client, db):
    status, body = readyz(client, T0)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["dispatcher"]["ok"] is False
    assert body["checks"]["dispatcher"]["value"] is None


def test_a_dispatcher_silent_for_longer_than_the_stale_window_is_not_fresh(client, db, settings):
    settings.HEARTBEAT_STALE_AFTER = 5.0
    beat(T0)
    assert readyz(client, T0 + timedelta(seconds=5))[0] == 200
    status, body = readyz(client, T0 + timedelta(seconds=6))
    assert status == 503
    assert body["checks"]["dispatcher"] == {"ok": False, "value": 6.0, "threshold": 5.0}


def test_a_dispatcher_that_shut_down_is_not_counted(client, db):
    name = beat(T0)
    dispatcher_beat(name=name, at=T0 + timedelta(seconds=1), stopped=True)
    status, body = readyz(client, T0 + timedelta(seconds=2))
    assert status == 503
    assert body["checks"]["dispatcher"]["value"] is None


def test_one_fresh_dispatcher_among_dead_ones_is_enough(client, db):
    beat(T0 - timedelta(hours=1))
    beat(T0, stopped=True)
    beat(T0)
    assert readyz(client, T0 + timedelta(seconds=2))[0] == 200


def test_the_dispatcher_check_can_be_turned_off(client, db, settings):
    settings.READY_REQUIRE_DISPATCHER = False
    status, body = readyz(client, T0)
    assert status == 200
    assert body["checks"]["dispatcher"] == {"ok": True, "value": None, "threshold": settings.HEARTBEAT_STALE_AFTER}


def test_an_event_waiting_longer_than_the_lag_limit_makes_it_unavailable(client, api, settings):
    settings.READY_MAX_EVENT_LAG = 60.0
    with time_machine.travel(T0, tick=False):
        assert api.batch([track("user_signup", "u1")]).status_code == 200
    beat(T0 + timedelta(seconds=61))
    assert readyz(client, T0 + timedelta(seconds=60))[0] == 200
    status, body = readyz(client, T0 + timedelta(seconds=61))
    assert status == 503
    assert body["checks"]["event_lag"] == {"ok": False, "value": 61.0, "threshold": 60.0}
    assert body["checks"]["dispatcher"]["ok"] is True


def test_a_due_send_later_than_the_lateness_limit_makes_it_unavailable(client, db, settings):
    settings.READY_MAX_SEND_LATENESS = 30.0
    rule = rule_make("welcome", "user_signup")
    contact = baker_recipes.contact.make()
    baker_recipes.scheduled_send.make(rule=rule, contact=contact, triggered_at=T0, due_at=T0)
    # A send due later, or one no longer scheduled, is not late.
    baker_recipes.scheduled_send.make(rule=rule, contact=contact, triggered_at=T0, due_at=T0 + timedelta(hours=1))
    baker_recipes.scheduled_send.make(
        rule=rule, contact=contact, triggered_at=T0, due_at=T0 - timedelta(hours=1), state="sent"
    )
    beat(T0 + timedelta(seconds=31))
    assert readyz(client, T0 + timedelta(seconds=30))[0] == 200
    status, body = readyz(client, T0 + timedelta(seconds=31))
    assert status == 503
    assert body["checks"]["send_lateness"] == {"ok": False, "value": 31.0, "threshold": 30.0}


def test_readyz_costs_a_handful_of_queries(client, db, django_assert_max_num_queries):
    beat(T0)
    with django_assert_max_num_queries(4), time_machine.travel(T0, tick=False):
        client.get("/readyz")


def test_an_unavailable_answer_is_not_logged_as_an_error_on_every_poll(client, db, caplog):
    for _ in range(3):
        assert readyz(client, T0)[0] == 503
    assert not [r for r in caplog.records if r.name == "django.request"]
