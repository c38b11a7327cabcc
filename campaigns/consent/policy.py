"""Consent: who may receive which email, the links that let people change it, and the changes.

`consent_refusal` is the one place that decides whether consent blocks an email. It is pure, so
matching (when the event arrives) and the send-time re-check (when the email is due) ask exactly
the same question of the data they have. The category decides: a suppressed address gets nothing,
an unsubscribe blocks marketing only, and receipts keep going out.

The links carry a token instead of a login (campaigns.consent.tokens): whoever holds the email may
change that contact's preferences for a while, and nobody can make a token for another contact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone

from campaigns.consent.tokens import consent_token
from campaigns.matching.reasons import DecisionReason

if TYPE_CHECKING:
    from events.models import Contact


@dataclass(frozen=True)
class Refusal:
    reason: DecisionReason  # SUPPRESSED or UNSUBSCRIBED
    detail: str


def consent_refusal(
    *,
    category: str,
    topic: str,
    suppressed: str,
    unsubscribed: bool,
    unsubscribed_topics: Iterable[str],
) -> Refusal | None:
    """Why consent forbids this email, or None when it may go.

    `suppressed` is why the address is suppressed, in words ("" when it is not). A suppression
    blocks every category: a hard bounce or a spam complaint is about the address, not the list.
    """
    if suppressed:
        return Refusal(DecisionReason.SUPPRESSED, f"the address is suppressed ({suppressed})")
    if category != "marketing":
        return None
    if unsubscribed:
        return Refusal(DecisionReason.UNSUBSCRIBED, "the contact unsubscribed from all marketing email")
    if topic and topic in set(unsubscribed_topics):
        return Refusal(DecisionReason.UNSUBSCRIBED, f"the contact unsubscribed from the topic {topic!r}")
    return None


# --- Links ------------------------------------------------------------------------------------


def unsubscribe_url(contact: Contact, *, token: str | None = None) -> str:
    """The List-Unsubscribe URL: a POST unsubscribes at once (one-click), a GET shows the preferences.

    `token` is one consent_token already made for this email (the header and the footer share it).
    """
    token = token or consent_token(contact, now=timezone.now())
    if not _URL_SAFE.fullmatch(token):
        return settings.SITE_URL + reverse("consent-unsubscribe", args=[token])
    before, after = _unsubscribe_path_around(get_script_prefix(), get_urlconf(), settings.ROOT_URLCONF)
    return settings.SITE_URL + before + token + after


# A token is URL-safe base64 (campaigns.consent.tokens): it goes into the path as it is, so the path is
# reversed once and the token put in its place. reverse() per email cost a twentieth of a send's CPU.
_URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
_MARK = "TOKEN"


@lru_cache(maxsize=16)
def _unsubscribe_path_around(script_prefix: str, urlconf: str | None, root_urlconf: str) -> tuple[str, str]:
    """The unsubscribe path before and after its token, for these URL settings (tests change them)."""
    before, after = reverse("consent-unsubscribe", args=[_MARK]).split(_MARK)
    return before, after


def preferences_url(contact: Contact) -> str:
    # The same page: a GET never changes anything (mail scanners follow links), so the link in a
    # footer lands on the preferences, where "unsubscribe from all" is one button away.
    return unsubscribe_url(contact)


def unsubscribe_headers(contact: Contact, *, token: str | None = None) -> dict[str, str]:
    """RFC 2369 List-Unsubscribe with the RFC 8058 one-click POST, for marketing email."""
    token = token or consent_token(contact, now=timezone.now())
    targets = [f"<{unsubscribe_url(contact, token=token)}>"]
    if settings.UNSUBSCRIBE_MAILTO:
        targets.append(f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe-{token}>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


# --- Changes ----------------------------------------------------------------------------------


def contact_unsubscribe_all(contact: Contact, *, now: datetime) -> None:
    # Conditional, so a second click (or the provider posting twice) keeps the first time.
    type(contact).objects.filter(pk=contact.pk, unsubscribed_at__isnull=True).update(
        unsubscribed_at=now, updated_at=now
    )
    contact.refresh_from_db(fields=["unsubscribed_at"])


def contact_topics_set(contact: Contact, *, left: Iterable[str], offered: Iterable[str]) -> None:
    """Leave the `left` topics and rejoin the other `offered` ones; topics not offered stay as they are."""
    offered_set, left_set = set(offered), set(left)
    kept = {topic for topic in contact.unsubscribed_topics if topic not in offered_set}
    contact.unsubscribed_topics = sorted(kept | (left_set & offered_set))
    contact.save(update_fields=["unsubscribed_topics", "updated_at"])


def contact_resubscribe(contact: Contact) -> None:
    """Back to every marketing topic."""
    contact.unsubscribed_at = None
    contact.unsubscribed_topics = []
    contact.save(update_fields=["unsubscribed_at", "unsubscribed_topics", "updated_at"])
