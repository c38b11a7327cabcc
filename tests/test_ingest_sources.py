"""messageId deduplication per source (write key), as Segment does: the same message posted twice
by one key is stored once; another key's message reusing that messageId is another message."""

from __future__ import annotations

import pytest
from django.test import Client

from events.models import Event, WriteKey
from tests.conftest import Api, identify, run_worker, track
from tests.world import rule_make

pytestmark = pytest.mark.django_db


def key_api(client: Client, name: str) -> tuple[WriteKey, Api]:
    key, raw = WriteKey.issue(name=name)
    return key, Api(client, raw)


def test_another_key_s_message_reusing_a_message_id_is_stored(client):
    key_a, shop = key_api(client, "shop")
    key_b, billing = key_api(client, "billing")

    assert shop.batch([track("cart_viewed", "u1", message_id="m-1")]).status_code == 200
    assert billing.batch([track("invoice_paid", "u2", message_id="m-1")]).status_code == 200

    stored = {(e.source_id, e.name, e.user_id) for e in Event.objects.filter(message_id="m-1")}
    assert stored == {(key_a.pk, "cart_viewed", "u1"), (key_b.pk, "invoice_paid", "u2")}


def test_the_same_message_twice_from_one_key_is_still_stored_once(client):
    _, shop = key_api(client, "shop")
    _, billing = key_api(client, "billing")
    message = track("cart_viewed", "u1", message_id="m-1")

    assert shop.batch([message]).status_code == 200
    assert billing.batch([message]).status_code == 200
    assert shop.batch([message]).status_code == 200
    assert shop.post("/v1/track", message).status_code == 200

    assert Event.objects.filter(message_id="m-1").count() == 2


def test_a_message_reusing_another_key_s_id_is_processed_and_sends_its_own_email(client, sendgrid):
    rule_make("Receipt", "invoice_paid")
    _, shop = key_api(client, "shop")
    _, billing = key_api(client, "billing")
    shop.batch([identify("u1", "u1@example.com", message_id="id-1"), track("invoice_paid", "u1", message_id="m-1")])
    billing.batch([track("invoice_paid", "u1", message_id="m-1")])

    run_worker()

    # Once per event: two sources, two messages, two receipts.
    assert [m.to for m in sendgrid.accepted] == [["u1@example.com"], ["u1@example.com"]]
