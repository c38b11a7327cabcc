"""Anymail's SendGrid backend, with its address parsing done once per distinct address list.

Anymail parses every address of every message with the standard library's RFC 5322 parser
(email.headerregistry), which was about a quarter of the worker's CPU per provider call. Here the
from address (the same for every message of a template) is parsed once per process, and a bare
`local@domain` address of plain characters, the shape every contact's address has, is split without
the parser: for such an address the parser returns exactly the two halves, with no defects
(tests/test_sendgrid_backend.py checks both paths against Anymail's own). Anything else goes through
Anymail's parse_address_list, with its errors naming the field. Its requests session is a
campaigns.sending.provider_session.ProviderSession, which prepares the request once per URL and
headers instead of once per message. Everything else is Anymail's.
"""

from __future__ import annotations

import re
from functools import lru_cache, partial
from typing import Any

from anymail.backends.sendgrid import EmailBackend as AnymailSendGridBackend
from anymail.backends.sendgrid import SendGridPayload
from anymail.utils import EmailAddress, parse_address_list

from campaigns.sending.provider_session import ProviderSession

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_BARE_ADDRESS = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)")


def address_list_parse(value: Any, *, field: str) -> list[EmailAddress]:
    """What anymail.utils.parse_address_list(value, field=field) returns, for less CPU."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not values or not all(type(v) is str for v in values):
        return parse_address_list(value, field=field)  # None, lazy strings, anything unusual
    bare = [_BARE_ADDRESS.fullmatch(v) for v in values]
    if all(bare):
        return [EmailAddress(username=m["local"], domain=m["domain"]) for m in bare if m is not None]
    return list(_parsed(tuple(values), field))


@lru_cache(maxsize=512)
def _parsed(values: tuple[str, ...], field: str) -> tuple[EmailAddress, ...]:
    # EmailAddress is immutable, so one parsed instance can serve every message.
    return tuple(parse_address_list(list(values), field=field))


class CachedAddressPayload(SendGridPayload):
    base_message_attrs = tuple(
        (attr, combiner, partial(address_list_parse, field=attr) if converter is parse_address_list else converter)
        for attr, combiner, converter in SendGridPayload.base_message_attrs
    )


class EmailBackend(AnymailSendGridBackend):
    def build_message_payload(self, message: Any, defaults: dict[str, Any]) -> CachedAddressPayload:
        return CachedAddressPayload(message, defaults, self)

    def create_session(self) -> ProviderSession:
        # Anymail's session (its User-Agent, its debug hook) in a class that prepares each request once.
        anymails = super().create_session()
        session = ProviderSession()
        session.headers, session.hooks = anymails.headers, anymails.hooks
        anymails.close()
        return session
