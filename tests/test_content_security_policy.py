"""The Content-Security-Policy (django-csp) on the Admin and the preference page: strict, no inline
script, and the nonce on the preference page's own <style> is the one its header allows."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from campaigns.consent.policy import preferences_url
from tests import baker_recipes
from tests.test_template_preview import directives


def test_the_admin_answers_with_a_strict_policy(client):
    policy = directives(client.get("/admin/login/")["Content-Security-Policy"])

    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"  # no page of the Admin needs a nonce or inline styles
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'self'"


def test_the_preference_page_styles_itself_with_the_nonce_its_header_allows(client, db):
    contact = baker_recipes.contact.make(email="ann@example.com")
    response = client.get(urlsplit(preferences_url(contact)).path)

    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    [nonce] = re.findall(r"<style nonce=\"([^\"]+)\">", response.content.decode())
    assert policy["style-src"] == f"'self' 'nonce-{nonce}'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "<script" not in response.content.decode()
