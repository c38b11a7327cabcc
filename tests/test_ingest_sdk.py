"""Segment's own Python SDK, pointed at this server, delivers its messages unchanged."""

from __future__ import annotations

import threading

import pytest
import requests
from segment.analytics import Client, request

from events.models import Contact, Event


@pytest.fixture
def sdk_http(monkeypatch):
    """A fresh keep-alive session for the SDK, hung up after the test.

    A live-server thread serves one kept-alive connection and holds a database connection while it
    does; hanging up and waiting for those threads lets the test database be dropped afterwards.
    """
    session = requests.Session()
    monkeypatch.setattr(request, "_session", session)
    yield
    session.close()
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(timeout=10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_the_official_python_sdk_is_understood(write_key, live_server, sdk_http, gzip):
    # sync_mode posts each call as its own /v1/batch (Basic auth, writeKey and sentAt in the body)
    # and raises if the answer is not a success.
    sdk = Client(write_key, host=live_server.url, gzip=gzip, sync_mode=True, max_retries=0)
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
