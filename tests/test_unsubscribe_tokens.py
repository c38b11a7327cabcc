"""Unsubscribe tokens: nothing readable in them, valid for the address they were sent to for
UNSUBSCRIBE_TOKEN_DAYS, and a plain 410 page when they no longer apply.

Links are taken from real emails that went through Anymail's SendGrid backend to the local server,
and used as a mailbox provider (one-click POST, no cookies) or a person (GET) would.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.utils import timezone

from campaigns.consent.tokens import TOKEN_SALT, consent_token
from campaigns.models import Category
from events.models import Contact
from tests.conftest import identify, run_worker, track
from tests.test_consent_unsubscribe import SITE, one_click, one_click_url
from tests.world import rule_make, template_make


@pytest.fixture
def emailed(api, sendgrid, settings) -> str:
    """A marketing email went to u1@example.com just now; its one-click path."""
    settings.SITE_URL = SITE
    offers = template_make("Offers", category=Category.MARKETING, topic="Offers", text_body="Deals")
    rule_make("offers", "promo_viewed", template=offers)
    api.batch([identify("secret-user-4711", "ann.private@example.com"), track("promo_viewed", "secret-user-4711")])
    run_worker()
    return one_click_url(sendgrid.accepted[0])


def ann() -> Contact:
    return Contact.objects.get(user_id="secret-user-4711")


def token_in(path: str) -> str:
    return path.strip("/").split("/")[1]


def test_a_token_reveals_neither_the_user_id_nor_the_address(emailed):
    token = token_in(emailed)
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    for secret in ("secret-user-4711", "ann.private@example.com", "ann.private"):
        assert secret.encode() not in decoded and secret not in token
    # And not the pk as JSON, which the old signed format showed as {"c": 1, "u": "..."}.
    assert b'"c"' not in decoded and b'"u"' not in decoded


def test_two_emails_carry_different_tokens(emailed, api, sendgrid):
    api.batch([track("promo_viewed", "secret-user-4711")])
    run_worker()
    tokens = {re.findall(r"/u/([^/]+)/", m.headers["List-Unsubscribe"])[0] for m in sendgrid.accepted}
    assert len(tokens) == 2


def test_one_click_still_works_89_days_after_the_email(emailed):
    with time_machine.travel(timezone.now() + timedelta(days=89)):
        response = one_click(emailed)
    assert response.status_code == 200
    assert b"You are unsubscribed" in response.content
    assert ann().unsubscribed_at is not None


def test_after_90_days_the_link_says_it_expired_and_changes_nothing(emailed):
    with time_machine.travel(timezone.now() + timedelta(days=90, minutes=1)):
        posted, shown = one_click(emailed), Client().get(emailed)
        saved = Client().post(emailed + "preferences/", {"action": "unsubscribe_all"})

    assert (posted.status_code, shown.status_code, saved.status_code) == (410, 410, 410)
    page = shown.content.decode()
    assert "This link has expired" in page and "work for 90 days" in page
    assert "<form" not in page and "ann.private" not in page
    assert ann().unsubscribed_at is None


def test_the_validity_period_is_a_setting(emailed, settings):
    settings.UNSUBSCRIBE_TOKEN_DAYS = 7
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert one_click(emailed).status_code == 410
    assert ann().unsubscribed_at is None


def test_after_the_address_changes_the_old_link_says_so_and_changes_nothing(emailed, api):
    api.batch([identify("secret-user-4711", "ann.new@example.com")])

    posted, shown = one_click(emailed), Client().get(emailed)

    assert (posted.status_code, shown.status_code) == (410, 410)
    page = shown.content.decode()
    assert "This link was for another address" in page
    assert "ann.new" not in page and "ann.private" not in page and "<form" not in page
    assert ann().unsubscribed_at is None


def test_the_same_address_in_other_case_keeps_the_link_valid(emailed, api):
    api.batch([identify("secret-user-4711", "Ann.Private@Example.com")])
    assert one_click(emailed).status_code == 200
    assert ann().unsubscribed_at is not None


def test_a_link_made_before_the_secret_key_rotated_works_while_the_old_key_is_a_fallback(emailed, settings):
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-key-for-this-deployment-0123456789"
    settings.SECRET_KEY_FALLBACKS = [old]
    assert Client().get(emailed).status_code == 200

    settings.SECRET_KEY_FALLBACKS = []
    assert Client().get(emailed).status_code == 404


def test_a_token_for_another_deployment_is_refused(emailed, settings):
    settings.SECRET_KEY = "another-deployment-secret-key-0123456789abcdef"
    token = consent_token(ann(), now=timezone.now())
    settings.SECRET_KEY = "this-deployment-secret-key-0123456789abcdef"
    assert one_click(f"/u/{token}/").status_code == 404


# --- Links in emails sent before this format ---------------------------------------------------


def legacy_token(contact: Contact) -> str:
    """Exactly what emails sent before this release carry: a signed, readable {"c": pk, "u": user id}."""
    return signing.Signer(salt=TOKEN_SALT).sign_object({"c": contact.pk, "u": contact.user_id}, compress=True)


def test_an_old_format_link_works_until_the_cutoff_day(emailed, settings):
    settings.UNSUBSCRIBE_LEGACY_TOKENS_UNTIL = timezone.now().date()
    assert one_click(f"/u/{legacy_token(ann())}/").status_code == 200
    assert ann().unsubscribed_at is not None


@pytest.mark.parametrize("until", [lambda today: today - timedelta(days=1), lambda today: None])
def test_an_old_format_link_after_the_cutoff_says_it_expired(emailed, settings, until):
    settings.UNSUBSCRIBE_LEGACY_TOKENS_UNTIL = until(timezone.now().date())
    response = one_click(f"/u/{legacy_token(ann())}/")
    assert response.status_code == 410 and b"This link has expired" in response.content
    assert ann().unsubscribed_at is None


def test_a_forged_old_format_link_is_refused(emailed):
    token = legacy_token(ann())
    assert one_click(f"/u/{token[:-1]}{'A' if token[-1] != 'A' else 'B'}/").status_code == 404
    assert ann().unsubscribed_at is None
