"""`manage.py demo_setup`: what a fresh machine needs to try TriggerMail, and nothing it already has.

Every step looks before it creates, so `make run` can call this on every start: a marketer's edited
rules, an existing admin login and existing write keys survive restarts untouched.
"""

from __future__ import annotations

import json
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from campaigns.authoring.history import rules_import_recorded
from campaigns.authoring.transfer import document_loads
from campaigns.models import Rule
from events.models import WriteKey

DEMO_CAMPAIGN = Path(__file__).with_name("demo_campaign.json")
ADMIN_USERNAME = "admin"
DEMO_KEY_NAME = "demo"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEMO_USER_ID = "demo-user-1"
DEMO_EMAIL = "you@example.com"


@dataclass
class DemoSetup:
    """What demo_setup found or created, as the lines a person reads first."""

    campaign: str = ""
    admin: str = ""
    write_key: str = ""
    # The raw key when it was created now; None when an existing key cannot be shown.
    raw_key: str | None = None
    base_url: str = DEFAULT_BASE_URL

    def lines(self) -> list[str]:
        key = shlex.quote(f"{self.raw_key}:") if self.raw_key else '"$WRITE_KEY:"'
        lines = [
            "TriggerMail demo",
            f"  Campaign   {self.campaign}",
            f"  Admin      {self.admin}",
            f"  Write key  {self.write_key}",
            "",
            f"Post a signup to see the welcome email (change {DEMO_EMAIL} to your address):",
        ]
        if not self.raw_key:
            lines.append("  export WRITE_KEY=<your write key>")
        lines.append(f"  {demo_curl(key, self.base_url)}")
        return lines


def demo_batch() -> dict[str, Any]:
    """An identify that gives the demo contact an address, then the signup that triggers Welcome."""
    return {
        "batch": [
            {"type": "identify", "userId": DEMO_USER_ID, "traits": {"email": DEMO_EMAIL, "first_name": "Ada"}},
            {"type": "track", "event": "user_signup", "userId": DEMO_USER_ID, "properties": {"plan": "free"}},
        ]
    }


def demo_curl(quoted_key: str, base_url: str = DEFAULT_BASE_URL) -> str:
    body = shlex.quote(json.dumps(demo_batch()))
    return f"curl -sS -u {quoted_key} -H 'Content-Type: application/json' -d {body} {base_url}/v1/batch"


def demo_setup(*, base_url: str = DEFAULT_BASE_URL) -> DemoSetup:
    """Import the demo campaign, create the admin login and a write key, each only if missing."""
    result = DemoSetup(base_url=base_url.rstrip("/"))
    with transaction.atomic():
        result.campaign = _campaign_import()
        result.admin = _admin_create(result.base_url)
        result.write_key, result.raw_key = _write_key_issue(result.base_url)
    return result


def _campaign_import() -> str:
    rules = Rule.objects.count()
    if rules:
        return f"not imported: {rules} rule{'s' if rules != 1 else ''} already in the database (edits are kept)"
    document = document_loads(DEMO_CAMPAIGN.read_text(encoding="utf-8"))
    # Recorded, so each rule's and template's history starts with the demo as imported (version 1),
    # which a marketer can restore after changing it.
    rules_import_recorded(document)
    names = ", ".join(sorted(document["rules"]))
    return f"imported {len(document['rules'])} rules from {DEMO_CAMPAIGN.name}: {names}"


def _admin_create(base_url: str) -> str:
    users = get_user_model()._default_manager
    if users.filter(username=ADMIN_USERNAME).exists():
        return f"user {ADMIN_USERNAME!r} exists; to set a new password: manage.py changepassword {ADMIN_USERNAME}"
    superuser = users.filter(is_superuser=True).order_by("pk").first()
    if superuser is not None:
        name = superuser.get_username()
        return f"superuser {name!r} exists; to set a new password: manage.py changepassword {name}"
    password = secrets.token_urlsafe(12)
    users.create_superuser(username=ADMIN_USERNAME, email="", password=password)
    return f"{base_url}/admin/  user {ADMIN_USERNAME}  password {password}  (shown once)"


def _write_key_issue(base_url: str) -> tuple[str, str | None]:
    existing = WriteKey.objects.filter(revoked_at__isnull=True).order_by("-created_at").first()
    if existing is not None:
        # Only a hash is stored, so the secret of an existing key is gone for good.
        return (
            f"{existing} exists but is stored hashed, so it cannot be shown; "
            f"create another in Admin: {base_url}/admin/events/writekey/add/",
            None,
        )
    _, raw = WriteKey.issue(name=DEMO_KEY_NAME)
    return f"{DEMO_KEY_NAME}: {raw}  (shown once; only its hash is stored)", raw
