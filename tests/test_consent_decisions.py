"""Consent in the pure decision: the category decides what an unsubscribe or a suppression blocks."""

from __future__ import annotations

from datetime import datetime

import pytest

from campaigns.consent.policy import consent_refusal
from campaigns.matching.rules import ContactData, EventData, RuleData, rules_matching

NOW = datetime.fromisoformat("2026-03-02T10:00:00+00:00")
EVENT = EventData(id=1, name="promo_viewed", user_id="u1", properties={}, occurred_at=NOW)


def decide(*, category: str, topic: str = "", email: str = "u1@example.com", **consent: object) -> tuple[str, str]:
    contact = ContactData(user_id="u1", email=email, **consent)  # type: ignore[arg-type]
    rule = RuleData(id=1, name="r", trigger_event="promo_viewed", template_name="t", category=category, topic=topic)
    [decision] = rules_matching(EVENT, contact, [rule], NOW)
    return decision.reason, decision.detail


def test_a_marketing_unsubscribe_skips_marketing_but_not_transactional_email():
    assert decide(category="marketing", unsubscribed=True) == (
        "unsubscribed",
        "the contact unsubscribed from all marketing email",
    )
    assert decide(category="transactional", unsubscribed=True)[0] == "scheduled"


def test_leaving_a_topic_skips_only_marketing_email_of_that_topic():
    left = frozenset({"Offers"})
    assert decide(category="marketing", topic="Offers", unsubscribed_topics=left) == (
        "unsubscribed",
        "the contact unsubscribed from the topic 'Offers'",
    )
    assert decide(category="marketing", topic="Tips", unsubscribed_topics=left)[0] == "scheduled"
    assert decide(category="marketing", unsubscribed_topics=left)[0] == "scheduled"
    assert decide(category="transactional", topic="Offers", unsubscribed_topics=left)[0] == "scheduled"


@pytest.mark.parametrize("category", ["marketing", "transactional"])
def test_a_suppressed_address_is_skipped_whatever_the_category(category):
    assert decide(category=category, suppressed="hard bounce") == (
        "suppressed",
        "the address is suppressed (hard bounce)",
    )


def test_no_address_is_reported_before_consent():
    assert decide(category="marketing", email="", unsubscribed=True)[0] == "no_email"


def test_a_suppression_is_named_before_an_unsubscribe():
    refusal = consent_refusal(
        category="marketing", topic="", suppressed="spam complaint", unsubscribed=True, unsubscribed_topics=()
    )
    assert refusal is not None and refusal.reason == "suppressed"
