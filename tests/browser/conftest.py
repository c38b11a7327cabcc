"""Browser tests: Debian's Chromium, driven by Playwright, against the real web process.

A marketer works in Django Admin as served by gunicorn on the test database (`harness/processes.py`),
not by Django's live_server, which dropped connections on PostgreSQL in this project. gunicorn is
started per test and stopped before pytest-django flushes the database, as in the end-to-end tests;
Chromium is started once for the whole package and each test gets a fresh browser context (its own
cookies), so the tests share nothing but the browser process.

Screenshots of the pages a marketer looks at are written to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import base64
import importlib
import json
import secrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import connections
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright

from campaigns.authoring.demo import DEMO_CAMPAIGN
from campaigns.authoring.history import rules_import_recorded
from campaigns.authoring.transfer import document_loads
from campaigns.models import Rule
from harness.processes import BASE_DIR, web_serving
from harness.sendgrid_server import SendGridServer

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = BASE_DIR / "tests" / "artifacts"
# The flags this machine's Chromium needs (see the machine notes): no sandbox as root, no GPU, and
# none of the background traffic that a closed network refuses. Playwright adds --headless and a
# fresh --user-data-dir of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# How long an `expect` or an action waits for the page: generous for a 2-core machine running
# gunicorn, Chromium and the test at once; a passing step returns as soon as its condition holds.
TIMEOUT_MS = 15_000

# The data migration that defines the "Marketing" group: its list of permissions is what a marketer has.
MARKETING_MIGRATION = importlib.import_module("campaigns.migrations.0006_marketing_group")
# ... less what later migrations took away from it.
MARKETING_REMOVED = importlib.import_module("campaigns.migrations.0012_marketing_group_without_idempotency_keys")
# ... and plus what later migrations gave it.
MARKETING_ADDED = [importlib.import_module("campaigns.migrations.0016_translations_and_engagement")]
MARKETING_VARIANTS = importlib.import_module("campaigns.migrations.0015_rule_variants")


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; `make deps-system` installs Debian's chromium package")
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API runs an asyncio event loop on this thread (in a greenlet) for as long
        # as it is started, so Django's ORM sees a "running event loop" and refuses every query the
        # tests and pytest-django make (SynchronousOnlyOperation). The test code itself is plain
        # synchronous code, so that check does not apply; it is lifted only while Playwright runs,
        # i.e. for this package's tests, and restored before any other test.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        expect.set_options(timeout=TIMEOUT_MS)
        # With an event loop running, Django keeps its connections per asyncio context instead of per
        # thread (asgiref's Local), so the tests get a new connection while Playwright runs and the
        # one from before stays open, idle: on PostgreSQL, a session that the wait for the stopped
        # web process's sessions (and the final DROP DATABASE) would wait on forever. Each side's
        # connections are closed before the other side's are used.
        connections.close_all()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
                connections.close_all()


@pytest.fixture
def web(transactional_db: None, sendgrid_server: SendGridServer, tmp_path: Path) -> Iterator[str]:
    """The production web server (gunicorn) on the test database; its base URL.

    Its email goes through Anymail's SendGrid backend to the local SendGrid-compatible server.
    """
    sendgrid_server.reset()
    # The web process is ordinary synchronous Django; it must keep Django's async-safety check.
    with web_serving(
        sendgrid_url=sendgrid_server.url, log_dir=tmp_path, drop_env=["DJANGO_ALLOW_ASYNC_UNSAFE"]
    ) as base_url:
        yield base_url


@pytest.fixture
def page(chromium: Browser, web: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser tab (its own cookies) pointed at the web process."""
    context = chromium.new_context(base_url=web, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    violations = csp_violations_watch(tab)
    try:
        yield tab
        # Every browser test runs under the site's Content-Security-Policy: anything it refused on the
        # way (a style, a script, a frame) is a part of the Admin that does not work in production.
        assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)
    finally:
        # The page as it was when the test failed; a passing run removes an earlier run's.
        failure = ARTIFACTS / f"failed-{request.node.name}.png"
        call = getattr(request.node, "rep_call", None)
        if call is not None and call.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=failure, full_page=True)
        else:
            failure.unlink(missing_ok=True)
        context.close()


def csp_violations_watch(tab: Page) -> list[str]:
    """The Content-Security-Policy violations Chromium reports on this tab (any frame), as they come."""
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(f"{tab.url}: {message.text}")

    tab.on("console", on_console)
    return violations


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Keeps each phase's report on the test, so the `page` fixture can screenshot a failed test.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@dataclass
class Login:
    username: str
    password: str


def marketing_group() -> Group:
    """The "Marketing" group, as the data migration made it.

    pytest-django's flush after every transactional test empties the auth tables, taking the rows
    made by data migrations with them; the group is then made again from the migration's own list.
    """
    group, created = Group.objects.get_or_create(name=MARKETING_MIGRATION.GROUP)
    if created:
        added = [(app, models) for migration in MARKETING_ADDED for app, models in migration.PERMISSIONS.items()]
        for app_label, models_actions in [*MARKETING_MIGRATION.PERMISSIONS.items(), *added]:
            for model, actions in models_actions.items():
                removed = MARKETING_REMOVED.REMOVED.get(app_label, {}).get(model, ())
                codenames = [f"{action}_{model}" for action in actions if action not in removed]
                group.permissions.add(
                    *Permission.objects.filter(
                        content_type__app_label=app_label, content_type__model=model, codename__in=codenames
                    )
                )
        codenames = [f"{action}_rulevariant" for action in MARKETING_VARIANTS.ACTIONS]
        group.permissions.add(*Permission.objects.filter(content_type__app_label="campaigns", codename__in=codenames))
    return group


@pytest.fixture
def marketer(transactional_db: None) -> Login:
    """A staff user who is a member of "Marketing" and nothing more (not a superuser)."""
    password = secrets.token_urlsafe(12)
    user = User.objects.create_user("mara", email="mara@example.com", password=password, is_staff=True)
    user.groups.add(marketing_group())
    return Login(username=user.username, password=password)


@pytest.fixture
def demo_campaign(transactional_db: None) -> dict[str, Rule]:
    """The demo campaign a fresh installation imports (recorded, as `demo_setup` does), by trigger event."""
    rules_import_recorded(document_loads(DEMO_CAMPAIGN.read_text(encoding="utf-8")))
    return {rule.trigger_event: rule for rule in Rule.objects.select_related("template")}


def login(page: Page, user: Login) -> None:
    """Log in through Admin's login form, as a person does."""
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Rules, templates and what they sent")).to_be_visible()


def rule_row(page: Page, table: str, rule: str) -> Locator:
    """The row of `table` (a CSS selector: the simulator's results, a decision trace) that links to `rule`."""
    return page.locator(table).get_by_role("row").filter(has=page.get_by_role("link", name=rule, exact=True))


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as tests/artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    # Chromium paints a sandboxed frame (the email preview runs in a process of its own) only inside
    # the viewport, and a full-page screenshot leaves it blank; so the viewport is made as tall as the page.
    viewport = page.viewport_size
    assert viewport is not None
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": max(height, viewport["height"])})
    try:
        page.screenshot(path=path)
    finally:
        page.set_viewport_size(viewport)
    return path


def events_post(base_url: str, write_key: str, messages: list[dict[str, Any]]) -> None:
    """POST a batch to the ingest API as a backend does (HTTP Basic with the write key).

    Without `sentAt`, so that no clock-skew correction moves the events' timestamps.
    """
    body = json.dumps({"batch": messages}).encode()
    request = urllib.request.Request(
        f"{base_url}/v1/batch",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    assert answer == {"success": True}, answer
