"""Segment's own Python SDK, pointed at this server, delivers its messages unchanged."""

from __future__ import annotations

import pytest
from segment.analytics import Client

from events.models import Contact, Event


@pytest.mark.e2e
@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_the_official_python_sdk_is_understood(write_key, web, gzip):
    # sync_mode posts each call as its own /v1/batch (Basic auth, writeKey and sentAt in the body)
    # and raises if the answer is not a success.
    sdk = Client(write_key, host=web, gzip=gzip, sync_mode=True, max_retries=0)
    sdk.identify("u1", {"email": "ann@example.com", "first_name": "Ann"}, context={"timezone": "Europe/Paris"})
    sdk.track("u1", "signed_up", {"plan": "pro"})
    sdk.page("u1", "Docs", "Pricing", {"path": "/pricing"})
    sdk.group("u1", "acme", {"name": "Acme"})
    sdk.alias("u1", "anon-1")
    assert list(Event.objects.order_by("id").values_list("type", "name")) == [
        ("identify", ""),
        ("track", "signed_up"),
        ("page", "Pricing"),
        ("group", ""),
        ("alias", ""),
    ]
    assert Event.objects.get(type="track").properties == {"plan": "pro"}
    contact = Contact.objects.get()
    assert (contact.email, contact.timezone, contact.traits["first_name"]) == ("ann@example.com", "Europe/Paris", "Ann")
