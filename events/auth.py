"""Who may post events: HTTP Basic with a write key as user name, or `writeKey` in the body."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.http import HttpRequest

from events.models import WriteKey, write_key_hash


class Unauthorized(Exception):
    pass


def _basic_user(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0]


def _body_key(document: Any) -> str:
    # Official SDKs also put the key in the JSON body, beside the batch or the single message.
    if isinstance(document, dict) and isinstance(document.get("writeKey"), str):
        return str(document["writeKey"])
    return ""


def write_key_authenticate(request: HttpRequest, document: Any = None) -> WriteKey:
    """The active write key the request presents (Basic header first, then the body's writeKey),
    or Unauthorized saying what was wrong."""
    raw = _basic_user(request) or _body_key(document)
    if not raw:
        raise Unauthorized("no write key: send it as the HTTP Basic user name (empty password)")
    key = WriteKey.objects.filter(key_hash=write_key_hash(raw)).first()
    if key is None:
        raise Unauthorized("unknown write key")
    if not key.is_active:
        raise Unauthorized("this write key was revoked")
    return key
