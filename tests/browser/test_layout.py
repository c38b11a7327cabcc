"""The Admin reads well on a laptop (1366 px) and a desktop (1920 px) screen: nothing wider than the
window, no chart label over another. Screenshots of each page at both widths go to tests/artifacts/."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from campaigns.models import Rule, Send
from campaigns.reporting.latency import DELAYED, IMMEDIATE
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
    dashboard_overflow = overflow(page)
    charts = ("latency-chart", "funnel-chart")
    overlaps = {chart: overlapping_labels(page, f"#{chart} svg[role=img]") for chart in charts}

    # Where the times are: every one in the same format, with seconds and the zone.
    page.goto("/admin/campaigns/send/")
    expect(page.locator("td.field-sent_at").first).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))
    screenshot(page, f"sends-{width}")
    page.goto(f"/admin/events/contact/{Contact.objects.get(user_id='ann').pk}/change/")
    screenshot(page, f"contact-{width}")

    assert rules_overflow <= 0, "the rule list is wider than the window"
    assert dashboard_overflow <= 0, "the dashboard is wider than the window"
    assert overlaps == {"latency-chart": [], "funnel-chart": []}


def placeholders_cut(page: Page) -> list[str]:
    """The placeholders of the page's visible inputs that are wider than their box (in its own font)."""
    return list(
        page.evaluate(
            """() => {
                const context = document.createElement('canvas').getContext('2d');
                // Visible ones only: the inline's hidden template row has no width.
                const inputs = [...document.querySelectorAll('input[placeholder]')].filter(i => i.offsetParent);
                return inputs.filter(input => {
                    const style = getComputedStyle(input);
                    context.font = style.font;
                    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
                    return context.measureText(input.placeholder).width > room;
                }).map(input => input.name + ': ' + input.placeholder);
            }"""
        )
    )


def test_a_marketer_changes_a_demo_rule_and_restores_it_as_imported(
    page: Page, marketer: Login, demo_campaign: dict[str, Rule]
) -> None:
    recovery = demo_campaign["cart_abandoned"]
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, marketer)

    page.goto(f"/admin/campaigns/rule/{recovery.pk}/change/")
    # Hints read in full, a cooldown of zero reads as in the rule list, and the send window (the
    # contact's time) has no "Now" button that would fill in the marketer's clock.
    assert placeholders_cut(page) == []
    expect(page.get_by_label("Cooldown")).to_have_value("none")
    expect(page.get_by_role("link", name="Now")).to_have_count(0)
    screenshot(page, "rule-form-1366")
    page.get_by_label("Delay").fill("5 minutes")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")

    page.get_by_role("link", name="History").click()
    versions = page.locator("#history-records tbody th")
    expect(versions).to_have_text(["#2", "#1"])
    expect(page.locator("#history-records")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"))
    screenshot(page, "history-1366")
    page.get_by_role("row").filter(has_text="imported").get_by_role("link", name="Restore this version").click()
    page.get_by_role("button", name="Yes, restore version #1").click()

    expect(page.locator(".messagelist")).to_contain_text("Restored version #1")
    expect(versions).to_have_text(["#3", "#2", "#1"])
    screenshot(page, "history-restored-1366")
    recovery.refresh_from_db()
    assert recovery.delay == timedelta(hours=1)
