"""What the Dashboard reads is kept on the send where it is learned: the first delivery, open and
click from the Event Webhook, and the latency when the send becomes sent; existing rows are filled
in by the migration that adds the columns."""

from __future__ import annotations

import importlib
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from campaigns.models import ProviderEvent, Send
from campaigns.reporting.latency import DELAYED, IMMEDIATE, latency_measure
from campaigns.reporting.performance import dashboard_compute
from campaigns.sending.retention import records_prune
from harness.sendgrid_server import Fault
from harness.sendgrid_webhook import sendgrid_events_for
from tests.conftest import identify, run_worker, track
from tests.world import rule_make

MS = timedelta(milliseconds=1)


@pytest.fixture
def welcome(api, sendgrid):
    """A welcome email, due at once, posted and matched."""
    from tests.steps import events_process_pending

    rule_make("welcome", "user_signup")
    api.batch([identify("u1", "u1@example.com"), track("user_signup", "u1")])
    events_process_pending()
    return Send.objects.get()


def measured(send: Send) -> tuple[int | None, str]:
    """The latency campaigns.reporting.latency defines for a sent send, from its rows as they are now."""
    assert send.sent_at is not None and send.event is not None
    return latency_measure(
        sent_at=send.sent_at,
        due_at=send.due_at,
        accepted_at=send.event.received_at,
        matched_at=send.event.processed_at,
        resend=False,
    )


def test_it_records_the_latency_when_the_provider_accepts_the_email(welcome, sendgrid):
    run_worker()

    welcome.refresh_from_db()
    assert welcome.state == "sent" and welcome.latency_ms is not None
    assert (welcome.latency_ms, welcome.latency_kind) == measured(welcome)
    # A rule with no delay: due the moment its event was matched, a little after it was accepted.
    assert welcome.latency_kind == IMMEDIATE
    assert welcome.due_at > welcome.event.received_at


def test_it_measures_an_email_settled_by_webhook_evidence(welcome, sendgrid, webhook):
    sendgrid.fail_next(Fault(kind="accept_then_drop"))
    run_worker()
    welcome.refresh_from_db()
    assert (welcome.state, welcome.latency_ms, welcome.latency_kind) == ("unknown", None, "")

    webhook.post(sendgrid_events_for(sendgrid.accepted[0], "delivered"))

    welcome.refresh_from_db()
    # Settled as sent when the attempt started: that is what the latency measures to.
    assert (welcome.state, welcome.sent_at) == ("sent", welcome.sending_started_at)
    assert welcome.latency_ms is not None
    assert (welcome.latency_ms, welcome.latency_kind) == measured(welcome)


def test_a_delayed_email_is_measured_from_its_due_time():
    accepted = timezone.now()
    due = accepted + timedelta(hours=1)
    matched = accepted + 40 * MS
    measure = partial(latency_measure, accepted_at=accepted, matched_at=matched, resend=False)
    assert measure(sent_at=due + 300 * MS, due_at=due) == (300, DELAYED)
    # Due when matched (no delay): measured from the moment the event was accepted.
    assert measure(sent_at=matched + 80 * MS, due_at=matched) == (120, IMMEDIATE)
    assert latency_measure(sent_at=due, due_at=due, accepted_at=None, matched_at=None, resend=False) == (None, "")
    assert latency_measure(sent_at=due, due_at=due, accepted_at=accepted, matched_at=matched, resend=True) == (None, "")


def test_the_first_delivery_open_and_click_are_kept_and_redelivery_does_not_move_them(welcome, sendgrid, webhook):
    run_worker()
    accepted = sendgrid.accepted[0]
    sent = timezone.now()
    delivered = sendgrid_events_for(accepted, "delivered", timestamp=sent.timestamp() + 5)
    webhook.post(delivered + sendgrid_events_for(accepted, "open", timestamp=sent.timestamp() + 60))
    welcome.refresh_from_db()
    first = (welcome.delivered_at, welcome.opened_at, welcome.clicked_at)
    assert first[0] is not None and first[1] is not None and first[2] is None

    # The same events again (SendGrid lost our answer), and a second open and delivery an hour later.
    webhook.post(delivered)
    webhook.post(
        sendgrid_events_for(accepted, "delivered", timestamp=sent.timestamp() + 3600)
        + sendgrid_events_for(accepted, "open", timestamp=sent.timestamp() + 3600)
    )

    welcome.refresh_from_db()
    assert (welcome.delivered_at, welcome.opened_at, welcome.clicked_at) == first
    assert ProviderEvent.objects.filter(event_type="delivered").count() == 2


def test_the_funnel_keeps_its_counts_after_provider_events_are_pruned(welcome, sendgrid, webhook, settings):
    run_worker()
    accepted = sendgrid.accepted[0]
    webhook.post(sendgrid_events_for(accepted, "delivered") + sendgrid_events_for(accepted, "click"))
    now = timezone.now()

    # Past retention, the provider events and the send's event go.
    records_prune(now=now + timedelta(days=400))

    assert not ProviderEvent.objects.exists() and Send.objects.select_related("event").get().event is None
    totals = dashboard_compute(start=now - timedelta(days=1), end=now + timedelta(minutes=1)).totals
    assert (totals.sent, totals.delivered, totals.opened, totals.clicked) == (1, 1, 0, 1)
    assert totals.immediate.count + totals.delayed.count == 1


class _Editor:
    """What the migration's function uses of a schema editor, inside the test's transaction."""

    def __init__(self) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Any = None) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def test_the_migration_fills_in_the_columns_of_existing_sends(welcome, sendgrid, webhook):
    run_worker()
    accepted = sendgrid.accepted[0]
    webhook.post(sendgrid_events_for(accepted, "delivered") + sendgrid_events_for(accepted, "open"))
    welcome.refresh_from_db()
    kept = (welcome.delivered_at, welcome.opened_at, welcome.clicked_at, welcome.latency_ms, welcome.latency_kind)
    Send.objects.update(delivered_at=None, opened_at=None, clicked_at=None, latency_ms=None, latency_kind="")

    migration = importlib.import_module("campaigns.migrations.0007_dashboard_columns")
    migration.dashboard_columns_fill(apps, _Editor())

    welcome.refresh_from_db()
    assert (
        welcome.delivered_at,
        welcome.opened_at,
        welcome.clicked_at,
        welcome.latency_ms,
        welcome.latency_kind,
    ) == kept


def test_a_send_the_provider_refused_has_no_latency(welcome, sendgrid):
    sendgrid.fail_next(Fault(kind="status", status=400))
    run_worker()

    welcome.refresh_from_db()
    assert (welcome.state, welcome.latency_ms, welcome.latency_kind) == ("failed", None, "")
