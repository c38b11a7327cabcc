"""Admin: a rule's window, cap and goal as marketers type them; the campaign settings as one row."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from campaigns.authoring.summary import rule_summary
from campaigns.matching.rules import RuleData
from campaigns.matching.windows import SendWindow
from campaigns.models import CampaignSettings, Rule
from tests import baker_recipes
from tests.test_admin_rules import ADD_URL, errors_of, recovery, rule_form

__all__ = ["recovery"]  # the fixture, used by name

SETTINGS_URL = "/admin/campaigns/campaignsettings/"


def test_a_rule_takes_a_window_with_weekday_checkboxes_a_cap_and_a_goal(admin_client, recovery):
    timing: dict[str, Any] = {
        "window_start": "08:00", "window_end": "20:00", "window_days": ["0", "1", "4"], "cap_count": "2",
        "cap_period": "1 week", "capped_action": "delay", "goal_event": " order_completed ", "goal_window": "2 days",
    }  # fmt: skip
    form = rule_form(recovery, **timing)
    assert admin_client.post(ADD_URL, form).status_code == 302
    rule = Rule.objects.get()
    assert (rule.window_start, rule.window_end, rule.window_days) == (time(8), time(20), [0, 1, 4])
    assert (rule.cap_count, rule.cap_period, rule.capped_action) == (2, timedelta(weeks=1), "delay")
    assert (rule.goal_event, rule.goal_window) == ("order_completed", timedelta(days=2))
    page = admin_client.get(f"/admin/campaigns/rule/{rule.pk}/change/").content.decode()
    assert 'name="cap_period" value="1w"' in page
    assert 'name="window_days" value="4" id="id_window_days_4" checked' in page
    assert "Sent only between 08:00 and 20:00 on Monday, Tuesday, Friday, in the contact&#x27;s time zone." in page


def test_left_empty_the_timing_fields_take_their_defaults(admin_client, recovery):
    assert admin_client.post(ADD_URL, rule_form(recovery, cap_period="", goal_window="")).status_code == 302
    rule = Rule.objects.get()
    assert (rule.cap_count, rule.cap_period, rule.capped_action, rule.window_start, rule.window_days) == (
        None, timedelta(days=1), "skip", None, []
    )  # fmt: skip
    assert rule.goal_window == timedelta(days=3)


def test_half_a_window_or_a_zero_cap_is_refused_on_its_field(admin_client, recovery):
    page = errors_of(admin_client.post(ADD_URL, rule_form(recovery, window_end="20:00", cap_count="0")))
    assert "Give both the opening and the closing time (00:00 to 00:00 for the whole day)." in page
    assert "At least 1; leave it empty for no cap." in page
    assert not Rule.objects.exists()


def test_the_summary_mentions_window_cap_and_goal():
    rule = RuleData(
        id=1, name="r", trigger_event="cart_abandoned", template_name="Recovery",
        window=SendWindow(time(8), time(20), (0, 1, 2, 3, 4)), cap_count=1, cap_period=timedelta(days=1),
        capped_action="delay", goal_event="order_completed", goal_window=timedelta(days=3),
    )  # fmt: skip
    assert rule_summary(rule) == (
        "When cart_abandoned happens, send 'Recovery' right away; at most once per event. "
        "Sent only between 08:00 and 20:00 on Monday to Friday, in the contact's time zone. "
        "At most 1 email from this rule per user within 1 day; more are delayed until there is room. "
        "Counts as converted when order_completed happens within 3 days."
    )


def test_campaign_settings_are_one_row_edited_in_place(admin_client):
    response = admin_client.get(SETTINGS_URL)
    assert response.status_code == 302
    assert response["Location"] == f"{SETTINGS_URL}1/change/"
    page = admin_client.get(response["Location"]).content.decode()
    assert "Delete" not in page and "Save and add another" not in page
    assert admin_client.get(f"{SETTINGS_URL}add/").status_code == 403
    response = admin_client.post(
        f"{SETTINGS_URL}1/change/",
        {"marketing_cap_count": "3", "marketing_cap_period": "1 week", "window_start": "09:00",
         "window_end": "18:00", "window_days": ["5", "6"], "fallback_timezone": "Europe/Paris"},
    )  # fmt: skip
    assert response.status_code == 302
    settings = CampaignSettings.current()
    assert (settings.marketing_cap_count, settings.marketing_cap_period) == (3, timedelta(weeks=1))
    assert (settings.window_start, settings.window_end, settings.window_days) == (time(9), time(18), [5, 6])
    assert CampaignSettings.objects.count() == 1


def test_an_unknown_fallback_zone_is_refused(admin_client):
    baker_recipes.campaign_settings.make()
    page = errors_of(
        admin_client.post(f"{SETTINGS_URL}1/change/", {"marketing_cap_period": "1 day", "fallback_timezone": "Paris"})
    )
    assert "&#x27;Paris&#x27; is not an IANA time zone such as Europe/Paris or UTC." in page
