"""The ingest wakes the event processors when its transaction commits, and only when it stored something."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.conftest import track
from triggermail.wakeup import Listener

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="NOTIFY is PostgreSQL's; elsewhere the dispatcher looks regularly"
)


@pytest.fixture
def listener(transactional_db):
    # transactional_db: a notification is delivered only when the ingest's transaction commits.
    listening = Listener()
    assert listening.wait(0) is False  # connects and LISTENs; nothing has arrived yet
    yield listening
    listening.close()


def test_a_stored_batch_wakes_a_listening_processor(api, listener):
    assert api.batch([track("signed_up", "u1", message_id="m-1")]).status_code == 200
    assert listener.wait(5) is True


def test_a_batch_of_only_duplicates_wakes_nobody(api, listener):
    api.batch([track("signed_up", "u1", message_id="m-1")])
    assert listener.wait(5) is True
    assert api.batch([track("signed_up", "u1", message_id="m-1")]).status_code == 200
    assert listener.wait(0.3) is False


def test_a_rejected_batch_wakes_nobody(api, listener):
    assert api.batch([{"type": "track", "userId": "u1"}]).status_code == 400
    assert listener.wait(0.3) is False


def test_no_trigger_notifies_from_inside_the_ingest_transaction(transactional_db):
    # events/0008: a NOTIFY in the durable ingest transaction held every other ingest commit until
    # this one was on disk; the ingest wakes the loops after its commit instead (events.ingest).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'events_event'::regclass AND NOT tgisinternal ORDER BY 1"
        )
        triggers = [name for (name,) in cursor.fetchall()]
    assert "events_event_notify" not in triggers
    assert "events_event_message_once" in triggers  # the partitioned table's own triggers stay
