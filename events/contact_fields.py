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
    # Every place a field may come from is checked, also when another place's value wins: a bad
    # value is refused wherever it is (as the published schema says), not ignored by luck.
    sources = [(traits, "traits."), (context_traits, "context.traits."), (_device_fields(context), "context.")]
    for values, prefix in sources:
        for key, (valid, reason) in _CHECKS.items():
            value = values.get(key)
            if value not in (None, "") and not (isinstance(value, str) and valid(value)):
                problems.append((prefix + key, reason.format(value=value)))
    # A trait is what the person (or the app on their behalf) said; the context field is only where
    # their device was, so the trait wins.
    return merged, _first_text(merged, context, "timezone"), _first_text(merged, context, "locale")


def _device_fields(context: dict[str, Any]) -> dict[str, Any]:
    # The standard context fields SDKs fill from the device; context.email is not one.
    return {key: context.get(key) for key in ("timezone", "locale")}


def _first_text(merged: dict[str, Any], context: dict[str, Any], key: str) -> str:
    for value in (merged.get(key), context.get(key)):
        if isinstance(value, str) and value:
            return value
    return ""


def _zone_valid(zone: str) -> bool:
    return zone in time_zone_names()


def _locale_valid(locale: str) -> bool:
    return len(locale) <= MAX_LOCALE_LENGTH


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


_CHECKS: dict[str, tuple[Callable[[str], bool], str]] = {
    "email": (_email_valid, "{value!r} is not a valid email address"),
    "timezone": (_zone_valid, "{value!r} is not an IANA time zone such as Europe/Paris"),
    "locale": (_locale_valid, f"must be a language tag such as en-US of at most {MAX_LOCALE_LENGTH} characters"),
}


@cache
def time_zone_names() -> frozenset[str]:
    """Every IANA zone name this Python knows: the only time zones a contact may have."""
    return frozenset(available_timezones())
