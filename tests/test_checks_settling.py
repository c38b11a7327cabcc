"""System checks refuse configurations that would undermine "never twice" or settling from evidence."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks

from harness.sendgrid_webhook import webhook_keypair
from tests.conftest import check_ids


@pytest.fixture
def production(settings):
    """Sending through SendGrid with DEBUG off, and a verification key: a safe production setup."""
    settings.DEBUG = False
    settings.SENDGRID_API_KEY = "SG.real"
    settings.ANYMAIL = {
        "SENDGRID_API_KEY": "SG.real",
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": webhook_keypair().public_key,
    }
    return settings


def test_a_safe_production_configuration_passes(production):
    assert check_ids() == set()


def test_production_without_a_webhook_verification_key_is_an_error(production):
    production.ANYMAIL = {"SENDGRID_API_KEY": "SG.real"}
    [error] = [m for m in run_checks() if m.id == "triggermail.E004"]
    assert "SENDGRID_WEBHOOK_VERIFICATION_KEY" in error.msg
    assert "Signed Event Webhook" in (error.hint or "")


@pytest.mark.parametrize(("debug", "api_key"), [(True, "SG.real"), (False, "")])
def test_development_may_run_without_a_verification_key(settings, debug, api_key):
    settings.DEBUG = debug
    settings.SENDGRID_API_KEY = api_key
    settings.ANYMAIL = {"SENDGRID_API_KEY": api_key}
    assert "triggermail.E004" not in check_ids()


def test_a_verification_key_that_does_not_parse_is_an_error(production):
    production.ANYMAIL = {
        **production.ANYMAIL,
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": "-----BEGIN PUBLIC KEY-----",
    }
    assert check_ids() == {"triggermail.E005"}


def test_the_grace_window_must_outlast_the_stale_sending_window(production):
    production.SENDING_STALE_AFTER = 600
    production.UNKNOWN_GRACE_SECONDS = 600
    assert check_ids() == {"triggermail.E006"}
    production.UNKNOWN_GRACE_SECONDS = 601
    production.AMBIGUOUS_RESEND_AFTER = 601
    assert check_ids() == set()


def test_the_automatic_resend_waits_longer_than_the_stale_window_and_no_longer_than_the_grace(production):
    production.SENDING_STALE_AFTER = 600
    production.UNKNOWN_GRACE_SECONDS = 900
    for too_soon_or_late in (600, 901):
        production.AMBIGUOUS_RESEND_AFTER = too_soon_or_late
        assert check_ids() == {"triggermail.E009"}
    production.AMBIGUOUS_RESEND_AFTER = 900
    assert check_ids() == set()
    # Asking a person never resends, so the window does not matter then.
    production.AMBIGUOUS_SEND_POLICY = "ask_a_person"
    production.AMBIGUOUS_RESEND_AFTER = 1
    assert check_ids() == set()


def test_idempotency_keys_must_be_kept_at_least_two_days(production):
    production.IDEMPOTENCY_KEY_DAYS = 1
    assert check_ids() == {"triggermail.E007"}


@pytest.mark.parametrize("change", [{"max_attempts": 0}, {"max_attempts": 3}, {"ack_failures": False}])
def test_queue_retries_must_stay_off(production, change):
    production.Q_CLUSTER = {**production.Q_CLUSTER, **change}
    assert check_ids() == {"triggermail.E008"}


def test_the_redis_broker_on_sqlite_is_a_warning(production):
    production.Q_CLUSTER = {k: v for k, v in production.Q_CLUSTER.items() if k != "orm"} | {"redis": "redis://x"}
    sqlite = production.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert check_ids() == ({"triggermail.W001"} if sqlite else set())


def test_an_unknown_ambiguous_send_policy_stops_start_up_naming_the_variable():
    env = {**os.environ, "AMBIGUOUS_SEND_POLICY": "resend", "DJANGO_SETTINGS_MODULE": "triggermail.settings"}
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode != 0
    assert "AMBIGUOUS_SEND_POLICY must be one of resend_when_webhook_live, ask_a_person, not 'resend'" in started.stderr
