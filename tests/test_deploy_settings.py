"""Deploy settings come from the environment, as an operator sets them.

Each test starts `manage.py` in a fresh process with an environment of its own (nothing inherited
from this test run or a .env but PATH), because the settings are read once, at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from harness.processes import BASE_DIR
from harness.sendgrid_webhook import TEST_WEBHOOK_KEYPAIR

# What an operator's environment holds for production behind an HTTPS proxy.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k7Q2vR9xL4mN8pT1wZ6yB3cF5hJ0dG-sA_eU2iO9rK4lP7qW1nX3vM8tY6bH5jD0",
    "ALLOWED_HOSTS": "mail.example.com",
    "SITE_URL": "https://mail.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://mail.example.com",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SENDGRID_API_KEY": "SG.production-key",
    "SENDGRID_WEBHOOK_VERIFICATION_KEY": TEST_WEBHOOK_KEYPAIR.public_key,
}
# `make run`'s .env on a laptop: DEBUG off, plain HTTP on 127.0.0.1.
MAKE_RUN = {"DEBUG": "false", "SECRET_KEY": "make-run-test", "SITE_URL": "http://127.0.0.1:8000"}
DEPLOY_SETTINGS = [
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SAMESITE",
    "SECURE_PROXY_SSL_HEADER",
    "CSRF_TRUSTED_ORIGINS",
    "TRUSTED_PROXY_COUNT",
    "AXES_FAILURE_LIMIT",
    "SECRET_KEY_FALLBACKS",
]
SHOW_SETTINGS = (
    "import json; from django.conf import settings; "
    f"print(json.dumps({{name: getattr(settings, name) for name in {DEPLOY_SETTINGS!r}}}))"
)


def manage(*args: str, tmp_path: Any, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        **environment,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def deploy_settings(tmp_path: Any, **environment: str) -> dict[str, Any]:
    process = manage("shell", "--no-imports", "-c", SHOW_SETTINGS, tmp_path=tmp_path, **environment)
    assert process.returncode == 0, process.stderr
    return dict(json.loads(process.stdout.strip().splitlines()[-1]))


def test_check_deploy_is_clean_in_a_production_configuration(tmp_path):
    process = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, **PRODUCTION)

    assert process.returncode == 0, process.stdout + process.stderr
    assert "System check identified no issues" in process.stdout, process.stdout


def test_production_at_an_https_address_is_secure_without_further_settings(tmp_path):
    bare = {k: v for k, v in PRODUCTION.items() if not k.startswith(("SECURE_", "CSRF_"))}

    found = deploy_settings(tmp_path, **bare)

    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SECURE_HSTS_SECONDS"] == 31_536_000
    assert found["SESSION_COOKIE_SECURE"] is True and found["CSRF_COOKIE_SECURE"] is True
    assert found["SESSION_COOKIE_HTTPONLY"] is True
    assert found["SESSION_COOKIE_SAMESITE"] == found["CSRF_COOKIE_SAMESITE"] == "Lax"
    # Subdomains and the preload list are the domain owner's decision, and no proxy is assumed.
    assert found["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False and found["SECURE_HSTS_PRELOAD"] is False
    assert found["SECURE_PROXY_SSL_HEADER"] is None and found["TRUSTED_PROXY_COUNT"] == 0


def test_make_run_on_plain_http_gets_no_redirect_and_no_secure_cookies(tmp_path):
    found = deploy_settings(tmp_path, **MAKE_RUN)

    assert found["SECURE_SSL_REDIRECT"] is False and found["SECURE_HSTS_SECONDS"] == 0
    assert found["SESSION_COOKIE_SECURE"] is False and found["CSRF_COOKIE_SECURE"] is False


def test_the_operators_values_win(tmp_path):
    operator = {
        "SECURE_HSTS_SECONDS": "300",
        "SESSION_COOKIE_SAMESITE": "Strict",
        "CSRF_TRUSTED_ORIGINS": "https://mail.example.com,https://admin.example.com",
        "TRUSTED_PROXY_COUNT": "2",
        "AXES_FAILURE_LIMIT": "10",
        # The secret being rotated out: unsubscribe links in inboxes keep working under it.
        "SECRET_KEY_FALLBACKS": "old-secret-one,old-secret-two",
    }

    found = deploy_settings(tmp_path, **{**PRODUCTION, **operator})

    assert found["SECURE_HSTS_SECONDS"] == 300
    assert found["SESSION_COOKIE_SAMESITE"] == "Strict"
    assert found["CSRF_TRUSTED_ORIGINS"] == ["https://mail.example.com", "https://admin.example.com"]
    assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["TRUSTED_PROXY_COUNT"] == 2 and found["AXES_FAILURE_LIMIT"] == 10
    assert found["SECRET_KEY_FALLBACKS"] == ["old-secret-one", "old-secret-two"]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto", "HTTP_X_FORWARDED_PROTO,https"),
        ("SECURE_SSL_REDIRECT", "ture", "neither true nor false"),
        ("SECURE_HSTS_SECONDS", "a year", "does not parse"),
        ("SESSION_COOKIE_SAMESITE", "Loose", "Lax, Strict, None"),
        ("TRUSTED_PROXY_COUNT", "-1", "positive number or 0"),
        ("AXES_FAILURE_LIMIT", "0", "positive number"),
    ],
)
def test_a_value_that_does_not_parse_stops_start_up_naming_the_variable(tmp_path, name, value, says):
    process = manage("check", tmp_path=tmp_path, **{**PRODUCTION, name: value})

    assert process.returncode != 0
    [message] = [line for line in process.stderr.splitlines() if line.startswith("django.core.exceptions.")]
    assert name in message and says in message, message
