"""Write keys in the admin: issued with a name, shown once, stored hashed, revoked not deleted."""

from __future__ import annotations

import re

from events.models import WriteKey, write_key_hash
from tests.conftest import Api, track

ADD_URL = "/admin/events/writekey/add/"
LIST_URL = "/admin/events/writekey/"


def issued_key(page: str) -> str:
    """The raw key from the success message shown after adding a key."""
    match = re.search(r"tm_[A-Za-z0-9_-]{40,}", page)
    assert match is not None, "the page shows no write key"
    return match.group(0)


def test_adding_a_key_shows_the_raw_key_once_and_stores_only_its_hash(admin_client):
    response = admin_client.post(ADD_URL, {"name": "web shop", "kind": "server"}, follow=True)

    page = response.content.decode()
    assert "stored only as a hash and cannot be shown again" in page
    raw = issued_key(page)
    key = WriteKey.objects.get(name="web shop")
    assert key.key_hash == write_key_hash(raw)
    assert key.prefix == raw[:10]
    assert raw not in (key.name, key.prefix, key.key_hash)
    # Shown once: neither the list nor the key's own page can show it again.
    assert raw not in admin_client.get(LIST_URL).content.decode()
    change_page = admin_client.get(f"/admin/events/writekey/{key.pk}/change/").content.decode()
    assert raw not in change_page
    assert key.key_hash not in change_page


def test_the_issued_key_is_accepted_by_the_ingest_api(admin_client, client):
    response = admin_client.post(ADD_URL, {"name": "backend", "kind": "server"}, follow=True)
    raw = issued_key(response.content.decode())

    assert Api(client, raw).batch([track("user_signup", "u1")]).status_code == 200


def test_the_add_form_asks_for_a_name_a_kind_and_optional_limits_only(admin_client):
    page = admin_client.get(ADD_URL).content.decode()

    assert 'name="name"' in page
    assert 'name="kind"' in page
    assert 'name="rate_limit"' in page and 'name="rate_burst"' in page
    assert 'name="prefix"' not in page
    assert 'name="key_hash"' not in page


def test_a_key_s_prefix_and_hash_cannot_be_edited(admin_client):
    key, _ = WriteKey.issue(name="old name")
    before = (key.prefix, key.key_hash)

    admin_client.post(
        f"/admin/events/writekey/{key.pk}/change/", {"name": "new name", "prefix": "tm_evil", "key_hash": "0" * 64}
    )

    key.refresh_from_db()
    assert key.name == "new name"
    assert (key.prefix, key.key_hash) == before


def test_revoking_keys_refuses_their_requests_with_401(admin_client, api, write_key, key_cache_clock, settings):
    assert api.batch([track("user_signup", "u1")]).status_code == 200
    key = WriteKey.objects.get(key_hash=write_key_hash(write_key))
    other, _ = WriteKey.issue(name="untouched")

    response = admin_client.post(LIST_URL, {"action": "keys_revoke", "_selected_action": [key.pk]}, follow=True)

    assert "Revoked 1 write key" in response.content.decode()
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.revoked_at is not None
    assert other.revoked_at is None
    # Within WRITE_KEY_CACHE_SECONDS of its last read (events/auth.py), a web process may still take it.
    key_cache_clock(settings.WRITE_KEY_CACHE_SECONDS)
    assert api.batch([track("user_signup", "u2")]).status_code == 401


def test_the_list_shows_which_keys_are_revoked(admin_client):
    WriteKey.issue(name="live key")
    revoked, _ = WriteKey.issue(name="dead key")
    admin_client.post(LIST_URL, {"action": "keys_revoke", "_selected_action": [revoked.pk]})

    active_page = admin_client.get(LIST_URL, {"status": "active"}).content.decode()
    revoked_page = admin_client.get(LIST_URL, {"status": "revoked"}).content.decode()

    assert "live key" in active_page and "dead key" not in active_page
    assert "dead key" in revoked_page and "live key" not in revoked_page
    revoked.refresh_from_db()
    assert f"revoked {revoked.revoked_at:%Y-%m-%d}" in revoked_page


def test_keys_are_revoked_not_deleted(admin_client):
    key, _ = WriteKey.issue(name="keep me")

    response = admin_client.post(f"/admin/events/writekey/{key.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert WriteKey.objects.filter(pk=key.pk).exists()


def test_a_key_s_rate_limit_is_set_in_the_admin_and_shown_in_the_list(admin_client, settings):
    settings.INGEST_RATE_LIMIT, settings.INGEST_RATE_BURST = 100.0, 500
    admin_client.post(ADD_URL, {"name": "partner", "kind": "server", "rate_limit": "5", "rate_burst": "10"})
    admin_client.post(ADD_URL, {"name": "backend", "kind": "server"})
    partner = WriteKey.objects.get(name="partner")
    assert (partner.rate_limit, partner.rate_burst) == (5.0, 10)

    # Changed later, it applies from the key's next request (the limit is read with the key).
    admin_client.post(
        f"/admin/events/writekey/{partner.pk}/change/", {"name": "partner", "rate_limit": "2", "rate_burst": "4"}
    )
    listing = admin_client.get(LIST_URL).content.decode()
    assert "2/s, burst 4" in listing
    assert "100/s, burst 500 (default)" in listing


def test_a_rate_limit_of_zero_is_refused_with_a_reason(admin_client):
    response = admin_client.post(ADD_URL, {"name": "x", "kind": "server", "rate_limit": "0", "rate_burst": "0"})

    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0.01." in response.content.decode()
    assert not WriteKey.objects.filter(name="x").exists()
