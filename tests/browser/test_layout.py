"""The Admin reads well on a laptop (1366 px) and a desktop (1920 px) screen: nothing wider than the
window, no chart label over another. Screenshots of each page at both widths go to tests/artifacts/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from campaigns.latency import DELAYED, IMMEDIATE
from campaigns.models import Rule, Send
from events.models import Contact
from tests.browser.conftest import Login, login, screenshot

# Browser tests start the real web process too, so `-m "not e2e"` leaves them out with the others.
pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# A common laptop screen and a common desktop screen.
SCREENS = [(1366, 768), (1920, 1080)]


def overflow(page: Page) -> int:
    """How many pixels the page, or any table inside a scrolling box, is wider than what shows."""
    return int(
        page.evaluate(
            """() => Math.max(
                document.documentElement.scrollWidth - document.documentElement.clientWidth,
                ...[...document.querySelectorAll('table')].map(t => {
                    const box = t.parentElement; return t.getBoundingClientRect().right
                        - Math.min(box.getBoundingClientRect().right, window.innerWidth);
                }))"""
        )
    )


def overlapping_labels(page: Page, svg: str) -> list[tuple[str, str]]:
    """Pairs of text labels of the chart `svg` (a selector) whose boxes overlap or leave the chart."""
    return [
        tuple(pair)
        for pair in page.evaluate(
            """(selector) => {
                const svg = document.querySelector(selector), frame = svg.getBoundingClientRect();
                const texts = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
                const found = [];
                texts.forEach(([label, box], i) => {
                    if (box.left < frame.left - 0.5 || box.right > frame.right + 0.5)
                        found.push([label, 'outside the chart']);
                    texts.slice(i + 1).forEach(([other, o]) => {
                        if (box.left < o.right && o.left < box.right && box.top < o.bottom && o.top < box.bottom)
                            found.push([label, other]);
                    });
                });
                return found;
            }""",
            svg,
        )
    ]


def emails_sent(rule: Rule, *, kind: str, latency_ms: int, count: int) -> None:
    """`count` emails of the rule sent an hour ago, each `latency_ms` after it was due (or its event)."""
    contact, _ = Contact.objects.get_or_create(user_id="ann", defaults={"email": "ann@example.com"})
    at = timezone.now() - timedelta(hours=1)
    start = Send.objects.count()
    Send.objects.bulk_create(
        Send(
            rule=rule,
            contact=contact,
            triggered_at=at,
            due_at=at,
            dedupe_key=f"k-{start + n}",
            state=Send.State.SENT,
            sent_at=at,
            latency_kind=kind,
            latency_ms=latency_ms,
        )
        for n in range(count)
    )


@pytest.mark.parametrize(("width", "height"), SCREENS)
def test_the_rule_list_and_the_dashboard_fit_the_screen(
    page: Page, marketer: Login, demo_campaign: dict[str, Rule], width: int, height: int
) -> None:
    # Four-digit counts side by side in one bucket and its neighbour: the widest labels a busy week draws.
    for latency_ms, count in ((700, 1500), (1500, 1200)):
        emails_sent(demo_campaign["user_signup"], kind=IMMEDIATE, latency_ms=latency_ms, count=count)
        emails_sent(demo_campaign["cart_abandoned"], kind=DELAYED, latency_ms=latency_ms, count=count - 1)
    page.set_viewport_size({"width": width, "height": height})
    login(page, marketer)

    page.goto("/admin/campaigns/rule/")
    expect(page.get_by_role("columnheader", name="Last change")).to_be_visible()
    screenshot(page, f"rules-{width}")
    rules_overflow = overflow(page)

    page.goto("/admin/campaigns/performance/")
    screenshot(page, f"dashboard-{width}")

    assert rules_overflow <= 0, "the rule list is wider than the window"
    assert overflow(page) <= 0, "the dashboard is wider than the window"
    assert overlapping_labels(page, "#latency-chart svg[role=img]") == []
    assert overlapping_labels(page, "#funnel-chart svg[role=img]") == []
