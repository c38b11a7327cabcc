"""Requests posted at the same time: each its own connection, the same contacts, no deadlock."""

from __future__ import annotations

import pytest
from django.test import Client

from events.models import Contact, Event
from tests.conftest import Api, track
from tests.test_concurrency import in_parallel

USERS = [f"u{i}" for i in range(20)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_touching_the_same_contacts_in_any_order_all_succeed(write_key):
    def post(worker: int) -> None:
        # Even workers name the users in one order, odd workers in the other.
        users = USERS if worker % 2 == 0 else USERS[::-1]
        context = {"traits": {f"seen_by_{worker}": True}}
        messages = [{**track("viewed", user, message_id=f"w{worker}-{user}"), "context": context} for user in users]
        response = Api(Client(), write_key).batch(messages)
        assert response.status_code == 200, response.content

    assert in_parallel(post) == []
    assert Event.objects.count() == 4 * len(USERS)
    for contact in Contact.objects.all():
        assert contact.traits == {f"seen_by_{worker}": True for worker in range(4)}
