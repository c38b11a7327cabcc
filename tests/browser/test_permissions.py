"""A marketer runs campaigns, and only campaigns: write keys stay with the engineers."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from events.models import WriteKey
from tests.browser.conftest import Login, login, screenshot

# Browser tests start the real web process too, so `-m "not e2e"` leaves them out with the others.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_a_marketer_can_neither_see_nor_open_the_write_keys(page: Page, marketer: Login, write_key: str) -> None:
    key = WriteKey.objects.get()
    login(page, marketer)

    expect(page.get_by_role("link", name="Rules", exact=True).first).to_be_visible()
    expect(page.get_by_role("link", name="Write keys")).to_have_count(0)

    for path in ("/admin/events/writekey/", "/admin/events/writekey/add/", f"/admin/events/writekey/{key.pk}/change/"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 403, path
        expect(page.get_by_role("heading", name="403 Forbidden")).to_be_visible()
        # Inside the Admin layout: its header, what is missing, and a way back.
        expect(page.get_by_role("link", name="TriggerMail")).to_be_visible()
        expect(page.locator("#forbidden-what")).to_contain_text("write keys")
    screenshot(page, "forbidden")

    page.get_by_role("link", name="Back to the Admin home").click()
    expect(page.get_by_role("heading", name="Rules, templates and what they sent")).to_be_visible()
