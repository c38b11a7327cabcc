"""The ingest API's POSTs skip the middleware that serves people (triggermail.middleware): no
session, user, messages or Content-Security-Policy for them, while every security middleware still
runs for them, and the Admin and pages keep the whole stack."""

from __future__ import annotations

import pytest

from tests.conftest import Api, track

pytestmark = pytest.mark.django_db


def test_an_ingest_post_gets_no_session_cookie_or_page_policy(api: Api):
    response = api.batch([track("cart_viewed", "u1", message_id="m-1")])

    assert response.status_code == 200
    assert "Set-Cookie" not in response and not response.cookies
    assert "Content-Security-Policy" not in response
    assert not hasattr(response.wsgi_request, "session") and not hasattr(response.wsgi_request, "user")
    # SecurityMiddleware and XFrameOptionsMiddleware still answer for it.
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_the_ingest_is_still_redirected_to_https_when_the_site_requires_it(api: Api, settings):
    settings.SECURE_SSL_REDIRECT = True

    response = api.batch([track("cart_viewed", "u1", message_id="m-1")])

    assert response.status_code == 301 and response["Location"].startswith("https://")


def test_a_host_not_allowed_is_still_refused(client, write_key: str, settings):
    settings.ALLOWED_HOSTS = ["ingest.example.com"]

    response = Api(client, write_key).batch([track("cart_viewed", "u1")], HTTP_HOST="evil.example.com")

    assert response.status_code == 400


def test_the_admin_and_other_requests_keep_the_whole_stack(client):
    login = client.get("/admin/login/")
    openapi = client.get("/v1/openapi.json")

    assert "Content-Security-Policy" in login and "csrftoken" in login.cookies
    assert hasattr(login.wsgi_request, "session") and not login.wsgi_request.user.is_authenticated
    assert "Content-Security-Policy" in openapi  # only the ingest's POSTs skip it
