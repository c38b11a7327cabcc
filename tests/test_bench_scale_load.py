"""bench.scale's history loader: every event lands once, on its day, with the rows the product would keep.

The figures of `make bench-scale` are only worth the rows they were measured on: these tests load a
small history into the test database (PostgreSQL: the loader is PostgreSQL SQL) and count it.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from bench.database import rules_seed
from bench.scale_load import History, history_load


def test_the_days_split_the_events_without_gap_or_overlap() -> None:
    history = History(events=10_000, days=7, now=datetime(2026, 12, 2, 7, 30, tzinfo=UTC))
    spans = [history.indices(k) for k in range(history.days + 1)]
    assert spans[0][0] == 0
    assert spans[-1][1] == history.events
    assert all(hi == next_lo for (_, hi), (next_lo, _) in itertools.pairwise(spans))
    # Full days hold the same number of events (within rounding); today's morning holds fewer.
    full = [hi - lo for lo, hi in spans[:-1]]
    assert max(full) - min(full) <= 1
    assert spans[-1][1] - spans[-1][0] < min(full)
    assert history.day(0)[0] == datetime(2026, 11, 25, tzinfo=UTC)


def _url() -> str:
    s = connection.settings_dict
    return f"postgresql://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _one(sql: str, *params: Any) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or None)
        row = cursor.fetchone()
    assert row is not None
    return row[0]


@pytest.mark.django_db(transaction=True)
def test_a_loaded_history_has_each_event_once_on_its_day_with_its_decision_and_sends() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the loader writes PostgreSQL SQL (generate_series, data-modifying CTEs)")
    rules_seed()
    history = History(events=3_000, days=3)
    seen: list[int] = []
    loaded, _seconds = history_load(
        _url(), history, recent_days=2, after_recent=seen.append, progress=lambda _line: None
    )
    assert loaded == 3_000
    assert _one("SELECT count(*) FROM events_event") == 3_000
    assert _one("SELECT count(DISTINCT message_id) FROM events_event") == 3_000
    assert _one("SELECT count(*) FROM events_event WHERE processed_at IS NULL") == 0
    # The newest two days were in when the callback ran, and only they.
    newest = history.day(history.days - 1)[0]
    assert seen == [_one("SELECT count(*) FROM events_event WHERE received_at >= %s", newest)]
    assert _one("SELECT min(received_at) FROM events_event") >= history.start
    assert _one("SELECT max(received_at) FROM events_event") <= history.end
    # A decision for every event; a send for one in ten, each with its decision; webhook events only for sent ones.
    assert _one("SELECT count(*) FROM campaigns_decision") == 3_000
    sends = _one("SELECT count(*) FROM campaigns_send")
    assert sends == _one("SELECT count(*) FROM events_event WHERE id % 10 = 0") == 300
    assert _one("SELECT count(*) FROM campaigns_decision WHERE send_id IS NOT NULL") == sends
    assert (
        _one(
            "SELECT count(*) FROM campaigns_providerevent p JOIN campaigns_send s ON s.id = p.send_id"
            " WHERE s.state <> 'sent'"
        )
        == 0
    )
    assert _one("SELECT count(*) FROM campaigns_providerevent") > sends * 0.9
    # Every decision's contact is its event's user.
    assert (
        _one(
            "SELECT count(*) FROM campaigns_decision d JOIN events_event e ON e.id = d.event_id"
            " JOIN events_contact c ON c.id = d.contact_id WHERE c.user_id <> e.user_id"
        )
        == 0
    )
    assert history.end - _one("SELECT max(received_at) FROM events_event") < timedelta(hours=1)
