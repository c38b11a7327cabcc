"""Someone guesses an Admin password: after AXES_FAILURE_LIMIT wrong ones the login page says the
username is locked from that address, the right password is refused too, and `axes_reset` (what an
administrator runs) lets the right password in again."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import Page, expect

from tests.browser.conftest import Login, login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def attempt(page: Page, username: str, password: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_wrong_passwords_lock_the_login_until_an_administrator_resets_it(page: Page, marketer: Login) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(page, marketer.username, "not-the-password")
        expect(page.locator(".errornote")).to_contain_text("Please enter the correct username and password")

    attempt(page, marketer.username, "not-the-password")
    locked = page.locator("#login-locked")
    expect(locked).to_contain_text("Too many failed logins")
    expect(locked).to_contain_text("15 minutes")
    screenshot(page, "login-locked")

    # The right password is refused while the lockout lasts.
    attempt(page, marketer.username, marketer.password)
    expect(page.locator("#login-locked")).to_be_visible()

    call_command("axes_reset", verbosity=0)

    login(page, marketer)
