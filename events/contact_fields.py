"""What a message says about the person who sent it: traits, email address, time zone, locale.

Segment's spec puts a person's traits in two places: `traits` on an identify call, and
`context.traits` on any call (RudderStack's Python SDK sends identify traits only there). Both
count; on an identify call the top-level traits win a key both carry, because they are the call's
own subject. The time zone and locale are traits too, or else the standard context fields
`context.timezone` and `context.locale` that SDKs fill from the device.

`properties.email` is not read: a track call's properties describe the event, and an event such as
`invite_sent` may well carry someone else's address.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

MAX_EMAIL_LENGTH = 254
MAX_LOCALE_LENGTH = 35

Problems = list[tuple[str, str]]


def contact_fields_read(
    *, traits: dict[str, Any], context_traits: dict[str, Any], context: dict[str, Any], problems: Problems
) -> tuple[dict[str, Any], str, str]:
    """The traits to merge into the sender's Contact, their time zone and their locale.

    `traits` are an identify call's own (empty for other calls). A bad value is reported in
    `problems` under the field it came from.
    """
    merged = {**context_traits, **traits}

    def origin(key: str) -> str:
        return ("traits." if key in traits else "context.traits.") + key

    email = merged.get("email")
    if email not in (None, "") and not (isinstance(email, str) and _email_valid(email)):
        problems.append((origin("email"), f"{email!r} is not a valid email address"))
    zone, zone_field = _trait_or_context(merged, context, "timezone", origin)
    if zone not in (None, "") and not (isinstance(zone, str) and zone in _time_zones()):
        problems.append((zone_field, f"{zone!r} is not an IANA time zone such as Europe/Paris"))
    locale, locale_field = _trait_or_context(merged, context, "locale", origin)
    if locale not in (None, "") and not (isinstance(locale, str) and len(locale) <= MAX_LOCALE_LENGTH):
        reason = f"must be a language tag such as en-US of at most {MAX_LOCALE_LENGTH} characters"
        problems.append((locale_field, reason))
    return merged, zone if isinstance(zone, str) else "", locale if isinstance(locale, str) else ""


def _trait_or_context(
    merged: dict[str, Any], context: dict[str, Any], key: str, origin: Callable[[str], str]
) -> tuple[Any, str]:
    # A trait is what the person (or the app on their behalf) said; the context field is only
    # where their device was, so the trait wins.
    if merged.get(key) not in (None, ""):
        return merged[key], origin(key)
    return context.get(key), f"context.{key}"


# The same senders post again and again, and Django's validator runs several regular expressions.
@lru_cache(maxsize=4096)
def _email_valid(email: str) -> bool:
    if len(email) > MAX_EMAIL_LENGTH:
        return False
    try:
        validate_email(email)
    except ValidationError:
        return False
    return True


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())
