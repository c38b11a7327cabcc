"""Admin login throttling (django-axes): a username is locked out from one address after
AXES_FAILURE_LIMIT wrong passwords, the right one is refused meanwhile, an administrator unlocks it,
and X-Forwarded-For is believed only as far as our own proxies wrote it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, RequestFactory

from triggermail.login_throttle import client_ip

PASSWORD = "correct horse battery staple"
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def mara(db: None) -> User:
    return User.objects.create_user("mara", password=PASSWORD, is_staff=True, is_superuser=True)


def log_in(client: Client, password: str, **headers: str) -> tuple[int, str]:
    response = client.post(LOGIN, {"username": "mara", "password": password}, **headers)  # type: ignore[arg-type]
    return response.status_code, response.content.decode()


def test_five_wrong_passwords_lock_the_username_from_that_address(client, mara, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        status, page = log_in(client, "wrong")
        assert status == 200 and "Please enter the correct username and password" in page

    status, page = log_in(client, "wrong")

    assert status == 429
    assert "Too many failed logins" in page and "locked from your address for 15 minutes" in page
    assert "axes_reset_username" in page
    # The right password does not open a locked login; it even starts the wait again.
    status, page = log_in(client, PASSWORD)
    assert status == 429 and "Too many failed logins" in page
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_address_so_a_stranger_cannot_lock_mara_out(client, mara, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wrong", REMOTE_ADDR="203.0.113.9")

    status, _ = log_in(Client(), PASSWORD, REMOTE_ADDR="198.51.100.7")

    assert status == 302


@pytest.mark.parametrize("command", [["axes_reset"], ["axes_reset_username", "mara"], ["axes_reset_ip", "127.0.0.1"]])
def test_an_administrator_unlocks_with_a_command(client, mara, settings, command):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wrong")
    assert log_in(client, PASSWORD)[0] == 429

    call_command(*command, verbosity=0)

    assert log_in(client, PASSWORD)[0] == 302
    assert client.session["_auth_user_id"] == str(mara.pk)


def test_a_forged_forwarded_for_does_not_escape_the_lockout(client, mara, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # Our proxy appends the address it saw (192.0.2.50); what the client wrote before it changes each time.
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}, 192.0.2.50")

    status, _ = log_in(client, PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9, 192.0.2.50")

    assert status == 429


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "client"),
    [
        (0, "198.51.100.7", "10.0.0.2", "10.0.0.2"),  # no proxy trusted: the header is the client's word
        (1, "198.51.100.7", "10.0.0.2", "198.51.100.7"),
        (1, "6.6.6.6, 198.51.100.7", "10.0.0.2", "198.51.100.7"),  # a forged entry left of the proxy's
        (2, "6.6.6.6, 198.51.100.7, 10.0.0.9", "10.0.0.2", "198.51.100.7"),
        (1, "", "10.0.0.2", "10.0.0.2"),  # the request did not come through the proxy
    ],
)
def test_the_clients_address_is_what_our_own_proxies_saw(settings, proxies, forwarded, remote, client):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/admin/login/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_ip(request) == client


def test_the_test_clients_login_and_force_login_still_work(client, mara):
    assert client.login(username="mara", password=PASSWORD)
    assert client.get("/admin/").status_code == 200

    other = Client()
    other.force_login(mara)
    assert other.get("/admin/").status_code == 200
