"""The demo campaign and `manage.py demo_setup`: what a person sees on a fresh machine."""

from __future__ import annotations

import base64
import json
import re
import shlex
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from campaigns.authoring.demo import DEMO_CAMPAIGN, demo_batch
from campaigns.authoring.rendering import render_context, template_render
from campaigns.authoring.transfer import document_loads, rules_import
from campaigns.models import Rule, Send, Template
from events.models import Event, WriteKey
from tests import baker_recipes
from tests.conftest import identify, later, run_worker, track

pytestmark = pytest.mark.django_db


def demo_setup(*args: str) -> str:
    out = StringIO()
    call_command("demo_setup", *args, stdout=out)
    return out.getvalue()


def import_demo() -> None:
    rules_import(document_loads(DEMO_CAMPAIGN.read_text(encoding="utf-8")))


def rule_row(name: str) -> tuple:
    rule = Rule.objects.get(name=name)
    return (
        rule.trigger_event,
        rule.template.name,
        rule.template.category,
        rule.delay,
        rule.exit_events,
        rule.dedupe_policy,
        rule.active,
    )


def test_the_demo_campaign_has_the_three_specified_rules():
    import_demo()
    assert rule_row("Welcome") == ("user_signup", "Welcome", "transactional", timedelta(0), [], "once_per_user", True)
    assert rule_row("Cart recovery") == (
        "cart_abandoned",
        "Cart recovery",
        "marketing",
        timedelta(minutes=60),
        ["order_completed"],
        "per_user_day",
        True,
    )
    assert rule_row("Order receipt") == (
        "order_completed",
        "Order receipt",
        "transactional",
        timedelta(0),
        [],
        "per_event",
        True,
    )


def test_the_demo_file_is_exactly_what_export_writes():
    import_demo()
    out = StringIO()
    call_command("export_rules", stdout=out)
    assert out.getvalue() == DEMO_CAMPAIGN.read_text(encoding="utf-8")


def render(name: str, properties: dict, traits: dict):
    template = Template.objects.get(name=name)
    return template_render(template, render_context(properties=properties, user_id="u1", email="", traits=traits))


def test_the_demo_emails_greet_by_name_and_fall_back_to_there():
    import_demo()
    assert render("Welcome", {}, {"first_name": "Ada"}).subject == "Welcome, Ada! Your account is ready"
    assert render("Welcome", {}, {}).subject == "Welcome! Your account is ready"
    assert render("Welcome", {}, {}).text.startswith("Hi there,\n")
    assert "Welcome, there!" in render("Welcome", {}, {}).html


def test_the_cart_recovery_email_lists_the_cart_when_the_event_has_one():
    import_demo()
    cart = {"products": [{"name": "Blue mug", "quantity": 2, "price": 12.5}], "value": 25, "currency": "EUR"}
    email = render("Cart recovery", cart, {"first_name": "Ada"})
    assert email.subject == "You left something in your cart, Ada"
    assert "  - Blue mug x 2, 12.50\n" in email.text
    assert "Cart total: 25.00 EUR" in email.text
    assert "<li>Blue mug &times; 2, 12.50</li>" in email.html
    bare = render("Cart recovery", {}, {})
    assert "Cart total" not in bare.text
    assert "https://shop.example.com/cart" in bare.text


def test_the_receipt_shows_the_order_number_and_total():
    import_demo()
    email = render("Order receipt", {"order_id": "A-1001", "total": 41.9, "currency": "USD"}, {})
    assert email.subject == "Your receipt for order A-1001"
    assert "Order number: A-1001" in email.text
    assert "Total: 41.90 USD" in email.text
    assert "<strong>A-1001</strong>" in email.html
    assert "Total: 0.00" in render("Order receipt", {"order_id": "A-1002", "total": 0}, {}).text


def sends_of(rule: str) -> list[str]:
    return list(Send.objects.filter(rule__name=rule).order_by("id").values_list("state", flat=True))


def test_the_demo_rules_send_welcome_once_recover_carts_until_an_order_and_receipt_every_order(api, sendgrid):
    import_demo()
    api.batch([identify("u1", "u1@example.com", first_name="Ada"), track("user_signup", "u1")])
    api.batch([track("user_signup", "u1"), track("cart_abandoned", "u1", value=30)])
    run_worker()
    api.batch([track("order_completed", "u1", order_id="A-1", total=30)])
    api.batch([track("order_completed", "u1", order_id="A-2", total=12)])
    run_worker(at=later(minutes=61))

    assert sends_of("Welcome") == ["sent"]
    assert sends_of("Cart recovery") == ["cancelled"]
    assert sends_of("Order receipt") == ["sent", "sent"]
    assert sorted(m.subject for m in sendgrid.accepted) == [
        "Welcome, Ada! Your account is ready",
        "Your receipt for order A-1",
        "Your receipt for order A-2",
    ]


def test_cart_recovery_is_sent_an_hour_later_when_no_order_follows(api, sendgrid):
    import_demo()
    api.batch([identify("u2", "u2@example.com"), track("cart_abandoned", "u2", value=30)])
    run_worker(at=later(minutes=30))
    assert sends_of("Cart recovery") == ["scheduled"]
    run_worker(at=later(minutes=61))
    assert sends_of("Cart recovery") == ["sent"]
    assert [m.subject for m in sendgrid.accepted] == ["You left something in your cart"]


def printed_password(output: str) -> str:
    match = re.search(r"password (\S+)", output)
    assert match, output
    return match.group(1)


def printed_curl(output: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.strip().startswith("curl "))
    return shlex.split(line)


def test_demo_setup_on_a_fresh_database_prepares_everything_and_shows_secrets_once(client):
    output = demo_setup()

    assert "imported 3 rules from demo_campaign.json: Cart recovery, Order receipt, Welcome" in output
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password(printed_password(output))
    assert WriteKey.objects.get().name == "demo"

    curl = printed_curl(output)
    raw_key = curl[curl.index("-u") + 1].removesuffix(":")
    assert curl[-1] == "http://127.0.0.1:8000/v1/batch"
    assert json.loads(curl[curl.index("-d") + 1]) == demo_batch()
    auth = "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()
    response = client.post("/v1/batch", demo_batch(), content_type="application/json", HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200, response.content
    assert Event.objects.filter(name="user_signup", user_id="demo-user-1").exists()


def test_demo_setup_prints_links_to_the_port_make_run_serves_on():
    output = demo_setup("--base-url", "http://127.0.0.1:8123/")

    assert printed_curl(output)[-1] == "http://127.0.0.1:8123/v1/batch"
    assert "http://127.0.0.1:8123/admin/  user admin" in output


def test_demo_setup_a_second_time_creates_nothing_and_prints_no_secret():
    first = demo_setup()
    rules_before = list(Rule.objects.values_list("pk", "updated_at"))

    second = demo_setup()

    assert list(Rule.objects.values_list("pk", "updated_at")) == rules_before
    assert get_user_model().objects.count() == 1
    assert WriteKey.objects.count() == 1
    assert "Campaign   not imported: 3 rules already in the database (edits are kept)" in second
    assert "user 'admin' exists; to set a new password: manage.py changepassword admin" in second
    assert "cannot be shown" in second
    assert "/admin/events/writekey/add/" in second
    assert printed_password(first) not in second
    assert "shown once" not in second
    raw_key = printed_curl(first)[printed_curl(first).index("-u") + 1].removesuffix(":")
    assert raw_key not in second
    assert '"$WRITE_KEY:"' in second


def test_demo_setup_keeps_a_marketers_rules_and_another_superuser():
    baker_recipes.rule.make(name="mine", trigger_event="user_signup")
    get_user_model().objects.create_superuser("alice", "alice@example.com", "secret-pw-1")

    output = demo_setup()

    assert list(Rule.objects.values_list("name", flat=True)) == ["mine"]
    assert "not imported: 1 rule already in the database" in output
    assert "superuser 'alice' exists; to set a new password: manage.py changepassword alice" in output
    assert not get_user_model().objects.filter(username="admin").exists()


def test_demo_setup_issues_a_new_key_when_every_key_is_revoked():
    key, _ = WriteKey.issue(name="old")
    key.revoked_at = timezone.now()
    key.save()
    output = demo_setup()
    assert WriteKey.objects.filter(name="demo", revoked_at=None).count() == 1
    assert "demo: tm_" in output
