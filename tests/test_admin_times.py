"""Every time in Admin is written one way: "2026-03-02 07:00:00 UTC" in the site's zone, and a
contact's local time says so, with the contact's zone."""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

import time_machine
from django.test import Client

from campaigns.models import Send
from events.models import Contact
from tests import baker_recipes
from tests.conftest import identify, run_worker, track
from tests.world import rule_make
from triggermail.times import time_text

# 03:00 in Paris (winter time), 22 minutes and 7.5 seconds past: microseconds must not show.
NIGHT = datetime.fromisoformat("2026-03-02T02:22:07.512345+00:00")
# Django's default English formats: "March 2, 2026, 2:22 a.m." and the like.
DJANGO_DEFAULT = re.compile(r"[ap]\.m\.|\b(?:Jan|Feb|March|April|May|June|July|Aug|Sept|Oct|Nov|Dec)\.? \d+, \d{4}")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def test_a_time_names_its_zone_and_a_contacts_time_says_whose_it_is():
    assert time_text(NIGHT) == "2026-03-02 02:22:07 UTC"
    assert time_text(NIGHT, zone=ZoneInfo("Europe/Paris")) == "2026-03-02 03:22:07 contact's time (Europe/Paris)"
    assert time_text(None) == "—"


def test_the_send_and_contact_pages_show_times_with_seconds_and_zone_and_no_iso(admin_client: Client, api, sendgrid):
    rule_make("welcome", "user_signup", window_start=time(8), window_end=time(20))
    with time_machine.travel(NIGHT, tick=False):
        api.batch([identify("u1", "u1@example.com", timezone="Europe/Paris"), track("user_signup", "u1")])
    run_worker(at=NIGHT)
    send = Send.objects.get()
    contact = Contact.objects.get()

    pages = {
        "sends": admin_client.get("/admin/campaigns/send/").content.decode(),
        "send": admin_client.get(f"/admin/campaigns/send/{send.pk}/change/").content.decode(),
        "contact": admin_client.get(f"/admin/events/contact/{contact.pk}/change/").content.decode(),
    }

    # Due when the Paris window opens at 08:00, i.e. 07:00 UTC.
    assert '<td class="field-due_at nowrap">2026-03-02 07:00:00 UTC</td>' in pages["sends"]
    assert "2026-03-02 07:00:00 UTC" in pages["send"]
    assert "2026-03-02 07:00:00 UTC = 2026-03-02 08:00:00 contact&#x27;s time (Europe/Paris)" in pages["contact"]
    for name, page in pages.items():
        assert not ISO.search(page), name
        assert not DJANGO_DEFAULT.search(page), name


def test_the_history_writes_its_times_the_same_way_without_a_double_period(admin_client: Client):
    rule = rule_make("welcome", "user_signup")
    with time_machine.travel(NIGHT, tick=False):
        record = baker_recipes.change_record.make(
            object_id=rule.pk, object_name=rule.name, before={"name": "welcome"}, after={"name": "welcome"}
        )

    history = admin_client.get(f"/admin/campaigns/rule/{rule.pk}/history/").content.decode()
    restore = admin_client.get(f"/admin/campaigns/rule/{rule.pk}/history/{record.version}/restore/").content.decode()

    assert "2026-03-02 02:22:07 UTC" in history
    assert "on 2026-03-02 02:22:07 UTC." in restore
    for page in (history, restore):
        assert not DJANGO_DEFAULT.search(page)
        assert ".." not in re.sub(r"\.\.[/.]", "", page.split("<body")[1])
