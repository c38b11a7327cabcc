"""A claim reads the rules, templates and settings again exactly when they changed (campaigns.sending.claim_rules).

Every change here is made as a bulk update or a plain insert — no Django signal — between two claims
in one process: the database's stamp is what tells the claim to read again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Category, Rule, Send, Template
from tests import baker_recipes
from tests.conftest import identify, run_worker, track
from tests.steps import events_process_pending
from tests.world import minutes, rule_make, send_states

RULES_TABLES = ("campaigns_rule", "campaigns_template", "campaigns_campaignsettings", "campaigns_condition")


@pytest.fixture
def recovery(api, sendgrid):
    """Three contacts each with a cart recovery waiting 30 minutes; u1's sent early, so that this
    process has made a claim and kept the rules it read."""
    rule = rule_make("recovery", "cart_abandoned", delay=minutes(30))
    users = ("u1", "u2", "u3")
    api.batch([identify(u, f"{u}@example.com") for u in users] + [track("cart_abandoned", u) for u in users])
    events_process_pending()
    first = Send.objects.get(contact__user_id="u1")
    Send.objects.filter(pk=first.pk).update(due_at=first.triggered_at)
    run_worker()
    assert len(sendgrid.accepted) == 1
    return rule


def _all_due() -> datetime:
    return Send.objects.latest("due_at").due_at


def _another_like(send: Send, *, dedupe_key: str) -> Send:
    """A second scheduled send of the same rule, contact and event, due when `send` is."""
    return Send.objects.create(
        rule_id=send.rule_id,
        contact_id=send.contact_id,
        event_id=send.event_id,
        state=Send.State.SCHEDULED,
        triggered_at=send.triggered_at,
        due_at=send.due_at,
        dedupe_key=dedupe_key,
    )


def _rules_queries(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if any(f'"{t}"' in q["sql"] for t in RULES_TABLES)]


def test_unchanged_rules_are_not_read_again_by_the_next_claim(recovery, sendgrid):
    with CaptureQueriesContext(connection) as queries:
        run_worker(at=_all_due())

    assert len(sendgrid.accepted) == 3
    assert _rules_queries(queries) == []


def test_a_template_edited_between_claims_is_what_the_next_claim_sends(recovery, sendgrid):
    Template.objects.filter(pk=recovery.template_id).update(subject="Still thinking it over?")

    run_worker(at=_all_due())

    assert [m.subject for m in sendgrid.accepted[1:]] == ["Still thinking it over?"] * 2


def test_a_cooldown_added_between_claims_is_applied_by_the_next_claim(recovery, sendgrid):
    # Every send of the contact u2 is cancelled but the first when the rule gains a cooldown.
    Rule.objects.filter(pk=recovery.pk).update(cooldown=timedelta(days=1))
    u2 = Send.objects.filter(contact__user_id="u2").get()
    _another_like(u2, dedupe_key="second-for-u2")

    run_worker(at=u2.due_at)

    assert send_states().count(("recovery", "cancelled")) == 1
    assert Send.objects.get(dedupe_key="second-for-u2").reason.startswith("cooldown")


def test_a_marketing_cap_set_between_claims_is_applied_by_the_next_claim(recovery, sendgrid):
    Template.objects.filter(pk=recovery.template_id).update(category=Category.MARKETING)
    baker_recipes.campaign_settings.make(marketing_cap_count=1, marketing_cap_period=timedelta(days=1))
    u1 = Send.objects.filter(contact__user_id="u1", state="sent").get()
    _another_like(u1, dedupe_key="second-for-u1")

    run_worker(at=_all_due())

    assert Send.objects.get(dedupe_key="second-for-u1").state != "sent"
    assert len(sendgrid.accepted) == 3
