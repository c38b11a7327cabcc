"""The project's SendGrid backend parses addresses as Anymail does, for less CPU."""

from __future__ import annotations

import pytest
from anymail.exceptions import AnymailInvalidAddress
from anymail.utils import parse_address_list

from campaigns.sending.sendgrid_backend import address_list_parse

SAME_AS_ANYMAIL = [
    "ada@example.com",
    "first.last+tag@sub.example.co.uk",
    "o'brien@example.com",
    "x!#$%&'*+/=?^_`{|}~-y@a-b.example",
    "TriggerMail <hello@example.com>",
    '"Last, First" <first@example.com>',
    "Zoë <zoe@example.com>",
    "zoë@exämple.com",
    '"quoted local"@example.com',
    "a@b",
    "ada@example.com, bob@example.com",
    ["ada@example.com", "Bob <bob@example.com>"],
    ["ada@example.com", "bob@example.com"],
    [],
    None,
]


def _shape(addresses: list) -> list[tuple[str, str, str, str, str]]:
    return [(a.display_name, a.addr_spec, a.username, a.domain, str(a)) for a in addresses]


@pytest.mark.parametrize("value", SAME_AS_ANYMAIL, ids=repr)
def test_it_parses_as_anymail_does(value: object) -> None:
    expected = _shape(parse_address_list(value, field="to"))
    assert _shape(address_list_parse(value, field="to")) == expected
    # The second time comes from the cache, and is the same.
    assert _shape(address_list_parse(value, field="to")) == expected


@pytest.mark.parametrize(
    "value", ["not an address", "ada@", "@example.com", "ada@@example.com", "ada..b@example.com", "a@b..c", ""]
)
def test_it_refuses_what_anymail_refuses_naming_the_field(value: str) -> None:
    with pytest.raises(AnymailInvalidAddress) as anymail_refusal:
        parse_address_list(value, field="to")
    with pytest.raises(AnymailInvalidAddress) as refusal:
        address_list_parse(value, field="to")
    assert str(refusal.value) == str(anymail_refusal.value)
    assert "in `to`" in str(refusal.value)
