"""What the ingest API stores: events once per messageId, contacts from traits, corrected times."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from campaigns.models import Decision, Rule, Send
from events.models import Contact, Event
from tests import baker_recipes
from tests.conftest import identify, track
from tests.steps import events_process_pending

NOW = datetime.fromisoformat("2026-11-28T10:00:00+00:00")


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def welcome_rule(trigger_event: str = "signed_up") -> Rule:
    return baker_recipes.rule.make(name="welcome", trigger_event=trigger_event)


# --- Committed before 200 -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_answers_success_only_once_the_events_are_committed(api):
    response = api.batch([track("signed_up", "u1"), identify("u1", "u1@example.com")])
    assert response.json() == {"success": True}
    # Another connection sees only committed rows: what the 200 promised is there.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {Event._meta.db_table}")
            assert cursor.fetchone() == (2,)
    finally:
        other.close()


# --- messageId dedupes --------------------------------------------------------------------


def test_it_stores_and_processes_a_retried_message_once(api):
    welcome_rule()
    api.batch([identify("u1", "u1@example.com")])
    first = api.batch([track("signed_up", "u1", message_id="m-1")])
    retry = api.batch([track("signed_up", "u1", message_id="m-1")])
    assert (first.json(), retry.json()) == ({"success": True}, {"success": True})
    events_process_pending()
    assert Event.objects.filter(name="signed_up").count() == 1
    assert Send.objects.count() == 1


def test_it_stores_a_message_repeated_within_one_batch_once(api):
    welcome_rule()
    api.batch([identify("u1", "u1@example.com")])
    response = api.batch([track("signed_up", "u1", message_id="m-1")] * 3)
    assert response.json() == {"success": True}
    events_process_pending()
    assert Event.objects.filter(message_id="m-1").count() == 1
    assert Decision.objects.count() == 1


def test_it_recognises_a_retry_without_message_id_by_its_content(api):
    message = {**track("signed_up", "u1"), "timestamp": "2026-11-28T09:00:00Z"}
    api.post("/v1/track", {**message, "sentAt": "2026-11-28T09:00:01Z"})
    api.post("/v1/track", {**message, "sentAt": "2026-11-28T09:05:00Z"})
    assert Event.objects.count() == 1


def test_it_counts_duplicates_as_accepted_when_another_message_is_bad(api):
    api.batch([track("signed_up", "u1", message_id="m-1")])
    response = api.batch([track("signed_up", "u1", message_id="m-1"), {"type": "track", "userId": "u1"}])
    assert (response.status_code, response.json()["accepted"], response.json()["rejected"]) == (400, 1, 1)


# --- Contacts -----------------------------------------------------------------------------


def test_it_creates_a_contact_from_identify_traits(api):
    response = api.post(
        "/v1/identify",
        {"userId": "u1", "traits": {"email": "ann@example.com", "first_name": "Ann", "timezone": "Europe/Paris"}},
    )
    assert response.status_code == 200, response.content
    contact = Contact.objects.get()
    assert (contact.user_id, contact.email, contact.timezone) == ("u1", "ann@example.com", "Europe/Paris")
    assert contact.traits == {"email": "ann@example.com", "first_name": "Ann", "timezone": "Europe/Paris"}


def test_it_merges_new_traits_into_the_contact(api):
    api.batch([identify("u1", "ann@example.com", first_name="Ann", plan="free")])
    api.batch([{"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "context": {"locale": "fr-FR"}}])
    contact = Contact.objects.get()
    assert contact.traits == {"email": "ann@example.com", "first_name": "Ann", "plan": "pro"}
    assert (contact.email, contact.locale) == ("ann@example.com", "fr-FR")


def test_it_takes_the_contact_from_context_traits_on_a_track_call(api):
    message = {
        **track("signed_up", "u1"),
        "context": {"traits": {"email": "ann@example.com"}, "timezone": "Asia/Tokyo"},
    }
    api.post("/v1/track", message)
    contact = Contact.objects.get()
    assert (contact.user_id, contact.email, contact.timezone) == ("u1", "ann@example.com", "Asia/Tokyo")


def test_it_does_not_let_a_retried_identify_overwrite_newer_traits(api):
    api.batch([identify("u1", "old@example.com", message_id="m-1", plan="free")])
    api.batch([identify("u1", "new@example.com", message_id="m-2", plan="pro")])
    api.batch([identify("u1", "old@example.com", message_id="m-1", plan="free")])
    contact = Contact.objects.get()
    assert (contact.email, contact.traits["plan"]) == ("new@example.com", "pro")


def test_it_applies_a_batch_of_identifies_in_the_order_they_happened(api):
    later = {**identify("u1", "new@example.com"), "timestamp": "2026-01-01T09:00:00Z"}
    earlier = {**identify("u1", "old@example.com"), "timestamp": "2026-01-01T08:00:00Z"}
    api.batch([later, earlier])
    assert Contact.objects.get().email == "new@example.com"


def test_it_keys_an_anonymous_contact_on_its_anonymous_id(api):
    api.batch([{"type": "identify", "anonymousId": "anon-1", "traits": {"email": "a@example.com"}}])
    assert Event.objects.get().anonymous_id == "anon-1"
    assert Contact.objects.get().user_id == "anon-1"


def test_it_stores_a_numeric_user_id_as_a_string(api):
    numeric_identify = {**identify("x", "n@example.com"), "userId": 678}
    response = api.batch([{"type": "track", "event": "signed_up", "userId": 12345}, numeric_identify])
    assert response.status_code == 200, response.content
    assert sorted(Event.objects.values_list("user_id", flat=True)) == ["12345", "678"]
    assert Contact.objects.get().user_id == "678"


def test_it_applies_the_batch_context_to_every_message(api):
    body = {
        "batch": [track("a", "u1"), {**track("b", "u2"), "context": {"locale": "de-DE"}}],
        "context": {"ip": "1.2.3.4"},
    }
    api.post("/v1/batch", body)
    assert dict(Event.objects.values_list("name", "context")) == {
        "a": {"ip": "1.2.3.4"},
        "b": {"ip": "1.2.3.4", "locale": "de-DE"},
    }


def test_it_replaces_a_nested_trait_whole_with_the_newer_value(api):
    api.batch([identify("u1", "ann@example.com", address={"city": "Paris", "zip": "75001"})])
    api.batch([identify("u1", "ann@example.com", address={"city": "Lyon"})])
    assert Contact.objects.get().traits["address"] == {"city": "Lyon"}


def test_it_stores_a_trait_whose_type_changes_though_its_value_compares_equal(api):
    # In Python True == 1, but the trait did change: a template shows "True", not "1".
    api.batch([identify("u1", "ann@example.com", vip=1)])
    api.batch([identify("u1", "ann@example.com", vip=True)])
    assert Contact.objects.get().traits["vip"] is True


def test_it_replaces_traits_that_are_not_an_object(api):
    baker_recipes.contact.make(user_id="u1", email="", traits=["left", "by", "an", "import"])
    api.batch([identify("u1", "ann@example.com")])
    assert Contact.objects.get().traits == {"email": "ann@example.com"}


def test_it_leaves_a_contact_alone_when_the_messages_change_nothing(api, frozen):
    api.batch([identify("u1", "ann@example.com", plan="pro")])
    frozen.shift(timedelta(minutes=5))
    api.batch([{**track("viewed", "u1"), "context": {"traits": {"email": "ann@example.com", "plan": "pro"}}}])
    assert Contact.objects.get().updated_at == NOW
    api.batch([{**track("viewed", "u1"), "context": {"traits": {"plan": "team"}}}])
    contact = Contact.objects.get()
    assert (contact.traits["plan"], contact.updated_at) == ("team", NOW + timedelta(minutes=5))


# --- Other Segment calls ------------------------------------------------------------------


def test_it_stores_page_screen_group_and_alias_calls_without_matching_them(api):
    welcome_rule(trigger_event="Pricing")
    api.batch([identify("u1", "u1@example.com")])
    response = api.batch(
        [
            {"type": "page", "userId": "u1", "name": "Pricing", "properties": {"path": "/pricing"}},
            {"type": "screen", "userId": "u1", "name": "Pricing"},
            {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"plan": "enterprise"}},
            {"type": "alias", "userId": "u1", "previousId": "anon-1"},
        ]
    )
    assert response.status_code == 200, response.content
    events_process_pending()
    stored = Event.objects.exclude(type="identify").order_by("id")
    assert [(e.type, e.name, e.properties) for e in stored] == [
        ("page", "Pricing", {"path": "/pricing"}),
        ("screen", "Pricing", {}),
        ("group", "", {"groupId": "acme"}),
        ("alias", "", {"previousId": "anon-1"}),
    ]
    assert stored.get(type="group").traits == {"plan": "enterprise"}
    # A group's traits describe the group: they are not the person's.
    assert "plan" not in Contact.objects.get().traits
    assert not Decision.objects.exists()
    assert not Send.objects.exists()


# --- Time -----------------------------------------------------------------------------------


def test_it_corrects_the_timestamp_for_the_device_clock_skew(api, frozen):
    # The device's clock is an hour fast: it says the action was 5 minutes before sending.
    message = {**track("x", "u1"), "timestamp": "2026-11-28T10:55:00Z", "sentAt": "2026-11-28T11:00:00Z"}
    api.post("/v1/track", message)
    event = Event.objects.get()
    assert (event.received_at, event.occurred_at) == (NOW, NOW - timedelta(minutes=5))


def test_it_corrects_every_message_of_a_batch_by_the_batch_sent_at(api, frozen):
    messages = [{**track("a", "u1"), "timestamp": "2026-11-28T08:30:00-01:00"}, track("b", "u1")]
    api.post("/v1/batch", {"batch": messages, "sentAt": "2026-11-28T08:40:00-01:00"})
    assert dict(Event.objects.values_list("name", "occurred_at")) == {"a": NOW - timedelta(minutes=10), "b": NOW}


def test_it_keeps_the_timestamp_without_sent_at(api, frozen):
    api.post("/v1/track", {**track("x", "u1"), "timestamp": "2026-11-28T11:30:00+02:00"})
    assert Event.objects.get().occurred_at == NOW - timedelta(minutes=30)


def test_it_never_places_an_event_after_it_was_received(api, frozen):
    api.post("/v1/track", {**track("x", "u1"), "timestamp": "2026-11-28T12:00:00Z"})
    assert Event.objects.get().occurred_at == NOW


# --- The lean path --------------------------------------------------------------------------


def _event_inserts(queries: CaptureQueriesContext) -> list[str]:
    table = connection.ops.quote_name(Event._meta.db_table)
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith(f"INSERT INTO {table}")]


def test_it_inserts_events_with_one_statement_per_request_on_postgresql_per_500_elsewhere(api):
    messages = [track("viewed", f"u{i % 50}", message_id=f"m-{i}") for i in range(1200)]
    with CaptureQueriesContext(connection) as queries:
        response = api.batch(messages)
    assert response.status_code == 200, response.content
    inserts = _event_inserts(queries)
    assert len(inserts) == (1 if connection.vendor == "postgresql" else 3)
    # No conflict target on PostgreSQL: events are partitioned, and a trigger skips a taken messageId.
    assert all("ON CONFLICT" in sql and "DO NOTHING RETURNING" in sql for sql in inserts)
    assert Event.objects.count() == 1200
    # Tracks without traits touch no contact: the whole request is a handful of statements.
    assert len(queries.captured_queries) <= 8, [q["sql"][:80] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement ingest is PostgreSQL's")
@pytest.mark.parametrize("with_traits", [False, True], ids=["track", "identify"])
def test_a_call_is_one_statement_in_autocommit_then_its_wake_up_once_its_key_was_read(client, settings, with_traits):
    # Issue #15: no health check, no key lookup (cached), no BEGIN or COMMIT: one round trip for the
    # events, then the matching's wake-up as a statement of its own, after the commit
    # (triggermail.wakeup: a NOTIFY inside the transaction serialises every ingest commit).
    from events.models import WriteKey
    from tests.conftest import Api

    settings.INGEST_RATE_LIMIT_ENABLED = False
    _, raw = WriteKey.issue(name="one statement")
    api = Api(client, raw)
    assert api.post("/v1/track", track("viewed", "u0")).status_code == 200
    seen: list[tuple[str, bool]] = []

    def spy(execute, sql, params, many, context):
        seen.append((sql, connection.get_autocommit() and not connection.in_atomic_block))
        return execute(sql, params, many, context)

    message = identify("u1", "u1@example.com", first_name="Ada") if with_traits else track("viewed", "u1")
    with connection.execute_wrapper(spy):
        response = api.post("/v1/identify" if with_traits else "/v1/track", message)
    assert response.status_code == 200, response.content
    assert len(seen) == 2, [sql[:80] for sql, _ in seen]
    assert "INSERT INTO" in seen[0][0] and seen[1][0] == "SELECT pg_notify(%s, '')"
    assert all(autocommit for _, autocommit in seen), "a statement ran inside a transaction"
    assert Event.objects.filter(user_id="u1").count() == 1
    if with_traits:
        contact = Contact.objects.get(user_id="u1")
        assert (contact.email, contact.traits["first_name"]) == ("u1@example.com", "Ada")


def test_it_upserts_contacts_without_a_query_per_message(api):
    small, large = [identify(f"u{i}", f"u{i}@example.com") for i in range(10)], []
    large = [identify(f"v{i}", f"v{i}@example.com") for i in range(400)]
    with CaptureQueriesContext(connection) as few:
        api.batch(small)
    with CaptureQueriesContext(connection) as many:
        api.batch(large)
    assert Contact.objects.count() == 410
    # Forty times the messages, not forty times the queries: only bulk_update's own batching grows.
    assert len(many.captured_queries) <= len(few.captured_queries) + 5
