"""Unsubscribe tokens: opaque, bound to the contact and the address the email went to, and dated.

A token is a Fernet token (cryptography's authenticated encryption: AES-128-CBC and HMAC-SHA256,
with the time it was made) of the contact's pk and short digests of its user id and address. It
reveals nothing without the key, and changing one character makes it fail. The key is derived
from SECRET_KEY (and each of SECRET_KEY_FALLBACKS, so rotating the secret does not break links
already in inboxes). Django's `signing` alone would not do: its payload is readable base64, so
every link would show the contact's user id to whoever sees it.

Nothing is stored per token, so building an email costs no write. A token stops applying when:

- it is older than UNSUBSCRIBE_TOKEN_DAYS (90 by default; mailbox providers use the one-click
  POST for weeks after delivery, and people open old email), or
- the contact's address is no longer the one the email was sent to: the new address never asked
  to leave, and whoever still reads the old mailbox should not manage the new one.

Old-format tokens (signed, readable, from emails sent before this format) are accepted as they
were until UNSUBSCRIBE_LEGACY_TOKENS_UNTIL, then answered as expired.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

if TYPE_CHECKING:
    from events.models import Contact

# Its own salt, so that no other key this project derives from SECRET_KEY (django-q2 task
# signatures, sessions) is ever the key of these tokens.
TOKEN_SALT = "triggermail.consent.unsubscribe"
# pk, then 8 bytes of the user id's digest and 8 of the address's.
_PAYLOAD = struct.Struct(">Q8s8s")


class TokenState(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"  # not ours, altered, or for a contact that is gone: 404
    EXPIRED = "expired"  # 410
    ADDRESS_CHANGED = "address_changed"  # 410


@dataclass(frozen=True)
class TokenCheck:
    state: TokenState
    contact: Contact | None = None
    issued_at: datetime | None = None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()[:8]


def _address_digest(email: str) -> bytes:
    # Addresses compare without case or surrounding spaces, as they do everywhere else here.
    return _digest(email.strip().lower())


@lru_cache(maxsize=4)
def _fernet(secret: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    keys = [salted_hmac(TOKEN_SALT, "fernet key", secret=s, algorithm="sha256").digest() for s in (secret, *fallbacks)]
    return MultiFernet([Fernet(base64.urlsafe_b64encode(key)) for key in keys])


def _keys() -> MultiFernet:
    return _fernet(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def consent_token(contact: Contact, *, now: datetime) -> str:
    """A token for the contact at its current address, made `now`."""
    payload = _PAYLOAD.pack(contact.pk, _digest(contact.user_id), _address_digest(contact.email))
    token = _keys().encrypt_at_time(payload, int(now.timestamp()))
    # The padding adds nothing and would be one more character to mangle in a URL.
    return token.decode().rstrip("=")


def consent_token_check(token: str, *, now: datetime) -> TokenCheck:
    """What a token from a link allows: the contact, or why not."""
    if ":" in token:
        return _legacy_check(token, now=now)
    raw = (token + "=" * (-len(token) % 4)).encode()
    try:
        keys = _keys()
        payload, issued = keys.decrypt(raw), keys.extract_timestamp(raw)
        pk, user_digest, address_digest = _PAYLOAD.unpack(payload)
    except (InvalidToken, struct.error, ValueError):
        return TokenCheck(TokenState.INVALID)
    contact = _contact(pk)
    if contact is None or _digest(contact.user_id) != user_digest:
        return TokenCheck(TokenState.INVALID)
    issued_at = datetime.fromtimestamp(issued, tz=UTC)
    if now - issued_at > timedelta(days=settings.UNSUBSCRIBE_TOKEN_DAYS):
        return TokenCheck(TokenState.EXPIRED, contact, issued_at)
    if _address_digest(contact.email) != address_digest:
        return TokenCheck(TokenState.ADDRESS_CHANGED, contact, issued_at)
    return TokenCheck(TokenState.VALID, contact, issued_at)


def _legacy_check(token: str, *, now: datetime) -> TokenCheck:
    """The old format: a signed (readable) {"c": pk, "u": user id}, with no date and no address."""
    try:
        value = signing.Signer(salt=TOKEN_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeDecodeError):
        return TokenCheck(TokenState.INVALID)
    if not isinstance(value, dict) or not isinstance(value.get("c"), int) or not isinstance(value.get("u"), str):
        return TokenCheck(TokenState.INVALID)
    contact = _contact(value["c"])
    if contact is None or contact.user_id != value["u"]:
        return TokenCheck(TokenState.INVALID)
    until = settings.UNSUBSCRIBE_LEGACY_TOKENS_UNTIL
    if until is None or now.astimezone(UTC).date() > until:
        return TokenCheck(TokenState.EXPIRED, contact)
    return TokenCheck(TokenState.VALID, contact)


def _contact(pk: int) -> Contact | None:
    from events.models import Contact

    return Contact.objects.filter(pk=pk).first()
